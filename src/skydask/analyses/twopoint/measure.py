"""The distributed measurement: from lazy samples to finalized TreeCorr objects.

1. **Centres** (only without ``patch_centers``): one read of every sample for the rows, the
   non-finite rows, the ``e_rms`` sums and a subsample, then TreeCorr's k-means (one task).
2. **Split** (one read; the first half of THE SHUFFLE, :mod:`.patches`): per group of
   partitions (one group per worker thread, read in one task, each sample's groups spread
   over the workers), the summary and one piece per patch. Where a source bin's shape
   calibration needs ``e_rms`` from the data, the driver waits for the summaries, checks
   them and calibrates; otherwise the summaries come back with step 3 (one round trip
   fewer) and are checked then, before any pair. With given centres this is the only read.
3. **Patches** (the second half): per patch, its pieces concatenated, converted, built into a
   TreeCorr catalogue with its statistics, and persisted: the only copy of the catalogues
   the measurement keeps. On a cluster patch ``k`` is built on the worker whose lane
   (:mod:`.regions`) is expected to reach it first. From the statistics the driver decides
   which patch pairs to compute (:func:`.pairs.plan`) and groups them into one task per
   anchor patch (:func:`.pairs.group_pairs`).
4. **Lanes and placement**: on a distributed cluster, the sweep of the anchor tasks is cut
   into one lane per worker (:func:`.regions.lanes`), and each worker receives, before the
   first pair, the patches its lane needs (:func:`.pairs.load_patches`), if the patches are
   small next to a worker's memory (at most an eighth of its limit; a source costs 64
   bytes): a worker computing a pair holds the GIL and cannot serve its peers, so fetching
   during the pairs stalls both. Larger samples stay where they were built and Dask moves
   them as the pair tasks need them.
5. **Pairs**: along the lanes (:func:`.regions.dispatch`), or without a cluster (or with
   patches moved by Dask) as one graph in the sweep order of their anchors; the driver
   gathers the small per-pair results, sums them in TreeCorr's order and finalizes. The
   workers free their patches and trees after the result is known.

What changed from the first version, and why (1 million sources, 100,000 lenses, 16
patches, 2 single-threaded workers against TreeCorr with 2 threads, 1-100 arcmin; see
``benchmarks/README.md``). That version spent 3.5-5 s before the first pair on a separate
summary pass, dask's p2p shuffle of the converted rows (``set_index`` on the patch), a sort
back into input order and a pass for the patch statistics, while TreeCorr's whole run takes
6-7 s (GG) and 3-4 s (NG) on a quiet machine; its pair tasks then waited about 12 s in all for
patches held by workers busy inside TreeCorr, and rebuilt a patch's trees in most tasks.
Now steps 2-4 take 0.5-0.65 s (GG), 0.55-0.7 s (NG) in all, reading included; no pair task waits
for data; and each worker sweeps its own stretch of sky (:mod:`.regions`), holding about
its share of the catalogues and building each tree about once per cache fill (where
TreeCorr builds each once in all, the patches where two lanes meet are built on both
sides). The samples are read through :meth:`skydask.Catalog.partition_readers` (the
partition reader called directly, a group of partitions per task), so the workers never
load dask.dataframe; the last pair task takes the cores its idle peers free
(:func:`.pairs.task_threads`).
What remains above TreeCorr: the trees a worker rebuilds once its cache is full (33
builds against TreeCorr's 16 for GG at 1-100 arcmin, each costing a free too, which
TreeCorr's process pays only at its end; the workers' CPU in TreeCorr's calls, builds and
frees included, is now about TreeCorr's own: a task's patch and its partners
ahead span about 10 patches of the sweep, whatever the order, since 73 of the 120 pairs
of distinct patches are in range; a bandwidth-minimising order, reverse Cuthill-McKee, was
simulated and needs as many), about 0.4 s of CPU for the scheduler and the per-task traffic
on the same two cores, and a few milliseconds between a worker's pair tasks.

Everything runs on the active dask scheduler (a distributed client when one is active);
nothing here starts a cluster or opens a file.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import dask
import numpy as np
from numpy.typing import NDArray

from skydask.analyses.reduction import parallel_slots, reduce_tree
from skydask.analyses.twopoint import _treecorr as tc
from skydask.analyses.twopoint.config import WEIGHTS_INVERSE_VARIANCE, TwoPointConfig
from skydask.analyses.twopoint.pairs import (
    Group,
    PairJob,
    Plan,
    assemble,
    cache_counts,
    clear_cache,
    dataset_name,
    finish,
    group_pairs,
    load_patches,
    plan,
    run_pairs,
)
from skydask.analyses.twopoint.patches import (
    Patch,
    build_patch,
    kmeans_centers,
    split_parts,
    split_read,
    sweep_rank,
)
from skydask.analyses.twopoint.regions import (
    Lane,
    dispatch,
    group_cost,
    lanes,
    needed_patches,
    owners,
)
from skydask.analyses.twopoint.samples import (
    Calibration,
    Sample,
    SampleSummary,
    calibrate,
    combine_summaries,
    summarise,
)
from skydask.errors import SchemaError, SpecError
from skydask.scheduling import active_client, compute

__all__ = ["STATISTICS", "Measured", "Request", "measure"]

log = logging.getLogger(__name__)

STATISTICS = {"shear_shear": "GG", "galaxy_shear": "NG", "galaxy_galaxy": "NN"}
"""The statistics and their TreeCorr correlation: xi+/xi- (GG), gamma_t (NG), w(theta) (NN)."""

_SPLIT_EVERY = 8
_GROUP_PARTITIONS = 8  # partitions read by one split task, at most
_PLACE_FRACTION = 0.125  # patches are placed up front if at most this of a worker's memory
_MARGIN = 1  # tasks past a lane's expected end whose patches its worker also receives
# a worker's next tasks whose patches its tree cache evicts last, in order of use (the
# farthest next use goes first; a tree no known task uses goes before any other)
_LOOKAHEAD = 64


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
        totals.append(reduce_tree(parts, combine_summaries, _SPLIT_EVERY))
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


def _clear_caches(run: str, published: bool) -> dict[str, int]:
    """The run's tree cache counts; every process then drops the run's patches and trees
    (the workers in the background, without being waited for: :func:`.pairs.finish`)."""
    totals = clear_cache(run)  # this process: local schedulers, in-process workers
    client = active_client()
    if client is not None:
        try:
            if published:
                client.unpublish_dataset(dataset_name(run))
            for counts in client.run(cache_counts, run).values():
                totals["hits"] += counts["hits"]
                totals["misses"] += counts["misses"]
            client.run(finish, run, wait=False)
        except Exception as exc:  # a worker lost meanwhile must not lose the result
            log.warning("could not clear the workers' patches: %s", exc)
    return totals


def _finalize(kind: str, corr: Any, varg1: float, varg2: float) -> None:
    if kind == "GG":
        corr.finalize(varg1, varg2)
    elif kind == "NG":
        corr.finalize(varg2)
    else:
        corr.finalize()


def _first_pass(
    samples: Sequence[Sample], config: TwoPointConfig
) -> tuple[list[SampleSummary], NDArray[np.float64]]:
    """Summaries (checked) and the patch centres from TreeCorr's k-means."""
    summaries, found = _summaries(samples, config, None)
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
    return summaries, found


def _calibrations(
    samples: Sequence[Sample], summaries: list[SampleSummary]
) -> dict[str, Calibration]:
    """Each source bin's shape calibration."""
    calibrations: dict[str, Calibration] = {}
    for s, summ in zip(samples, summaries, strict=True):
        if s.role == "source":
            assert s.calibration is not None
            calibrations[s.name] = calibrate(s.name, s.calibration, summ)
    return calibrations


def _read_groups(readers: Sequence[Any], threads: int) -> list[list[Any]]:
    """A sample's partition readers in runs of consecutive partitions, one run per thread
    (at most :data:`_GROUP_PARTITIONS` partitions a run).

    >>> [len(g) for g in _read_groups(list(range(8)), 2)], len(_read_groups(list(range(40)), 2))
    ([4, 4], 5)
    """
    n = max(min(threads, len(readers)), math.ceil(len(readers) / _GROUP_PARTITIONS))
    return [list(run) for run in np.array_split(np.asarray(readers, dtype=object), n) if len(run)]


def _split_inputs(s: Sample, threads: int) -> tuple[Any, list[Any]]:
    """The sample's split function and its inputs, one per task: groups of partitions read
    together (:func:`.patches.split_read`), or the partitions of a dask DataFrame
    (``randoms()``) one by one (:func:`.patches.split_parts`)."""
    readers = getattr(s.frame, "readers", ())
    if readers:
        return split_read, [tuple(g) for g in _read_groups(readers, threads)]
    return split_parts, [[part] for part in s.frame.to_delayed()]


def _split(
    samples: Sequence[Sample], centers: NDArray[np.float64]
) -> tuple[dict[str, list[Any]], list[Any]]:
    """Per sample, its split tasks' outputs (persisted, one per group: the summary, then
    each patch's pieces) and its summary (lazy).

    A patch's build takes the groups' whole outputs and picks its pieces
    (:func:`.patches.build_patch` with ``whole_splits``) rather than one ``getitem`` task
    per group and patch: a worker fetches another's split output once for all the patches
    it builds, instead of one piece per build (the builds waited 10-20 ms for each), and
    the scheduler has ``npatch`` tasks fewer per group.

    The split tasks take decreasing priorities, sample after sample, all above the builds'
    (0): the scheduler hands them out in that order, each to the least busy worker, so each
    sample's groups are spread over the workers, and a worker runs its splits before any
    build. (With the samples' groups interleaved instead, both groups of the sources went to
    one worker, and the other idled for 0.3 s of a 3.4 s NG run.)"""
    threads = parallel_slots()
    outputs: dict[str, list[Any]] = {}
    totals = []
    inputs = {s.name: _split_inputs(s, threads) for s in samples}
    priority = sum(len(args) for _, args in inputs.values())
    for s in samples:
        func, args = inputs[s.name]
        # readers carry the read plan, slow to tokenize (see Catalog.to_delayed): random keys
        task = dask.delayed(func, nout=len(centers) + 1, pure=func is split_parts)
        shapes, sigma = s.role == "source", "sigma" in s.value_columns
        splits = []
        for arg in args:
            with dask.annotate(priority=priority):
                splits.append(task(arg, s.value_columns, shapes, sigma, centers))
            priority -= 1
        outputs[s.name] = splits
        totals.append(reduce_tree([sp[0] for sp in splits], combine_summaries, _SPLIT_EVERY))
    flat = [sp for s in samples for sp in outputs[s.name]]
    *persisted_flat, persisted_totals = dask.persist(*flat, totals)
    it = iter(persisted_flat)
    persisted = {s.name: [next(it) for _ in outputs[s.name]] for s in samples}
    return persisted, list(persisted_totals)


def _estimates_e_rms(s: Sample) -> bool:
    """Whether the sample's calibration needs ``e_rms`` from the data (its summary)."""
    cal = s.calibration
    return s.role == "source" and cal is not None and cal.needs_e_rms and cal.e_rms is None


def _inverse_variance(s: Sample) -> bool:
    return (
        s.role == "source"
        and s.calibration is not None
        and s.calibration.weights == WEIGHTS_INVERSE_VARIANCE
    )


def _describe(patch: Patch) -> tuple[tc.PatchStats, int]:
    return patch.stats, patch.nbytes


def _patches(
    samples: Sequence[Sample],
    splits: dict[str, list[Any]],
    npatch: int,
    calibrations: dict[str, Calibration],
    also: Sequence[Any] = (),
    owner: dict[int, str] | None = None,
) -> tuple[dict[str, list[Any]], dict[str, list[tc.PatchStats]], int, list[Any]]:
    """Every patch of every sample (persisted; patch ``k`` built on worker ``owner[k]`` where
    given), their statistics, their total bytes, and the values of ``also`` (lazy objects
    computed in the same round trip)."""
    built: dict[str, list[Any]] = {}
    for s in samples:
        task = dask.delayed(build_patch, pure=True)
        cal, iv = calibrations.get(s.name), _inverse_variance(s)
        built[s.name] = []
        for k in range(npatch):
            args = (s.name, k, s.field, s.role, cal, iv, *splits[s.name])
            if owner is not None and k in owner:
                with dask.annotate(workers=[owner[k]], allow_other_workers=True):
                    built[s.name].append(task(*args, whole_splits=True))
            else:
                built[s.name].append(task(*args, whole_splits=True))
    names = [s.name for s in samples]
    flat = list(dask.persist(*[d for n in names for d in built[n]]))
    *described, extra = dask.compute(
        *[dask.delayed(_describe, pure=True)(d) for d in flat], list(also)
    )
    it, described_it = iter(flat), iter(described)
    persisted = {n: [next(it) for _ in built[n]] for n in names}
    stats: dict[str, list[tc.PatchStats]] = {n: [] for n in names}
    nbytes = 0
    for n in names:
        for _ in built[n]:
            st, b = next(described_it)
            stats[n].append(st)
            nbytes += b
    return persisted, stats, nbytes, list(extra)


def _workers() -> list[str]:
    """The addresses of the active client's workers, sorted (none without a client)."""
    client = active_client()
    if client is None:
        return []
    return sorted(client.scheduler_info(n_workers=-1)["workers"])


def _build_owners(centers: NDArray[np.float64], workers: list[str]) -> dict[int, str] | None:
    """Where to build each patch, before the patches' sizes are known: lanes over the
    patches in sweep order, each counted alike (:mod:`.regions`)."""
    if not workers:
        return None
    rank = sweep_rank(centers).tolist()
    by_rank = sorted(range(len(centers)), key=lambda k: rank[k])
    return owners(lanes([1.0] * len(by_rank), workers), [[k] for k in by_rank])


def _placeable(nbytes: int) -> bool:
    """Whether the patches are small enough to be placed on the workers up front (at most
    :data:`_PLACE_FRACTION` of the smallest worker's memory limit)."""
    client = active_client()
    if client is None:
        return False
    workers = client.scheduler_info(n_workers=-1)["workers"]
    limits = [int(w.get("memory_limit") or 0) for w in workers.values()]
    if not workers or (all(limits) and nbytes > _PLACE_FRACTION * min(limits)):
        log.info("two-point: patches (%.0f MB) left to Dask to move", nbytes / 1e6)
        return False
    return True


def _place(
    patches: dict[str, list[Any]],
    stats: dict[str, list[tc.PatchStats]],
    needed: dict[str, list[tuple[str, int]]],
    run: str,
) -> dict[str, list[str]]:
    """Put on each worker the patches its lane needs (``needed``), before the pairs (see the
    module docstring); the keys to name the patches by. All the non-empty patches are
    published too, for a task that runs where its patches were not placed."""
    client = active_client()
    from distributed import futures_of, wait

    keys = {n: [str(d.key) for d in ds] for n, ds in patches.items()}
    future = {
        (n, k): futures_of(d)[0]
        for n, ds in patches.items()
        for k, d in enumerate(ds)
        if not stats[n][k].empty
    }
    client.publish_dataset(**{dataset_name(run): {keys[n][k]: f for (n, k), f in future.items()}})
    try:
        submit = partial(client.submit, allow_other_workers=False, pure=False)
        loads = []
        for worker, refs in needed.items():
            used = [r for r in refs if r in future]
            names = [keys[n][k] for n, k in used]
            loads.append(submit(load_patches, run, names, *[future[r] for r in used],
                                workers=[worker]))  # fmt: skip
        wait(loads)
        client.gather(loads)  # raises if a load failed
    except BaseException:
        client.unpublish_dataset(dataset_name(run))
        raise
    return keys


def _jobs(
    groups: list[Group],
    plans: dict[tuple[str, str, str], Plan],
    stats: dict[str, list[tc.PatchStats]],
    config: TwoPointConfig,
    run: str,
) -> list[tuple[PairJob, list[tuple[str, int]]]]:
    """Each group's job and the patches it uses, as ``(sample, patch)``."""
    tc_config = config.treecorr_config()
    largest = max(st.nobj for found in stats.values() for st in found)
    out = []
    for g in groups:
        kind, s1, s2 = g.key
        refs: list[tuple[str, int]] = []
        slots = []
        for i, j in g.pairs:
            ab = []
            for ref in ((s1, i), (s2, j)):
                if ref not in refs:
                    refs.append(ref)
                ab.append(refs.index(ref))
            slots.append((ab[0], ab[1], i, j))
        job = PairJob(kind, tc_config, plans[g.key].auto, tuple(slots), run,
                      config.num_threads, config.cache_patches * largest)  # fmt: skip
        out.append((job, refs))
    return out


def _pair_tasks(
    jobs: list[tuple[PairJob, list[tuple[str, int]]]], patches: dict[str, list[Any]]
) -> list[Any]:
    """One lazy task per job, depending on its patches, started in the jobs' order."""
    tasks = []
    for rank, (job, refs) in enumerate(jobs):
        with dask.annotate(priority=len(jobs) - rank):
            tasks.append(dask.delayed(run_pairs, pure=True)(job, *[patches[n][k] for n, k in refs]))
    return tasks


def _dispatched(
    jobs: list[tuple[PairJob, list[tuple[str, int]]]],
    lanes_: list[Lane],
    keys: dict[str, list[str]],
    progress: bool,
) -> tuple[list[Any], dict[str, list[int]]]:
    """The jobs run along their lanes (:func:`.regions.dispatch`); their results, and the
    positions each worker ran."""
    client = active_client()
    ran: dict[str, list[int]] = {}

    def submit_task(position: int, worker: str, upcoming: list[int], last: bool) -> Any:
        job, refs = jobs[position]
        later = list(dict.fromkeys(keys[n][k] for p in upcoming for n, k in jobs[p][1]))
        ran.setdefault(worker, []).append(position)
        args = [keys[n][k] for n, k in refs]
        return client.submit(run_pairs, replace(job, upcoming=tuple(later), last=last), *args,
                             workers=[worker], allow_other_workers=True, pure=False)  # fmt: skip

    results = dispatch(client, lanes_, submit_task, len(jobs), _LOOKAHEAD, progress)
    return results, ran


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

    # 1. the patch centres: given, or a summary pass and the k-means
    summaries: list[SampleSummary] | None = None
    if given is None:
        summaries, centers = _first_pass(samples, config)
    else:
        centers = given
    npatch = len(centers)
    run = uuid.uuid4().hex
    patches: dict[str, list[Any]] = {}
    keys: dict[str, list[str]] | None = None
    try:
        # 2. split every partition into per-patch pieces; check the summaries, calibrate
        # (unless no calibration depends on the data: then the summaries come back with the
        # patches' statistics, one round trip fewer)
        splits, totals = _split(samples, centers)
        later = summaries is None and not any(_estimates_e_rms(s) for s in samples)
        if summaries is None and not later:
            summaries = [_strip(t) for t in dask.compute(*totals)]
            _validate(samples, summaries, config.nan_policy)
        calibrations = _calibrations(samples, summaries or [SampleSummary() for _ in samples])
        t1 = time.perf_counter()

        # 3. the patches (the only copy of the catalogues, each built where its lane will
        # first need it) and, from their statistics, the pairs to compute
        workers = _workers()
        patches, stats, nbytes, found = _patches(
            samples, splits, npatch, calibrations, totals if later else (),
            _build_owners(centers, workers),
        )  # fmt: skip
        del splits, totals
        if later:
            summaries = [_strip(t) for t in found]
            _validate(samples, summaries, config.nan_policy)
            calibrations = _calibrations(samples, summaries)
        assert summaries is not None
        plans: dict[tuple[str, str, str], Plan] = {}
        for kind, s1, s2 in _correlations(requests, randoms):
            other = None if s1 == s2 else stats[s2]
            plans[(kind, s1, s2)] = plan(kind, s1, s2, stats[s1], other, tc_config)
        # one task per anchor patch, in the sweep order of the anchors
        rank = sweep_rank(centers).tolist()
        sizes = {n: sum(st.nobj for st in found) for n, found in stats.items()}
        groups: list[Group] = []
        for key, p in plans.items():
            groups += group_pairs(p, rank, sizes[key[1]] >= sizes[key[2]])
        position = {key: n for n, key in enumerate(plans)}
        groups.sort(key=lambda g: (rank[g.anchor], position[g.key]))
        jobs = _jobs(groups, plans, stats, config, run)
        t2 = time.perf_counter()

        # 4. each worker's lane through the sweep, and its patches placed on it (small
        # samples on a cluster)
        lanes_: list[Lane] = []
        needed: dict[str, list[tuple[str, int]]] = {}
        if workers and _placeable(nbytes):
            costs = [group_cost(g.pairs, stats[g.key[1]], stats[g.key[2]]) for g in groups]
            lanes_ = lanes(costs, workers)
            needed = needed_patches(lanes_, [refs for _, refs in jobs], _MARGIN)
            keys = _place(patches, stats, needed, run)
        t3 = time.perf_counter()

        # 5. the pairs: along the lanes, or as one graph in sweep order
        skipped = sum(len(p.steps) - len(p.computed()) for p in plans.values())
        n_pairs = sum(len(p.computed()) for p in plans.values())
        log.info(
            "two-point: %d samples, %d patches, %d correlations, %d pairs in %d tasks (%d "
            "pairs skipped as out of range); patches %s",
            len(samples), npatch, len(plans), n_pairs, len(jobs), skipped,
            "placed by lane" if keys is not None else "moved by Dask",
        )  # fmt: skip
        ran: dict[str, list[int]] = {}
        if keys is not None:
            results, ran = _dispatched(jobs, lanes_, keys, progress)
        else:
            tasks = _pair_tasks(jobs, patches)
            results = list(compute(*tasks, progress=progress))
            del tasks
    finally:
        del patches
        cache = _clear_caches(run, published=keys is not None)
    t4 = time.perf_counter()

    computed: dict[tuple[str, str, str], dict[tuple[int, int], Any]] = {k: {} for k in plans}
    for g, corrs_of_group in zip(groups, results, strict=True):
        for ij, corr in zip(g.pairs, corrs_of_group, strict=True):
            computed[g.key][ij] = corr
    varg = {s.name: tc.combined_varg(stats[s.name]) for s in samples if s.field == "G"}
    corrs: dict[tuple[str, str, str], Any] = {}
    for key, p in plans.items():
        kind, s1, s2 = key
        corrs[key] = assemble(p, tc_config, npatch, stats[s1], stats[s2], computed[key])
        _finalize(kind, corrs[key], varg.get(s1, math.nan), varg.get(s2, math.nan))
    out, extra = _statistics(requests, corrs, randoms)
    joint = treecorr.estimate_multi_cov([out[r] for r in requests], "jackknife")
    t5 = time.perf_counter()

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
        "pairs_computed": n_pairs,
        "pairs_skipped": skipped,
        "pair_tasks": len(groups),
        "patch_placement": "by lane" if keys is not None else "moved by dask",
        # the anchor patches of the tasks each worker ran, in its order (lanes only)
        "pair_workers": {w: [groups[p].anchor for p in ps] for w, ps in ran.items()},
        # each lane's expected tasks (anchor patches), before the workers met
        "lanes": {ln.worker: [groups[p].anchor for p in ln.expected] for ln in lanes_},
        # the patches (of all samples) placed on each worker before the pairs
        "patches_placed": {w: len(refs) for w, refs in needed.items()},
        "patch_bytes": nbytes,
        "tree_cache": cache,
        # "split": reading, summaries (and the k-means), the per-patch pieces; "patches": the
        # patch catalogues and statistics; "placement": patches to every worker
        "seconds": {
            "split": round(t1 - t0, 3),
            "patches": round(t2 - t1, 3),
            "placement": round(t3 - t2, 3),
            "pairs": round(t4 - t3, 3),
            "finalize": round(t5 - t4, 3),
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
