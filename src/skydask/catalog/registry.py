"""Named catalogues, like GCRCatalogs' configs: ``open_catalog("dc2_object_run2.2i")``.

A registry file is YAML mapping names to entries::

    dc2_object_run2.2i_dr6:
      path: "{site_root}/DC2-prod/Run2.2i/dpdd/Run2.2i-dr6-v4/object_dpdd_only"
      schema: dc2
      description: DC2 Run 2.2i DR6 object table (DPDD columns)

Files are found, in order: the package's own ``catalogs.yaml``; the files and directories
listed under the dask-config key ``skydask.catalogs.paths``; the path(s) in the
``SKYDASK_CATALOG_PATH`` environment variable (``os.pathsep``-separated). Later entries override
earlier ones. ``{site_root}`` is replaced by ``skydask.catalogs.site-root`` from dask config
(default: the ``SKYDASK_SITE_ROOT`` environment variable, else ``~/skydask-data``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import dask.config
import yaml

import skydask.config  # noqa: F401  (registers the skydask.catalogs defaults)
from skydask.errors import SpecError

__all__ = ["CatalogEntry", "available_catalogs", "lookup"]

_ALLOWED_KEYS = {"path", "schema", "description"}


@dataclass(frozen=True)
class CatalogEntry:
    """One registered catalogue."""

    name: str
    path: str
    schema: str | None
    description: str
    source: str


def _site_root() -> str:
    root = dask.config.get("skydask.catalogs.site-root", default=None)
    return str(root or os.environ.get("SKYDASK_SITE_ROOT") or Path("~/skydask-data").expanduser())


def _registry_files() -> list[tuple[str, str]]:
    """(label, YAML text) of every registry file, weakest first."""
    texts = [
        (
            "skydask/catalogs.yaml",
            resources.files("skydask.catalog").joinpath("catalogs.yaml").read_text(),
        )
    ]
    configured = dask.config.get("skydask.catalogs.paths", default=None) or []
    env = os.environ.get("SKYDASK_CATALOG_PATH", "")
    candidates = [*configured, *(p for p in env.split(os.pathsep) if p)]
    for entry in candidates:
        path = Path(entry).expanduser()
        files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
        texts.extend((str(f), f.read_text()) for f in files if f.is_file())
    return texts


def _parse(label: str, text: str) -> dict[str, CatalogEntry]:
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise SpecError(f"catalogue registry {label}: expected a mapping of names to entries")
    out = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or "path" not in entry:
            raise SpecError(f"catalogue registry {label}: entry {name!r} needs a 'path'")
        unknown = set(entry) - _ALLOWED_KEYS
        if unknown:
            raise SpecError(
                f"catalogue registry {label}: entry {name!r} has unknown key(s) {sorted(unknown)}; "
                f"allowed: {sorted(_ALLOWED_KEYS)}"
            )
        path = str(entry["path"]).replace("{site_root}", _site_root())
        out[str(name)] = CatalogEntry(
            str(name),
            os.path.expanduser(path),
            entry.get("schema"),
            str(entry.get("description", "")),
            label,
        )
    return out


def available_catalogs() -> dict[str, CatalogEntry]:
    """Every registered catalogue by name (whether or not its files exist here)."""
    merged: dict[str, CatalogEntry] = {}
    for label, text in _registry_files():
        merged.update(_parse(label, text))
    return merged


def lookup(name: str) -> CatalogEntry | None:
    """The entry registered under ``name``, or None."""
    return available_catalogs().get(name)
