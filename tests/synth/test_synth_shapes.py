"""Ellipticity algebra against the analytic shear response of a distortion."""

from __future__ import annotations

import math

import numpy as np

from skydask.synth.shapes import (
    apply_shear,
    distortion_from_ellipticity,
    distortion_rms,
    draw_intrinsic_ellipticity,
)

SIGMA, EPS_MAX = 0.2, 0.9


def test_distortion_rms_by_monte_carlo() -> None:
    eps = draw_intrinsic_ellipticity(np.random.default_rng(1), 400_000, SIGMA, EPS_MAX)
    e = distortion_from_ellipticity(eps)
    expected = distortion_rms(SIGMA, EPS_MAX)
    # the sample rms of N draws scatters by ~ rms / sqrt(2N) (kurtosis ignored): 4e-4 here
    assert abs(np.std(e.real) - expected) < 3 * expected / math.sqrt(2 * len(e))
    assert abs(np.std(e.imag) - expected) < 3 * expected / math.sqrt(2 * len(e))
    assert abs(expected - 0.3491) < 1e-4
    assert np.abs(eps).max() < EPS_MAX


def test_mean_distortion_responds_as_2_1_minus_erms2() -> None:
    # <e> = 2 (1 - e_rms^2) g to first order (Bernstein & Jarvis 2002); 1e5 draws, 3 sigma
    g = 0.03 - 0.02j
    n = 100_000
    eps_int = draw_intrinsic_ellipticity(np.random.default_rng(2), n, SIGMA, EPS_MAX)
    e = distortion_from_ellipticity(apply_shear(eps_int, g))
    e_rms = distortion_rms(SIGMA, EPS_MAX)
    expected = 2 * (1 - e_rms**2) * g
    err = np.std(e.real) / math.sqrt(n)
    assert abs(e.real.mean() - expected.real) < 3 * err
    assert abs(e.imag.mean() - expected.imag) < 3 * err


def test_ring_test_cancels_shape_noise() -> None:
    # each intrinsic shape also enters rotated by 45, 90 and 135 deg (eps * i^k), so the mean
    # intrinsic distortion is exactly 0 and only the O(g^3) terms remain: ~1e-5 for |g| = 0.036
    g = 0.03 - 0.02j
    eps = draw_intrinsic_ellipticity(np.random.default_rng(3), 25_000, SIGMA, EPS_MAX)
    ring = np.concatenate([eps * 1j**k for k in range(4)])
    e = distortion_from_ellipticity(apply_shear(ring, g))
    e_rms = distortion_rms(SIGMA, EPS_MAX)  # exact for the population, not for this sample
    sample_rms2 = np.mean(np.abs(distortion_from_ellipticity(ring)) ** 2) / 2
    response = 2 * (1 - sample_rms2)
    assert abs(e.mean() - response * g) < 1e-4
    assert abs(sample_rms2 - e_rms**2) < 2e-3


def test_shearing_a_round_source_gives_the_distortion_of_g() -> None:
    g = np.array([0.1 + 0.05j])
    e = distortion_from_ellipticity(apply_shear(np.zeros(1, complex), g))
    np.testing.assert_allclose(e, 2 * g / (1 + abs(g) ** 2))
    # shearing by g then by -g gives back the source
    eps = draw_intrinsic_ellipticity(np.random.default_rng(4), 1000, SIGMA, EPS_MAX)
    np.testing.assert_allclose(apply_shear(apply_shear(eps, 0.2 + 0.1j), -0.2 - 0.1j), eps)
