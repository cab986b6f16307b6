"""HEALPix (NESTED) helpers shared by the HATS writer and the HATS reader.

HATS catalogues (the on-disk layout of astronomy-commons ``hats`` and LSDB, described in the
IVOA HATS note) partition the sky into NESTED HEALPix pixels and carry, in every row, the
pixel index of the row's position at order 29 in a column named ``_healpix_29``. In the
NESTED scheme the pixel of a position at a coarser order ``K`` is the order-29 index with
its ``2 * (29 - K)`` lowest bits dropped, so one integer column answers "which pixel at any
order" with a shift, and sorting by it sorts rows along the Z-order curve of the sphere.

Pixel files live at ``<root>/dataset/Norder=K/Dir=D/Npix=N.parquet`` where ``D`` is ``N``
rounded down to a multiple of 10,000 (it only keeps directories small).

Examples
--------
>>> hp29 = healpix29([62.0, 62.001], [-37.0, -37.0])
>>> hp29.dtype
dtype('int64')
>>> to_order(hp29, 5)
array([8607, 8607])
>>> hats_pixel_path("cat", 5, 8607).as_posix()
'cat/dataset/Norder=5/Dir=0/Npix=8607.parquet'
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import hpgeom
import numpy as np
import numpy.typing as npt

from skydask.errors import SchemaError

__all__ = [
    "HEALPIX29_COLUMN",
    "HEALPIX29_ORDER",
    "hats_dir",
    "hats_pixel_path",
    "healpix29",
    "npix_at_order",
    "parse_hats_pixel_path",
    "to_order",
]

HEALPIX29_COLUMN = "_healpix_29"
"""Name of the per-row order-29 NESTED HEALPix index column, as HATS and LSDB expect it."""

HEALPIX29_ORDER = 29
"""Order of :data:`HEALPIX29_COLUMN`: the finest order whose pixel count fits in an int64."""

_DIR_STEP = 10_000  # HATS groups pixel files into Dir=D directories of 10,000 pixel numbers

# Norder=K/Dir=D/Npix=N followed by ".parquet" (one file per pixel) or by "/<file>" (the
# variant where Npix=N is a directory of files, hats_npix_suffix="/").
_PIXEL_PATH_RE = re.compile(r"(?:^|/)Norder=(\d+)/Dir=(\d+)/Npix=(\d+)(?:\.parquet|/[^/]+)$")


def npix_at_order(order: int) -> int:
    """Number of HEALPix pixels covering the sphere at ``order`` (``12 * 4**order``).

    Parameters
    ----------
    order : int
        HEALPix order, 0 to 29.

    Returns
    -------
    int
        Pixel count.

    Examples
    --------
    >>> npix_at_order(0), npix_at_order(3)
    (12, 768)
    """
    _check_order(order)
    return 12 * 4**order


def healpix29(ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """NESTED HEALPix index at order 29 of each position.

    Parameters
    ----------
    ra_deg, dec_deg : array_like
        Right ascension and declination in degrees, of the same length. Right ascension may
        lie outside [0, 360) (it wraps); declination must lie in [-90, 90].

    Returns
    -------
    numpy.ndarray of int64
        One order-29 NESTED pixel index per position (1-d, even for scalar input).

    Raises
    ------
    SchemaError
        If a coordinate is NaN or infinite, or a declination lies outside [-90, 90]: such a
        row has no pixel, and a made-up one would put it in the wrong file.

    Examples
    --------
    At order 0 the twelve base pixels are 0-3 around the north pole (centred on ra = 45,
    135, 225, 315 deg), 4-7 on the equator (centred on ra = 0, 90, ...) and 8-11 in the south:

    >>> to_order(healpix29([45.0, 90.0, 0.0], [60.0, 0.0, -60.0]), 0)
    array([0, 5, 8])
    >>> healpix29([0.0, 360.0], [10.0, 10.0]).tolist() == healpix29(0.0, 10.0).tolist() * 2
    True
    >>> healpix29([float("nan")], [0.0])
    Traceback (most recent call last):
    ...
    skydask.errors.SchemaError: 1 of 1 right ascensions are not finite (NaN or inf)
    """
    ra = np.atleast_1d(np.asarray(ra_deg, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec_deg, dtype=np.float64))
    if ra.shape != dec.shape or ra.ndim != 1:
        raise ValueError(
            f"ra_deg and dec_deg must be 1-d and of equal length, got shapes {ra.shape} and "
            f"{dec.shape}"
        )
    for name, values in (("right ascensions", ra), ("declinations", dec)):
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise SchemaError(f"{bad} of {values.size} {name} are not finite (NaN or inf)")
    outside = int(np.count_nonzero(np.abs(dec) > 90.0))
    if outside:
        raise SchemaError(f"{outside} of {dec.size} declinations lie outside [-90, 90] deg")
    pixels = hpgeom.angle_to_pixel(2**HEALPIX29_ORDER, ra, dec, nest=True, lonlat=True)
    return np.asarray(pixels, dtype=np.int64)


def to_order(hp29: npt.ArrayLike, order: int) -> npt.NDArray[np.int64]:
    """NESTED pixel at ``order`` containing each order-29 pixel.

    Parameters
    ----------
    hp29 : array_like of int
        Order-29 NESTED indices (the :data:`HEALPIX29_COLUMN` values).
    order : int
        Target order, 0 to 29.

    Returns
    -------
    numpy.ndarray of int64
        ``hp29 >> 2 * (29 - order)``: in the NESTED scheme each order step splits a pixel in
        four, so dropping two bits per step gives the parent.

    Examples
    --------
    >>> to_order([0, 3, 4, 7, 8], 28)
    array([0, 0, 1, 1, 2])
    >>> to_order(12 * 4**29 - 1, 0).tolist()
    [11]
    """
    _check_order(order)
    values = np.atleast_1d(np.asarray(hp29, dtype=np.int64))
    return np.right_shift(values, 2 * (HEALPIX29_ORDER - order))


def hats_dir(order: int, pixel: int) -> int:
    """HATS ``Dir`` number of a pixel: its number rounded down to a multiple of 10,000.

    Parameters
    ----------
    order : int
        HEALPix order of the pixel (validated, not otherwise used: ``Dir`` does not depend on
        it, but a pixel number means nothing without its order).
    pixel : int
        NESTED pixel number at ``order``.

    Returns
    -------
    int
        The directory number.

    Examples
    --------
    >>> hats_dir(3, 767), hats_dir(8, 12_345), hats_dir(8, 20_000)
    (0, 10000, 20000)
    """
    _check_pixel(order, pixel)
    return pixel // _DIR_STEP * _DIR_STEP


def hats_pixel_path(root: str | os.PathLike[str], order: int, pixel: int) -> Path:
    """Path of a pixel's Parquet file in a HATS catalogue rooted at ``root``.

    Parameters
    ----------
    root : str or os.PathLike
        Catalogue root (the directory holding ``hats.properties``).
    order, pixel : int
        HEALPix order and NESTED pixel number.

    Returns
    -------
    pathlib.Path
        ``root/dataset/Norder=K/Dir=D/Npix=N.parquet``.

    Examples
    --------
    >>> hats_pixel_path("/data/dc2", 8, 123_456).as_posix()
    '/data/dc2/dataset/Norder=8/Dir=120000/Npix=123456.parquet'
    """
    directory = hats_dir(order, pixel)
    return Path(root) / "dataset" / f"Norder={order}" / f"Dir={directory}" / f"Npix={pixel}.parquet"


def parse_hats_pixel_path(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """Order and pixel of a HATS pixel file, or ``None`` if ``path`` is not one.

    Accepts ``.../Norder=K/Dir=D/Npix=N.parquet`` and the directory variant
    ``.../Norder=K/Dir=D/Npix=N/<file>``. A path whose ``Dir`` does not match its pixel, or
    whose pixel does not exist at its order, is not a valid HATS pixel path.

    Parameters
    ----------
    path : str or os.PathLike
        Absolute or relative path; ``/`` or ``\\`` separators.

    Returns
    -------
    tuple of (int, int) or None
        ``(order, pixel)``.

    Examples
    --------
    >>> parse_hats_pixel_path("cat/dataset/Norder=8/Dir=120000/Npix=123456.parquet")
    (8, 123456)
    >>> parse_hats_pixel_path("Norder=2/Dir=0/Npix=17/part0.parquet")
    (2, 17)
    >>> parse_hats_pixel_path("cat/dataset/Norder=8/Dir=0/Npix=123456.parquet") is None
    True
    >>> parse_hats_pixel_path("cat/dataset/_metadata") is None
    True
    """
    text = os.fspath(path).replace("\\", "/")
    match = _PIXEL_PATH_RE.search(text)
    if match is None:
        return None
    order, directory, pixel = (int(group) for group in match.groups())
    if order > HEALPIX29_ORDER or pixel >= 12 * 4**order:
        return None
    if directory != pixel // _DIR_STEP * _DIR_STEP:
        return None
    return order, pixel


def _check_order(order: int) -> None:
    if not 0 <= order <= HEALPIX29_ORDER:
        raise ValueError(f"HEALPix order must be in 0..{HEALPIX29_ORDER}, got {order}")


def _check_pixel(order: int, pixel: int) -> None:
    _check_order(order)
    if not 0 <= pixel < 12 * 4**order:
        raise ValueError(f"pixel {pixel} does not exist at HEALPix order {order}")
