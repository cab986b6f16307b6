"""Patch pairs: which to compute, one Dask task each, and their sum in TreeCorr's order.

For an auto-correlation TreeCorr's ``process()`` visits patch ``i`` with itself
(``process_auto``), then every ``j > i`` from the last patch down (``process_cross``); for a
cross-correlation every ``(i, j)``. A pair farther apart than ``max_sep`` plus the two patch
radii is skipped (for NN its ``sumw_i * sumw_j`` still goes into ``tot``); a computed pair
that found nothing in range is dropped, except ``(i, i)``. :func:`plan` makes that list from
per-patch statistics alone, before any pair is computed; :func:`assemble` adds the computed
pairs with ``+=`` in exactly that order and keeps each in ``results``, so the sum, the
``results`` dictionary and hence the jackknife are those of ``process()``.

:func:`run_pair` is the task: it builds the TreeCorr catalogues of its two patches (or takes
them from the worker's small cache) and runs ``process_auto`` or ``process_cross``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from skydask.analyses.twopoint import _treecorr as tc

__all__ = ["PairJob", "Plan", "assemble", "clear_cache", "plan", "run_pair", "task_threads"]

log = logging.getLogger(__name__)

COMPUTE, SKIP = "compute", "skip"


@dataclass(frozen=True)
class Plan:
    """The patch pairs of one correlation, in TreeCorr's order, each computed or skipped.

    ``steps`` holds ``(i, j, action, force)``: ``force`` keeps the pair in ``results`` even if
    it found no pair in range (TreeCorr does so for ``i == j`` of a cross-correlation).
    """

    kind: str
    sample1: str
    sample2: str
    auto: bool
    steps: tuple[tuple[int, int, str, bool], ...]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.sample1, self.sample2)

    def computed(self) -> list[tuple[int, int]]:
        return [(i, j) for i, j, action, _ in self.steps if action == COMPUTE]


def plan(
    kind: str,
    sample1: str,
    sample2: str,
    stats1: Sequence[tc.PatchStats],
    stats2: Sequence[tc.PatchStats] | None,
    config: dict[str, Any],
) -> Plan:
    """Which patch pairs ``process()`` would compute; ``stats2`` None for an auto-correlation."""
    corr = tc.make_correlation(kind, config)
    tc.prepare_driver(corr)
    steps: list[tuple[int, int, str, bool]] = []
    if stats2 is None:
        patches = [s for s in stats1 if not s.empty]
        for a in patches:
            steps.append((a.patch, a.patch, COMPUTE, True))
            for b in reversed(patches):
                if a.patch < b.patch:
                    action = SKIP if tc.trivially_zero(corr, a, b) else COMPUTE
                    steps.append((a.patch, b.patch, action, False))
    else:
        patches1 = [s for s in stats1 if not s.empty]
        patches2 = [s for s in stats2 if not s.empty]
        for a in patches1:
            for b in patches2:
                action = SKIP if tc.trivially_zero(corr, a, b) else COMPUTE
                steps.append((a.patch, b.patch, action, a.patch == b.patch))
    return Plan(kind, sample1, sample2, stats2 is None, tuple(steps))


def assemble(
    plan_: Plan,
    config: dict[str, Any],
    npatch: int,
    stats1: Sequence[tc.PatchStats],
    stats2: Sequence[tc.PatchStats],
    computed: dict[tuple[int, int], Any],
) -> Any:
    """Sum the computed pairs in TreeCorr's order (not yet finalized); keep ``results``."""
    corr = tc.make_correlation(plan_.kind, config)
    tc.prepare_driver(corr)
    corr.npatch1 = corr.npatch2 = npatch
    by_patch1 = {s.patch: s for s in stats1}
    by_patch2 = {s.patch: s for s in stats2}
    for i, j, action, force in plan_.steps:
        temp = computed[(i, j)] if action == COMPUTE else tc.make_correlation(plan_.kind, config)
        if (action == COMPUTE and plan_.auto and i == j) or temp.nonzero or force:
            corr.results[(i, j)] = temp
            corr += temp
        else:
            tc.add_tot(corr, (i, j), by_patch1[i], by_patch2[j])
    return corr


# -- the task -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairJob:
    """What a pair task needs besides the two patches' rows.

    ``keys`` identify the two patches' data (their dask keys) for the worker cache; ``run``
    identifies the measurement, so that a worker drops a previous run's cached patches.
    """

    kind: str
    config: dict[str, Any]
    auto: bool
    fields: tuple[str, str]
    keys: tuple[str, str]
    run: str
    num_threads: int | None
    cache_patches: int


def task_threads(requested: int | None) -> int:
    """TreeCorr's OpenMP threads for one task: the worker's cores over its task slots.

    The cores are ``OMP_NUM_THREADS`` (skydask's clusters set it to each worker's share) or
    the CPUs this process may use; outside a distributed worker, dask's local schedulers run
    one task per core already, so one thread.
    """
    if requested:
        return requested
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return 1
    env = os.environ.get("OMP_NUM_THREADS", "")
    cores = int(env) if env.isdigit() and int(env) > 0 else len(os.sched_getaffinity(0))
    return max(1, cores // max(1, int(worker.state.nthreads)))


class _PatchCache:
    """A few TreeCorr catalogues (with their trees) kept by one single-threaded worker.

    Pair tasks of the same tile of patches often run one after the other on a worker; keeping
    the catalogue saves rebuilding its tree (about a tenth of a pair's time at TreeCorr's
    default binning). One cache per worker, used only by single-threaded workers, so that a
    cached catalogue is never used by two tasks at once (TreeCorr's field cache is not made
    for concurrent use from several Python threads; several workers may share a process).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._run = ""
        self.hits = 0
        self.misses = 0

    def get(self, run: str, key: tuple[str, str], size: int, build: Callable[[], Any]) -> Any:
        with self._lock:
            if run != self._run:
                for cat in self._items.values():
                    tc.release(cat)
                self._items.clear()
                self._run = run
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        value = build()
        with self._lock:
            self.misses += 1
            self._items[key] = value
            while len(self._items) > size:
                tc.release(self._items.popitem(last=False)[1])
        return value

    def clear(self) -> dict[str, int]:
        with self._lock:
            out = {"hits": self.hits, "misses": self.misses, "held": len(self._items)}
            for cat in self._items.values():
                tc.release(cat)
            self._items.clear()
            self._run = ""
            self.hits = self.misses = 0
            return out


_CACHES: dict[str, _PatchCache] = {}
_CACHES_LOCK = threading.Lock()


def _worker_cache(address: str) -> _PatchCache:
    with _CACHES_LOCK:
        return _CACHES.setdefault(address, _PatchCache())


def clear_cache(dask_worker: Any = None) -> dict[str, int]:
    """Drop a worker's cached patches (all of this process's without ``dask_worker``); return
    the hit and miss counts since the last clear. ``client.run`` calls it on every worker at
    the end of a measurement."""
    with _CACHES_LOCK:
        if dask_worker is not None:
            caches = [c for a, c in _CACHES.items() if a == dask_worker.address]
        else:
            caches = list(_CACHES.values())
    totals = {"hits": 0, "misses": 0}
    for cache in caches:
        counts = cache.clear()
        totals["hits"] += counts["hits"]
        totals["misses"] += counts["misses"]
    return totals


def _cache_of_this_worker(job: PairJob) -> _PatchCache | None:
    if job.cache_patches <= 0:
        return None
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    if int(worker.state.nthreads) != 1:
        return None
    return _worker_cache(str(worker.address))


def run_pair(job: PairJob, frame1: pd.DataFrame, frame2: pd.DataFrame | None) -> Any:
    """One patch pair: ``process_auto`` (``frame2`` None) or ``process_cross``; the unfinalized
    correlation object is returned (small: a few arrays of ``nbins``)."""
    threads = task_threads(job.num_threads)
    cache = _cache_of_this_worker(job)

    def catalog(frame: pd.DataFrame, field: str, key: str) -> Any:
        if cache is None:
            return tc.make_catalog(frame, field)
        return cache.get(
            job.run, (key, field), job.cache_patches, lambda: tc.make_catalog(frame, field)
        )

    corr = tc.make_correlation(job.kind, job.config)
    cat1 = catalog(frame1, job.fields[0], job.keys[0])
    cat2 = None if frame2 is None else catalog(frame2, job.fields[1], job.keys[1])
    try:
        if cat2 is None:
            corr.process_auto(cat1, num_threads=threads)
        else:
            corr.process_cross(cat1, cat2, num_threads=threads)
    finally:
        if cache is None:  # cached catalogues are released when the cache drops them
            for cat in (cat1, cat2):
                if cat is not None:
                    tc.release(cat)
    return corr


def blocked_order(pairs: Sequence[tuple[int, int]], block: int) -> Iterator[tuple[int, int]]:
    """The pairs tile by tile (``block`` x ``block`` patches), so that consecutive tasks share
    patches and a worker's cache of ``2 * block`` patches serves them.

    Examples
    --------
    >>> list(blocked_order([(0, 0), (0, 3), (1, 2), (2, 3), (0, 1)], 2))
    [(0, 0), (0, 1), (0, 3), (1, 2), (2, 3)]
    """
    b = max(1, block)
    return iter(sorted(pairs, key=lambda p: (p[0] // b, p[1] // b, p[0], p[1])))
