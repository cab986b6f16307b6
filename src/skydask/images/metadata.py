"""Per-visit metadata from FITS headers and from calibration tables.

What each coordinate of a stack means, and where it comes from (first found wins):

* ``band`` — header ``BAND``, else the first letter of ``FILTER`` when it names a band in the
  usual ways (``"r"``, ``"HSC-I"``, ``"z DECam SDSS c0004 9260.0 1520.0"``, ``"g_sim_1.4"``);
  ``"unknown"`` otherwise (the HSC test file's ``FILTER`` is ``"_unknown_"``).
* ``mjd`` — the middle of the exposure (UTC MJD): ``MJD-MID``, ``TIME-MID`` (ISO, as LSST's
  ``afw`` writes it), ``DATE-AVG``, else ``MJD-OBS`` or ``DATE-OBS`` (the start) plus half of
  ``EXPTIME``. Dates before 1970-01-02 are ``afw``'s "not set" value and become NaN.
* ``exptime`` (s) — ``EXPTIME``; zero or missing is NaN.
* ``zeropoint`` — the AB magnitude of one image unit summed over a source:
  ``mag = zeropoint - 2.5 log10(counts)``. ``MAGZERO``, ``MAGZPT``, ``ZEROPT``, else
  ``2.5 log10(FLUXMAG0)`` (LSST); zero or missing is NaN. A stack's coadd needs it.
* ``seeing`` (arcsec, PSF FWHM) — ``SEEING`` or ``PSF_FWHM`` (arcsec); the DECam reader also
  reads the community pipeline's ``FWHM`` (pixels).
* ``pixel_scale`` (arcsec) — from the WCS at the image centre (exact for SIP and TPV).

A calibration table overrides the headers (:func:`read_metadata_table`): a Legacy Surveys
``survey-ccds`` table (matched on exposure number and CCD name; zeropoint
``ccdzpt + 2.5 log10(exptime)`` because its images are in ADU and ``ccdzpt`` is for 1 ADU/s,
seeing ``fwhm`` in pixels) or any table with a ``file`` column (the file's base name, plus
``hdu`` when a file holds several images) and any of ``band``, ``mjd``, ``exptime``,
``zeropoint``, ``seeing`` (arcsec), ``seeing_pix``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.table import Table
from astropy.time import Time
from astropy.wcs import WCS

from skydask.errors import CatalogReadError, SchemaError

__all__ = [
    "META_FIELDS",
    "VisitMeta",
    "apply_metadata",
    "band_from_header",
    "exptime_from_header",
    "mjd_from_header",
    "pixel_scale_arcsec",
    "read_metadata_table",
    "zeropoint_from_header",
]

#: The per-visit values a table may override.
META_FIELDS = ("band", "mjd", "exptime", "zeropoint", "seeing")
_UNIX_EPOCH_MJD = 40587.0
_FILTER_RE = re.compile(r"^(?:hsc-|lsst-|decam-)?([ugrizy])(?:$|[\s_\-.]|band)", re.IGNORECASE)


@dataclass(frozen=True)
class VisitMeta:
    """What a reader learns about one visit from its headers (see the module docstring)."""

    name: str
    band: str
    mjd: float
    exptime: float
    zeropoint: float
    seeing: float
    pixel_scale: float
    shape: tuple[int, int]
    wcs_header: str
    file: str
    hdu: int
    exposure: str = ""
    detector: str = ""

    def with_values(self, values: Mapping[str, Any]) -> VisitMeta:
        """A copy with the finite (or non-empty) entries of ``values`` replacing its own."""
        new: dict[str, Any] = {}
        for key in META_FIELDS:
            if key not in values:
                continue
            value = values[key]
            if key == "band":
                if isinstance(value, str) and value.strip():
                    new[key] = value.strip()
            elif value is not None and np.isfinite(float(value)):
                new[key] = float(value)
        pix = values.get("seeing_pix")
        if "seeing" not in new and pix is not None and np.isfinite(float(pix)):
            new["seeing"] = float(pix) * self.pixel_scale
        return replace(self, **new)


def _float(header: Mapping[str, Any], *keys: str) -> float:
    for key in keys:
        if key in header:
            try:
                value = float(header[key])
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                return value
    return math.nan


def band_from_header(header: Mapping[str, Any]) -> str:
    """The band letter of a visit, or ``"unknown"``.

    Examples
    --------
    >>> band_from_header({"FILTER": "z DECam SDSS c0004 9260.0 1520.0"})
    'z'
    >>> band_from_header({"FILTER": "HSC-I"}), band_from_header({"FILTER": "_unknown_"})
    ('i', 'unknown')
    """
    band = str(header.get("BAND", "") or "").strip()
    if band:
        return band
    match = _FILTER_RE.match(str(header.get("FILTER", "") or "").strip())
    return match.group(1).lower() if match else "unknown"


def exptime_from_header(header: Mapping[str, Any]) -> float:
    """``EXPTIME`` in seconds; NaN when missing or not positive."""
    value = _float(header, "EXPTIME", "EXPOSURE")
    return value if value > 0 else math.nan


def _iso_to_mjd(value: Any) -> float:
    text = str(value).strip().rstrip("Z")
    if not text:
        return math.nan
    try:
        return float(Time(text, format="isot", scale="utc").mjd)
    except ValueError:
        return math.nan


def mjd_from_header(header: Mapping[str, Any]) -> float:
    """Mid-exposure MJD (UTC), or NaN (see the module docstring for the keys).

    Examples
    --------
    >>> round(mjd_from_header({"MJD-OBS": 60000.0, "EXPTIME": 86.4}), 6)
    60000.0005
    >>> mjd_from_header({"TIME-MID": "1969-12-31T23:59:51.999918240Z"})
    nan
    """
    mjd = _float(header, "MJD-MID")
    for key in ("TIME-MID", "DATE-AVG"):
        if math.isnan(mjd) and key in header:
            mjd = _iso_to_mjd(header[key])
    if math.isnan(mjd):
        start = _float(header, "MJD-OBS")
        if math.isnan(start) and "DATE-OBS" in header:
            start = _iso_to_mjd(header["DATE-OBS"])
        exptime = exptime_from_header(header)
        mjd = start + (exptime / 2.0 / 86400.0 if math.isfinite(exptime) else 0.0)
    return mjd if mjd > _UNIX_EPOCH_MJD + 1.0 else math.nan


def zeropoint_from_header(header: Mapping[str, Any]) -> float:
    """Magnitude zeropoint of the image units, or NaN.

    Examples
    --------
    >>> zeropoint_from_header({"FLUXMAG0": 1e12})
    30.0
    >>> zeropoint_from_header({"FLUXMAG0": 0.0})
    nan
    """
    zp = _float(header, "MAGZERO", "MAGZPT", "ZEROPT")
    if math.isfinite(zp) and zp > 0:
        return zp
    flux0 = _float(header, "FLUXMAG0")
    return 2.5 * math.log10(flux0) if flux0 > 0 else math.nan


def pixel_scale_arcsec(wcs: WCS, shape: tuple[int, int]) -> float:
    """Pixel scale (arcsec) at the image centre: the square root of the local pixel area."""
    yc, xc = (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    x = np.array([xc - 0.5, xc + 0.5, xc - 0.5])
    y = np.array([yc - 0.5, yc - 0.5, yc + 0.5])
    ra, dec = wcs.all_pix2world(x, y, 0)
    v = np.stack(
        [
            np.cos(np.radians(dec)) * np.cos(np.radians(ra)),
            np.cos(np.radians(dec)) * np.sin(np.radians(ra)),
            np.sin(np.radians(dec)),
        ],
        axis=1,
    )
    area = np.linalg.norm(np.cross(v[1] - v[0], v[2] - v[0]))
    return float(np.degrees(np.sqrt(area)) * 3600.0)


def read_metadata_table(table: Any) -> pd.DataFrame:
    """Normalise a calibration table to columns ``key`` plus :data:`META_FIELDS`.

    ``key`` is ``("ccd", expnum, ccdname)`` for a Legacy Surveys ``survey-ccds`` table and
    ``("file", base name, hdu or -1)`` for a generic table. ``table`` is a path (FITS, CSV or
    Parquet), an astropy Table or a pandas DataFrame.

    Raises
    ------
    CatalogReadError
        If a path cannot be read.
    SchemaError
        If the table has neither ``expnum``/``ccdname``/``ccdzpt`` nor ``file``.
    """
    frame = _as_frame(table)
    cols = set(frame.columns)
    rows: dict[str, Any] = {}
    if {"expnum", "ccdname", "ccdzpt", "exptime"} <= cols:
        exptime = frame["exptime"].to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            zp = frame["ccdzpt"].to_numpy(dtype=np.float64) + 2.5 * np.log10(exptime)
        rows["key"] = [
            ("ccd", str(int(e)), str(c).strip())
            for e, c in zip(frame["expnum"], frame["ccdname"], strict=True)
        ]
        rows["zeropoint"] = zp
        rows["exptime"] = exptime
        if "filter" in cols:
            rows["band"] = [str(b).strip() for b in frame["filter"]]
        if "fwhm" in cols:
            rows["seeing_pix"] = frame["fwhm"].to_numpy(dtype=np.float64)
        if "mjd_obs" in cols:
            rows["mjd"] = frame["mjd_obs"].to_numpy(dtype=np.float64) + exptime / 2.0 / 86400.0
    elif "file" in cols:
        hdu = frame["hdu"] if "hdu" in cols else pd.Series(-1, index=frame.index)
        rows["key"] = [
            ("file", os.path.basename(str(f)), int(h))
            for f, h in zip(frame["file"], hdu, strict=True)
        ]
        for key in (*META_FIELDS, "seeing_pix"):
            if key in cols:
                rows[key] = frame[key].to_numpy()
    else:
        raise SchemaError(
            "metadata table: expected a Legacy Surveys survey-ccds table (columns expnum, "
            "ccdname, ccdzpt, exptime) or a table with a 'file' column; got columns "
            f"{sorted(cols)}"
        )
    return pd.DataFrame(rows)


def _as_frame(table: Any) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(table, Table):
        return _table_to_frame(table)
    path = Path(table)
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path)
        return _table_to_frame(Table.read(path))
    except (OSError, ValueError) as exc:
        raise CatalogReadError(f"cannot read the metadata table {path}: {exc}") from exc


def _table_to_frame(table: Table) -> pd.DataFrame:
    scalar = [c for c in table.colnames if len(table[c].shape) <= 1]
    frame = table[scalar].to_pandas()
    for col in frame.columns:  # FITS string columns arrive as bytes
        if frame[col].dtype == object and len(frame) and isinstance(frame[col].iloc[0], bytes):
            frame[col] = [v.decode().strip() for v in frame[col]]
    return frame


def apply_metadata(meta: VisitMeta, table: pd.DataFrame | None) -> VisitMeta:
    """``meta`` with the values of its row of a :func:`read_metadata_table` table, if any."""
    if table is None or table.empty:
        return meta
    keys = {
        ("ccd", meta.exposure, meta.detector),
        ("file", os.path.basename(meta.file), meta.hdu),
        ("file", os.path.basename(meta.file), -1),
    }
    hit = table[table["key"].isin(keys)]
    if hit.empty:
        return meta
    return meta.with_values({str(k): v for k, v in hit.iloc[0].items()})
