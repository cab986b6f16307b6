"""Reader for the LSST Exposure layout (a calexp): image, mask and variance HDUs in one file.

The three planes are found by ``EXTTYPE`` (``IMAGE``, ``MASK``, ``VARIANCE``), else by
``EXTNAME``, else as HDUs 1, 2, 3 (what ``afw`` writes). The visit's WCS is the image HDU's
primary WCS (``afw`` shifts it to the FITS pixel grid when it writes a sub-image, so the
``LTV``/``A``-suffixed parent-frame keys are not needed). Mask planes come from the mask
header's ``MP_<NAME>`` keys and are remapped to the canonical planes of :mod:`.masks`.
Metadata (band, date, exposure time, ``FLUXMAG0``) come from the primary header, then the image
header (:mod:`.metadata`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astropy.io import fits

from skydask.errors import CatalogReadError
from skydask.images.masks import lsst_plane_map
from skydask.images.metadata import (
    VisitMeta,
    band_from_header,
    exptime_from_header,
    mjd_from_header,
    pixel_scale_arcsec,
    zeropoint_from_header,
)
from skydask.images.planes import plane_ref
from skydask.images.source import VisitSource
from skydask.images.wcs import celestial_wcs

__all__ = ["find_planes", "is_lsst_exposure", "scan_lsst"]

_KINDS = ("IMAGE", "MASK", "VARIANCE")


def find_planes(hdul: fits.HDUList) -> dict[str, int] | None:
    """HDU indices of the image, mask and variance planes, or None if this is not the layout."""
    found: dict[str, int] = {}
    for key in ("EXTTYPE", "EXTNAME"):
        for i, hdu in enumerate(hdul):
            kind = str(hdu.header.get(key, "")).strip().upper()
            if kind in _KINDS and kind not in found:
                found[kind] = i
        if len(found) == 3:
            return found
        found = {}
    images = [i for i, h in enumerate(hdul[:4]) if i > 0 and h.header.get("NAXIS", 0) == 2]
    # afw's order without EXTTYPE: image, then an integer mask naming its planes, then variance
    if (
        images == [1, 2, 3]
        and str(hdul[2].header.get("BITPIX")) in ("16", "32")
        and any(str(k).startswith("MP_") for k in hdul[2].header)
    ):
        return dict(zip(_KINDS, images, strict=True))
    return None


def is_lsst_exposure(hdul: fits.HDUList) -> bool:
    """True if the open file has the image, mask and variance HDUs of an LSST Exposure."""
    return find_planes(hdul) is not None


def _merged(primary: fits.Header, ext: fits.Header) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in primary.items() if k not in ("COMMENT", "HISTORY")}
    for k, v in ext.items():
        # an extension's zero or empty calibration must not hide the primary's
        if k not in out or v not in (0, 0.0, "", None):
            out[k] = v
    return out


def scan_lsst(path: str, hdul: fits.HDUList) -> list[tuple[VisitMeta, VisitSource]]:
    """Metadata and plane references of one LSST Exposure file (one visit).

    Raises
    ------
    CatalogReadError
        If a plane is missing, not 2-D, of another shape than the image, or the image has no
        celestial WCS.
    """
    planes = find_planes(hdul)
    if planes is None:
        raise CatalogReadError(
            f"{path}: expected an LSST Exposure (HDUs with EXTTYPE IMAGE, MASK and VARIANCE)"
        )
    refs = {k: plane_ref(path, i, hdul[i]) for k, i in planes.items()}
    shape = refs["IMAGE"].shape
    for kind in ("MASK", "VARIANCE"):
        if refs[kind].shape != shape:
            raise CatalogReadError(
                f"{path}: the {kind} plane is {refs[kind].shape}, the image {shape}; expected "
                "planes of one shape"
            )
    image_header = hdul[planes["IMAGE"]].header
    wcs = celestial_wcs(image_header, f"{path} HDU {planes['IMAGE']}")
    header = _merged(hdul[0].header, image_header)
    seeing = header.get("SEEING", header.get("PSF_FWHM", float("nan")))
    meta = VisitMeta(
        name=Path(path).name.removesuffix(".fz").removesuffix(".fits"),
        band=band_from_header(header),
        mjd=mjd_from_header(header),
        exptime=exptime_from_header(header),
        zeropoint=zeropoint_from_header(header),
        seeing=float(seeing) if seeing not in (None, "") else float("nan"),
        pixel_scale=pixel_scale_arcsec(wcs, shape),
        shape=shape,
        wcs_header=wcs.to_header_string(relax=True),
        file=path,
        hdu=planes["IMAGE"],
        exposure=str(header.get("VISIT", header.get("EXPID", ""))),
        detector=str(header.get("DETECTOR", header.get("CCDNUM", ""))),
    )
    source = VisitSource(
        layout="lsst",
        image=refs["IMAGE"],
        variance=refs["VARIANCE"],
        variance_kind="variance",
        mask=refs["MASK"],
        mask_kind="bits",
        plane_map=lsst_plane_map(hdul[planes["MASK"]].header),
    )
    return [(meta, source)]
