"""Random points inside a healsparse footprint: inside, uniform, as many as asked,
deterministic whatever the partitioning; and usable as the randoms of galaxy_galaxy."""

from __future__ import annotations

import healsparse
import hpgeom
import numpy as np
import pytest
import treecorr

import skydask
from analyses.twopoint_testdata import assert_same, mock_points, tc_catalog
from skydask.analyses.twopoint import galaxy_galaxy, randoms
from skydask.errors import SpecError

NSIDE = 1024


@pytest.fixture(scope="module")
def footprint() -> healsparse.HealSparseMap:
    """A 1-degree disc minus a 0.3-degree hole, spanning several coverage pixels."""
    m = healsparse.HealSparseMap.make_empty(32, NSIDE, np.bool_)
    m[hpgeom.query_circle(NSIDE, 61.0, -34.5, 1.0, nest=True)] = True
    m[hpgeom.query_circle(NSIDE, 61.2, -34.3, 0.3, nest=True)] = False
    return m


def test_randoms_fill_the_footprint_uniformly(footprint: healsparse.HealSparseMap) -> None:
    density = 2.0  # per arcmin^2
    pts = randoms(footprint, density, seed=5).compute()
    area = footprint.get_valid_area(degrees=True) * 3600
    # Poisson: the count within 4 sigma of the mean
    assert abs(len(pts) - density * area) < 4 * np.sqrt(density * area)
    pix = hpgeom.angle_to_pixel(NSIDE, pts.ra.to_numpy(), pts.dec.to_numpy(), nest=True)
    assert np.all(footprint[pix])  # nothing outside, nothing in the hole
    # uniform: the counts per map pixel are Poisson around the same mean (variance = mean)
    counts = np.bincount(np.searchsorted(footprint.valid_pixels, pix),
                         minlength=len(footprint.valid_pixels))  # fmt: skip
    mean = counts.mean()
    assert mean == pytest.approx(density * hpgeom.nside_to_pixel_area(NSIDE) * 3600**2 / 3600,
                                 rel=0.03)  # fmt: skip
    assert counts.var() == pytest.approx(mean, rel=0.1)


def test_randoms_do_not_depend_on_the_partitioning(footprint: healsparse.HealSparseMap) -> None:
    a = randoms(footprint, 1.0, seed=9, rows_per_partition=100_000_000)
    b = randoms(footprint, 1.0, seed=9, rows_per_partition=1_000)
    assert a.npartitions == 1 and b.npartitions > 1
    pa, pb = a.compute(), b.compute()
    np.testing.assert_array_equal(pa.to_numpy(), pb.to_numpy())
    assert not np.array_equal(pa.to_numpy(), randoms(footprint, 1.0, seed=10).compute().to_numpy())


def test_float_maps_use_their_valid_pixels() -> None:
    depth = healsparse.HealSparseMap.make_empty(32, 256, np.float64)
    depth[hpgeom.query_circle(256, 30.0, 10.0, 0.5, nest=True)] = 25.3
    pts = randoms(depth, 0.5, seed=1).compute()
    pix = hpgeom.angle_to_pixel(256, pts.ra.to_numpy(), pts.dec.to_numpy(), nest=True)
    assert np.all(depth[pix] == 25.3)


def test_bad_footprints() -> None:
    with pytest.raises(SpecError, match="HealSparseMap"):
        randoms(np.zeros(10), 1.0, seed=1)
    empty = healsparse.HealSparseMap.make_empty(32, 256, np.bool_)
    with pytest.raises(SpecError, match="no valid pixel"):
        randoms(empty, 1.0, seed=1)
    with pytest.raises(SpecError, match="n_per_arcmin2"):
        randoms(empty, -1.0, seed=1)


def test_galaxy_galaxy_with_generated_randoms(footprint: healsparse.HealSparseMap) -> None:
    rand = randoms(footprint, 3.0, seed=4)
    pts = mock_points(30_000, seed=6, clustered=True)
    pix = hpgeom.angle_to_pixel(NSIDE, pts.ra.to_numpy(), pts.dec.to_numpy(), nest=True)
    galaxies = pts[footprint[pix]]
    res = galaxy_galaxy(skydask.from_pandas(galaxies), rand, lens_cuts=None, min_sep=1.0,
                        max_sep=20.0, nbins=4, npatch=5, bin_slop=0.0)  # fmt: skip
    # TreeCorr on the same points and patches
    r = rand.compute()
    dd, dr, rr = (treecorr.NNCorrelation(res.config.treecorr_config()) for _ in range(3))
    d_cat, r_cat = (
        tc_catalog(galaxies, res.patch_centers, "N"),
        tc_catalog(r, res.patch_centers, "N"),
    )
    dd.process(d_cat)
    dr.process(d_cat, r_cat)
    rr.process(r_cat)
    dd.calculateXi(rr=rr, dr=dr)
    assert_same(res.corr().xi, dd.xi, "w(theta)")
    assert np.all(res.corr().xi[:2] > 0)  # the clumps are seen
    # the randoms defined the patches (they trace the footprint best)
    assert "randoms" in res.reduction["patch_centers"]
