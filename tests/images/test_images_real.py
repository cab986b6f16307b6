"""Real data: 8 DECam community-pipeline exposures and one HSC calexp (tests/data/README.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.table import Table
from astropy.wcs import WCS

sys.path.insert(0, str(Path(__file__).parent))  # the helper beside us (not on the pythonpath)
from images_testdata import DECAM_CCDS, DECAM_DIR, DECAM_IMAGES, HSC_CALEXP

import skydask.images as im
from skydask.images.masks import bit


@pytest.fixture(scope="module")
def decam() -> xr.Dataset:
    return im.open_stack(DECAM_IMAGES, metadata=DECAM_CCDS)


@pytest.fixture(scope="module")
def ccds() -> pd.DataFrame:
    t = Table.read(DECAM_CCDS)
    frame = t[[c for c in t.colnames if t[c].ndim == 1]].to_pandas()
    frame["ccdname"] = [c.decode().strip() if isinstance(c, bytes) else c for c in frame.ccdname]
    return frame.set_index("expnum")


def _centroid(data: np.ndarray, x: float, y: float, half: int = 3) -> tuple[float, float]:
    """First moments in a (2 half + 1)^2 box around pixel (x, y), background the image median."""
    xi, yi = round(x), round(y)
    box = data[yi - half : yi + half + 1, xi - half : xi + half + 1] - np.nanmedian(data)
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    return xi + float((box * xx).sum() / box.sum()), yi + float((box * yy).sum() / box.sum())


def test_decam_stack_visits_bands_and_wcs(decam: xr.Dataset, ccds: pd.DataFrame) -> None:
    stack = decam
    assert stack.sizes["visit"] == 8
    bands = stack.band.values.tolist()
    assert sorted(bands) == ["g", "g", "g", "r", "r", "z", "z", "z"]
    assert (stack.layout.values == "decam_cp").all()
    # 7 cut-outs are 51 x 41, one 50 x 41: padded to 51 rows
    assert dict(stack.sizes) == {"visit": 8, "y": 51, "x": 41}
    assert sorted(stack.ny.values.tolist()) == [50] + [51] * 7
    # each visit's own TPV solution (wcslib reads TPV as TAN plus its polynomial), equal to
    # astropy's reading of the file at the corners and far outside (where the PV terms matter)
    x, y = np.array([0.0, 40.0, 0.0, 40.0, -3000.0]), np.array([0.0, 0.0, 50.0, 50.0, 2000.0])
    for name, w in zip(stack.visit.values, stack.wcs.values, strict=True):
        header = fits.getheader(DECAM_DIR / f"{name}.fits", 1)
        assert header["CTYPE1"] == "RA---TPV" and "PV1_10" in header
        np.testing.assert_allclose(
            w.all_pix2world(x, y, 0), WCS(header).all_pix2world(x, y, 0), rtol=0, atol=1e-10
        )
        plain = header.copy()
        for key in [k for k in plain if k.startswith("PV")]:
            del plain[key]
        assert (
            np.abs(np.subtract(w.all_pix2world(x, y, 0), WCS(plain).all_pix2world(x, y, 0))).max()
            > 1e-3
        )
    assert len({tuple(w.wcs.crpix) for w in stack.wcs.values}) == 8
    # zeropoints, exposure times and seeing come from survey-ccds, matched on expnum + ccdname
    rows = ccds.loc[[int(e) for e in stack.exposure.values]]
    np.testing.assert_allclose(
        stack.zeropoint.values,
        rows.ccdzpt + 2.5 * np.log10(rows.exptime),
        rtol=0, atol=1e-5,  # the table is float32
    )  # fmt: skip
    np.testing.assert_allclose(stack.exptime.values, rows.exptime)
    np.testing.assert_allclose(
        stack.seeing.values,
        rows.fwhm * stack.pixel_scale.values,
        rtol=1e-6,
    )
    assert stack.detector.values.tolist() == rows.ccdname.tolist()
    # DECam pixels: 0.262" x the TPV scale term (~1.007) at these CCDs
    assert np.all(np.abs(stack.pixel_scale.values - 0.264) < 0.003)


def test_decam_planes_from_weight_and_mask_files(decam: xr.Dataset) -> None:
    stack = decam
    name = stack.visit.values[0]
    image_file = DECAM_DIR / f"{name}.fits"
    weight = fits.getdata(str(image_file).replace("_ooi_", "_oow_"), 1)
    np.testing.assert_array_equal(stack.image[0].values, fits.getdata(image_file, 1))
    np.testing.assert_allclose(stack.variance[0].values, 1.0 / weight, rtol=1e-6)
    mask = stack.mask.values
    short = int(np.flatnonzero(stack.ny.values == 50)[0])
    assert (mask[short, 50] == bit("NO_DATA")).all()  # the padding row
    assert (np.delete(mask, short, axis=0) == 0).all()  # these cut-outs have clean masks


def _decam_galaxy_position(stack: xr.Dataset) -> tuple[float, float]:
    """Median sky position of the central galaxy's centroid over the 8 images (numpy on files)."""
    ra, dec = [], []
    for name in stack.visit.values:
        with fits.open(DECAM_DIR / f"{name}.fits") as hdul:
            data = hdul[1].data.astype(float)
            wcs = WCS(hdul[1].header)
        yi, xi = np.unravel_index(np.argmax(data), data.shape)
        x, y = _centroid(data, xi, yi)
        r, d = wcs.all_pix2world(x, y, 0)
        ra.append(float(r))
        dec.append(float(d))
    return float(np.median(ra)), float(np.median(dec))


def test_decam_cutout_is_centred_in_every_visit(decam: xr.Dataset) -> None:
    stack = decam
    ra, dec = _decam_galaxy_position(stack)
    stamps = im.cutouts(stack, ra, dec, 21).compute()
    assert stamps.n_visits.values.tolist() == [8]
    offsets = []
    for v in range(8):
        image = stamps.image.values[0, v]
        xs = stamps.x_center.values[0, v] - stamps.x_origin.values[0, v]
        ys = stamps.y_center.values[0, v] - stamps.y_origin.values[0, v]
        assert 9.5 <= xs < 10.5 and 9.5 <= ys < 10.5  # the position's pixel is the middle one
        cx, cy = _centroid(image, 10, 10)
        offsets.append(np.hypot(cx - xs, cy - ys))
        # brute-force twin: astropy's Cutout2D on the file
        with fits.open(DECAM_DIR / f"{stamps.visit.values[v]}.fits") as hdul:
            ref = Cutout2D(hdul[1].data, SkyCoord(ra, dec, unit="deg"), 21,
                           wcs=WCS(hdul[1].header), mode="partial", fill_value=np.nan)  # fmt: skip
        np.testing.assert_array_equal(image, ref.data)
    # measured: 0.19-0.43 pixel (0.05-0.11"); the galaxy's centroid differs slightly by band
    assert max(offsets) < 1.0


def test_decam_depths_are_plausible(decam: xr.Dataset, ccds: pd.DataFrame) -> None:
    """m5 from the weight maps and seeing, against the Legacy Surveys' own per-CCD numbers.

    Measured (band, exptime, m5): z 118 s 23.14, r 68 s 23.93, g 79 s 24.16, z 80 s 22.63,
    z 99 s 22.98, r 75 s 23.93, g 93 s 24.25, g 100 s 24.40 (the DECaLS single-exposure
    targets are g 24.0, r 23.4, z 22.5). The same Gaussian-PSF formula on the table's sky noise
    ``sig1`` and ``fwhm`` agrees to < 0.03 mag; the table's ``psfnorm`` (the real PSF's
    noise-equivalent area, with its wings) gives 0.15-0.35 mag shallower depths, as the
    quality module's docstring states.
    """
    q = im.image_quality(decam).table()
    assert (q.fwhm_source == "header").all()  # one galaxy per cut-out: no PSF stars
    rows = ccds.loc[[int(e) for e in decam.exposure.values]]
    sig1 = rows.sig1.to_numpy()  # nanomaggies, zeropoint 22.5
    legacy_gauss = 22.5 - 2.5 * np.log10(5 * sig1 * np.sqrt(2.266 * rows.fwhm.to_numpy() ** 2))
    legacy_psf = 22.5 - 2.5 * np.log10(5 * sig1 / rows.psfnorm.to_numpy())
    m5 = q.m5.to_numpy()
    assert np.abs(m5 - legacy_gauss).max() < 0.03
    assert np.all((m5 - legacy_psf > 0.1) & (m5 - legacy_psf < 0.4))
    limits = {"g": (23.9, 24.7), "r": (23.5, 24.2), "z": (22.4, 23.4)}
    for band, m, t in zip(q.band, m5, q.exptime, strict=True):
        lo, hi = limits[band]
        assert lo < m < hi, (band, m, t)
    # the noise from the weight map and the image's own clipped scatter agree (sky-limited)
    ratio = q.sky_noise / q.sigma_variance
    assert np.all((ratio > 0.9) & (ratio < 1.6))


def test_hsc_calexp_layout_mask_and_wcs() -> None:
    stack = im.open_stack(HSC_CALEXP)
    assert dict(stack.sizes) == {"visit": 1, "y": 200, "x": 200}
    assert stack.layout.values.tolist() == ["lsst"]
    w = stack.wcs.values[0]
    assert w.sip is not None and list(w.wcs.ctype) == ["RA---TAN-SIP", "DEC--TAN-SIP"]
    assert stack.pixel_scale.values[0] == pytest.approx(0.166, abs=0.002)  # HSC: 0.168" nominal
    # the file carries no calibration: afw's "unset" values
    assert stack.band.values.tolist() == ["unknown"]
    assert np.isnan(stack.mjd.values[0]) and np.isnan(stack.zeropoint.values[0])
    assert np.isnan(stack.exptime.values[0])
    mask = stack.mask[0].values
    raw = fits.getdata(HSC_CALEXP, 2)
    # MP_DETECTED = 5 and MP_CROSSTALK = 8 in the file
    assert ((mask & bit("DETECTED")) != 0).sum() == ((raw & 32) != 0).sum() == 5390
    assert ((mask & bit("CROSSTALK")) != 0).sum() == ((raw & 256) != 0).sum() == 14
    np.testing.assert_array_equal(stack.variance[0].values, fits.getdata(HSC_CALEXP, 3))


def test_hsc_cutout_centred_and_depth_relative_to_zeropoint() -> None:
    """Noise 20.7 counts per pixel, FWHM 0.79" on its 3 stars (S/N > 10), m5 = zp - 7.17."""
    stack = im.open_stack(HSC_CALEXP)
    data = fits.getdata(HSC_CALEXP, 1).astype(float)
    yi, xi = np.unravel_index(np.argmax(data), data.shape)  # the brightest source
    x, y = _centroid(data, xi, yi)
    ra, dec = stack.wcs.values[0].all_pix2world(x, y, 0)
    stamps = im.cutouts(stack, float(ra), float(dec), 15).compute()
    image = stamps.image.values[0, 0]
    xs = stamps.x_center.values[0, 0] - stamps.x_origin.values[0, 0]
    ys = stamps.y_center.values[0, 0] - stamps.y_origin.values[0, 0]
    cx, cy = _centroid(image, 7, 7)
    assert np.hypot(cx - xs, cy - ys) < 0.1  # same pixels, same moments: the WCS round trip

    q = im.image_quality(stack, snr_min=10.0).table().iloc[0]
    assert q.n_psf_stars == 3 and q.fwhm_source == "stars"
    assert q.fwhm == pytest.approx(0.79, abs=0.02)
    assert q.sigma_variance == pytest.approx(20.71, abs=0.01)
    assert q.m5_minus_zp == pytest.approx(-7.17, abs=0.03)
    assert np.isnan(q.m5)
    # with a zeropoint from a table the depth follows
    table = pd.DataFrame({"file": [HSC_CALEXP.name], "zeropoint": [27.0]})
    q2 = im.image_quality(im.open_stack(HSC_CALEXP, metadata=table), snr_min=10.0).table()
    assert q2.m5[0] == pytest.approx(27.0 + q.m5_minus_zp)
