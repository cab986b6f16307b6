"""Single-visit catalogues in the LSST pipeline's afw FITS format, as Source tables.

The LSST science pipelines (and Rubin's validation package ``faro``) write source catalogues as
afw tables: a FITS binary table whose boolean flags are packed into one ``flags`` column of
bits, named by the header keys ``TFLAG1``, ``TFLAG2``, ... :func:`read_afw_table` unpacks those
bits into one boolean column per flag (``base_PixelFlags_flag_saturated``, ``detect_isPrimary``
...), converts big-endian columns to native order, and adds a ``band`` column, so that the
``lsst_pipeline_src`` flavour of ``quantities.yaml`` maps the columns onto the Source quantities
(``ra``/``dec`` in degrees from radians, ``psFlux`` in nJy from the calibrated
``base_PsfFlux_mag``; see the YAML for why).

Such files are small (one detector of one visit, or a few thousand matched sources), so they are
read whole when opened: :func:`open_afw_catalog` returns an in-memory :class:`Catalog` with one
partition per file.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from skydask.catalog.catalog import Catalog
from skydask.catalog.sources import MemorySource
from skydask.errors import CatalogReadError
from skydask.schema.definitions import BANDS
from skydask.schema.schema import Schema, detect_flavour

__all__ = ["FITS_SUFFIXES", "is_fits_path", "open_afw_catalog", "read_afw_table"]

log = logging.getLogger(__name__)

FITS_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fts")

# The filter codes of faro's matched catalogues (its ``filter_dict``): HSC-R is 3, HSC-I is 4.
_FILTER_CODES = dict(enumerate(BANDS, start=1))
_BAND_IN_NAME = re.compile(r"[_-]([ugrizy])\.(?:fits|fit|fts)(?:\.gz)?$")
_FILTER_HEADER = re.compile(r"^(?:HSC-|LSST-)?([ugrizyUGRIZY])(?:[^A-Za-z]|$)")


def is_fits_path(path: str | os.PathLike[str]) -> bool:
    """Whether a path names a FITS file (by its suffix).

    Examples
    --------
    >>> is_fits_path("matchedCatalogTract_0_r.fits.gz"), is_fits_path("x.parquet")
    (True, False)
    """
    return str(path).lower().endswith(FITS_SUFFIXES)


def _native(values: np.ndarray) -> np.ndarray:
    if values.dtype.byteorder not in ("=", "|"):
        values = values.astype(values.dtype.newbyteorder("="))
    if values.dtype.kind == "S":
        values = values.astype(str)
    return values


def _band(path: Path, header: Any, columns: dict[str, np.ndarray], band: str | None) -> str | None:
    """The band of a single-visit table: given, else filter code, header FILTER, or file name."""
    if band is not None:
        if band not in BANDS:
            raise CatalogReadError(f"band {band!r} for {str(path)!r} is not one of {BANDS}")
        return band
    codes = columns.get("filt")
    if codes is not None and len(codes):
        found = {_FILTER_CODES.get(int(c)) for c in np.unique(codes)}
        if len(found) == 1 and None not in found:
            return found.pop()
    match = _FILTER_HEADER.match(str(header.get("FILTER", "")))
    if match:
        return match.group(1).lower()
    match = _BAND_IN_NAME.search(path.name)
    return match.group(1) if match else None


def read_afw_table(path: str | os.PathLike[str], band: str | None = None) -> pd.DataFrame:
    """Read an afw FITS source table into pandas, flags unpacked, with a ``band`` column.

    Parameters
    ----------
    path
        The FITS file (``.fits`` or ``.fits.gz``); the first binary-table HDU is read.
    band
        The band of the visit(s). By default it comes from faro's ``filt`` codes (1-6 for
        u..y), the header's ``FILTER`` (``HSC-R`` is r), or a ``_<band>.fits`` file name, in
        that order; without any of them no ``band`` column is added.

    Raises
    ------
    CatalogReadError
        If the file cannot be read as a FITS table (the message names it).
    """
    from astropy.io import fits

    p = Path(path)
    try:
        with fits.open(p, memmap=False) as hdus:
            hdu = next((h for h in hdus if isinstance(h, fits.BinTableHDU)), None)
            if hdu is None:
                raise CatalogReadError(f"{str(p)!r} holds no FITS binary table")
            header = hdu.header
            data = hdu.data
            names = list(data.columns.names)
            raw = {name: np.asarray(data[name]) for name in names}
    except CatalogReadError:
        raise
    except (OSError, ValueError, TypeError, EOFError) as exc:
        raise CatalogReadError(f"cannot read {str(p)!r} as a FITS table: {exc}") from exc

    flag_names = {int(k[5:]): str(v) for k, v in header.items() if re.fullmatch(r"TFLAG\d+", k)}
    columns: dict[str, np.ndarray] = {}
    for name, values in raw.items():
        if name == "flags" and values.ndim == 2 and flag_names:
            # one bit per TFLAGn, in order: flags[:, n - 1] is TFLAGn
            for n, flag in sorted(flag_names.items()):
                if n - 1 < values.shape[1]:
                    columns[flag] = values[:, n - 1].astype(bool)
            continue
        if values.ndim != 1:
            log.debug("skipping %d-dimensional column %s of %s", values.ndim, name, p)
            continue
        columns[name] = _native(values)
    if "band" not in columns:
        found = _band(p, header, columns, band)
        if found is not None:
            columns["band"] = np.full(len(next(iter(columns.values()), [])), found, dtype=object)
    frame = pd.DataFrame(columns)
    if "band" in frame:
        frame["band"] = frame["band"].astype("string")
    return frame


def open_afw_catalog(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    schema: str | Schema | None = None,
    *,
    band: str | None = None,
    name: str | None = None,
) -> Catalog:
    """A Source catalogue over afw FITS tables, one in-memory partition per file.

    Parameters
    ----------
    paths
        One FITS file or several with the same columns (e.g. the r and i files of a field).
    schema
        The flavour; detected from the columns by default (``lsst_pipeline_src``).
    band
        Passed to :func:`read_afw_table` for every file.
    name
        A name for the catalogue (shown in its repr).
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not items:
        raise CatalogReadError("open_afw_catalog needs at least one FITS file")
    frames = [read_afw_table(p, band) for p in items]
    first = list(frames[0].columns)
    for p, frame in zip(items[1:], frames[1:], strict=True):
        if list(frame.columns) != first:
            missing = sorted(set(first) - set(frame.columns))
            extra = sorted(set(frame.columns) - set(first))
            raise CatalogReadError(
                f"columns of {str(p)!r} differ from those of {str(items[0])!r}: missing "
                f"{missing}, extra {extra}"
            )
    arrow_schema = pa.Schema.from_pandas(frames[0].iloc[:0], preserve_index=False)
    source = MemorySource([f.reset_index(drop=True) for f in frames], arrow_schema)
    resolved = (
        schema if isinstance(schema, Schema) else Schema(schema or detect_flavour(first), first)
    )
    return Catalog(source, resolved, name=name or Path(items[0]).name)
