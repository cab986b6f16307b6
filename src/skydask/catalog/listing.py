"""A catalogue's file listing, kept in one small file so that opening it reads nothing else.

A Source or ForcedSource table of a survey is tens of thousands of files (DC2 Run 2.1: 75,000
per table, one or a few per visit). :func:`skydask.open_catalog` never opens them to open the
table, but without help it must still walk the directory tree and read one file's footer for the
schema. :func:`write_listing` records both, once, in ``_skydask_listing.json`` at the top of
the catalogue: the relative paths of the data files (hive ``key=value`` directories included),
the layout kind, and the Arrow schema. When that file exists, opening reads it and nothing else:
no directory walk, no Parquet file.

The listing is trusted the way dask trusts a ``_metadata`` file: data releases do not change.
A file listed but gone fails when it is read, with its path in the error; files added after the
listing are not seen until :func:`write_listing` is run again. Writing is atomic (a temporary
file renamed over the old listing). HATS catalogues need no listing (their pixel paths and
``_metadata`` already serve).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import pyarrow as pa

from skydask.catalog.layout import CatalogFile, Layout, _hive_values, discover
from skydask.catalog.sources import ParquetSource
from skydask.errors import CatalogReadError

__all__ = ["LISTING_FILE", "read_listing", "write_listing"]

log = logging.getLogger(__name__)

LISTING_FILE = "_skydask_listing.json"
_FORMAT = "skydask.listing"
_VERSION = 1


def _encode_schema(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def _decode_schema(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def write_listing(path: str | os.PathLike[str]) -> Path:
    """Record a catalogue directory's files and schema in ``_skydask_listing.json``.

    Walks the directory once (as :func:`skydask.open_catalog` would) and reads the first file's
    footer for the schema. Afterwards ``open_catalog(path)`` reads only the listing.

    Parameters
    ----------
    path
        A catalogue directory in the ``directory`` or ``hive`` layout.

    Returns
    -------
    pathlib.Path
        The listing file written.

    Raises
    ------
    CatalogReadError
        If ``path`` is not a directory of Parquet files, or is a HATS catalogue.

    Examples
    --------
    >>> import tempfile, pandas as pd, skydask
    >>> from skydask.catalog.listing import write_listing
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for visit in (1, 2):
    ...         pd.DataFrame({"objectId": [1, 2], "visit": [visit] * 2, "psFlux": [1.0, 2.0]}
    ...                      ).to_parquet(f"{tmp}/forced_source_visit_{visit}.parquet")
    ...     listing = write_listing(tmp)
    ...     cat = skydask.open_catalog(tmp)
    ...     (listing.name, cat.schema.flavour, cat.npartitions, len(cat))
    ('_skydask_listing.json', 'dc2_forced_source', 2, 4)
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise CatalogReadError(
            f"write_listing needs a catalogue directory; {str(root)!r} is not one"
        )
    layout = discover(root)
    if layout.kind not in ("directory", "hive"):
        raise CatalogReadError(
            f"{str(root)!r} is a {layout.kind} catalogue; a listing is only kept for directory "
            "and hive layouts"
        )
    source = ParquetSource.open(layout)
    record: dict[str, Any] = {
        "format": _FORMAT,
        "version": _VERSION,
        "kind": layout.kind,
        "files": [os.path.relpath(f.path, root) for f in layout.files],
        "metadata_file": (
            os.path.relpath(layout.metadata_file, root) if layout.metadata_file else None
        ),
        "schema": _encode_schema(source.arrow_schema),
    }
    target = root / LISTING_FILE
    tmp = root / f".{LISTING_FILE}.{secrets.token_hex(4)}"
    tmp.write_text(json.dumps(record, separators=(",", ":")))
    tmp.replace(target)
    log.info("listed %d files of %s in %s", len(layout.files), root, target)
    return target


def read_listing(path: str | os.PathLike[str]) -> tuple[Layout, pa.Schema] | None:
    """The layout and schema recorded by :func:`write_listing`, or None when there is none.

    An unreadable or foreign listing is ignored with a warning (the caller then walks the
    directory), never trusted.
    """
    root = Path(path).expanduser()
    listing = root / LISTING_FILE
    if not root.is_dir() or not listing.is_file():
        return None
    try:
        record = json.loads(listing.read_text())
        if record.get("format") != _FORMAT or record.get("version") != _VERSION:
            raise ValueError(f"format {record.get('format')!r} version {record.get('version')!r}")
        kind = str(record["kind"])
        relative = [str(p) for p in record["files"]]
        schema = _decode_schema(str(record["schema"]))
        meta = record.get("metadata_file")
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
        log.warning(
            "ignoring unreadable listing %s (%s); walking the directory instead", listing, exc
        )
        return None
    if kind not in ("directory", "hive") or not relative:
        log.warning("ignoring listing %s of kind %r with %d files", listing, kind, len(relative))
        return None
    files = []
    for rel in relative:
        full = root / rel
        files.append(CatalogFile(str(full), _hive_values(full, root) if kind == "hive" else ()))
    layout = Layout(str(root), kind, tuple(files), str(root / meta) if meta else None)
    return layout, schema
