"""Tracts, patches, row allocation and projections."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skydask.synth.sky import (
    PATCHES_PER_SIDE,
    allocate_rows,
    box_solid_angle,
    gnomonic,
    local_north_angle,
    plan_tracts,
    uniform_in_box,
)


def test_allocation_is_exact_and_within_one_of_the_quota() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        w = rng.uniform(0.01, 1.0, rng.integers(1, 300))
        total = int(rng.integers(0, 10**7))
        got = allocate_rows(w, total)
        assert got.sum() == total
        assert np.all(np.abs(got - total * w / w.sum()) < 1.0)


def test_tracts_tile_the_footprint() -> None:
    footprint = (55.0, 65.0, -40.0, -32.0)
    tracts = plan_tracts(footprint)
    patches = [p for t in tracts for p in t.patches]
    # patches tile the footprint exactly: their solid angles add up to the footprint's
    assert sum(p.solid_angle for p in patches) == pytest.approx(
        box_solid_angle(*footprint), rel=1e-12
    )
    for t in tracts:
        assert t.dec_max - t.dec_min == 2.0
        # ~2 deg wide on the sky: RA width scaled by 1 / cos(dec)
        width_on_sky = (t.ra_max - t.ra_min) * math.cos(math.radians(t.dec_center))
        assert width_on_sky == pytest.approx(2.0, rel=0.02)
        for p in t.patches:
            assert p.index == p.x + PATCHES_PER_SIDE * p.y
            assert p.name == f"{p.x},{p.y}"
    assert len({t.tract for t in tracts}) == len(tracts)


def test_tract_ids_are_global() -> None:
    # a small footprint inside a large one has the same tract numbers and patch boxes
    big = {t.tract: t for t in plan_tracts((55.0, 65.0, -40.0, -32.0))}
    for t in plan_tracts((60.0, 61.0, -35.0, -34.0)):
        assert (t.ra_min, t.ra_max, t.dec_min, t.dec_max) == (
            big[t.tract].ra_min, big[t.tract].ra_max, big[t.tract].dec_min, big[t.tract].dec_max
        )  # fmt: skip


def test_uniform_in_box_is_uniform_on_the_sphere() -> None:
    patch = plan_tracts((60.0, 64.0, -60.0, -50.0))[0].patches[0]
    ra, dec = uniform_in_box(np.random.default_rng(1), 200_000, patch)
    assert ra.min() >= patch.ra_min and ra.max() <= patch.ra_max
    assert dec.min() >= patch.dec_min and dec.max() <= patch.dec_max
    # equal-area halves in sin(dec) get equal counts (a uniform-in-dec draw would not)
    s0, s1 = math.sin(math.radians(patch.dec_min)), math.sin(math.radians(patch.dec_max))
    dec_mid = math.degrees(math.asin(0.5 * (s0 + s1)))
    frac = np.mean(dec < dec_mid)
    assert abs(frac - 0.5) < 3 * 0.5 / math.sqrt(len(dec))


def test_north_angle_matches_a_finite_difference() -> None:
    # brute-force twin of the closed form: move north a little and look where we went
    rng = np.random.default_rng(2)
    for dec0 in (-70.0, -36.0, 0.0, 25.0, 80.0):
        ra = rng.uniform(52.0, 68.0, 500)
        dec = np.clip(rng.uniform(dec0 - 8, dec0 + 8, 500), -89.0, 89.0)
        xi0, eta0 = gnomonic(ra, dec, 60.0, dec0)
        xi1, eta1 = gnomonic(ra, dec + 1e-5, 60.0, dec0)
        expected = np.arctan2(-(xi1 - xi0), eta1 - eta0)
        assert np.abs(local_north_angle(ra, dec, 60.0, dec0) - expected).max() < 1e-8


def test_tract_pixel_grid() -> None:
    tract = plan_tracts((60.0, 61.0, -35.0, -34.0))[0]
    x, y = tract.pixel_xy(np.array([tract.ra_center]), np.array([tract.dec_center]))
    assert (x[0], y[0]) == tract.pixel_origin()
    # 0.2 arcsec pixels: one arcminute north is 300 pixels up, x towards east (+RA)
    _, y1 = tract.pixel_xy(np.array([tract.ra_center]), np.array([tract.dec_center + 1 / 60]))
    assert y1[0] - y[0] == pytest.approx(300.0, rel=1e-4)
    x2, _ = tract.pixel_xy(np.array([tract.ra_center + 0.01]), np.array([tract.dec_center]))
    assert x2[0] > x[0]
