"""coadd: noise against 1/sqrt(N), the median's variance, flux, counts, grid, errors, DECam."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).parent))  # the helper beside us (not on the pythonpath)
from images_testdata import DECAM_CCDS, DECAM_IMAGES, HSC_CALEXP, NOISE, synth_stack

import skydask.images as im
from skydask.errors import SpecError
from skydask.images.coadd import median_variance_factor
from skydask.synth.images import ImageStackInfo

# the shared session fixtures small_stack and noise_stack
pytest_plugins = ["images_fixtures"]


def _njy_per_count(zeropoint: float) -> float:
    return float(10.0 ** (0.4 * (31.4 - zeropoint)))


def test_ivw_noise_scales_as_one_over_sqrt_n(noise_stack: ImageStackInfo) -> None:
    """Empty sky, sigma 10 e- in every visit, whole-pixel dithers, coadded on visit 0's grid:
    bilinear resampling is then an exact shift, so the pixel noise of an N-visit coadd must be
    sigma_1 / sqrt(N). Tolerance 3 %: >= 14,000 pixels give the std to 0.6 % (1 sigma)."""
    stack = im.open_stack(noise_stack.path)
    sigma_1 = 10.0 * _njy_per_count(float(stack.zeropoint[0]))
    wcs0 = stack.wcs.values[0]
    for n in (1, 2, 4, 8):
        c = im.coadd(stack.isel(visit=slice(0, n)), wcs=wcs0, shape=(160, 160), tile=80)
        c = c.compute()
        full = c.exposure_count.values == n
        assert full.sum() > 14_000
        measured = float(np.std(c.image.values[full]))
        assert measured == pytest.approx(sigma_1 / np.sqrt(n), rel=0.03)
        # the variance plane says the same
        stated = float(np.sqrt(np.median(c.variance.values[full])))
        assert stated == pytest.approx(sigma_1 / np.sqrt(n), rel=0.01)


def test_median_noise_follows_the_order_statistics(noise_stack: ImageStackInfo) -> None:
    stack = im.open_stack(noise_stack.path)
    sigma_1 = 10.0 * _njy_per_count(float(stack.zeropoint[0]))
    wcs0 = stack.wcs.values[0]
    for n in (3, 4, 8):
        c = im.coadd(stack.isel(visit=slice(0, n)), wcs=wcs0, shape=(160, 160), method="median")
        c = c.compute()
        full = c.exposure_count.values == n
        expected = sigma_1 * np.sqrt(median_variance_factor(n) / n)
        assert float(np.std(c.image.values[full])) == pytest.approx(expected, rel=0.04)
        assert float(np.sqrt(np.median(c.variance.values[full]))) == pytest.approx(
            expected, rel=0.01
        )


def test_median_variance_factor_against_simulation() -> None:
    """Quadrature against 200,000 medians per n (simulation error ~0.3 %)."""
    rng = np.random.default_rng(0)
    for n in (3, 4, 7, 10):
        sim = n * np.var(np.median(rng.normal(size=(200_000, n)), axis=1))
        assert median_variance_factor(n) == pytest.approx(sim, rel=0.012)
    assert median_variance_factor(1000) == pytest.approx(np.pi / 2)


def test_subpixel_dithers_noise_is_independent_between_visits(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With sub-pixel dithers interpolation smooths each visit's noise by a visit-dependent
    factor, so 1/sqrt(N) of visit 1 is not the prediction; the equal-weight mean of
    independent visits is: var_N = sum(var_i) / N^2, var_i each visit resampled alone."""
    info = synth_stack(tmp_path_factory, **{**NOISE, "integer_dithers": False, "nvisits": 4})
    stack = im.open_stack(info.path)
    wcs0, shape = stack.wcs.values[0], (160, 160)
    singles = [im.coadd(stack.isel(visit=[v]), wcs=wcs0, shape=shape).compute() for v in range(4)]
    both = im.coadd(stack, wcs=wcs0, shape=shape).compute()
    full = both.exposure_count.values == 4
    var_i = [float(np.var(s.image.values[full])) for s in singles]
    predicted = np.sqrt(np.sum(var_i)) / 4
    assert float(np.std(both.image.values[full])) == pytest.approx(predicted, rel=0.03)
    assert min(var_i) < 0.9 * max(var_i)  # the smoothing does differ between visits


def _aperture_flux(image: NDArray[np.float64], x: float, y: float, r: float) -> float:
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    d = np.hypot(xx - x, yy - y)
    ap, ann = d < r, (d > r + 3) & (d < r + 10)
    return float(image[ap].sum() - np.median(image[ann]) * ap.sum())


def test_flux_is_conserved_in_njy(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A 4 x 4 grid of isolated stars (r = 18.0 to 19.5, from a catalogue) on 3 dithered r
    visits: aperture fluxes (radius 2", > 5 PSF sigma) in the coadd equal the true fluxes in
    nJy to 1.5 % (aperture noise ~0.4 % for r = 19.5), on the visits' own 0.2" scale with
    bilinear or exact resampling, and on a coarser 0.3" grid (exact: flux-conserving)."""
    step = 10.0 / 3600.0
    ra = 60.0 + (np.arange(16) % 4 - 1.5) * step / np.cos(np.radians(-35.0))
    dec = -35.0 + (np.arange(16) // 4 - 1.5) * step
    catalog = pd.DataFrame({"ra": ra, "dec": dec, "mag_r": 18.0 + 0.1 * np.arange(16)})
    info = synth_stack(
        tmp_path_factory, nvisits=3, size=256, seed=4, bands="r", catalog=catalog,
        n_bad_columns=0, n_cosmic_rays=0,
    )  # fmt: skip
    stack = im.open_stack(info.path)
    truth = 10.0 ** (-0.4 * (catalog.mag_r.to_numpy() - 31.4))
    for resample, scale in (("interp", None), ("exact", None), ("exact", 0.3)):
        wcs, shape = im.coadd_grid(stack, pixel_scale=scale)
        c = im.coadd(stack, wcs, shape, resample=resample).compute()
        x, y = wcs.all_world2pix(ra, dec, 0)
        image = c.image.values.astype(np.float64)
        assert (
            c.exposure_count.values[np.round(y).astype(int), np.round(x).astype(int)] == 3
        ).all()
        flux = [_aperture_flux(image, x[k], y[k], 2.0 / (scale or 0.2)) for k in range(16)]
        np.testing.assert_allclose(flux, truth, rtol=0.015)


def test_exposure_count_and_default_grid(small_stack: ImageStackInfo) -> None:
    stack = im.open_stack(small_stack.path)
    g = stack.isel(visit=stack.band == "g")
    wcs, (ny, nx) = im.coadd_grid(g)
    # every visit's corners fall inside the grid
    for w in g.wcs.values:
        ra, dec = w.all_pix2world([-0.5, 255.5, -0.5, 255.5], [-0.5, -0.5, 255.5, 255.5], 0)
        x, y = wcs.all_world2pix(ra, dec, 0)
        assert (x >= -0.5).all() and (x <= nx - 0.5).all() and (y >= -0.5).all()
        assert (y <= ny - 0.5).all()
    c = im.coadd(stack, band="g", tile=100).compute()
    assert c.image.shape == (ny, nx) and c.image.chunks is None
    count = c.exposure_count.values
    assert count.max() == 2 and count.min() == 0
    # pixels seen by no visit are NaN, the others finite (bad columns are masked per visit)
    assert np.isnan(c.image.values[count == 0]).all()
    assert np.isfinite(c.image.values[count > 0]).all()
    assert c.attrs["band"] == "g" and len(c.attrs["visits"]) == 2


def test_coadd_errors(small_stack: ImageStackInfo) -> None:
    stack = im.open_stack(small_stack.path)
    with pytest.raises(SpecError, match=r"several bands \['g', 'i', 'r'\]"):
        im.coadd(stack)
    with pytest.raises(SpecError, match="band 'u' is not in the stack"):
        im.coadd(stack, band="u")
    with pytest.raises(SpecError, match="'method'"):
        im.coadd(stack, band="g", method="mean")
    with pytest.raises(SpecError, match=r"coadd needs a zeropoint.*HSC-0908120-056-small"):
        im.coadd(im.open_stack(HSC_CALEXP))


def test_decam_g_coadd_with_sky_subtraction() -> None:
    """Three real g exposures (ADU, sky not subtracted), zeropoints from survey-ccds."""
    stack = im.open_stack(DECAM_IMAGES, metadata=DECAM_CCDS)
    c = im.coadd(stack, band="g", subtract_sky=True).compute()
    count = c.exposure_count.values
    assert count.max() == 3
    g = stack.isel(visit=stack.band == "g")
    single = [
        float(np.sqrt(np.nanmedian(v))) * _njy_per_count(float(z))
        for v, z in zip(g.variance.values.reshape(3, -1), g.zeropoint.values, strict=True)
    ]
    coadd_sigma = float(np.sqrt(np.median(c.variance.values[count == 3])))
    # inverse-variance weighting: 1/sigma^2 = sum 1/sigma_i^2
    assert coadd_sigma == pytest.approx(1 / np.sqrt(np.sum(1 / np.square(single))), rel=0.05)
    # the sky is gone: the coadd's median is near zero, the galaxy stands out
    full = count == 3
    assert abs(float(np.median(c.image.values[full]))) < 3 * coadd_sigma
    assert float(np.max(c.image.values[full])) > 50 * coadd_sigma
