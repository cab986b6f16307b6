"""Test data of skydask.images: the real files in tests/data and small synthetic stacks.

Synthetic stacks are made once per test session (cached here by parameters, in a directory of
pytest's ``tmp_path_factory``), whichever test module asks first. The session fixtures that
name them are in ``images_fixtures.py``, which test modules load with ``pytest_plugins`` (not
a conftest, so its name cannot clash).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from skydask.synth.images import ImageStackInfo, generate_image_stack

DATA = Path(__file__).resolve().parents[1] / "data"
DECAM_DIR = DATA / "decam_testcase3"
DECAM_IMAGES = str(DECAM_DIR / "*_ooi_*.fits")
DECAM_CCDS = DECAM_DIR / "survey-ccds-1.fits.gz"
HSC_CALEXP = DATA / "hsc_calexp_HSC-0908120-056-small.fits"

# Three bands, two visits each, 256 x 256 pixels of 0.2" (0.8 arcmin^2 with the dithers): a
# rich field of ~100 stars (15-25 bright enough for the PSF) and ~65 galaxies; ~1 s to make.
SMALL = {"nvisits": 6, "size": 256, "seed": 11, "bands": "gri", "stars_per_arcmin2": 120.0}
# Empty sky of one band and one noise level, dithered by whole pixels: the coadd noise test.
NOISE = {
    "nvisits": 8, "size": 160, "seed": 5, "bands": "r", "sky_sigma": 10.0,
    "stars_per_arcmin2": 0.0, "galaxies_per_arcmin2": 0.0, "n_bad_columns": 0,
    "n_cosmic_rays": 0, "integer_dithers": True,
}  # fmt: skip

_CACHE: dict[str, ImageStackInfo] = {}


def synth_stack(factory: pytest.TempPathFactory, **params: Any) -> ImageStackInfo:
    """A synthetic stack with these parameters, generated at most once per session."""
    key = repr(sorted(params.items()))
    if key not in _CACHE:
        _CACHE[key] = generate_image_stack(factory.mktemp("images") / "stack", **params)
    return _CACHE[key]


def tan_wcs(ra: float, dec: float, shape: tuple[int, int], scale: float = 0.2) -> WCS:
    """A north-up TAN WCS with ``scale`` arcsec pixels centred on the image."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    w.wcs.cdelt = [-scale / 3600, scale / 3600]
    return w


def write_plain(path: Path, data: np.ndarray, wcs: WCS | None, **keys: Any) -> Path:
    """A single-HDU FITS image with an optional WCS and extra header keys."""
    header = wcs.to_header() if wcs is not None else fits.Header()
    for k, v in keys.items():
        header[k] = v
    fits.PrimaryHDU(data, header=header).writeto(path)
    return path
