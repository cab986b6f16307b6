"""Exactness: the distributed measurement equals one TreeCorr ``process()`` on the whole data.

About 100,000 source galaxies (two bins), 20,000 lenses and 40,000 randoms; GG, NG (with the
randoms' shear subtracted) and NN (Landy-Szalay) measured in one ``two_point`` call on 1 and
on 4 workers, against TreeCorr run the documented way on the whole catalogues with the same
patch centres. Values, pair counts, weights, ``tot`` and the joint jackknife covariance must
agree to 1e-10 relative (1e-12 absolute near zero): only the summation order differs.

Binning: bin_slop = 0 as TXPipe, but 1-6 arcmin in 4 bins instead of 0.5-300 arcmin in 9, so
that the reference and two distributed runs take seconds on two cores. The small range also
makes most patch pairs farther apart than max_sep, so the skipping path (and NN's ``tot`` of
skipped pairs) is exercised.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import treecorr

import skydask
from analyses.twopoint_testdata import (
    SHEAR,
    assert_same,
    local_client,
    mock_points,
    mock_sources,
    tc_catalog,
)
from skydask.analyses.twopoint import TwoPointConfig, TwoPointResult, two_point
from skydask.analyses.twopoint import measure as measure_module
from skydask.analyses.twopoint.patches import kmeans_centers

CONFIG = {"min_sep": 1.0, "max_sep": 6.0, "nbins": 4, "bin_slop": 0.0, "npatch": 6}
TC_CONFIG = TwoPointConfig(**CONFIG).treecorr_config()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    sources = mock_sources(100_000, seed=1)
    lenses = mock_points(20_000, seed=2, clustered=True)
    randoms = mock_points(40_000, seed=3)
    centers = kmeans_centers(sources.ra.to_numpy()[::5], sources.dec.to_numpy()[::5], 6, seed=4)
    return {"sources": sources, "lenses": lenses, "randoms": randoms, "centers": centers}


@pytest.fixture(scope="module")
def reference(data: dict[str, Any]) -> dict[str, Any]:
    centers = data["centers"]
    src = data["sources"]
    s0 = tc_catalog(src[src.zbin == 0], centers, "G")
    s1 = tc_catalog(src[src.zbin == 1], centers, "G")
    lens = tc_catalog(data["lenses"], centers, "N")
    rand = tc_catalog(data["randoms"], centers, "N")
    out: dict[str, Any] = {}
    for name, cats in (("gg00", (s0,)), ("gg01", (s0, s1)), ("gg11", (s1,))):
        out[name] = treecorr.GGCorrelation(TC_CONFIG)
        out[name].process(*cats)
    for name, src_cat in (("ng0", s0), ("ng1", s1)):
        ng, rg = treecorr.NGCorrelation(TC_CONFIG), treecorr.NGCorrelation(TC_CONFIG)
        ng.process(lens, src_cat)
        rg.process(rand, src_cat)
        ng.calculateXi(rg=rg)
        out[name], out[f"r{name}"] = ng, rg
    dd, dr, rr = (treecorr.NNCorrelation(TC_CONFIG) for _ in range(3))
    dd.process(lens)
    dr.process(lens, rand)
    rr.process(rand)
    dd.calculateXi(rr=rr, dr=dr)
    out.update(dd=dd, dr=dr, rr=rr)
    order = ["gg00", "gg01", "gg11", "ng0", "ng1", "dd"]
    out["cov"] = treecorr.estimate_multi_cov([out[k] for k in order], "jackknife")
    return out


def _measure(data: dict[str, Any]) -> TwoPointResult:
    src = skydask.from_pandas(data["sources"], npartitions=5)
    return two_point(
        sources={"s0": src.where("zbin == 0"), "s1": src.where("zbin == 1")},
        lenses={"l0": skydask.from_pandas(data["lenses"], npartitions=3)},
        randoms=skydask.from_pandas(data["randoms"], npartitions=4),
        shear=SHEAR, source_cuts=None, lens_cuts=None, patch_centers=data["centers"], **CONFIG,
    )  # fmt: skip


@pytest.fixture(scope="module", params=[1, 4], ids=["1-worker", "4-workers"])
def measured(request: pytest.FixtureRequest, data: dict[str, Any]) -> TwoPointResult:
    # 1 worker process, so that everything crosses pickling; 4 workers in this process, so
    # that the pairs are spread, reordered and cached differently (4 processes would spend
    # most of the test starting up on two cores; the SLURM test has 2 worker processes)
    with local_client(request.param, processes=request.param == 1):
        return _measure(data)


def _same_corr(actual: Any, expected: Any, what: str, fields: tuple[str, ...]) -> None:
    for f in fields:
        assert_same(getattr(actual, f), getattr(expected, f), f"{what}.{f}")
    assert sorted(actual.results) == sorted(expected.results), f"{what}: patch pairs differ"


def test_requests_cover_every_bin_pair(measured: TwoPointResult) -> None:
    got = [(r.statistic, r.bin1, r.bin2) for r in measured.requests]
    assert got == [
        ("shear_shear", "s0", "s0"), ("shear_shear", "s0", "s1"), ("shear_shear", "s1", "s1"),
        ("galaxy_shear", "l0", "s0"), ("galaxy_shear", "l0", "s1"),
        ("galaxy_galaxy", "l0", "l0"),
    ]  # fmt: skip
    assert measured.reduction["pairs_skipped"] > 0  # the skipping path is exercised


def test_shear_shear_equals_treecorr(measured: TwoPointResult, reference: dict[str, Any]) -> None:
    fields = ("xip", "xim", "xip_im", "xim_im", "npairs", "weight", "meanr", "meanlogr",
              "varxip", "varxim")  # fmt: skip
    for b1, b2, key in (("s0", "s0", "gg00"), ("s0", "s1", "gg01"), ("s1", "s1", "gg11")):
        _same_corr(measured.corr("shear_shear", b1, b2), reference[key], key, fields)


def test_galaxy_shear_equals_treecorr(measured: TwoPointResult, reference: dict[str, Any]) -> None:
    for b2, key in (("s0", "ng0"), ("s1", "ng1")):
        fields = ("xi", "xi_im", "raw_xi", "npairs", "weight", "meanr", "varxi")
        _same_corr(measured.corr("galaxy_shear", "l0", b2), reference[key], key, fields)
        rg = measured.randoms_correlations[measured.request("galaxy_shear", "l0", b2)]["rg"]
        _same_corr(rg, reference[f"r{key}"], f"r{key}", ("xi", "npairs", "weight"))
    # the random-point signal was subtracted
    ng = measured.corr("galaxy_shear", "l0", "s0")
    np.testing.assert_allclose(ng.xi, ng.raw_xi - reference["rng0"].xi, rtol=1e-12, atol=1e-15)


def test_galaxy_galaxy_equals_treecorr(measured: TwoPointResult, reference: dict[str, Any]) -> None:
    dd = measured.corr("galaxy_galaxy")
    _same_corr(dd, reference["dd"], "dd", ("xi", "npairs", "weight", "meanr", "varxi"))
    assert_same(dd.tot, reference["dd"].tot, "dd.tot")
    extra = measured.randoms_correlations[measured.request("galaxy_galaxy")]
    for name in ("dr", "rr"):
        _same_corr(extra[name], reference[name], name, ("npairs", "weight"))
        assert_same(extra[name].tot, reference[name].tot, f"{name}.tot")
    # skipped pairs still carry their tot, as in TreeCorr (the jackknife needs them)
    for ij, c in reference["rr"].results.items():
        assert_same(extra["rr"].results[ij].tot, c.tot, f"rr.results[{ij}].tot")


def test_joint_jackknife_covariance_equals_treecorr(
    measured: TwoPointResult, reference: dict[str, Any]
) -> None:
    assert measured.covariance.shape == (36, 36)  # 3 x (xi+, xi-), 2 x gamma_t, 1 x w: 4 bins
    assert_same(measured.covariance, reference["cov"], "joint covariance", atol=1e-18)
    # and each TreeCorr object's own jackknife works on the combined object
    gg = measured.corr("shear_shear", "s0", "s1")
    assert_same(gg.estimate_cov("jackknife"), reference["gg01"].estimate_cov("jackknife"),
                "gg01 jackknife", atol=1e-18)  # fmt: skip


def test_kmeans_patches_are_treecorrs() -> None:
    # the k-means on every row (every_nth=1) is TreeCorr's k-means on the whole catalogue
    frame = mock_sources(20_000, seed=7)
    cat = skydask.from_pandas(frame, npartitions=3)
    res = two_point(sources=cat, shear=SHEAR, source_cuts=None, every_nth=1, seed=11,
                    min_sep=1.0, max_sep=3.0, nbins=2, npatch=6)  # fmt: skip
    ref = treecorr.Catalog(ra=frame.ra.to_numpy(), dec=frame.dec.to_numpy(), ra_units="deg",
                           dec_units="deg", npatch=6, rng=np.random.default_rng(11))  # fmt: skip
    np.testing.assert_allclose(res.patch_centers, ref.patch_centers, rtol=0, atol=1e-12)


def test_each_task_holds_two_patches_only(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = mock_sources(30_000, seed=8)
    seen: list[tuple[int, int]] = []
    original = measure_module.run_pair

    def spy(job: Any, f1: pd.DataFrame, f2: pd.DataFrame | None) -> Any:
        seen.append((len(f1), 0 if f2 is None else len(f2)))
        return original(job, f1, f2)

    monkeypatch.setattr(measure_module, "run_pair", spy)
    res = two_point(sources=skydask.from_pandas(frame, npartitions=4), shear=SHEAR,
                    source_cuts=None, min_sep=1.0, max_sep=30.0, nbins=3, npatch=10)  # fmt: skip
    assert len(seen) == res.reduction["pair_tasks"]
    # a task's rows are one or two patches: never more than two tenths-ish of the catalogue
    largest = max(a + b for a, b in seen)
    assert largest < 0.35 * len(frame), (largest, len(frame))
