"""Lanes (:mod:`skydask.analyses.twopoint.regions`) and the tree cache they feed.

The lanes split a sweep of tasks among workers by estimated cost; the dispatch lets two
workers of a stretch meet wherever their tasks' real durations put them; the cache keeps
the trees of a worker's next tasks. The exactness of the whole measurement on 1, 2 and 4
workers is in ``test_twopoint_exact.py``.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
import pytest

from analyses.twopoint_testdata import local_client, mock_sources
from skydask.analyses.twopoint.config import TwoPointConfig
from skydask.analyses.twopoint.pairs import (
    PairJob,
    clear_cache,
    held,
    load_patches,
    run_pairs,
    task_threads,
)
from skydask.analyses.twopoint.patches import Patch, build_patch
from skydask.analyses.twopoint.regions import dispatch, lanes, needed_patches, owners
from skydask.analyses.twopoint.samples import Calibration


def test_lanes_share_the_cost_and_cover_every_task_once() -> None:
    costs = [5.0, 1, 1, 1, 1, 1, 1, 1, 1, 5.0, 1, 1]
    for n in (1, 2, 3, 4, 5):
        found = lanes(costs, [f"w{k}" for k in range(n)])
        expected = sorted(p for ln in found for p in ln.expected)
        assert expected == list(range(len(costs))), n
        if n == 2:
            # one stretch worked from both ends, split at half the cost (12 of 24)
            a, b = found
            assert (a.direction, b.direction) == (1, -1) and a.expected[0] == 0
            assert b.expected[0] == len(costs) - 1
            assert sum(costs[p] for p in a.expected) == sum(costs[p] for p in b.expected) == 10
    # more workers than tasks: the extra workers get no task
    assert [ln.expected for ln in lanes([1.0, 1.0], ["a", "b", "c", "d"])] == [(0,), (), (1,), ()]


def test_patches_follow_their_lane_with_a_margin() -> None:
    found = lanes([1.0] * 6, ["a", "b"])
    refs = [[("s", k), ("s", k + 1)] for k in range(6)]  # each task: its patch and the next
    needed = needed_patches(found, refs, margin=1)
    assert needed["a"] == [("s", k) for k in range(5)]  # tasks 0-2, and 3 of the margin
    assert needed["b"] == [("s", 5), ("s", 6), ("s", 4), ("s", 3), ("s", 2)]
    # each patch is built where it is first used
    assert owners(found, refs) == {("s", 0): "a", ("s", 1): "a", ("s", 2): "a", ("s", 3): "a",
                                   ("s", 5): "b", ("s", 6): "b", ("s", 4): "b"}  # fmt: skip


def _sleep_and_name(seconds: float, position: int) -> tuple[int, str]:
    from distributed import get_worker

    time.sleep(seconds)
    return position, get_worker().address


def test_two_workers_meet_where_the_durations_put_them(capsys: pytest.CaptureFixture[str]) -> None:
    # equal estimated costs, but the first half of the tasks is slow: the worker coming
    # from the far end must run more than its expected half, and nothing runs twice
    n = 12
    durations = [0.15] * 6 + [0.01] * 6
    with local_client(2, processes=False) as client:
        workers = sorted(client.scheduler_info()["workers"])
        found = lanes([1.0] * n, workers)
        seen_upcoming: dict[int, list[int]] = {}
        last: list[int] = []

        def submit_task(position: int, worker: str, upcoming: list[int], is_last: bool) -> Any:
            seen_upcoming[position] = upcoming
            if is_last:
                last.append(position)
            return client.submit(_sleep_and_name, durations[position], position,
                                 workers=[worker], pure=False)  # fmt: skip

        results = dispatch(client, found, submit_task, n, lookahead=2, progress=True)
    assert [p for p, _ in results] == list(range(n))
    bar = capsys.readouterr().err
    assert "two-point pair tasks" in bar and f"{n}/{n}" in bar  # the bar counted them all
    first, second = found[0].worker, found[1].worker
    ran_first = [p for p, w in results if w == first]
    ran_second = [p for p, w in results if w == second]
    assert ran_first == list(range(len(ran_first)))  # from the start, in order
    assert ran_second == list(range(len(ran_first), n))  # the rest, from the far end
    assert len(ran_second) > n // 2
    # exactly one task was dispatched as the last, the one the two workers met at
    assert last == [len(ran_first) - 1] or last == [len(ran_first)]
    # the first task's hint: the next positions of the lane that started at 0
    assert seen_upcoming[0] == [1, 2] or seen_upcoming[0] == [2, 3]


def _fail_at(position: int, bad: int) -> int:
    if position == bad:
        raise ValueError(f"task {position} failed")
    time.sleep(0.3)
    return position


def test_a_failed_task_stops_the_dispatch_with_its_error() -> None:
    # the results are fetched only once every task has ended, but a failure is raised as
    # soon as it is seen, and no further task is started after it
    n, bad = 8, 1  # the first lane's second task: the other lane has at most two done
    with local_client(2, processes=False) as client:
        workers = sorted(client.scheduler_info()["workers"])
        started: list[int] = []

        def submit_task(position: int, worker: str, upcoming: list[int], is_last: bool) -> Any:
            started.append(position)
            return client.submit(_fail_at, position, bad, workers=[worker], pure=False)

        with pytest.raises(ValueError, match="task 1 failed"):
            dispatch(client, lanes([1.0] * n, workers), submit_task, n, lookahead=2)
    assert bad in started and len(started) < n


def _patches(n_patches: int) -> list[Patch]:
    # equal patches side by side in RA, so that the cache's room is exactly in patches
    frame = mock_sources(2_000 * n_patches, seed=5).sort_values("ra", ignore_index=True)
    cal = Calibration("shear", math.nan, "", 1.0, "w", False, True, "")
    out = []
    for k, rows in enumerate(np.array_split(np.arange(len(frame)), n_patches)):
        columns = {
            "ra": frame.ra.to_numpy()[rows],
            "dec": frame.dec.to_numpy()[rows],
            "e1": frame.g1.to_numpy()[rows],
            "e2": frame.g2.to_numpy()[rows],
            "wq": frame.w.to_numpy()[rows],
        }
        out.append(build_patch("s", k, "G", "source", cal, False, columns))  # fmt: skip
    return out


@pytest.mark.parametrize("room", [5, 4])
def test_a_forward_sweep_builds_each_tree_once_when_the_room_holds_a_task(room: int) -> None:
    # each anchor pairs with the next four patches: with room for a task's five trees every
    # tree is built exactly once (the fewest possible); the room is a hard cap, so with four
    # some are built again, and no task leaves more trees alive than the room
    n, width = 8, 4
    patches = _patches(n)
    keys = [f"p{k}" for k in range(n)]
    run = f"cache-test-sweep-{room}"
    load_patches(run, keys, *patches)
    config = TwoPointConfig(min_sep=1.0, max_sep=10.0, nbins=3).treecorr_config()
    largest = max(p.stats.nobj for p in patches)
    tasks = []
    for anchor in range(n):
        partners = list(range(anchor, min(n, anchor + width + 1)))
        pairs = tuple((0, s, anchor, j) for s, j in enumerate(partners))
        tasks.append(([keys[j] for j in partners], pairs))
    alive = []
    try:
        for t, (names, pairs) in enumerate(tasks):
            upcoming = [k for names_next, _ in tasks[t + 1 : t + 3] for k in names_next]
            job = PairJob("GG", config, True, pairs, run, 1, room * largest, tuple(upcoming))
            run_pairs(job, *names)
            alive.append(held()[1])
    finally:
        counts = clear_cache(run)
    assert max(alive) <= room
    if room == 5:
        assert counts["misses"] == n
    else:
        assert counts["misses"] > n


@pytest.mark.parametrize("hinted", [True, False], ids=["next-tasks-hinted", "lru-only"])
def test_the_cache_keeps_the_trees_of_the_next_tasks(hinted: bool) -> None:
    # room for three trees: the second task's second pair must evict one of the first
    # task's trees; knowing that the next task uses p0 again, p1 goes and nothing is built
    # twice, while least-recently-used alone evicts p0 and builds it again
    patches = _patches(5)
    keys = [f"p{k}" for k in range(5)]
    run = f"cache-test-{hinted}"
    load_patches(run, keys, *patches)
    config = TwoPointConfig(min_sep=1.0, max_sep=10.0, nbins=3).treecorr_config()
    largest = max(p.stats.nobj for p in patches)
    tasks = [
        (["p0", "p1"], ((0, 1, 0, 1),)),
        (["p2", "p3"], ((0, 0, 2, 2), (0, 1, 2, 3))),
        (["p0", "p4"], ((0, 1, 0, 4),)),
    ]
    try:
        for t, (names, pairs) in enumerate(tasks):
            upcoming = [k for names_next, _ in tasks[t + 1 : t + 2] for k in names_next]
            job = PairJob("GG", config, False, pairs, run, 1, 3 * largest,
                          tuple(upcoming) if hinted else None)  # fmt: skip
            run_pairs(job, *names)
    finally:
        counts = clear_cache(run)
    assert counts["misses"] == (5 if hinted else 6)


def test_the_cache_keeps_trees_no_next_task_names_while_there_is_room() -> None:
    # room for four trees, and each task names only the next task's patches: patch 0, used
    # again two tasks later, keeps its tree (freeing a tree costs about as much as building
    # it), so every tree is built once; the next tasks' patches still decide what goes
    # first once the room runs out (test above)
    patches = _patches(3)
    keys = [f"p{k}" for k in range(3)]
    run = "cache-test-room"
    load_patches(run, keys, *patches)
    config = TwoPointConfig(min_sep=1.0, max_sep=10.0, nbins=3).treecorr_config()
    largest = max(p.stats.nobj for p in patches)
    tasks = [(["p0", "p1"], ((0, 1, 0, 1),)), (["p2"], ((0, 0, 2, 2),)), (["p0"], ((0, 0, 0, 0),))]
    try:
        for t, (names, pairs) in enumerate(tasks):
            upcoming = [k for names_next, _ in tasks[t + 1 : t + 2] for k in names_next]
            job = PairJob("GG", config, False, pairs, run, 1, 4 * largest, tuple(upcoming))
            run_pairs(job, *names)
    finally:
        counts = clear_cache(run)
    assert counts == {"hits": 1, "misses": 3}


def test_the_last_task_takes_every_cpu_of_its_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # a worker's share (OMP_NUM_THREADS) for every task but the measurement's last, which
    # takes the CPUs its idle peers free; an explicit num_threads always wins
    cpus = len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert task_threads(None) == 1
    assert task_threads(None, last=True) == cpus
    assert task_threads(3, last=True) == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert task_threads(None) == task_threads(None, last=True) == cpus
