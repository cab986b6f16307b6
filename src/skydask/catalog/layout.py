"""Find the files of a catalogue on disk and what their paths say.

Layouts understood, detected in this order:

``hats``
    A HEALPix-partitioned catalogue in the HATS layout (``hats.properties``,
    ``partition_info.csv``, ``dataset/Norder=K/Dir=D/Npix=N.parquet``). Each file's pixel comes
    from its path, so a region prunes files without opening any.
``hive``
    Directories named ``key=value`` (``tract=3812/...parquet``); the keys become columns.
``directory``
    A directory of Parquet files, such as DC2's ``object_tract_<N>.parquet``.
``file``
    One Parquet file.

Listing is the only I/O done here: no Parquet file is opened, so opening a catalogue of
thousands of files costs one directory walk.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from skydask.catalog.healpix_index import parse_hats_pixel_path
from skydask.errors import CatalogReadError

__all__ = ["CatalogFile", "Layout", "discover"]

_HIVE_PART = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$")
_HATS_KEYS = frozenset({"Norder", "Dir", "Npix"})


@dataclass(frozen=True)
class CatalogFile:
    """One Parquet file of a catalogue.

    ``partition_values`` are the hive keys of its directories (typed int/float when they
    parse as such); ``healpix`` is the (order, pixel) of a HATS file.
    """

    path: str
    partition_values: tuple[tuple[str, int | float | str], ...] = ()
    healpix: tuple[int, int] | None = None


@dataclass(frozen=True)
class Layout:
    """The files of a catalogue and the kind of layout they were found in."""

    root: str
    kind: str
    files: tuple[CatalogFile, ...]
    metadata_file: str | None = None
    properties: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def partition_keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.files[0].partition_values) if self.files else ()


def _typed(value: str) -> int | float | str:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def _read_properties(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def _walk_parquet(root: Path, *, partition_dirs_only: bool = False) -> list[Path]:
    """Data files below root, sorted; hidden and underscore files (metadata) skipped.

    With ``partition_dirs_only``, only ``key=value`` subdirectories are entered, so that a
    catalogue directory can hold other things (DC2 keeps per-tract files at the top; the
    synthetic generator keeps its truth tables in ``truth/``) without them joining the data.
    """
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith((".", "_")) and (not partition_dirs_only or _HIVE_PART.match(d))
        )
        found.extend(
            Path(dirpath) / f
            for f in sorted(filenames)
            if f.endswith((".parquet", ".parq", ".pq")) and not f.startswith((".", "_"))
        )
    return found


def _hive_values(path: Path, root: Path) -> tuple[tuple[str, int | float | str], ...]:
    parts = path.relative_to(root).parts[:-1]
    values = []
    for part in parts:
        match = _HIVE_PART.match(part)
        if match and match.group(1) not in _HATS_KEYS:
            values.append((match.group(1), _typed(match.group(2))))
    return tuple(values)


def discover(path: str | os.PathLike[str]) -> Layout:
    """Find a catalogue's files.

    Raises
    ------
    CatalogReadError
        If the path does not exist or holds no Parquet file.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise CatalogReadError(f"no catalogue at {str(root)!r}: the path does not exist")
    if root.is_file():
        return Layout(str(root), "file", (CatalogFile(str(root)),))

    if (root / "hats.properties").exists() or (root / "properties").exists():
        props_file = root / "hats.properties"
        props = _read_properties(props_file if props_file.exists() else root / "properties")
        data_root = root / "dataset" if (root / "dataset").is_dir() else root
        files = []
        for p in _walk_parquet(data_root):
            pixel = parse_hats_pixel_path(str(p))
            if pixel is not None:
                files.append(CatalogFile(str(p), healpix=pixel))
        if not files:
            raise CatalogReadError(
                f"HATS catalogue {str(root)!r} has no Npix=*.parquet files under {str(data_root)!r}"
            )
        meta = data_root / "_metadata"
        return Layout(str(root), "hats", tuple(files), str(meta) if meta.exists() else None, props)

    paths = _walk_parquet(root, partition_dirs_only=True)
    if not paths:
        raise CatalogReadError(
            f"no Parquet files (*.parquet) found in {str(root)!r} or its key=value subdirectories"
        )
    files_list = [CatalogFile(str(p), _hive_values(p, root)) for p in paths]
    keysets = {tuple(k for k, _ in f.partition_values) for f in files_list}
    if len(keysets) > 1:
        raise CatalogReadError(
            f"inconsistent hive partitioning under {str(root)!r}: "
            f"directory keys differ between files "
            f"({sorted(keysets)})"
        )
    kind = "hive" if files_list[0].partition_values else "directory"
    meta = root / "_metadata"
    return Layout(str(root), kind, tuple(files_list), str(meta) if meta.exists() else None)
