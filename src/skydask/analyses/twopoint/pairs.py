"""Patch pairs: which to compute, grouped into Dask tasks, and their sum in TreeCorr's order.

For an auto-correlation TreeCorr's ``process()`` visits patch ``i`` with itself
(``process_auto``), then every ``j > i`` from the last patch down (``process_cross``); for a
cross-correlation every ``(i, j)``. A pair farther apart than ``max_sep`` plus the two patch
radii is skipped (for NN its ``sumw_i * sumw_j`` still goes into ``tot``); a computed pair
that found nothing in range is dropped, except ``(i, i)``. :func:`plan` makes that list from
per-patch statistics alone, before any pair is computed; :func:`assemble` adds the computed
pairs with ``+=`` in exactly that order and keeps each in ``results``, so the sum, the
``results`` dictionary and hence the jackknife are those of ``process()``, however the pairs
were grouped into tasks and wherever they ran.

The tasks (:func:`group_pairs`, :func:`run_pairs`). Each task computes the pairs of one
*anchor* patch: for an auto-correlation the patch with itself and with its neighbours
further along a sweep across the sky (:func:`.patches.sweep_rank`); for a cross-correlation
one patch of the larger sample (whose trees cost the most) with all its partners. On a
cluster each worker runs the tasks of its own stretch of the sweep (its *lane*,
:mod:`.regions`), so consecutive tasks on a worker share most of their patches and its
cache of trees serves them; elsewhere the tasks start in the sweep order of their anchors.
Three facts of TreeCorr shaped this (measured with 1 million sources in 16 patches, two
workers):

* TreeCorr holds the GIL through ``process_auto``/``process_cross``. A worker computing a pair
  cannot answer its peers, so a pair task that had to fetch a patch from a busy worker waited
  for that worker's task to end (about 12 s of such waits in a 30 s run). Patches are
  therefore placed on the workers before the first pair starts (:func:`load_patches`, see
  :mod:`.measure`), and a pair task names its patches instead of depending on them. For the
  same reason two threads of one process never compute two pairs at once (they could not
  anyway), and each pair gets all of the process's cores as OpenMP threads.
* A patch's tree of 62,500 sources at 1-100 arcmin holds 17 MB (275 bytes an object) and
  costs 25-40 ms to build and 15-35 ms to free in one quiet process (TreeCorr builds the
  cells on their first use, inside ``process_auto`` / ``process_cross``; its 125,000 cells
  are deleted one by one, each a cache miss once the pairs have run), more in a busy
  worker, while a pair of neighbouring patches takes 1-90 ms (a patch with itself 0.5-0.9
  s), so rebuilding trees can cost as much as the pairs. Each process keeps the trees of
  its most recently used patches (:class:`_State`), up to ``cache_patches`` times the
  largest patch in objects (the trees of a small sample, such as lenses, take little of
  that room), which caps its memory: the room a pair's new trees need is made before they
  are built, so the trees alive never exceed it (trimming only after each pair, as before,
  let up to two trees above the room at the peak: the largest GG worker held 280 MB with a
  room of 5 patches then, 263-264 MB now; with the patches' derived positions dropped too,
  :mod:`._treecorr`, a room of 7 holds it at 278 MB). Trees stay while there is room; when
  it is full, those that the
  worker's next tasks (``PairJob.upcoming``, known from its lane) use last, or not at all,
  go first (the farthest next use: the fewest builds for the room). What is left when the
  run ends is freed in the background (:func:`finish`). Since freeing a tree costs about as
  much as building it, a tree dropped early, before the room was needed, cost a free in the
  pair phase and, if a later task of the lane needed it after all, a build. The earlier
  policy, dropping at the end of each task the trees the next three tasks did not use,
  freed 48 trees in an NG run and 40 in a GG run; keeping them measured NG 3.33 -> 3.17 s
  and GG 6.43 -> 6.26 s (paired, 5 and 4 rounds), the largest NG worker 252 -> 281 MB (the
  cap, which it did not reach before), GG unchanged at 280 MB.
  The first version (one task per pair, in blocks) built 97 trees where TreeCorr builds 16;
  anchor tasks in sweep order handed to whichever worker was free built 81 with 4 patches
  cached, 35-39 with 8 and 31 with 16 (each worker needed most patches); along lanes they
  build 50-51 with 4, 35 with 6, 25 with 8 and 24 with 16 (the patches within ``max_sep`` of
  where two lanes meet are built on both sides). Forward along a sweep a task uses its
  anchor and the next 4-6 patches, so about 6 cached patches are needed for each tree to be
  built about once per worker.
* Per-task overhead (scheduling, results) is a few milliseconds, more than many
  neighbouring pairs cost: one task per anchor, not per pair.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from skydask.analyses.twopoint import _treecorr as tc
from skydask.analyses.twopoint.patches import Patch

__all__ = [
    "Group",
    "PairJob",
    "Plan",
    "assemble",
    "cache_counts",
    "clear_cache",
    "dataset_name",
    "finish",
    "group_pairs",
    "held",
    "load_patches",
    "plan",
    "run_pairs",
    "task_threads",
]

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
        temp = computed[(i, j)] if action == COMPUTE else None
        keep = force or (temp is not None and ((plan_.auto and i == j) or temp.nonzero))
        if keep:
            # a skipped pair kept anyway enters ``results`` empty, as in process(); only
            # then is an empty correlation made (0.2-0.3 ms each: 96 skipped pairs in NG)
            temp = temp if temp is not None else tc.make_correlation(plan_.kind, config)
            corr.results[(i, j)] = temp
            corr += temp
        else:
            tc.add_tot(corr, (i, j), by_patch1[i], by_patch2[j])
    return corr


# -- grouping ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """The pairs of one task of correlation ``key``; all share the ``anchor`` patch."""

    key: tuple[str, str, str]
    anchor: int
    pairs: tuple[tuple[int, int], ...]


def group_pairs(plan_: Plan, rank: Sequence[int], anchor_first: bool = True) -> list[Group]:
    """The computed pairs of one correlation grouped by anchor patch, in sweep order.

    For an auto-correlation the anchor of a pair is its patch earlier in the sweep (``rank``,
    :func:`.patches.sweep_rank`), so a task is a patch with itself and with its neighbours
    further along; for a cross-correlation the anchor is the patch of the first sample
    (``anchor_first``) or of the second, and a task is that patch with all its partners.
    Within a task the partners come in sweep order; the tasks come in the sweep order of
    their anchors.

    Examples
    --------
    >>> p = Plan("NN", "a", "a", True, ((0, 0, COMPUTE, True), (0, 2, COMPUTE, False),
    ...      (0, 1, SKIP, False), (1, 1, COMPUTE, True), (1, 2, COMPUTE, False),
    ...      (2, 2, COMPUTE, True)))
    >>> [(g.anchor, g.pairs) for g in group_pairs(p, [2, 0, 1])]
    [(1, ((1, 1), (1, 2))), (2, ((2, 2), (0, 2))), (0, ((0, 0),))]
    """
    anchored: dict[int, list[tuple[int, int]]] = {}
    for i, j in plan_.computed():
        first = rank[i] <= rank[j] if plan_.auto else anchor_first
        anchor = i if first else j
        anchored.setdefault(anchor, []).append((i, j))
    groups = []
    for anchor in sorted(anchored, key=lambda k: rank[k]):

        def partner(ij: tuple[int, int], anchor: int = anchor) -> tuple[bool, int]:
            i, j = ij
            other = j if (i == anchor if plan_.auto else anchor_first) else i
            return (i != j, rank[other])

        groups.append(Group(plan_.key, anchor, tuple(sorted(anchored[anchor], key=partner))))
    return groups


# -- the task --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairJob:
    """What a pair task needs besides its patches.

    ``pairs`` lists the task's pairs as ``(slot_a, slot_b, i, j)``: positions of the two
    patches among the task's patch arguments, and the patch numbers. ``run`` identifies the
    measurement (its patches in a process's store, its trees in the cache).
    ``cache_objects`` caps the objects whose trees a process keeps between pairs;
    ``upcoming`` names the patches (keys given to :func:`load_patches`) of the tasks this
    worker is expected to run next, in order: when the cache is full, the trees they use
    last, or not at all, go first (None: not known, least recently used go first).
    ``last``: the last task of the measurement (see :func:`task_threads`).
    """

    kind: str
    config: dict[str, Any]
    auto: bool
    pairs: tuple[tuple[int, int, int, int], ...]
    run: str
    num_threads: int | None
    cache_objects: int
    upcoming: tuple[str, ...] | None = None
    last: bool = False


def task_threads(requested: int | None, last: bool = False) -> int:
    """TreeCorr's OpenMP threads for one pair: all the cores of this process.

    The cores are ``OMP_NUM_THREADS`` (skydask's clusters set it to each worker process's
    share) or else the CPUs this process may use. Not divided among a worker's threads:
    TreeCorr holds the GIL while it computes, so a process computes one pair at a time
    whatever its number of threads.

    The ``last`` task of a measurement takes every CPU this process may use, beyond its
    share: its peers on the node have nothing left to do once their own last task ends, and
    TreeCorr hands out its work to its threads dynamically, so the cores they free go to it
    (until then the node is oversubscribed by its extra threads). Without this, a worker
    sat idle for half a pair task at the end of every run.
    """
    if requested:
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "")
    share = int(env) if env.isdigit() and int(env) > 0 else 0
    cpus = max(1, len(os.sched_getaffinity(0)))
    if last or not share:
        return max(cpus, share)
    return share


@dataclass
class _State:
    """What one process keeps between pair tasks: patches placed by :func:`load_patches`
    (per run) and the catalogues whose trees are alive, most recently used last.

    One per process, not per worker: several workers of one process share its GIL, hence
    its one-pair-at-a-time ``lock``, and may share patch objects. The invariant: a
    catalogue has trees only while a task uses it or while it is in ``trees``.
    """

    lock: threading.RLock = field(default_factory=threading.RLock)
    store: dict[str, dict[str, Patch]] = field(default_factory=dict)
    trees: OrderedDict[tuple[str, int], Patch] = field(default_factory=OrderedDict)
    hits: dict[str, int] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)
    trimmed: set[str] = field(default_factory=set)

    def trim(self, keep: int, busy: set[int], upcoming: Sequence[int] = ()) -> None:
        """Release trees until those left hold at most ``keep`` objects: first of the
        catalogues not in ``upcoming`` (ids of the catalogues this worker's next tasks use,
        in order of use), least recently used first, then of those used latest. A patch in
        ``busy`` keeps its trees."""
        first_use: dict[int, int] = {}
        for n, ident in enumerate(upcoming):
            first_use.setdefault(ident, n)
        excess = sum(p.stats.nobj for p in self.trees.values()) - keep
        if excess <= 0:
            return
        never = len(upcoming)
        # stable: among the catalogues not used again, the least recently used go first
        order = sorted(self.trees, key=lambda k: -first_use.get(k[1], never))
        for key in order:
            if excess <= 0:
                break
            if key[1] not in busy:
                patch = self.trees.pop(key)
                tc.release(patch.catalog)
                excess -= patch.stats.nobj


_STATE = _State()


def _release_unused_memory(run: str) -> None:
    """Once per run and process, before its first pair: hand back to the system the memory
    Arrow's allocator keeps after the reads (60 MB after reading 500,000 rows of 5 columns),
    which the trees, allocated by C++, could never reuse."""
    with _STATE.lock:
        if run in _STATE.trimmed:
            return
        _STATE.trimmed.add(run)
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover (skydask reads through pyarrow)
        return
    pa.default_memory_pool().release_unused()


def load_patches(run: str, keys: Sequence[str], *patches: Patch) -> int:
    """Keep a run's patches in this process, under their keys (a task pinned to a worker:
    Dask moves the patches to it before it starts, while no pair is being computed)."""
    with _STATE.lock:
        _STATE.store.setdefault(run, {}).update(zip(keys, patches, strict=True))
    _release_unused_memory(run)
    return len(patches)


def dataset_name(run: str) -> str:
    """The name under which a run's patch futures are published on the cluster."""
    return f"skydask-twopoint-{run}"


def _fetch(run: str, key: str) -> Patch:
    """A patch this process was not given in advance (a worker that joined late): from the
    cluster, through the futures the measurement published (:func:`dataset_name`)."""
    from distributed import get_client

    client = get_client()
    log.warning("pair task on a worker without patch %s: fetching it now", key)
    future = client.get_dataset(dataset_name(run))[key]
    patch: Patch = client.gather([future])[0]
    with _STATE.lock:
        _STATE.store.setdefault(run, {})[key] = patch
    return patch


def _resolve(run: str, patch: Patch | str) -> Patch:
    if isinstance(patch, Patch):
        return patch
    found = _STATE.store.get(run, {}).get(patch)
    return found if found is not None else _fetch(run, patch)


def run_pairs(job: PairJob, *patches: Patch | str) -> list[Any]:
    """The task: each of the job's pairs with ``process_auto`` (a patch with itself in an
    auto-correlation) or ``process_cross``; the unfinalized correlation objects (small: a few
    arrays of ``nbins``), in the job's order.

    ``patches`` are the :class:`.patches.Patch` objects, or the keys under which
    :func:`load_patches` placed them in this process.
    """
    threads = task_threads(job.num_threads, job.last)
    _release_unused_memory(job.run)
    resolved = [_resolve(job.run, p) for p in patches]
    ids = [id(p) for p in resolved]  # what the tree cache knows a patch by
    out = []
    with _STATE.lock:
        store = _STATE.store.get(job.run, {})
        upcoming = [id(store[k]) for k in job.upcoming or () if k in store]
        try:
            for n, (a, b, i, j) in enumerate(job.pairs):
                used = [a] if a == b else [a, b]
                built = [k for k in used if (job.run, ids[k]) not in _STATE.trees]
                for k in used:
                    counts = _STATE.misses if k in built else _STATE.hits
                    counts[job.run] = counts.get(job.run, 0) + 1
                if built:
                    # the room for the trees this pair builds is made before they are
                    # built, so the trees alive never exceed it; the patches of the task's
                    # later pairs, then those of the worker's next tasks, are kept first
                    room = job.cache_objects - sum(resolved[k].stats.nobj for k in built)
                    later = [ids[k] for p in job.pairs[n + 1 :] for k in p[:2]]
                    _STATE.trim(room, {ids[k] for k in used}, later + upcoming)
                for k in built:
                    tc.restore_positions(resolved[k].catalog)
                corr = tc.make_correlation(job.kind, job.config)
                if job.auto and i == j:
                    corr.process_auto(resolved[a].catalog, num_threads=threads)
                else:
                    corr.process_cross(
                        resolved[a].catalog, resolved[b].catalog, num_threads=threads
                    )
                for k in built:  # the tree has its own copy
                    tc.drop_positions(resolved[k].catalog)
                out.append(corr)
                for k in used:
                    _STATE.trees[(job.run, ids[k])] = resolved[k]
                    _STATE.trees.move_to_end((job.run, ids[k]))
        finally:
            _STATE.trim(job.cache_objects, set(), upcoming)
    return out


def held() -> tuple[int, int]:
    """The patches placed in this process and the trees alive in it, over all runs (a worker
    holds none once a measurement has ended and :func:`finish` has run)."""
    with _STATE.lock:
        return sum(len(s) for s in _STATE.store.values()), len(_STATE.trees)


def cache_counts(run: str) -> dict[str, int]:
    """A run's tree cache hits and misses in this process (a miss is a tree built)."""
    with _STATE.lock:
        return {"hits": _STATE.hits.get(run, 0), "misses": _STATE.misses.get(run, 0)}


async def finish(run: str) -> None:
    """Drop a run's patches and trees in a thread of their own, after the measurement has
    its results: freeing a few hundred megabytes of trees takes a worker about 0.3 s, which
    TreeCorr's own process spends only when it exits. Sent without waiting for an answer
    (``client.run(finish, run, wait=False)``, which takes only coroutines): TreeCorr's
    destructors hold the GIL, so a worker freeing its trees answers late (a measurement
    waited 25-30 ms for it)."""
    threading.Thread(target=clear_cache, args=(run,), name="skydask-clear", daemon=True).start()


def clear_cache(run: str | None = None) -> dict[str, int]:
    """Drop this process's patches and trees of one run (of every run without ``run``);
    return the tree cache's hit and miss counts. ``client.run`` calls it on every worker
    at the end of a measurement; several workers of one process find it already done."""
    with _STATE.lock:
        runs = set(_STATE.store) | {k[0] for k in _STATE.trees} | set(_STATE.misses)
        runs |= _STATE.trimmed
        if run is not None:
            runs &= {run}
        totals = {"hits": 0, "misses": 0}
        for r in runs:
            _STATE.store.pop(r, None)
            _STATE.trimmed.discard(r)
            totals["hits"] += _STATE.hits.pop(r, 0)
            totals["misses"] += _STATE.misses.pop(r, 0)
        for key in [k for k in _STATE.trees if k[0] in runs]:
            tc.release(_STATE.trees.pop(key).catalog)
        return totals
