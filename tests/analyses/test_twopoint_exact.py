"""Exactness: the distributed measurement equals one TreeCorr ``process()`` on the whole data.

About 100,000 source galaxies (two bins), 20,000 lenses and 40,000 randoms; GG, NG (with the
randoms' shear subtracted) and NN (Landy-Szalay) measured in one ``two_point`` call on 1 and
on 4 workers (the patches copied to every worker), and on 2 workers that report too little
memory for that (the patches moved by Dask), against TreeCorr run the documented way on the
whole catalogues with the same patch centres. Values, pair counts, weights, ``tot`` and the
joint jackknife covariance must agree to 1e-10 relative (1e-12 absolute near zero): only the
summation order differs.

Binning: bin_slop = 0 as TXPipe, but 1-6 arcmin in 4 bins instead of 0.5-300 arcmin in 9, so
that the reference and two distributed runs take seconds on two cores. The small range also
makes most patch pairs farther apart than max_sep, so the skipping path (and NN's ``tot`` of
skipped pairs) is exercised.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

import dask
import numpy as np
import pytest
import treecorr
from distributed import futures_of, get_task_stream

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
from skydask.analyses.twopoint._treecorr import restore_positions
from skydask.analyses.twopoint.pairs import PairJob, dataset_name, run_pairs
from skydask.analyses.twopoint.pairs import held as held_by_process
from skydask.analyses.twopoint.patches import (
    build_patch,
    kmeans_centers,
    split_partition,
    split_read,
    sweep_rank,
)
from skydask.analyses.twopoint.samples import Calibration

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


def _held_after(client: Any, timeout: float = 20.0) -> dict[str, tuple[int, int]]:
    """What the workers still hold once they have freed a measurement's patches and trees
    (which they do in the background after it returns), or at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        held = client.run(held_by_process)
        if not any(n for counts in held.values() for n in counts) or time.monotonic() > deadline:
            return dict(held)
        time.sleep(0.05)


@pytest.fixture(scope="module", params=[1, 2, 4], ids=["1-worker", "2-workers", "4-workers"])
def run(
    request: pytest.FixtureRequest, data: dict[str, Any]
) -> tuple[TwoPointResult, list[Any], dict[str, tuple[int, int]]]:
    """The measurement, Dask's record of where each task ran, and what the workers still
    held afterwards.

    1 worker process, so that everything crosses pickling; 2 worker processes, as the
    benchmark (one lane each, patches placed by lane); 4 workers in this process, so that
    the pairs are spread over two segments, reordered and cached differently (4 processes
    would spend most of the test starting up on two cores)."""
    with local_client(request.param, processes=request.param < 4) as client:
        with get_task_stream(client) as stream:
            result = _measure(data)
        return result, list(stream.data), _held_after(client)


@pytest.fixture(scope="module")
def measured(run: tuple[TwoPointResult, list[Any], Any]) -> TwoPointResult:
    return run[0]


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


def test_workers_free_their_patches_and_trees_after_the_run(
    run: tuple[TwoPointResult, list[Any], dict[str, tuple[int, int]]],
) -> None:
    # the trees are freed in the background once the results are in (pairs.finish, sent
    # without waiting for an answer): nothing of the run stays on any worker
    result, _, held = run
    assert result.reduction["tree_cache"]["misses"] > 0
    assert held and all(counts == (0, 0) for counts in held.values()), held


def test_pair_tasks_run_on_their_lanes_worker(
    run: tuple[TwoPointResult, list[Any], Any], data: dict[str, Any]
) -> None:
    # each worker runs the tasks of one stretch of the sweep (two workers share a stretch
    # from its two ends), and Dask's own record says every pair task ran where it was sent
    result, stream, _ = run
    red = result.reduction
    assert red["patch_placement"] == "by lane"
    lanes = red["pair_workers"]
    assert sum(len(anchors) for anchors in lanes.values()) == red["pair_tasks"]
    ran: dict[str, int] = {}
    for task in stream:
        if str(task["key"]).startswith("run_pairs"):
            ran[task["worker"]] = ran.get(task["worker"], 0) + 1
    assert ran == {w: len(anchors) for w, anchors in lanes.items()}
    assert len(lanes) == len(red["lanes"])  # every worker ran tasks (6 patches, <= 4 workers)
    rank = sweep_rank(data["centers"])
    spans = sorted((min(rank[a] for a in anchors), max(rank[a] for a in anchors))
                   for anchors in lanes.values())  # fmt: skip
    if len(lanes) == 2:
        # one stretch, worked from both ends: the two lanes overlap in one anchor at most
        # (that anchor's tasks of different correlations)
        assert spans[0][1] <= spans[1][0], spans
    # every worker used its lane: the first task it ran is an end of a stretch
    firsts = sorted(rank[anchors[0]] for anchors in lanes.values())
    assert (firsts[0] == 0 and firsts[-1] == len(rank) - 1) or len(lanes) == 1


def test_kmeans_patches_are_treecorrs() -> None:
    # the k-means on every row (every_nth=1) is TreeCorr's k-means on the whole catalogue
    frame = mock_sources(20_000, seed=7)
    cat = skydask.from_pandas(frame, npartitions=3)
    res = two_point(sources=cat, shear=SHEAR, source_cuts=None, every_nth=1, seed=11,
                    min_sep=1.0, max_sep=3.0, nbins=2, npatch=6)  # fmt: skip
    ref = treecorr.Catalog(ra=frame.ra.to_numpy(), dec=frame.dec.to_numpy(), ra_units="deg",
                           dec_units="deg", npatch=6, rng=np.random.default_rng(11))  # fmt: skip
    np.testing.assert_allclose(res.patch_centers, ref.patch_centers, rtol=0, atol=1e-12)


@pytest.mark.parametrize("groups", [((0,), (1,), (2,)), ((0, 1), (2,)), ((0, 1, 2),)])
def test_patches_hold_treecorrs_rows_in_treecorrs_order(groups: tuple[tuple[int, ...]]) -> None:
    # the split and the patch catalogues, against TreeCorr's own patches of the whole frame:
    # one split per partition, or per group of partitions read in one task
    frame = mock_sources(20_000, seed=9)
    centers = kmeans_centers(frame.ra.to_numpy(), frame.dec.to_numpy(), 5, seed=2)
    columns = ["ra", "dec", "e1", "e2", "wq"]
    renamed = frame.rename(columns={"g1": "e1", "g2": "e2", "w": "wq"})
    parts = [renamed.iloc[a:b] for a, b in ((0, 7_000), (7_000, 12_000), (12_000, 20_000))]
    if len(groups) == len(parts):
        splits = [split_partition(p, columns, True, False, centers) for p in parts]
    else:
        readers = [[functools.partial(parts.__getitem__, i) for i in g] for g in groups]
        splits = [split_read(r, columns, True, False, centers) for r in readers]
    cal = Calibration("shear", math.nan, "", 1.0, "w", False, True, "")
    ref = tc_catalog(frame, centers, "G").get_patches()
    for k in range(5):
        if len(groups) == len(parts):
            patch = build_patch("s", k, "G", "source", cal, False, *[sp[k + 1] for sp in splits])
        else:  # as the measurement builds: from the groups' whole outputs
            patch = build_patch("s", k, "G", "source", cal, False, *splits, whole_splits=True)
        for name in ("ra", "dec", "g1", "g2", "w"):
            np.testing.assert_array_equal(getattr(patch.catalog, name), getattr(ref[k], name))
        # the derived positions travel dropped, and are derived again bit for bit; a tree
        # built before that fails loudly
        with pytest.raises(RuntimeError, match="restore_positions must run"):
            patch.catalog.getGField(min_size=1e-4, max_size=0.01, coords="spherical")
        restore_positions(patch.catalog)
        for name in ("x", "y", "z"):
            np.testing.assert_array_equal(getattr(patch.catalog, name), getattr(ref[k], name))
        assert patch.stats.nobj == ref[k].nobj
    assert sum(sp[0].rows for sp in splits) == len(frame)


@pytest.fixture(scope="module")
def measured_moved(data: dict[str, Any]) -> TwoPointResult:
    # workers reporting too little memory for every patch to be copied to each: Dask moves
    # the patches to the pair tasks instead (the path of large samples)
    with local_client(2, processes=False, memory_limit="20MB"):
        return _measure(data)


def test_patches_moved_by_dask_give_the_same_numbers(
    measured_moved: TwoPointResult, reference: dict[str, Any]
) -> None:
    assert measured_moved.reduction["patch_placement"] == "moved by dask"
    gg = measured_moved.corr("shear_shear", "s0", "s1")
    _same_corr(gg, reference["gg01"], "gg01", ("xip", "xim", "npairs", "weight"))
    _same_corr(measured_moved.corr("galaxy_shear", "l0", "s1"), reference["ng1"], "ng1",
               ("xi", "npairs", "weight"))  # fmt: skip
    assert_same(measured_moved.corr("galaxy_galaxy").xi, reference["dd"].xi, "w(theta)")
    assert_same(measured_moved.covariance, reference["cov"], "joint covariance", atol=1e-18)


def test_a_worker_without_the_patch_fetches_it() -> None:
    # a pair task names its patch by key; a process that was not given it (a worker that
    # joined late) fetches it through the published futures and computes TreeCorr's numbers
    frame = mock_sources(5_000, seed=10)
    cal = Calibration("shear", math.nan, "", 1.0, "w", False, True, "")
    columns = {"ra": frame.ra.to_numpy(), "dec": frame.dec.to_numpy(), "e1": frame.g1.to_numpy(),
               "e2": frame.g2.to_numpy(), "wq": frame.w.to_numpy()}  # fmt: skip
    job = PairJob("GG", TC_CONFIG, True, ((0, 0, 0, 0),), "fetch-test", None, 10_000)
    with local_client(1, processes=True) as client:
        (patch,) = dask.persist(dask.delayed(build_patch)("s", 0, "G", "source", cal, False,
                                                          columns))  # fmt: skip
        key = str(patch.key)
        client.publish_dataset(**{dataset_name(job.run): {key: futures_of(patch)[0]}})
        (corr,) = client.submit(run_pairs, job, key, pure=False).result(timeout=60)
    ref = treecorr.GGCorrelation(TC_CONFIG)
    whole = treecorr.Catalog(ra=frame.ra, dec=frame.dec, g1=frame.g1, g2=frame.g2, w=frame.w,
                             flip_g2=True, ra_units="deg", dec_units="deg")  # fmt: skip
    ref.process_auto(whole)
    for name in ("xip", "xim", "npairs", "weight"):
        assert_same(getattr(corr, name), getattr(ref, name), name)
