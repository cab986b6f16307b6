"""Exact quantiles in decomposable passes: the median absolute deviation read off the median's
gather pass equals numpy's, for every kind of data, with or without a pass of its own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from skydask.analyses.locus.quantiles import HistSpec, QuantileJob, QuantileQueue, merge_partials


@dataclass(frozen=True)
class Values:
    def values(self, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(len(part), dtype=np.int64), part


def _run(parts: list[np.ndarray], hist: HistSpec) -> tuple[QuantileQueue, int]:
    queue = QuantileQueue()
    queue.add({"median": QuantileJob(Values(), hist, 1, (0.5,))})
    queue.add_deviation("mad", of="median")
    passes = 0
    while queue.pending:
        tasks = queue.tasks()
        queue.update(
            merge_partials([{k: v for t in tasks for k, v in t.partial(p).items()} for p in parts])
        )
        passes += 1
    return queue, passes


def _datasets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(42)
    return {
        "normal": rng.normal(3.0, 20.0, 100_001),
        "normal even": rng.normal(-5.0, 20.0, 100_000),
        "lognormal": rng.lognormal(2.0, 1.0, 50_000),
        "cauchy": rng.standard_cauchy(50_000) * 10,
        "on bin edges": np.round(rng.normal(0.0, 5.0, 40_000), 1),
        "ties": rng.integers(-3, 4, 30_000).astype(np.float64),
        "one": np.array([7.25]),
        "two": np.array([1.0, 4.0]),
        "three": np.array([5.0, -1.0, 2.5]),
        "narrow": rng.normal(0.0, 0.01, 10_000),
    }


@pytest.mark.parametrize("name", list(_datasets()))
def test_deviation_equals_numpy(name: str) -> None:
    values = _datasets()[name]
    parts = np.array_split(values, 3)
    queue, passes = _run(parts, HistSpec(-2000.0, 0.1, 40_000))
    median = np.median(values)
    assert queue.done["median"][0][0, 0] == median
    assert queue.done["mad"][0][0, 0] == np.median(np.abs(values - median))
    # read off the median's own gather pass unless the data leave it unbounded
    assert passes == 2 + 2 * queue.fallbacks
    assert queue.fallbacks == 0


def test_deviation_beyond_the_histogram_takes_its_own_passes() -> None:
    values = np.random.default_rng(1).normal(0.0, 100.0, 20_001)
    queue, passes = _run(np.array_split(values, 4), HistSpec(-50.0, 0.1, 1_000))
    median = np.median(values)
    assert queue.done["mad"][0][0, 0] == np.median(np.abs(values - median))
    assert (queue.fallbacks, passes) == (1, 4)


def test_a_deviation_needs_a_queued_median() -> None:
    queue = QuantileQueue()
    with pytest.raises(ValueError, match="not a queued one-group median"):
        queue.add_deviation("mad", of="median")
