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


def _numpy_index(hist: HistSpec, values: np.ndarray) -> np.ndarray:
    """A bin as numpy computes it: shifted by one bin, scaled, clipped, truncated."""
    shifted = (values - hist.lo) * (1.0 / hist.width) + 1.0
    return np.clip(shifted, 0.0, hist.nbins + 1.0).astype(np.int64)


def _numpy_keys(
    groups: np.ndarray, values: np.ndarray, job: QuantileJob
) -> tuple[np.ndarray, np.ndarray]:
    """The keys and kept values as numpy computes them (the reference for the kernels)."""
    binned = values
    if job.center is not None:
        values = binned = np.abs(values - np.asarray(job.center)[groups])
    elif job.offset is not None:
        binned = values - np.asarray(job.offset)[groups]
    return groups * (job.hist.nbins + 2) + _numpy_index(job.hist, binned), values


@pytest.mark.parametrize("kind", ["plain", "offset", "center"])
def test_compiled_counts_and_gathers_equal_numpy(kind: str) -> None:
    """Every value's bin, for the passes (counts, gathers) and for the driver
    (HistSpec.index), equals numpy's arithmetic, on bin edges, one ulp either side, and in
    the under- and overflow bins."""
    rng = np.random.default_rng(7)
    hist = HistSpec(-2.0, 0.1, 40)
    edges = hist.lo + hist.width * np.arange(hist.nbins + 1)
    values = np.concatenate(
        [
            rng.normal(0.0, 1.5, 20_000),
            edges,
            np.nextafter(edges, -np.inf),
            np.nextafter(edges, np.inf),
            [-1e9, 1e9],
        ]
    )
    ngroups = 1 if kind == "plain" else 5
    groups = rng.integers(0, ngroups, len(values))
    shifts = tuple(rng.normal(0, 0.3, ngroups).tolist())

    @dataclass(frozen=True)
    class Grouped:
        def values(self, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return groups, part

    job = QuantileJob(
        Grouped(),
        hist,
        ngroups,
        (0.5,),
        center=shifts if kind == "center" else None,
        offset=shifts if kind == "offset" else None,
    )
    # the driver's bins (HistSpec.index), whole arrays and single numbers alike
    assert np.array_equal(hist.index(values), _numpy_index(hist, values))
    assert int(hist.index(float(edges[7]))) == int(_numpy_index(hist, edges[7:8])[0])
    keys, kept = _numpy_keys(groups, values, job)
    size = ngroups * (hist.nbins + 2)
    assert np.array_equal(job.counts(values), np.bincount(keys, minlength=size))
    wanted = np.zeros(size, dtype=bool)
    wanted[rng.choice(size, size // 3, replace=False)] = True
    got_keys, got_values = job.gather(values, wanted)
    assert np.array_equal(got_keys, keys[wanted[keys]])
    assert np.array_equal(got_values, kept[wanted[keys]])


def test_density_grid_equals_numpy() -> None:
    """The colour-colour density grid against numpy's floor and bincount, edges included."""
    from skydask.analyses.locus.kernels import grid_counts

    rng = np.random.default_rng(3)
    x0, x1, nx, y0, y1, ny = -0.4, 2.0, 48, -0.4, 2.6, 60
    x = np.concatenate([rng.uniform(-1, 3, 50_000), np.linspace(x0, x1, 49), [np.nan]])
    y = np.concatenate([rng.uniform(-1, 3, 50_000), np.linspace(y0, y1, 49), [0.5]])
    ix = np.floor((x - x0) / (x1 - x0) * nx)
    iy = np.floor((y - y0) / (y1 - y0) * ny)
    inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    expected = np.bincount((ix[inside] * ny + iy[inside]).astype(np.int64), minlength=nx * ny)
    counts = np.zeros(nx * ny, dtype=np.int64)
    grid_counts(x, y, x0, x1 - x0, nx, y0, y1 - y0, ny, counts)
    assert np.array_equal(counts, expected)
