"""Reader for the DECam community pipeline (CP) layout: separate image, weight and mask files.

An InstCal exposure is three files that differ by one token: ``*_ooi_*`` the image (ADU, sky
not subtracted), ``*_oow_*`` the inverse-variance weight (1/ADU^2) and ``*_ood_*`` the
data-quality mask (integer codes, remapped by :func:`.masks.remap_cp_codes`). Each image HDU
(one per CCD; the test files hold one) is one visit of the stack, matched to the weight and
mask HDUs of the same ``EXTNAME``. The WCS is the CCD header's TPV solution.

Metadata: band ``BAND``, mid-exposure from ``MJD-OBS`` + ``EXPTIME / 2``, seeing from the CCD
header's ``FWHM`` (pixels, the CP's median over stars) times the WCS pixel scale, exposure
number ``EXPNUM`` and CCD name (for matching a ``survey-ccds`` table, which holds the
zeropoints: the CP headers of these files carry none).
"""

from __future__ import annotations

import os
from pathlib import Path

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
from skydask.images.planes import plane_ref
from skydask.images.source import VisitSource
from skydask.images.wcs import celestial_wcs

__all__ = ["companion", "is_cp_companion", "is_cp_image", "scan_decam_cp"]


def is_cp_image(path: str) -> bool:
    """True for a CP image file name (``..._ooi_...``)."""
    return "_ooi_" in os.path.basename(path)


def is_cp_companion(path: str) -> bool:
    """True for a CP weight or mask file name (read with their image, not on their own)."""
    name = os.path.basename(path)
    return "_oow_" in name or "_ood_" in name


def companion(path: str, kind: str) -> str:
    """The weight (``"oow"``) or mask (``"ood"``) file of a CP image.

    Examples
    --------
    >>> companion("/d/c4d_140818_232043_ooi_z_ls9.N12.fits", "oow")
    '/d/c4d_140818_232043_oow_z_ls9.N12.fits'
    """
    head, name = os.path.split(path)
    return os.path.join(head, name.replace("_ooi_", f"_{kind}_", 1))


def _image_hdus(hdul: fits.HDUList) -> list[int]:
    out = []
    for i, hdu in enumerate(hdul):
        if hdu.header.get("NAXIS", 0) == 2:  # compressed HDUs show their image's header
            out.append(i)
    return out


def _hdu_by_name(hdul: fits.HDUList, name: str, fallback: int, path: str) -> int:
    for i, hdu in enumerate(hdul):
        if str(hdu.header.get("EXTNAME", "")).strip() == name:
            return i
    if fallback < len(hdul):
        return fallback
    raise CatalogReadError(f"{path}: no HDU named {name!r}; expected one per CCD of the image")


def scan_decam_cp(path: str, hdul: fits.HDUList) -> list[tuple[VisitMeta, VisitSource]]:
    """Metadata and plane references of every CCD of one CP image file and its companions.

    Raises
    ------
    CatalogReadError
        If the weight or mask file is missing or unreadable, a plane's shape differs from the
        image's, or a CCD has no celestial WCS.
    """
    hdus = _image_hdus(hdul)
    if not hdus:
        raise CatalogReadError(f"{path}: no 2-D image HDU; expected a DECam CP image")
    companions = {}
    for kind in ("oow", "ood"):
        other = companion(path, kind)
        if not os.path.exists(other):
            raise CatalogReadError(
                f"{path}: its {'weight' if kind == 'oow' else 'mask'} file {other} is missing; "
                "a CP image is read with its _oow_ and _ood_ files"
            )
        try:
            companions[kind] = fits.open(other, memmap=False, lazy_load_hdus=False)
        except OSError as exc:
            raise CatalogReadError(f"cannot read {other}: {exc}") from exc
    try:
        primary = hdul[0].header
        out = []
        for i in hdus:
            ccd = hdul[i].header
            extname = str(ccd.get("EXTNAME", "")).strip()
            where = f"{path} HDU {i}"
            wcs = celestial_wcs(ccd, where)
            image = plane_ref(path, i, hdul[i])
            planes = {}
            for kind, other in companions.items():
                j = _hdu_by_name(other, extname, i, companion(path, kind))
                planes[kind] = plane_ref(companion(path, kind), j, other[j])
                if planes[kind].shape != image.shape:
                    raise CatalogReadError(
                        f"{companion(path, kind)} HDU {j} is {planes[kind].shape}, the image "
                        f"{where} is {image.shape}; expected planes of one shape"
                    )
            header = {**dict(primary), **dict(ccd)}
            scale = pixel_scale_arcsec(wcs, image.shape)
            fwhm_pix = float(ccd.get("FWHM", float("nan")) or float("nan"))
            stem = Path(path).name.removesuffix(".fz").removesuffix(".fits")
            name = stem if len(hdus) == 1 or extname in stem else f"{stem}[{extname}]"
            meta = VisitMeta(
                name=name,
                band=band_from_header(header),
                mjd=mjd_from_header(primary),
                exptime=exptime_from_header(primary),
                zeropoint=zeropoint_from_header(header),
                seeing=fwhm_pix * scale if fwhm_pix > 0 else float("nan"),
                pixel_scale=scale,
                shape=image.shape,
                wcs_header=wcs.to_header_string(relax=True),
                file=path,
                hdu=i,
                exposure=str(primary.get("EXPNUM", "")),
                detector=extname or str(ccd.get("DETPOS", "")),
            )
            source = VisitSource(
                layout="decam_cp",
                image=image,
                variance=planes["oow"],
                variance_kind="invvar",
                mask=planes["ood"],
                mask_kind="codes",
            )
            out.append((meta, source))
        return out
    finally:
        for other in companions.values():
            other.close()
