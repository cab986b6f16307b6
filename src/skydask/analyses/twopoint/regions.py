"""Spatial affinity: which worker runs which pair task, and which patches each worker holds.

On a distributed cluster the pair tasks (one per anchor patch, :mod:`.pairs`) are not handed
to whichever worker is free, as the first version did: there both workers needed nearly
every patch, held all 16 catalogues and built each tree about twice (31 builds at best
against TreeCorr's 16, 81 with the default cache). Instead the sweep of the anchors
(:func:`.patches.sweep_rank`) is cut into contiguous pieces of sky, one per worker:

* **Lanes** (:func:`lanes`). The sweep is cut into ``ceil(W / 2)`` segments of about equal
  estimated cost (:func:`group_cost`), and each segment is worked by two workers from its
  two ends towards each other (a lone worker, for an odd W, from one end): where they meet
  is decided while they run, by whichever finishes its tasks first, so an error in the cost
  estimate costs no balance inside a segment. Each worker's *lane* is the tasks it is
  expected to run: its end of the segment up to the estimated meeting point.
* **Patches** (:func:`needed_patches`, :func:`owners`). A patch is built on the worker whose
  lane is expected to use it first (:mod:`.measure` pins the build task there), and copied
  before the first pair to the other workers whose lane, widened by ``margin`` tasks past
  its expected end, uses it: a worker holds the catalogues of its lane only. (A lane that
  sweeps forward also needs the partners ahead of its last anchor: for 1 million sources
  in 16 patches at 1-100 arcmin the two workers hold 16 and 10 source patches, and 25 of
  the 32 source and lens patches each for NG.) A task that runs outside that margin
  fetches what it lacks (slow, since the holder may be inside TreeCorr, which keeps the
  GIL: see :mod:`.pairs`) and stays exact.
* **Dispatch** (:func:`dispatch`). The driver keeps one task running on each worker and
  submits a worker's next task (pinned to it) when the previous one ends: the next from its
  end of its segment, or, once the segment is done, from the nearest end of the nearest
  unfinished segment. With each task it passes the patches of that worker's next
  tasks, which the tree cache keeps in preference to the others (:mod:`.pairs`): a worker
  sweeping forward builds each tree about once. The results stay on the workers until the
  last task has ended: a worker inside TreeCorr answers no fetch.

Without a distributed client (the local schedulers) or where Dask moves the patches (large
samples), :mod:`.measure` computes the tasks as one graph in sweep order instead; the numbers
are the same, since they are summed in TreeCorr's order whatever ran where.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from skydask.analyses.twopoint import _treecorr as tc

__all__ = ["Lane", "dispatch", "group_cost", "lanes", "needed_patches", "owners"]


_CROSS_COST = 0.1  # a pair of distinct patches against a patch with itself (measured: 3-10 %)


@dataclass(frozen=True)
class Lane:
    """One worker's expected work: ``segment`` (the task positions, in sweep order, that it
    shares with at most one other worker), its ``direction`` through it (+1 from the start,
    -1 from the end) and ``expected``, the positions it is expected to run, in its order."""

    worker: str
    segment: tuple[int, int]
    direction: int
    expected: tuple[int, ...]


def group_cost(
    pairs: Sequence[tuple[int, int]],
    stats1: Sequence[tc.PatchStats],
    stats2: Sequence[tc.PatchStats],
) -> float:
    """An estimate of a task's cost from the sizes of its patches: a pair of patches costs
    ``sqrt(n_i n_j)``, a tenth of that for two distinct patches (neighbours share only a
    border; measured 3-10 % of a patch with itself at 1-100 arcmin)."""
    cost = 0.0
    for i, j in pairs:
        size = math.sqrt(stats1[i].nobj * stats2[j].nobj)
        cost += size if i == j else _CROSS_COST * size
    return cost


def _cut(costs: Sequence[float], shares: Sequence[float]) -> list[tuple[int, int]]:
    """Contiguous ``[start, end)`` ranges of ``costs`` whose sums follow ``shares``."""
    total = sum(costs) or 1.0
    bounds, start, acc, target = [], 0, 0.0, 0.0
    for k, share in enumerate(shares):
        target += share * total
        end = start
        if k == len(shares) - 1:
            end = len(costs)
        else:
            # take tasks while that brings the running sum closer to the target
            while end < len(costs) and abs(acc + costs[end] - target) <= abs(acc - target):
                acc += costs[end]
                end += 1
        bounds.append((start, end))
        start = end
    return bounds


def lanes(costs: Sequence[float], workers: Sequence[str]) -> list[Lane]:
    """Each worker's lane through tasks of the given estimated ``costs`` (in sweep order).

    Examples
    --------
    >>> [(ln.segment, ln.direction, ln.expected) for ln in lanes([1, 1, 1, 1, 1, 1], "ab")]
    [((0, 6), 1, (0, 1, 2)), ((0, 6), -1, (5, 4, 3))]
    >>> [ln.expected for ln in lanes([4, 1, 1, 1, 1], "abc")]
    [(0,), (1,), (2, 3, 4)]
    >>> [ln.expected for ln in lanes([1, 1], "a")]
    [(0, 1)]
    """
    n = len(workers)
    if n == 0:
        return []
    pairs = [workers[k : k + 2] for k in range(0, n, 2)]
    segments = _cut(costs, [len(p) / n for p in pairs])
    out = []
    for members, (start, end) in zip(pairs, segments, strict=True):
        if len(members) == 1:
            out.append(Lane(members[0], (start, end), 1, tuple(range(start, end))))
            continue
        middle = start + _cut(costs[start:end], [0.5, 0.5])[0][1]
        out.append(Lane(members[0], (start, end), 1, tuple(range(start, middle))))
        out.append(Lane(members[1], (start, end), -1, tuple(range(end - 1, middle - 1, -1))))
    return out


def needed_patches(
    lanes_: Sequence[Lane], refs: Sequence[Sequence[Any]], margin: int
) -> dict[str, list[Any]]:
    """Per worker, the patch references (``refs[position]``: those of one task) of its lane
    widened by ``margin`` tasks past its expected end, in order of first use.

    >>> ls = lanes([1, 1, 1, 1], "ab")
    >>> needed_patches(ls, [["p0"], ["p1"], ["p2"], ["p3"]], 1)
    {'a': ['p0', 'p1', 'p2'], 'b': ['p3', 'p2', 'p1']}
    """
    out: dict[str, list[Any]] = {}
    for lane in lanes_:
        start, end = lane.segment
        positions = list(lane.expected)
        if positions:
            last = positions[-1]
            for step in range(1, margin + 1):
                extra = last + step * lane.direction
                if start <= extra < end:
                    positions.append(extra)
        found: list[Any] = []
        for position in positions:
            for ref in refs[position]:
                if ref not in found:
                    found.append(ref)
        out[lane.worker] = found
    return out


def owners(lanes_: Sequence[Lane], refs: Sequence[Sequence[Any]]) -> dict[Any, str]:
    """The worker that builds each patch: the one whose lane uses it first (for a patch used
    by several lanes, the earliest in its lane's order wins; ties go to the first lane).

    >>> owners(lanes([1, 1, 1, 1], "ab"), [["p0", "p1"], ["p1"], ["p2", "p3"], ["p3"]])
    {'p0': 'a', 'p1': 'a', 'p3': 'b', 'p2': 'b'}
    """
    first: dict[Any, tuple[int, str]] = {}
    for lane in lanes_:
        for order, position in enumerate(lane.expected):
            for ref in refs[position]:
                if ref not in first or order < first[ref][0]:
                    first[ref] = (order, lane.worker)
    return {ref: worker for ref, (_, worker) in first.items()}


class _Queue:
    """The undispatched tasks of each segment (always a contiguous range of positions)."""

    def __init__(self, lanes_: Sequence[Lane]) -> None:
        self.segments: dict[tuple[int, int], deque[int]] = {}
        for lane in lanes_:
            self.segments.setdefault(lane.segment, deque(range(*lane.segment)))

    def __len__(self) -> int:
        return sum(len(q) for q in self.segments.values())

    def next_for(self, lane: Lane) -> int | None:
        own = self.segments[lane.segment]
        if own:
            return own.popleft() if lane.direction > 0 else own.pop()
        # the nearest end of the nearest unfinished segment
        here = lane.segment[0] if lane.direction < 0 else lane.segment[1] - 1
        best: tuple[int, deque[int], bool] | None = None
        for queue in self.segments.values():
            if queue:
                for left in (True, False):
                    distance = abs((queue[0] if left else queue[-1]) - here)
                    if best is None or distance < best[0]:
                        best = (distance, queue, left)
        if best is None:
            return None
        _, queue, left = best
        return queue.popleft() if left else queue.pop()

    def upcoming(self, lane: Lane, count: int) -> list[int]:
        """The positions this lane would run next, as far as they are known now."""
        own = self.segments[lane.segment]
        ordered = list(own) if lane.direction > 0 else list(reversed(own))
        return ordered[:count]


def dispatch(
    client: Any,
    lanes_: Sequence[Lane],
    submit_task: Callable[[int, str, list[int], bool], Any],
    n_tasks: int,
    lookahead: int,
    progress: bool = False,
) -> list[Any]:
    """Run ``n_tasks`` tasks (positions in sweep order) along the lanes, one at a time on each
    worker; ``submit_task(position, worker, upcoming, last)`` submits one (pinned to
    ``worker``) and returns its future, ``upcoming`` being the positions that worker is
    likely to run next (up to ``lookahead``), ``last`` whether no task is left after it.
    The results, by position. On a failure or an interrupt the running tasks are cancelled.
    With ``progress``, a bar counts the finished tasks (the tasks are submitted one by one,
    so ``distributed.progress`` would only see those running).
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    queue = _Queue(lanes_)
    by_worker = {lane.worker: lane for lane in lanes_ if lane.expected}
    if not by_worker and n_tasks:  # fewer tasks than workers: the first lanes take them
        by_worker = {lane.worker: lane for lane in lanes_[:1]}
    running: dict[Any, tuple[int, str]] = {}

    def submit(worker: str) -> list[Any]:
        """The worker's next task, if any. One at a time: a second task queued behind the
        running one would save the round trip between them (milliseconds), but Dask's work
        stealing may then move it to a worker without its patches, and the meeting point
        would be decided a task too early."""
        lane = by_worker[worker]
        position = queue.next_for(lane)
        if position is None:
            return []
        future = submit_task(position, worker, queue.upcoming(lane, lookahead), not queue)
        running[future] = (position, worker)
        return [future]

    finished: list[Any] = [None] * n_tasks
    done = as_completed([f for w in by_worker for f in submit(w)])
    bar = tqdm(total=n_tasks, desc="two-point pair tasks", unit="task", disable=not progress)
    try:
        for future in done:
            position, worker = running.pop(future)
            if future.status != "finished":
                future.result()  # raises the task's error (kept by the scheduler)
            done.update(submit(worker))
            finished[position] = future
            bar.update()
        # The results are fetched once every task has ended, not one by one as they end: a
        # worker answers a fetch only between its pair tasks (TreeCorr holds the GIL while it
        # computes), so a fetch from a worker already on its next task kept this loop from
        # seeing the other worker's task end and giving it its next (GG on two workers:
        # idle gaps of 0.3-0.44 s, 0.3-1.2 s a run).
        results = client.gather(finished)
    except BaseException:
        client.cancel(list(running))
        raise
    finally:
        bar.close()
    return list(results)
