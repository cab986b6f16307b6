"""Bad input gives a clear error or a documented, recorded handling; never a silent number.

Also: parameters, cut sets, and the TreeCorr options that pass through.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import treecorr

import skydask
from analyses.twopoint_testdata import (
    SHEAR,
    SHEAR_UNWEIGHTED,
    assert_same,
    mock_points,
    mock_sources,
    tc_catalog,
)
from skydask.analyses.twopoint import (
    TwoPointConfig,
    cut_set,
    galaxy_galaxy,
    galaxy_shear,
    shear_shear,
    two_point,
)
from skydask.errors import FilterSyntaxError, SchemaError, SpecError, UnknownQuantityError

SMALL = {"min_sep": 2.0, "max_sep": 10.0, "nbins": 3, "npatch": 4, "bin_slop": 0.0}


@pytest.fixture(scope="module")
def sources() -> pd.DataFrame:
    return mock_sources(8_000, seed=11)


def test_sources_without_shapes(sources: pd.DataFrame) -> None:
    positions = skydask.from_pandas(sources[["ra", "dec"]])
    with pytest.raises(UnknownQuantityError, match=r"source bin 'source_0'.*shear_e1"):
        shear_shear(positions, source_cuts=None, **SMALL)
    # DESC's cuts need quantities a bare table does not have: the error names the cut
    with pytest.raises(UnknownQuantityError, match=r"cut 'extended' of cut set 'source'"):
        shear_shear(skydask.from_pandas(sources), shear=SHEAR, **SMALL)


def test_an_empty_bin(sources: pd.DataFrame) -> None:
    cat = skydask.from_pandas(sources)
    with pytest.raises(SpecError, match=r"source bin 'far' is empty.*no cut set"):
        shear_shear({"near": cat, "far": cat.where("ra > 100")}, shear=SHEAR, source_cuts=None,
                    **SMALL)  # fmt: skip
    with pytest.raises(SpecError, match=r"lens bin 'lens_0' is empty.*g1 > 5"):
        galaxy_shear(cat, cat, shear=SHEAR, source_cuts=None, lens_cuts={"mag": "g1 > 5"},
                     **SMALL)  # fmt: skip


def test_nan_shears_raise_or_are_dropped_and_counted(sources: pd.DataFrame) -> None:
    bad = sources.copy()
    bad.loc[::100, "g1"] = np.nan
    n_bad = int(bad.g1.isna().sum())
    cat = skydask.from_pandas(bad, npartitions=3)
    with pytest.raises(SchemaError, match=rf"{n_bad} of {len(bad)} selected objects have a non-"):
        shear_shear(cat, shear=SHEAR, source_cuts=None, **SMALL)
    res = shear_shear(cat, shear=SHEAR, source_cuts=None, nan_policy="drop", **SMALL)
    assert res.samples["source_0"]["rows_nonfinite"] == n_bad
    assert res.samples["source_0"]["rows_used"] == len(bad) - n_bad
    # the same numbers as TreeCorr on the finite rows only
    good = bad.dropna()
    ref = treecorr.GGCorrelation(res.config.treecorr_config())
    ref.process(tc_catalog(good, res.patch_centers, "G"))
    assert_same(res.corr().xip, ref.xip, "xip")
    assert_same(res.covariance, ref.estimate_cov("jackknife"), "cov", atol=1e-18)


def test_a_patch_with_no_objects_is_handled_as_treecorr_and_recorded(
    sources: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    # lenses only in the west half, patches from the sources over the whole field: some
    # lens patches are empty
    lenses = mock_points(3_000, seed=12)
    lenses = lenses[lenses.ra < 61.5]
    with caplog.at_level(logging.WARNING, logger="skydask.analyses.twopoint"):
        res = galaxy_shear(skydask.from_pandas(lenses), skydask.from_pandas(sources),
                           shear=SHEAR, source_cuts=None, lens_cuts=None, **SMALL)  # fmt: skip
    empty = res.samples["lens_0"]["empty_patches"]
    assert empty, "the set-up should leave a lens patch empty"
    assert any("no objects in patch" in r.message for r in caplog.records)
    ref = treecorr.NGCorrelation(res.config.treecorr_config())
    ref.process(tc_catalog(lenses, res.patch_centers, "N"),
                tc_catalog(sources, res.patch_centers, "G"))  # fmt: skip
    assert_same(res.corr().xi, ref.xi, "gamma_t")
    assert_same(res.covariance, ref.estimate_cov("jackknife"), "cov", atol=1e-18)


def test_too_few_objects_for_the_patches(sources: pd.DataFrame) -> None:
    few = skydask.from_pandas(sources.iloc[:30])
    with pytest.raises(SpecError, match="cannot make npatch=4 patches"):
        shear_shear(few, shear=SHEAR, source_cuts=None, **SMALL)


def test_patch_centers_are_checked(sources: pd.DataFrame) -> None:
    with pytest.raises(SpecError, match="patch_centers must be"):
        shear_shear(skydask.from_pandas(sources), shear=SHEAR, source_cuts=None,
                    patch_centers=np.zeros((4, 2)), **SMALL)  # fmt: skip


def test_required_samples() -> None:
    cat = skydask.from_pandas(mock_points(100, seed=1))
    with pytest.raises(SpecError, match="galaxy_galaxy needs randoms"):
        galaxy_galaxy(cat, None, lens_cuts=None, **SMALL)
    with pytest.raises(SpecError, match="statistics must be some of"):
        two_point(sources=cat, statistics=["xi"], **SMALL)
    with pytest.raises(SpecError, match="must be a skydask Catalog"):
        shear_shear(pd.DataFrame({"ra": [1.0]}), **SMALL)  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="no column"):
        galaxy_galaxy(cat, pd.DataFrame({"x": [1]}).pipe(lambda d: _dask(d)), lens_cuts=None,
                      **SMALL)  # fmt: skip


def _dask(frame: pd.DataFrame) -> object:
    import dask.dataframe as dd

    return dd.from_pandas(frame, npartitions=1)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"npatch": 1}, "at least 2"),
        ({"nbins": 0}, "'nbins' must be a positive integer"),
        ({"max_sep": 0.1}, "must exceed 'min_sep'"),
        ({"cross_patch_weight": "geom"}, "bootstrap"),
        ({"nan_policy": "ignore"}, "nan_policy"),
        ({"sep_units": "parsec"}, "TreeCorr refuses"),
        ({"not_a_parameter": 3}, "have no parameter"),
        ({"treecorr": {"min_sep": 3}}, "set it directly"),
    ],
)
def test_config_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        TwoPointConfig().with_overrides(**overrides)


def test_treecorr_options_pass_through_and_cross_patch_weight_is_explicit(
    sources: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = TwoPointConfig().with_overrides(split_method="median", min_top=2, **SMALL)
    assert cfg.treecorr_config()["split_method"] == "median"
    with caplog.at_level(logging.DEBUG):
        res = shear_shear(skydask.from_pandas(sources), cfg, shear=SHEAR, source_cuts=None)
        res.corr().estimate_cov("jackknife")
    assert res.corr().split_method == "median"
    assert res.corr().cross_patch_weight == "match"
    # TreeCorr warns when it falls back to cross_patch_weight='simple'; set, it stays quiet
    assert not any("cross_patch_weight" in r.getMessage() for r in caplog.records)


def test_cut_sets_are_data_and_never_evaluated() -> None:
    src = cut_set("source")
    assert src.cuts["blendedness"].enabled is False
    assert "blendedness < 10**-0.375" in src.with_cuts(blendedness=True).expression()
    with pytest.raises(SpecError, match="no cut 'nonsense'"):
        src.with_cuts(nonsense=False)
    with pytest.raises(SpecError, match="no cut set"):
        cut_set("stars")
    cat = skydask.from_pandas(pd.DataFrame({"ra": [1.0], "dec": [2.0], "g1": [0.0]}))
    with pytest.raises(FilterSyntaxError):
        cut_set("lens").with_cuts(extended=False, clean=False,
                                  mag="__import__('os').system('true')").apply(cat)  # fmt: skip


def test_desc_source_cuts_select_what_a_numpy_mask_selects() -> None:
    # the brute-force twin: the same selection written out in numpy
    rng = np.random.default_rng(3)
    n = 5_000
    frame = pd.DataFrame({
        "ra": rng.uniform(60, 61, n), "dec": rng.uniform(-35, -34, n),
        "extendedness": rng.integers(0, 2, n).astype(np.float32),
        "clean": rng.random(n) > 0.1, "xy_flag": rng.random(n) < 0.05,
        "ext_shapeHSM_HsmShapeRegauss_flag": rng.random(n) < 0.05,
        "psFlux_i": rng.lognormal(7, 1.5, n), "psFluxErr_i": np.full(n, 30.0),
        "cModelFlux_i": rng.lognormal(7, 1.5, n), "cModelFluxErr_i": np.full(n, 30.0),
        "ext_shapeHSM_HsmShapeRegauss_resolution": rng.uniform(0, 1, n),
        "ext_shapeHSM_HsmShapeRegauss_e1": rng.normal(0, 0.8, n),
        "ext_shapeHSM_HsmShapeRegauss_e2": rng.normal(0, 0.8, n),
        "ext_shapeHSM_HsmShapeRegauss_sigma": rng.uniform(0, 0.6, n),
        "blendedness": rng.uniform(0, 1, n),
    })  # fmt: skip
    got = cut_set("source").apply(skydask.from_pandas(frame)).select(["ra"]).compute()
    f = frame
    mag_i = -2.5 * np.log10(f.psFlux_i) + 31.4
    mask = (
        (f.extendedness > 0) & f.clean & ~f.xy_flag & ~f.ext_shapeHSM_HsmShapeRegauss_flag
        & np.isfinite(mag_i) & (f.cModelFlux_i / f.cModelFluxErr_i > 10)
        & (-2.5 * np.log10(f.cModelFlux_i) + 31.4 < 24.5)
        & (f.ext_shapeHSM_HsmShapeRegauss_resolution >= 0.3)
        & (np.hypot(f.ext_shapeHSM_HsmShapeRegauss_e1, f.ext_shapeHSM_HsmShapeRegauss_e2) < 2)
        & (f.ext_shapeHSM_HsmShapeRegauss_sigma <= 0.4)
    )  # fmt: skip
    assert 0 < mask.sum() < n
    np.testing.assert_array_equal(np.sort(got.ra.to_numpy()), np.sort(f.ra[mask].to_numpy()))


def test_unweighted_sources_give_treecorrs_unweighted_numbers(sources: pd.DataFrame) -> None:
    res = shear_shear(skydask.from_pandas(sources), shear=SHEAR_UNWEIGHTED, source_cuts=None,
                      **SMALL)  # fmt: skip
    ref = treecorr.GGCorrelation(res.config.treecorr_config())
    ref.process(tc_catalog(sources, res.patch_centers, "G", weights=False))
    assert_same(res.corr().xip, ref.xip, "xip")
    assert_same(res.corr().weight, ref.weight, "weight")
