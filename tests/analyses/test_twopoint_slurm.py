"""shear_shear on SLURM workers (the single-node SLURM of scripts/slurm-up.sh) gives the numbers
of the local computation: the pair tasks, the patch data and the TreeCorr objects all cross
process and job boundaries."""

from __future__ import annotations

import dask
import numpy as np
import pytest

import skydask
from analyses.twopoint_testdata import SHEAR, assert_same, mock_sources, require_slurm
from skydask.analyses.twopoint import shear_shear
from skydask.cluster import connect

pytestmark = pytest.mark.slurm


def test_shear_shear_on_slurm_equals_local() -> None:
    require_slurm()
    cat = skydask.from_pandas(mock_sources(30_000, seed=31), npartitions=4)
    binning = {"min_sep": 1.0, "max_sep": 15.0, "nbins": 4, "npatch": 6, "bin_slop": 0.0}
    with dask.config.set(scheduler="sync"):
        local = shear_shear(cat, shear=SHEAR, source_cuts=None, **binning)
    with connect("localhost-slurm") as client:
        client.wait_for_workers(2, timeout=120)
        on_slurm = shear_shear(cat, shear=SHEAR, source_cuts=None, **binning)
    np.testing.assert_array_equal(on_slurm.patch_centers, local.patch_centers)
    for name in ("xip", "xim", "npairs", "weight"):
        assert_same(getattr(on_slurm.corr(), name), getattr(local.corr(), name), name)
    assert_same(on_slurm.covariance, local.covariance, "covariance", atol=1e-18)
