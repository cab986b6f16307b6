"""Reader for a plain FITS image with a WCS (the first HDU holding a 2-D image).

Such a file has no variance and no mask, so:

* the variance is a constant, the square of a robust noise estimate (1.4826 x the median
  absolute deviation, after one 5-sigma clip) of up to 64 evenly spaced rows, read when the
  stack is opened (a few hundred kilobytes at most); it is what the coadd's weights and the
  depth use, and is right for sky-dominated images, not near bright sources;
* the mask is ``NO_DATA`` where the image is not finite, 0 elsewhere.

Metadata come from the image header merged over the primary header (:mod:`.metadata`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from astropy.io import fits

from skydask.errors import CatalogReadError
from skydask.images.metadata import (
    VisitMeta,
    band_from_header,
    exptime_from_header,
    mjd_from_header,
    pixel_scale_arcsec,
    zeropoint_from_header,
)
from skydask.images.planes import PlaneRef, open_plane, plane_ref
from skydask.images.source import VisitSource
from skydask.images.wcs import celestial_wcs

__all__ = ["robust_sigma", "scan_fits"]

_SAMPLE_ROWS = 64


def robust_sigma(values: np.ndarray) -> float:
    """1.4826 x MAD of the finite values after one 5-sigma clip about the median.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(0.0, 2.0, 100_000)
    >>> round(robust_sigma(x), 1)
    2.0
    """
    v = values[np.isfinite(values)]
    if v.size == 0:
        return math.nan
    med = np.median(v)
    sigma = 1.4826 * np.median(np.abs(v - med))
    v = v[np.abs(v - med) < 5.0 * sigma] if sigma > 0 else v
    med = np.median(v)
    return float(1.4826 * np.median(np.abs(v - med)))


def _sample_variance(ref: PlaneRef) -> float:
    rows = np.unique(np.linspace(0, ref.shape[0] - 1, _SAMPLE_ROWS).round().astype(int))
    with open_plane(ref) as plane:
        values = np.concatenate([plane.read(slice(r, r + 1), slice(None)).ravel() for r in rows])
    return robust_sigma(values.astype(np.float64)) ** 2


def scan_fits(path: str, hdul: fits.HDUList) -> list[tuple[VisitMeta, VisitSource]]:
    """Metadata and plane reference of a plain FITS image (one visit).

    Raises
    ------
    CatalogReadError
        If no HDU holds a 2-D image, or the image has no celestial WCS.
    """
    index = None
    for i, hdu in enumerate(hdul):
        if hdu.header.get("NAXIS", 0) == 2:  # compressed HDUs show their image's header
            index = i
            break
    if index is None:
        raise CatalogReadError(f"{path}: no HDU holds a 2-D image; expected an image with a WCS")
    image_header = hdul[index].header
    wcs = celestial_wcs(image_header, f"{path} HDU {index}")
    ref = plane_ref(path, index, hdul[index])
    header = {**dict(hdul[0].header), **dict(image_header)}
    seeing = header.get("SEEING", header.get("PSF_FWHM", math.nan))
    meta = VisitMeta(
        name=Path(path).name.removesuffix(".fz").removesuffix(".fits"),
        band=band_from_header(header),
        mjd=mjd_from_header(header),
        exptime=exptime_from_header(header),
        zeropoint=zeropoint_from_header(header),
        seeing=float(seeing) if seeing not in (None, "") else math.nan,
        pixel_scale=pixel_scale_arcsec(wcs, ref.shape),
        shape=ref.shape,
        wcs_header=wcs.to_header_string(relax=True),
        file=path,
        hdu=index,
    )
    source = VisitSource(
        layout="fits",
        image=ref,
        variance=None,
        variance_kind="constant",
        variance_value=_sample_variance(ref),
        mask=None,
        mask_kind="none",
    )
    return [(meta, source)]
