"""WCS helpers: read a celestial WCS or say why not, shift one to a sub-image, footprints.

Every visit keeps its own WCS (TAN, TAN-SIP, TPV...; astropy reads TPV through wcslib). Pixel
coordinates are astropy's: 0-based, pixel centres at integers, so pixel ``(x, y)`` covers
``[x - 0.5, x + 0.5)``.
"""

from __future__ import annotations

import warnings
from copy import deepcopy
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning, Sip
from numpy.typing import NDArray

from skydask.errors import CatalogReadError

__all__ = ["celestial_wcs", "footprint", "shifted_wcs", "unit_vectors", "wcs_from_string"]


def celestial_wcs(header: fits.Header, where: str) -> WCS:
    """The celestial WCS of an image header.

    Raises
    ------
    CatalogReadError
        If the header has no celestial WCS (``where`` names the file and HDU).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header)
        except Exception as exc:  # astropy raises several types for malformed WCS keys
            raise CatalogReadError(f"{where}: cannot parse the WCS: {exc}") from exc
    if not wcs.has_celestial or wcs.naxis != 2:
        found = [str(header.get(f"CTYPE{i}", "")) for i in (1, 2)]
        raise CatalogReadError(
            f"{where} has no celestial WCS: expected CTYPE1/CTYPE2 such as 'RA---TAN' and "
            f"'DEC--TAN' with CRVAL, CRPIX and CD (or CDELT) keys; found CTYPE {found}"
        )
    return wcs


def wcs_from_string(text: str) -> WCS:
    """Rebuild a WCS from ``WCS.to_header_string(relax=True)`` output (what tasks carry)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(fits.Header.fromstring(text))


def shifted_wcs(wcs: WCS, x0: int, y0: int, shape: tuple[int, int]) -> WCS:
    """The WCS of the sub-image whose pixel ``(0, 0)`` is pixel ``(x0, y0)`` of ``wcs``.

    The same as astropy's ``Cutout2D`` does (the origin may lie outside the image), including
    the SIP reference pixel.

    Examples
    --------
    >>> w = WCS(naxis=2)
    >>> w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    >>> w.wcs.crpix = [50.0, 60.0]
    >>> shifted_wcs(w, 10, -5, (20, 20)).wcs.crpix.tolist()
    [40.0, 65.0]
    """
    out = deepcopy(wcs)
    shift = np.array([x0, y0], dtype=np.float64)
    out.wcs.crpix = out.wcs.crpix - shift
    out.array_shape = shape
    if wcs.sip is not None:
        out.sip = Sip(wcs.sip.a, wcs.sip.b, wcs.sip.ap, wcs.sip.bp, wcs.sip.crpix - shift)
    return out


def unit_vectors(ra: NDArray[Any], dec: NDArray[Any]) -> NDArray[np.float64]:
    """Unit vectors ``(n, 3)`` of positions in degrees."""
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)


def footprint(wcs: WCS, shape: tuple[int, int], n: int = 4) -> NDArray[np.float64]:
    """Sky positions ``(m, 2)`` (ra, dec deg) around the image edge, ``n`` per side."""
    ny, nx = shape
    t = np.linspace(0.0, 1.0, n, endpoint=False)
    xs = np.concatenate([-0.5 + t * nx, np.full(n, nx - 0.5), nx - 0.5 - t * nx, np.full(n, -0.5)])
    ys = np.concatenate([np.full(n, -0.5), -0.5 + t * ny, np.full(n, ny - 0.5), ny - 0.5 - t * ny])
    ra, dec = wcs.all_pix2world(xs, ys, 0)
    return np.stack([ra, dec], axis=1)
