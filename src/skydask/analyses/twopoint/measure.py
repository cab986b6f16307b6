"""The distributed measurement: four passes from lazy samples to finalized TreeCorr objects.

1. **Summary** (one read of every sample): rows, non-finite rows, the sums that give
   ``e_rms`` per source bin, and a subsample for the k-means; then the patch centres (one
   task).
2. **Patches** (a second read): convert each partition, give each row its patch, regroup the
   rows by patch (:func:`.patches.shuffle_by_patch`, the one shuffle) and persist them: the
   only copy of the catalogues the measurement keeps, spread over the workers.
3. **Patch statistics**: per patch, TreeCorr's centre, radius, weights and shear-variance
   pieces, from which the driver decides which patch pairs to compute (:func:`.pairs.plan`).
4. **Pairs**: one task per patch pair and correlation, each holding two patches; the driver
   gathers the small per-pair results, sums them in TreeCorr's order and finalizes.

Everything runs on the active dask scheduler (a distributed client when one is active);
nothing here starts a cluster or opens a file.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from skydask.analyses.twopoint import _treecorr as tc
from skydask.analyses.twopoint.config import WEIGHTS_INVERSE_VARIANCE, TwoPointConfig
from skydask.analyses.twopoint.pairs import (
    PairJob,
    Plan,
    assemble,
    blocked_order,
    clear_cache,
    plan,
    run_pair,
)
from skydask.analyses.twopoint.patches import kmeans_centers, prepare_partition, shuffle_by_patch
from skydask.analyses.twopoint.samples import (
    Calibration,
    Sample,
    SampleSummary,
    calibrate,
    combine_summaries,
    summarise,
)
from skydask.errors import SchemaError, SpecError

__all__ = ["STATISTICS", "Measured", "Request", "measure"]

log = logging.getLogger(__name__)

STATISTICS = {"shear_shear": "GG", "galaxy_shear": "NG", "galaxy_galaxy": "NN"}
"""The statistics and their TreeCorr correlation: xi+/xi- (GG), gamma_t (NG), w(theta) (NN)."""

_SPLIT_EVERY = 8


@dataclass(frozen=True)
class Request:
    """One statistic between two bins (for galaxy_shear: lens bin, then source bin)."""

    statistic: str
    bin1: str
    bin2: str


@dataclass
class Measured:
    """What :func:`measure` returns: the TreeCorr objects and the record of the run."""

    correlations: dict[Request, Any]
    randoms_correlations: dict[Request, dict[str, Any]]
    covariance: NDArray[np.float64]
    patch_centers: NDArray[np.float64]
    calibrations: dict[str, Calibration]
    samples: dict[str, dict[str, Any]]
    reduction: dict[str, Any]


def _tree(items: list[Any], combine: Callable[[list[Any]], Any]) -> Any:
    task = dask.delayed(combine, pure=True)
    level = list(items)
    if not level:
        return task([])
    while len(level) > 1:
        level = [task(level[i : i + _SPLIT_EVERY]) for i in range(0, len(level), _SPLIT_EVERY)]
    return level[0]


def _strip(summary: SampleSummary) -> SampleSummary:
    """The summary without its subsample (which only the k-means task needs)."""
    return SampleSummary(summary.rows, summary.nonfinite, summary.n_shape, summary.sum_e2,
                         summary.sum_sigma2)  # fmt: skip


def _centers_task(
    summaries: list[SampleSummary], npatch: int, seed: int
) -> NDArray[np.float64] | None:
    ra = np.concatenate([s.sub_ra for s in summaries]) if summaries else np.empty(0)
    dec = np.concatenate([s.sub_dec for s in summaries]) if summaries else np.empty(0)
    if len(ra) < npatch:
        return None  # the driver says why, after checking the samples themselves
    return kmeans_centers(ra, dec, npatch, seed)


def _patch_defining(samples: Sequence[Sample]) -> list[Sample]:
    # uniform randoms trace the footprint best; then the (dense) sources; then the lenses
    for role in ("random", "source", "lens"):
        chosen = [s for s in samples if s.role == role]
        if chosen:
            return chosen
    return []


def _check_centers(centers: Any) -> NDArray[np.float64]:
    arr = np.asarray(centers, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 2 or not np.all(np.isfinite(arr)):
        raise SpecError(
            "patch_centers must be TreeCorr's spherical patch centres: a finite array of shape "
            f"(npatch >= 2, 3) of unit vectors (e.g. a previous result's patch_centers); got "
            f"shape {arr.shape}"
        )
    return arr


def _summaries(
    samples: Sequence[Sample], config: TwoPointConfig, centers: NDArray[np.float64] | None
) -> tuple[list[SampleSummary], NDArray[np.float64] | None]:
    defining = {s.name for s in _patch_defining(samples)} if centers is None else set()
    totals = []
    for s in samples:
        shapes = s.role == "source"
        nth = config.every_nth if s.name in defining else 0
        task = dask.delayed(summarise, pure=True)
        parts = [
            task(p, s.value_columns, shapes, "sigma" in s.value_columns, nth)
            for p in s.frame.to_delayed()
        ]
        totals.append(_tree(parts, combine_summaries))
    stripped = [dask.delayed(_strip, pure=True)(t) for t in totals]
    if centers is None:
        used = [t for t, s in zip(totals, samples, strict=True) if s.name in defining]
        found = dask.delayed(_centers_task, pure=True)(used, config.npatch, config.seed)
        *small, made = dask.compute(*stripped, found)
        return list(small), made
    return list(dask.compute(*stripped)), centers


def _validate(samples: Sequence[Sample], summaries: list[SampleSummary], policy: str) -> None:
    for s, summ in zip(samples, summaries, strict=True):
        usable = summ.rows - summ.nonfinite if policy == "drop" else summ.rows
        if summ.rows == 0 or usable == 0:
            why = " once the non-finite rows are dropped" if summ.rows else ""
            raise SpecError(
                f"{s.role} bin {s.name!r} is empty: no object passes its selection "
                f"({s.description or 'no cuts'}){why}"
            )
        if summ.nonfinite and policy == "raise":
            raise SchemaError(
                f"{s.role} bin {s.name!r}: {summ.nonfinite} of {summ.rows} selected objects have a "
                f"non-finite value in {s.value_columns} (NaN shears, flagged shapes?); add a cut "
                "(the DESC source cuts remove flagged shapes) or pass nan_policy='drop'"
            )


def _prepared_meta(sample: Sample, inverse_variance: bool) -> pd.DataFrame:
    cols: dict[str, Any] = {"ra": np.float64, "dec": np.float64}
    if sample.role == "source":
        cols.update(g1=np.float64, g2=np.float64)
        if inverse_variance:
            cols["w"] = np.float64
    if "wq" in sample.frame.columns:
        cols["w"] = np.float64
    cols.update(patch=np.int64, _row=np.int64)
    return pd.DataFrame({k: pd.Series(dtype=v) for k, v in cols.items()})


def _correlations(requests: Sequence[Request], randoms: str | None) -> list[tuple[str, str, str]]:
    """Every TreeCorr correlation the requests need, each once, as (kind, sample1, sample2)."""
    keys: list[tuple[str, str, str]] = []

    def add(key: tuple[str, str, str]) -> None:
        if key not in keys:
            keys.append(key)

    for r in requests:
        kind = STATISTICS[r.statistic]
        add((kind, r.bin1, r.bin2))
        if kind == "NG" and randoms is not None:
            add(("NG", randoms, r.bin2))
        if kind == "NN":
            assert randoms is not None
            add(("NN", r.bin1, randoms))
            if r.bin1 != r.bin2:
                add(("NN", randoms, r.bin2))
            add(("NN", randoms, randoms))
    return keys


def _compute(tasks: list[Any], progress: bool) -> list[Any]:
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        client = None
    if client is not None:
        futures = client.compute(tasks)
        try:
            if progress:
                from distributed import progress as distributed_progress

                distributed_progress(futures)
            return list(client.gather(futures))
        except BaseException:
            client.cancel(futures)
            raise
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return list(dask.compute(*tasks))
    return list(dask.compute(*tasks))


def _clear_worker_caches() -> dict[str, int]:
    totals = {"hits": 0, "misses": 0}
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        client = None
    counts = []
    if client is not None:
        try:
            counts += list(client.run(clear_cache).values())
        except Exception as exc:  # a worker lost meanwhile must not lose the result
            log.warning("could not clear the workers' patch caches: %s", exc)
    for c in counts:
        totals["hits"] += c["hits"]
        totals["misses"] += c["misses"]
    return totals


def _finalize(kind: str, corr: Any, varg1: float, varg2: float) -> None:
    if kind == "GG":
        corr.finalize(varg1, varg2)
    elif kind == "NG":
        corr.finalize(varg2)
    else:
        corr.finalize()


def _first_pass(
    samples: Sequence[Sample], config: TwoPointConfig, centers: NDArray[np.float64] | None
) -> tuple[list[SampleSummary], NDArray[np.float64], dict[str, Calibration]]:
    """Summaries (checked), the patch centres, and each source bin's shape calibration."""
    summaries, found = _summaries(samples, config, centers)
    _validate(samples, summaries, config.nan_policy)
    if found is None:
        defining = _patch_defining(samples)
        n_sub = sum(
            math.ceil(summ.rows / config.every_nth)
            for summ, s in zip(summaries, samples, strict=True)
            if s in defining
        )
        raise SpecError(
            f"cannot make npatch={config.npatch} patches from about {n_sub} objects (every "
            f"{config.every_nth}th of {[d.name for d in defining]}); lower 'npatch' or "
            "'every_nth'"
        )
    calibrations: dict[str, Calibration] = {}
    for s, summ in zip(samples, summaries, strict=True):
        if s.role == "source":
            assert s.calibration is not None
            calibrations[s.name] = calibrate(s.name, s.calibration, summ)
    return summaries, found, calibrations


def _by_patch(
    samples: Sequence[Sample],
    calibrations: dict[str, Calibration],
    centers: NDArray[np.float64],
    drop: bool,
) -> list[Any]:
    """Each sample converted, its rows given their patch and regrouped by patch (lazy)."""
    npatch = len(centers)
    shuffled = []
    for s in samples:
        inverse_variance = (
            s.role == "source"
            and s.calibration is not None
            and s.calibration.weights == WEIGHTS_INVERSE_VARIANCE
        )
        prepared = s.frame.map_partitions(
            prepare_partition,
            s.value_columns,
            s.role,
            calibrations.get(s.name),
            inverse_variance,
            drop,
            centers,
            meta=_prepared_meta(s, inverse_variance),
        )
        shuffled.append(shuffle_by_patch(prepared, npatch))
    return shuffled


def _order(p: Plan, sizes: dict[str, int], block: int) -> list[tuple[int, int]]:
    """The order the pairs of one correlation should run in, so that a worker's small cache
    serves consecutive tasks: an auto-correlation tile by tile; a cross-correlation patch by
    patch of its larger sample (whose trees cost the most to build), e.g. every lens patch
    against one source patch before the next source patch."""
    if p.auto:
        return list(blocked_order(p.computed(), block))
    if sizes[p.sample2] >= sizes[p.sample1]:
        return sorted(p.computed(), key=lambda ij: (ij[1], ij[0]))
    return sorted(p.computed())


def _pair_tasks(
    plans: dict[tuple[str, str, str], Plan],
    parts: dict[str, list[Any]],
    fields: dict[str, str],
    sizes: dict[str, int],
    config: TwoPointConfig,
) -> tuple[list[Any], list[tuple[tuple[str, str, str], tuple[int, int]]]]:
    """One task per computed patch pair, with priorities in a cache-friendly order."""
    tc_config = config.treecorr_config()
    run_id = uuid.uuid4().hex
    tasks, labels = [], []
    priority = sum(len(p.computed()) for p in plans.values())
    block = max(1, config.cache_patches // 2)
    for key, p in plans.items():
        kind, s1, s2 = key
        for i, j in _order(p, sizes, block):
            auto_pair = p.auto and i == j
            d1, d2 = parts[s1][i], parts[s2][j]
            job = PairJob(
                kind,
                tc_config,
                auto_pair,
                (fields[s1], fields[s2]),
                (str(d1.key), str(d2.key)),
                run_id,
                config.num_threads,
                config.cache_patches,
            )
            with dask.annotate(priority=priority):
                tasks.append(dask.delayed(run_pair, pure=True)(job, d1, None if auto_pair else d2))
            priority -= 1
            labels.append((key, (i, j)))
    return tasks, labels


def _statistics(
    requests: Sequence[Request], corrs: dict[tuple[str, str, str], Any], randoms: str | None
) -> tuple[dict[Request, Any], dict[Request, dict[str, Any]]]:
    """Each requested statistic, with its random-point terms applied (TreeCorr's calculateXi)."""
    out: dict[Request, Any] = {}
    extra: dict[Request, dict[str, Any]] = {}
    for r in requests:
        kind = STATISTICS[r.statistic]
        corr = corrs[(kind, r.bin1, r.bin2)]
        if kind == "NG" and randoms is not None:
            rg = corrs[("NG", randoms, r.bin2)]
            corr.calculateXi(rg=rg)
            extra[r] = {"rg": rg}
        elif kind == "NN":
            assert randoms is not None
            rr = corrs[("NN", randoms, randoms)]
            dr = corrs[("NN", r.bin1, randoms)]
            rd = corrs[("NN", randoms, r.bin2)] if r.bin1 != r.bin2 else None
            corr.calculateXi(rr=rr, dr=dr, rd=rd)
            extra[r] = {"rr": rr, "dr": dr} | ({"rd": rd} if rd is not None else {})
        out[r] = corr
    return out, extra


def _sample_info(
    samples: Sequence[Sample],
    summaries: list[SampleSummary],
    stats: dict[str, list[tc.PatchStats]],
    drop: bool,
) -> dict[str, dict[str, Any]]:
    info = {}
    for s, summ in zip(samples, summaries, strict=True):
        empty = [st.patch for st in stats[s.name] if st.empty]
        if empty:
            log.warning(
                "%s bin %r has no objects in patch(es) %s: those patches add no pairs, and "
                "their jackknife samples equal the full sample for this bin",
                s.role,
                s.name,
                empty,
            )
        info[s.name] = {
            "role": s.role,
            "selection": s.description,
            "rows_selected": summ.rows,
            "rows_nonfinite": summ.nonfinite,
            "rows_used": summ.rows - summ.nonfinite if drop else summ.rows,
            "sum_weights": float(sum(st.sumw for st in stats[s.name])),
            "empty_patches": empty,
        }
    return info


def measure(
    samples: Sequence[Sample],
    requests: Sequence[Request],
    config: TwoPointConfig,
    *,
    randoms: str | None = None,
    patch_centers: Any = None,
    progress: bool = False,
) -> Measured:
    """Run the requested statistics over the samples (see the module docstring)."""
    import treecorr

    t0 = time.perf_counter()
    if len({s.name for s in samples}) != len(samples):
        raise SpecError(f"bin names must be distinct; got {[s.name for s in samples]}")
    given = _check_centers(patch_centers) if patch_centers is not None else None
    tc_config = config.treecorr_config()
    drop = config.nan_policy == "drop"

    # 1. the summary pass and the patch centres
    summaries, centers, calibrations = _first_pass(samples, config, given)
    npatch = len(centers)
    t1 = time.perf_counter()

    # 2. convert, assign patches, shuffle by patch, persist: the only copy kept
    persisted = list(dask.persist(*_by_patch(samples, calibrations, centers, drop)))
    parts = {s.name: p.to_delayed() for s, p in zip(samples, persisted, strict=True)}
    try:
        # 3. per-patch statistics, and from them the pairs to compute
        stat_tasks = [
            [
                dask.delayed(tc.patch_stats, pure=True)(part, s.field, k)
                for k, part in enumerate(parts[s.name])
            ]
            for s in samples
        ]
        found = dask.compute(*stat_tasks)
        stats = {s.name: list(f) for s, f in zip(samples, found, strict=True)}
        t2 = time.perf_counter()
        plans: dict[tuple[str, str, str], Plan] = {}
        for kind, s1, s2 in _correlations(requests, randoms):
            other = None if s1 == s2 else stats[s2]
            plans[(kind, s1, s2)] = plan(kind, s1, s2, stats[s1], other, tc_config)
        fields = {s.name: s.field for s in samples}
        sizes = {name: sum(st.nobj for st in found) for name, found in stats.items()}
        tasks, labels = _pair_tasks(plans, parts, fields, sizes, config)
        skipped = sum(len(p.steps) - len(p.computed()) for p in plans.values())
        log.info(
            "two-point: %d samples, %d patches, %d correlations, %d pair tasks (%d pairs "
            "skipped as out of range)",
            len(samples),
            npatch,
            len(plans),
            len(tasks),
            skipped,
        )
        # 4. the pairs
        results = _compute(tasks, progress)
        del tasks
    finally:
        del persisted, parts
        cache = _clear_worker_caches()
    t3 = time.perf_counter()

    computed: dict[tuple[str, str, str], dict[tuple[int, int], Any]] = {k: {} for k in plans}
    for (key, ij), corr in zip(labels, results, strict=True):
        computed[key][ij] = corr
    varg = {s.name: tc.combined_varg(stats[s.name]) for s in samples if s.field == "G"}
    corrs: dict[tuple[str, str, str], Any] = {}
    for key, p in plans.items():
        kind, s1, s2 = key
        corrs[key] = assemble(p, tc_config, npatch, stats[s1], stats[s2], computed[key])
        _finalize(kind, corrs[key], varg.get(s1, math.nan), varg.get(s2, math.nan))
    out, extra = _statistics(requests, corrs, randoms)
    joint = treecorr.estimate_multi_cov([out[r] for r in requests], "jackknife")
    t4 = time.perf_counter()

    if given is not None:
        origin = "given"
    else:
        names = [s.name for s in _patch_defining(samples)]
        origin = f"TreeCorr k-means on every {config.every_nth}th object of {names} " \
                 f"(seed {config.seed})"  # fmt: skip
    reduction = {
        "npatch": npatch,
        "patch_centers": origin,
        "correlations": len(plans),
        "pair_tasks": len(labels),
        "pairs_skipped": skipped,
        "patch_cache": cache,
        # on a cluster the shuffle runs while the patch statistics wait for it: "patches"
        "seconds": {
            "summary": round(t1 - t0, 3),
            "patches": round(t2 - t1, 3),
            "pairs": round(t3 - t2, 3),
            "finalize": round(t4 - t3, 3),
        },
    }
    return Measured(
        out,
        extra,
        np.asarray(joint, dtype=np.float64),
        centers,
        calibrations,
        _sample_info(samples, summaries, stats, drop),
        reduction,
    )
