"""Regions: exact row tests against brute force, and the soundness of the pruning tests."""

from __future__ import annotations

import hpgeom
import numpy as np
import pytest

from skydask.catalog.regions import Box, Cone, HealpixRegion, angular_separation_deg


def _sample_rectangle(
    rng: np.random.Generator, lo: float, hi: float, dlo: float, dhi: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    ra = np.concatenate([rng.uniform(lo, hi, n), [lo, hi, lo, hi]])
    dec = np.concatenate([rng.uniform(dlo, dhi, n), [dlo, dlo, dhi, dhi]])
    return ra, dec


def test_separation_matches_astropy() -> None:
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(0)
    ra, dec = rng.uniform(0, 360, 1000), rng.uniform(-90, 90, 1000)
    centre = SkyCoord(12.3 * u.deg, -45.6 * u.deg)
    expected = SkyCoord(ra * u.deg, dec * u.deg).separation(centre).deg
    np.testing.assert_allclose(angular_separation_deg(ra, dec, 12.3, -45.6), expected, atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_cone_pruning_is_sound(seed: int) -> None:
    """Whenever a sampled point of a rectangle lies in the cone, the rectangle is kept."""
    rng = np.random.default_rng(seed)
    pruned = 0
    for _ in range(400):
        cone = Cone(rng.uniform(0, 360), rng.uniform(-89, 89), rng.uniform(0.01, 5))
        lo = rng.uniform(0, 359)
        hi = min(360.0, lo + rng.uniform(0.01, 10))
        dlo = rng.uniform(-90, 89)
        dhi = min(90.0, dlo + rng.uniform(0.01, 10))
        # bias rectangles towards the cone so that both outcomes occur
        if rng.random() < 0.5:
            lo, hi = (cone.ra - 1) % 360, min(360.0, (cone.ra - 1) % 360 + 2)
        ra, dec = _sample_rectangle(rng, lo, hi, dlo, dhi, 200)
        if cone.contains(ra, dec).any():
            assert cone.may_overlap_bounds(lo, hi, dlo, dhi)
        elif not cone.may_overlap_bounds(lo, hi, dlo, dhi):
            pruned += 1
    assert pruned > 100  # it does prune


def test_box_wrapping_and_pruning() -> None:
    box = Box(350.0, 10.0, -5.0, 5.0)
    assert box.may_overlap_bounds(355.0, 360.0, 0.0, 1.0)
    assert box.may_overlap_bounds(0.0, 5.0, 0.0, 1.0)
    assert not box.may_overlap_bounds(20.0, 340.0, 0.0, 1.0)
    assert not box.may_overlap_bounds(355.0, 360.0, 6.0, 7.0)
    rng = np.random.default_rng(1)
    ra, dec = rng.uniform(0, 360, 10000), rng.uniform(-10, 10, 10000)
    expected = ((ra >= 350) | (ra <= 10)) & (np.abs(dec) <= 5)
    np.testing.assert_array_equal(box.contains(ra, dec), expected)


def test_cone_holding_a_pole_spans_every_ra() -> None:
    cone = Cone(0.0, 89.5, 1.0)
    assert cone.may_overlap_bounds(180.0, 181.0, 89.0, 89.2)
    assert not cone.may_overlap_bounds(180.0, 181.0, 87.0, 88.4)


def test_healpix_region_hierarchy_and_contains() -> None:
    region = HealpixRegion(6, (100, 101, 4000))
    rng = np.random.default_rng(2)
    ra, dec = rng.uniform(0, 360, 200000), np.degrees(np.arcsin(rng.uniform(-1, 1, 200000)))
    pix = hpgeom.angle_to_pixel(64, ra, dec)
    np.testing.assert_array_equal(region.contains(ra, dec), np.isin(pix, [100, 101, 4000]))
    hp29 = hpgeom.angle_to_pixel(2**29, ra, dec)
    np.testing.assert_array_equal(region.contains_hp29(hp29), np.isin(pix, [100, 101, 4000]))
    assert region.may_overlap_pixel(5, 25) and not region.may_overlap_pixel(5, 26)
    assert region.may_overlap_pixel(8, 100 * 16 + 3) and not region.may_overlap_pixel(8, 102 * 16)
    # bounds of the pixels: a rectangle far away is pruned, one holding a pixel centre is not
    cra, cdec = hpgeom.pixel_to_angle(64, 100)
    assert region.may_overlap_bounds(cra - 0.1, cra + 0.1, cdec - 0.1, cdec + 0.1)
    # all three pixels lie in base pixel 0 (northern sky): the far south is pruned
    assert not region.may_overlap_bounds(cra, cra + 1, -89.0, -88.0)


def test_invalid_regions_raise() -> None:
    with pytest.raises(ValueError, match="dec"):
        Cone(0, 95, 1)
    with pytest.raises(ValueError, match="radius"):
        Cone(0, 0, -1)
    with pytest.raises(ValueError, match="outside"):
        HealpixRegion(2, (10_000,))
