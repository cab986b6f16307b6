"""The synthetic DC2 catalogue, through the default pipeline: DESC's source cuts, HSM
distortions turned into shears (``g = e / 2R``, ``R = 1 - e_rms^2``, e_rms estimated),
inverse-variance weights and ``flip_g2``.

The inputs are the generator's true reduced shears at the selected sources (read_truth: its
Gaussian field, its isothermal halos, reduced), measured on the same pairs with the same
weights. The measurement from the noisy shapes must meet them within its jackknife errors.

(The Gaussian field alone against its power spectrum is in test_twopoint_physics.py: on this
catalogue the halos add to xi+ about as much as the field at 3-60 arcmin, an SIS term
``~ n_halo theta_E^2 ln(L / theta)``, and a 3-degree field's few long modes scatter it.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import skydask
from skydask.analyses.twopoint import ShearCalibration, cut_set, galaxy_shear, shear_shear
from skydask.synth import generate_object_catalog, read_synth_params, read_truth

FOOTPRINT = (60.0, 63.0, -36.0, -33.0)
ROWS = 500_000
SEED = 21

pytestmark = pytest.mark.slow  # a 500,000-object catalogue: ~20 s on two cores


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("twopoint_synth") / "cat"
    generate_object_catalog(out, rows=ROWS, seed=SEED, footprint=FOOTPRINT)
    return out


@pytest.fixture(scope="module")
def truth_sources(catalogue: Path) -> pd.DataFrame:
    """The sources DESC's cuts select, with their true reduced shear (east, north frame)."""
    cat = cut_set("source").apply(skydask.open_catalog(catalogue))
    selected = cat.select(["objectId", "ra", "dec", "ext_shapeHSM_HsmShapeRegauss_sigma"]).compute()
    truth = read_truth(catalogue, columns=["objectId", "g1_true", "g2_true"])
    return selected.merge(truth, on="objectId", how="left", validate="one_to_one")


def _truth_calibration() -> ShearCalibration:
    # the true shears, with the same weights as the measured ones (their e_rms is given)
    return ShearCalibration(kind="shear", e1="g1_true", e2="g2_true",
                            sigma="ext_shapeHSM_HsmShapeRegauss_sigma")  # fmt: skip


def _chi(measured: Any, expected: Any, sigma: Any) -> Any:
    return (np.asarray(measured) - np.asarray(expected)) / np.asarray(sigma)


def test_gamma_t_around_the_halos(catalogue: Path, truth_sources: pd.DataFrame) -> None:
    halos = read_synth_params(catalogue)["parameters"]["shear"]["halos"]
    lenses = skydask.from_pandas(pd.DataFrame(halos)[["ra", "dec"]])
    binning = {"min_sep": 1.0, "max_sep": 20.0, "nbins": 5, "npatch": 5}
    measured = galaxy_shear(lenses, skydask.open_catalog(catalogue), lens_cuts=None, **binning)
    cal = measured.calibrations["source_0"]
    e_rms_model = read_synth_params(catalogue)["parameters"]["galaxies"]["e_rms"]
    # the selected sources are a little more elliptical than all galaxies (the resolution cut
    # favours elongated ones): e_rms a few per cent above the population's
    assert cal.e_rms == pytest.approx(e_rms_model, rel=0.06)
    truth = galaxy_shear(
        lenses, skydask.from_pandas(truth_sources), lens_cuts=None, source_cuts=None,
        shear=ShearCalibration(**{**_truth_calibration().to_dict(), "e_rms": cal.e_rms}),
        patch_centers=measured.patch_centers, **binning,
    )  # fmt: skip
    ng, ng_true = measured.corr(), truth.corr()
    np.testing.assert_array_equal(ng.npairs, ng_true.npairs)  # the same pairs
    # the sign convention: a positive tangential shear, as injected
    assert np.all(ng_true.xi > 0) and np.all(ng.xi[:3] > 0)
    chi = _chi(ng.xi, ng_true.xi, measured.sigma)
    assert np.all(np.abs(chi) < 3), chi
    chi_x = _chi(ng.xi_im, ng_true.xi_im, measured.sigma)  # gamma_x has gamma_t's errors
    assert np.all(np.abs(chi_x) < 3), chi_x


def test_xi_plus_of_the_shear_field(catalogue: Path, truth_sources: pd.DataFrame) -> None:
    binning = {"min_sep": 3.0, "max_sep": 60.0, "nbins": 5, "npatch": 16}
    measured = shear_shear(skydask.open_catalog(catalogue), **binning)
    cal = measured.calibrations["source_0"]
    assert 0.8 < cal.responsivity < 0.95
    truth = shear_shear(
        skydask.from_pandas(truth_sources), source_cuts=None,
        shear=ShearCalibration(**{**_truth_calibration().to_dict(), "e_rms": cal.e_rms}),
        patch_centers=measured.patch_centers, **binning,
    )  # fmt: skip
    gg, gg_true = measured.corr(), truth.corr()
    np.testing.assert_array_equal(gg.npairs, gg_true.npairs)  # the same pairs
    n = measured.config.nbins
    sigma_p, sigma_m = measured.sigma[:n], measured.sigma[n:]
    # the shapes' xi+ and xi- meet the injected shears' (Gaussian field, halos, reduced shear)
    for name, sigma in (("xip", sigma_p), ("xim", sigma_m), ("xim_im", sigma_m)):
        chi = _chi(getattr(gg, name), getattr(gg_true, name), sigma)
        assert np.all(np.abs(chi) < 3), (name, chi)
    # not a null result: the signal is seen (chi^2 of xi+ against zero)
    assert float(np.sum((gg.xip / sigma_p) ** 2)) > 25
