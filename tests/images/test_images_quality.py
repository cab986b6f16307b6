"""image_quality and the PSF estimator: the generator's truth recovered, sky, result object."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helper beside us (not on the pythonpath)
from images_testdata import synth_stack

import skydask.images as im
from skydask.images.psf import adaptive_moments, estimate_psf
from skydask.synth.images import ImageStackInfo
from skydask.synth.images_render import psf_covariance, render_psf

# the shared session fixtures small_stack and noise_stack
pytest_plugins = ["images_fixtures"]


def test_depth_and_fwhm_match_the_generator(small_stack: ImageStackInfo) -> None:
    """Per visit: FWHM on the stars within 1.5 % of the drawn PSF's (pixel-convolved) FWHM,
    noise from the variance plane within 0.5 % of the sky sigma, m5 within 0.02 mag of the
    generator's (measured: |dm5| < 0.004 mag, FWHM within 0.4 %)."""
    q = im.image_quality(im.open_stack(small_stack.path)).table()
    truth = small_stack.visits()
    assert (q.visit.to_numpy() == truth.visit.to_numpy()).all()
    assert (q.fwhm_source == "stars").all() and (q.n_psf_stars >= 5).all()
    np.testing.assert_allclose(q.fwhm_stars, truth.fwhm_eff, rtol=0.015)
    np.testing.assert_allclose(q.sigma_variance, truth.sky_sigma, rtol=0.005)
    np.testing.assert_allclose(q.m5, truth.m5, rtol=0, atol=0.02)
    # the visits differ by more than that: the test can tell them apart
    assert truth.m5.max() - truth.m5.min() > 0.3
    # the image's own scatter: sky noise plus faint sources, a little above the variance plane
    ratio = q.sky_noise / q.sigma_variance
    assert np.all((ratio > 0.98) & (ratio < 1.1))


def test_sky_level_of_unsubtracted_images(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Background left in (``sky_sigma**2`` electrons, the sky's Poisson variance): the clipped
    median finds it to within 0.2 sky sigma (faint galaxies lift it slightly)."""
    info = synth_stack(tmp_path_factory, nvisits=2, size=128, seed=9, bands="z",
                       background_subtracted=False)  # fmt: skip
    q = im.image_quality(im.open_stack(info.path)).table()
    truth = info.visits()
    assert np.all(np.abs(q.sky_level - truth.sky_level) < 0.2 * truth.sky_sigma)
    assert truth.sky_level.min() > 100 * truth.sky_sigma.max() / 10


def test_moffat_psf_fwhm_and_stated_depth_bias(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A Moffat PSF (beta 4.765): the measured FWHM equals the adaptive-moment FWHM of the drawn
    PSF without noise (8 % above the Moffat's own FWHM: the Gaussian weight sees the wings),
    and 2.266 FWHM^2 still underestimates the true noise-equivalent area, so m5 is optimistic
    by 1.25 log10(A_true / A), the bias the quality module states."""
    info = synth_stack(tmp_path_factory, nvisits=2, size=256, seed=2, bands="r", psf="moffat",
                       stars_per_arcmin2=120.0)  # fmt: skip
    q = im.image_quality(im.open_stack(info.path)).table()
    truth = info.visits()
    expected = []
    for row in truth.itertuples():
        cov = psf_covariance(row.seeing / 0.2, row.psf_e1, row.psf_e2)
        psf = render_psf(cov, "moffat", 4.765, 30)
        result = adaptive_moments(psf, 30.0, 30.0, 2.0)
        assert result is not None
        expected.append(2.3548 * np.linalg.det(result[2]) ** 0.25 * 0.2)
    np.testing.assert_allclose(q.fwhm_stars, expected, rtol=0.015)
    assert np.all(q.fwhm_stars / truth.seeing > 1.05)
    bias = 1.25 * np.log10(truth.nea_pix / q.nea)
    assert np.all(bias > 0.02)
    np.testing.assert_allclose(q.m5 - truth.m5, bias, atol=0.02)


def test_adaptive_moments_of_a_noisy_gaussian_star() -> None:
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:31, 0:31]
    cov = np.array([[4.0, 0.5], [0.5, 3.0]])
    inv = np.linalg.inv(cov)
    dx, dy = xx - 15.2, yy - 14.7
    r2 = inv[0, 0] * dx * dx + 2 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy
    star = 1e5 * np.exp(-0.5 * r2) / (2 * math.pi * math.sqrt(np.linalg.det(cov)))
    result = adaptive_moments(star + rng.normal(0, 10.0, star.shape), 15, 15, 2.0)
    assert result is not None
    x, y, measured = result
    assert x == pytest.approx(15.2, abs=0.02) and y == pytest.approx(14.7, abs=0.02)
    np.testing.assert_allclose(measured, cov, atol=0.05)


def test_estimate_psf_needs_stars() -> None:
    """Only galaxies (sizes spread out) or too few stars: NaN, with the counts."""
    rng = np.random.default_rng(5)
    image = rng.normal(0.0, 1.0, (100, 100))
    good = np.ones(image.shape, bool)
    est = estimate_psf(image, good, 1.0)
    assert math.isnan(est.fwhm_pix) and est.n_stars == 0 and est.n_candidates == 0
    yy, xx = np.mgrid[0:100, 0:100]
    image += 2000.0 * np.exp(-((xx - 50) ** 2 + (yy - 50) ** 2) / (2 * 1.5**2))
    one = estimate_psf(image, good, 1.0)
    assert one.n_stars == 1 and math.isnan(one.fwhm_pix)
    assert estimate_psf(image, good, 1.0, min_stars=1).fwhm_pix == pytest.approx(
        2.3548 * 1.5, rel=0.01
    )


def test_quality_result_table_plot_write(small_stack: ImageStackInfo, tmp_path: Path) -> None:
    result = im.image_quality(im.open_stack(small_stack.path).isel(visit=[0, 1]))
    table = result.table()
    assert list(table.columns[:7]) == [
        "visit", "band", "mjd", "exptime", "zeropoint", "pixel_scale", "seeing",
    ]  # fmt: skip
    fig = result.plot()
    assert len(fig.axes) == 3 * 2  # three rows (m5, FWHM, noise) for two bands
    written = result.write(tmp_path / "q")
    assert [p.name for p in written] == ["image_quality.csv", "image_quality.png"]
    assert all(p.stat().st_size > 0 for p in written)
