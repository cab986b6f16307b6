"""A catalogue's fingerprint: a hash that changes when any of its data files changes.

For files on disk it hashes each file's path relative to the catalogue root, its size and the
raw bytes of its Parquet footer (which holds the row counts, the schema and min/max statistics
of every column chunk), so rewriting any file's data changes it while copying the catalogue
elsewhere does not. In-memory catalogues hash their contents.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import pandas as pd

from skydask.catalog.layout import Layout
from skydask.errors import CatalogReadError

__all__ = ["footer_bytes", "frames_fingerprint", "layout_fingerprint"]


def footer_bytes(path: str) -> bytes:
    """The raw Parquet footer of a file (metadata only; no data page is read)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            if size < 12:
                raise CatalogReadError(f"{path!r} is too short to be a Parquet file ({size} bytes)")
            handle.seek(size - 8)
            tail = handle.read(8)
            if tail[4:] != b"PAR1":
                raise CatalogReadError(f"{path!r} does not end with the Parquet magic bytes")
            (length,) = struct.unpack("<I", tail[:4])
            if length + 12 > size:
                raise CatalogReadError(f"{path!r} has a footer longer than the file: truncated?")
            handle.seek(size - 8 - length)
            return handle.read(length)
    except OSError as exc:
        raise CatalogReadError(f"cannot read {path!r}: {exc}") from exc


def layout_fingerprint(layout: Layout) -> str:
    """SHA-256 over (relative path, size, footer) of every data file, in order."""
    digest = hashlib.sha256()
    root = Path(layout.root)
    for f in layout.files:
        rel = os.path.relpath(f.path, root if root.is_dir() else root.parent)
        digest.update(rel.encode())
        digest.update(str(os.path.getsize(f.path)).encode())
        digest.update(footer_bytes(f.path))
    return digest.hexdigest()


def frames_fingerprint(frames: list[pd.DataFrame]) -> str:
    """SHA-256 of in-memory partitions' contents."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(",".join(map(str, frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
