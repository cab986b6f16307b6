"""Exact quantiles of values spread over partitions, in two decomposable passes.

A median or a quartile is not a sum, so it cannot be merged from per-partition medians. It can
be found exactly in two passes that each move only a little data:

1. **Histogram pass.** Every partition counts its values in fixed bins (``lo``, ``width``,
   ``nbins``, plus one underflow and one overflow bin), per group; the counts are summed in a
   tree. From the total counts, the bin that holds each wanted order statistic is known, and
   so is how many values lie below that bin.
2. **Gather pass.** Every partition returns only its values inside those few bins; they are
   concatenated, sorted, and the order statistic is read off by its rank within the bin.

The result is the same number ``numpy.percentile`` (method ``"linear"``) gives on all values
collected in one place, not an approximation: the bin width only sets how many values the
second pass gathers (for a distribution of width ``s`` with ``N`` values, about
``N * width / (2.5 s)`` per wanted statistic: a few hundred values for a million stars with
0.1 mmag bins and a 20 mmag width). Values in the under- and overflow bins are gathered the same
way, so a statistic outside the histogram range is still exact.

Both passes compute the values with the same function on the same rows, so a value falls in the
same bin both times; the counts are checked against what is gathered.

A :class:`QuantileQueue` lets these passes ride along with an analysis' other passes, and
saves passes where the histogram already says enough: a median absolute deviation is read off
the median's gather pass (:meth:`QuantileQueue.add_deviation`), and :meth:`QuantileQueue.bounds`
gives where a quantile lies before its gather pass, for work that needs it in that same pass.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from skydask.analyses.locus import kernels
from skydask.errors import SkydaskError

__all__ = [
    "SIGMA_MAD",
    "GatherTask",
    "HistSpec",
    "HistTask",
    "QuantileJob",
    "QuantileQueue",
    "ValueSource",
    "lerp",
    "merge_partials",
]

log = logging.getLogger(__name__)

# sigma of a Gaussian per unit median absolute deviation: 1 / Phi^-1(3/4), the factor of
# scipy.stats.median_abs_deviation(scale="normal") that Rubin's sigmaMad uses.
SIGMA_MAD = 1.482602218505602

# A bin holding more values than this is still gathered (the result stays exact), but it means
# the histogram is far too coarse for the data, which is worth a warning.
_LARGE_GATHER = 2_000_000

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
_NO_GROUPS = np.zeros(0, dtype=np.int64)  # the kernels' "every value in group 0"


class ValueSource(Protocol):
    """What a quantile job measures: ``(group index, value)`` of the rows of one partition.

    ``data`` is whatever the pass hands to its tasks (a frame, or a cache of its columns).
    The values must be finite (a source drops what it does not measure).
    """

    def values(self, data: Any) -> tuple[IntArray, FloatArray]: ...


@dataclass(frozen=True)
class HistSpec:
    """Fixed histogram bins: ``nbins`` of ``width`` from ``lo``, plus under- and overflow."""

    lo: float
    width: float
    nbins: int

    @property
    def scale(self) -> float:
        """Bins per unit of value."""
        return 1.0 / self.width

    def index(self, values: Any) -> IntArray:
        """Bin of each value (an array of any shape, or a number): 0 underflow, 1..nbins
        inside, nbins + 1 overflow. The passes' own definition (the kernels' ``_bin``), so
        that the driver's planning and they agree on every value's bin.

        >>> HistSpec(0.0, 0.5, 2).index(np.array([-3.0, 0.0, 0.6, 1.0, 7.0])).tolist()
        [0, 1, 2, 3, 3]
        """
        values = np.asarray(values, dtype=np.float64)
        out = np.empty(values.shape, dtype=np.int64)
        kernels.bin_indices(
            np.ascontiguousarray(values).reshape(-1), self.lo, self.scale, self.nbins,
            out.reshape(-1),
        )  # fmt: skip
        return out

    def edges(self, b: int) -> tuple[float, float]:
        """The value range of bin ``b`` (infinite for under- and overflow)."""
        if b == 0:
            return -math.inf, self.lo
        if b == self.nbins + 1:
            return self.lo + self.nbins * self.width, math.inf
        return self.lo + (b - 1) * self.width, self.lo + b * self.width


@dataclass(frozen=True)
class QuantileJob:
    """Quantiles ``qs`` (fractions) of the values of ``source``, per group of ``ngroups``.

    With ``center`` (one value per group), the quantiles are those of ``|value - center|``
    instead: the second step of a median absolute deviation. ``offset`` (one value per group)
    shifts the bins of each group, ``value - offset`` being binned, without changing the result:
    a group's bins can then sit around its expected value, so that narrow bins cover it.
    """

    source: ValueSource
    hist: HistSpec
    ngroups: int
    qs: tuple[float, ...]
    center: tuple[float, ...] | None = None
    offset: tuple[float, ...] | None = None

    @functools.cached_property
    def _binning(self) -> tuple[int, FloatArray]:
        """How the values are binned (:data:`~.kernels.PLAIN`, ``SHIFTED`` by ``offset`` or
        ``CENTRED`` on ``center``) and the per-group shifts, as the kernels take them."""
        if self.center is not None:
            return kernels.CENTRED, np.asarray(self.center, dtype=np.float64)
        if self.offset is not None:
            # a shift is monotonic, so the k-th value of a group is the one whose shifted value
            # is k-th: bin the shifted values, keep the originals (no rounding from the shift)
            return kernels.SHIFTED, np.asarray(self.offset, dtype=np.float64)
        return kernels.PLAIN, np.zeros(1)

    def _arguments(self, data: Any) -> tuple[Any, ...]:
        groups, values = self.source.values(data)
        mode, shift = self._binning
        groups = groups if self.ngroups > 1 else _NO_GROUPS
        hist = self.hist
        return groups, values, mode, shift, hist.lo, hist.scale, hist.nbins

    def counts(self, data: Any) -> IntArray:
        """Counts per flat bin key ``group * (nbins + 2) + bin`` (see :meth:`HistSpec.index`)
        of the values of one partition."""
        out = np.zeros(self.ngroups * (self.hist.nbins + 2), dtype=np.int64)
        kernels.bin_counts(*self._arguments(data), out)
        return out

    def gather(self, data: Any, wanted: BoolArray) -> tuple[IntArray, FloatArray]:
        """The flat keys and the values (the deviations, for a centred job) of one partition's
        values whose key is ``wanted``."""
        arguments = self._arguments(data)
        n = len(arguments[1])
        keys, values = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.float64)
        kept = kernels.bin_gather(*arguments, wanted, keys, values)
        return keys[:kept].copy(), values[:kept].copy()


@dataclass(frozen=True)
class HistTask:
    """Partial of the histogram pass: bin counts of one job."""

    key: str
    job: QuantileJob

    def partial(self, data: Any) -> dict[str, Any]:
        return {self.key: self.job.counts(data)}


@dataclass(frozen=True)
class GatherTask:
    """Partial of the gather pass: the values of one job inside the wanted bins."""

    key: str
    job: QuantileJob
    wanted: tuple[int, ...]

    def partial(self, data: Any) -> dict[str, Any]:
        # a lookup table over all keys, where np.isin would sort
        table = np.zeros(self.job.ngroups * (self.job.hist.nbins + 2), dtype=bool)
        table[np.asarray(self.wanted, dtype=np.int64)] = True
        return {self.key: [self.job.gather(data, table)]}


def merge_partials(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine partial summaries: lists are concatenated, everything else is summed.

    Examples
    --------
    >>> merge_partials([{"n": 1, "v": [1]}, {"n": 2, "v": [2, 3]}])
    {'n': 3, 'v': [1, 2, 3]}
    """
    total: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key not in total:
                total[key] = list(value) if isinstance(value, list) else value
            elif isinstance(value, list):
                total[key].extend(value)
            else:
                total[key] = total[key] + value
    return total


def lerp(a: Any, b: Any, t: Any) -> Any:
    """Linear interpolation as ``numpy.percentile`` does it (exact at both ends).

    Examples
    --------
    >>> lerp(np.array([1.0, 1.0]), np.array([3.0, 3.0]), np.array([0.25, 1.0])).tolist()
    [1.5, 3.0]
    """
    a, b, t = np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(t, np.float64)
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1.0 - t), a + diff * t)


def _ranks(counts: IntArray, job: QuantileJob) -> dict[str, Any]:
    """For every group and quantile: the two order statistics to interpolate, and the weight.

    Each order statistic is given by the flat key of the bin that holds it and its rank among
    the values of that bin (numpy's "linear" method: ranks ``floor(q (n-1))`` and the next).
    """
    width = job.hist.nbins + 2
    table = counts.reshape(job.ngroups, width)
    n = table.sum(axis=1)
    cum = np.cumsum(table, axis=1)
    qs = np.asarray(job.qs, dtype=np.float64)
    pos = qs[None, :] * (n[:, None] - 1).astype(np.float64)  # (groups, quantiles)
    valid = np.broadcast_to(n[:, None] > 0, pos.shape)
    k0 = np.where(valid, np.floor(pos), 0).astype(np.int64)
    k1 = np.minimum(k0 + 1, np.maximum(n[:, None] - 1, 0))
    rows = np.arange(job.ngroups)[:, None]
    out: dict[str, Any] = {"n": n, "valid": valid, "t": np.where(valid, pos - k0, 0.0)}
    for name, k in (("0", k0), ("1", k1)):
        # first bin whose cumulative count exceeds the rank
        b = np.stack([(cum <= k[:, j : j + 1]).sum(axis=1) for j in range(len(qs))], axis=1)
        b = np.minimum(b, width - 1)
        before = np.where(b > 0, cum[rows, np.maximum(b - 1, 0)], 0)
        out["key" + name] = rows * width + b
        out["offset" + name] = k - before
    return out


class QuantileQueue:
    """Quantile jobs whose two passes ride along with other work.

    An analysis that makes passes over its data for other reasons (refitting a line, say) adds
    its quantile jobs here and hands :meth:`tasks` to every pass it makes, with its own tasks;
    :meth:`update` then moves each job on: from its histogram pass to its gather pass, then to
    :attr:`done`. Jobs that do not depend on each other thus share passes instead of each
    costing two of their own.

    Examples
    --------
    >>> @dataclass(frozen=True)
    ... class Values:
    ...     def values(self, part):
    ...         return np.zeros(len(part), dtype=np.int64), np.asarray(part, dtype=float)
    >>> parts = [[5.0, 1.0, 3.0], [2.0, 4.0, 9.5]]
    >>> def run_pass(tasks):
    ...     return merge_partials([{k: v for t in tasks for k, v in t.partial(p).items()}
    ...                            for p in parts])
    >>> queue = QuantileQueue()
    >>> queue.add({"median": QuantileJob(Values(), HistSpec(0.0, 1.0, 10), 1, (0.5,))})
    >>> [type(t).__name__ for t in queue.tasks()]
    ['HistTask']
    >>> queue.update(run_pass(queue.tasks()))
    >>> [type(t).__name__ for t in queue.tasks()], queue.bounds("median")
    (['GatherTask'], (array([[3.]]), array([[5.]])))
    >>> queue.update(run_pass(queue.tasks()))
    >>> queue.pending, queue.done["median"][0].tolist()
    (False, [[3.5]])

    Exactly ``numpy.percentile`` (method "linear"), whatever the bins:

    >>> quartiles = QuantileJob(Values(), HistSpec(0.0, 1.0, 4), 1, (0.25, 0.5, 0.75))
    >>> queue.add({"quartiles": quartiles})
    >>> while queue.pending:
    ...     queue.update(run_pass(queue.tasks()))
    >>> q, n = queue.done["quartiles"]
    >>> q.tolist(), n.tolist(), np.percentile([5, 1, 3, 2, 4, 9.5], [25, 50, 75]).tolist()
    ([[2.25, 3.5, 4.75]], [6], [2.25, 3.5, 4.75])
    """

    def __init__(self) -> None:
        self._jobs: dict[str, QuantileJob] = {}
        self._gathering: dict[str, tuple[dict[str, Any], IntArray]] = {}
        # median job -> the name of its median absolute deviation, and the windows planned
        self._deviations: dict[str, str] = {}
        self._windows: dict[str, _Windows | None] = {}
        self.done: dict[str, tuple[FloatArray, IntArray]] = {}
        self.fallbacks = 0  # deviations that needed passes of their own

    @property
    def pending(self) -> bool:
        """Whether a job still needs a pass."""
        return bool(self._jobs)

    def add(self, jobs: Mapping[str, QuantileJob]) -> None:
        """Queue jobs; their histogram pass is the next one."""
        for name, job in jobs.items():
            if name in self._jobs or name in self.done:
                raise ValueError(f"quantile job {name!r} is already queued")
            self._jobs[name] = job

    def add_deviation(self, name: str, of: str) -> None:
        """Queue the median absolute deviation (``name``) of the values of median job ``of``.

        Usually it costs no pass of its own: after the median's histogram pass, the bins that
        can hold ``median +- MAD`` are known from the same histogram, and the median's gather
        pass gathers them too (:func:`_deviation_windows`); when the exact median is known,
        the MAD is read off those values and the counts between them. Where that cannot be
        verified exact, it becomes an ordinary job centred on the median (two more passes).
        """
        job = self._jobs.get(of)
        if job is None or of in self._gathering or job.ngroups != 1 or job.qs != (0.5,):
            raise ValueError(f"{of!r} is not a queued one-group median awaiting its histogram")
        if job.center is not None or job.offset is not None:
            raise ValueError(f"{of!r} is not a plain median")
        self._deviations[of] = name

    def tasks(self) -> list[Any]:
        """The tasks every queued job needs in the next pass."""
        out: list[Any] = []
        for name, job in self._jobs.items():
            if name in self._gathering:
                ranks, counts = self._gathering[name]
                wanted = _wanted(name, job, ranks, counts)
                if name in self._deviations:
                    if name not in self._windows:
                        self._windows[name] = _deviation_windows(job, ranks, counts)
                    windows = self._windows[name]
                    if windows is not None:
                        wanted = tuple(sorted(set(wanted) | set(windows.gathered)))
                out.append(GatherTask(name, job, wanted))
            else:
                out.append(HistTask(name, job))
        return out

    def bounds(self, name: str) -> tuple[FloatArray, FloatArray] | None:
        """Where the quantiles of a job lie, once its histogram pass is done (else None).

        Each quantile is between the lower edge of the bin holding its lower order statistic
        and the upper edge of the bin holding its upper one: arrays ``(ngroups, len(qs))``
        (infinite for an under- or overflow bin; NaN for an empty group). A pass that needs a
        quantile before the gather pass has found it can work with this range (see
        :class:`~skydask.analyses.locus.fitting.ClipSumsTask`).
        """
        if name not in self._gathering:
            return None
        job = self._jobs[name]
        ranks, _ = self._gathering[name]
        width = job.hist.nbins + 2
        lo = np.full(ranks["valid"].shape, np.nan)
        hi = np.full(ranks["valid"].shape, np.nan)
        for index in zip(*np.nonzero(ranks["valid"]), strict=True):
            lo[index] = job.hist.edges(int(ranks["key0"][index]) % width)[0]
            hi[index] = job.hist.edges(int(ranks["key1"][index]) % width)[1]
        return lo, hi

    def update(self, merged: Mapping[str, Any]) -> None:
        """Take the merged partials of a pass that ran :meth:`tasks`."""
        for name, job in list(self._jobs.items()):
            if name in self._gathering:
                ranks, counts = self._gathering.pop(name)
                chunks = merged.get(name, [])
                self.done[name] = _pick(name, ranks, counts, chunks)
                del self._jobs[name]
                if name in self._deviations:
                    self._resolve_deviation(name, job, counts, chunks)
            else:
                counts = np.asarray(merged[name], dtype=np.int64)
                self._gathering[name] = (_ranks(counts, job), counts)

    def _resolve_deviation(
        self, of: str, job: QuantileJob, counts: IntArray, chunks: list[Any]
    ) -> None:
        name = self._deviations.pop(of)
        windows = self._windows.pop(of, None)
        (median,), (n,) = self.done[of]
        if n == 0:
            return  # no values: no deviation either
        center = float(median[0])
        mad = None if windows is None else windows.deviation(center, counts, chunks)
        if mad is None:
            self.fallbacks += 1
            deviation = QuantileJob(job.source, job.hist, 1, (0.5,), center=(center,))
            self.add({name: deviation})
        else:
            self.done[name] = (np.array([[mad]]), np.array([n]))


@dataclass(frozen=True)
class _Windows:
    """The bins a median absolute deviation needs, planned from the median's histogram.

    ``gathered``: flat keys of the bins around ``median -+ MAD`` for every median in its
    bin; ``inner``: the bins between them (their values are within ``d_lo`` of any such
    median); ``d_lo``, ``d_hi``: the range the MAD's order statistics are in; ``ranks``:
    numpy's two order statistics of the absolute deviations and the interpolation weight.
    """

    gathered: tuple[int, ...]
    inner: tuple[int, ...]
    d_lo: float
    d_hi: float
    ranks: tuple[int, int, float]

    def deviation(self, center: float, counts: IntArray, chunks: list[Any]) -> float | None:
        """The exact MAD about ``center`` from the gathered values, or None if the values
        gathered cannot prove it (then it needs passes of its own)."""
        wanted = np.zeros(len(counts), dtype=bool)
        wanted[list(self.gathered)] = True
        keys = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, np.int64)
        values = np.concatenate([c[1] for c in chunks]) if chunks else np.zeros(0)
        values = values[wanted[keys]]
        if len(values) != int(counts[list(self.gathered)].sum()):
            return None  # not every planned bin came back whole
        # the same arithmetic as a job centred on the median (kernels.CENTRED)
        deviations = np.sort(np.abs(values - np.asarray([center], dtype=np.float64)[0]))
        inner = int(counts[list(self.inner)].sum())
        below = int(np.count_nonzero(deviations <= self.d_lo))
        k0, k1, t = self.ranks
        picked = []
        for k in (k0, k1):
            # the k-th deviation of all values is the (k - inner)-th gathered one when the
            # values below d_lo (inner ones and gathered ones) come before it, or no value is
            # inner, and when it is at most d_hi (every value outside the bins deviates by
            # more than d_hi)
            i = k - inner
            if i < 0 or (inner and i < below) or i >= len(deviations):
                return None
            if deviations[i] > self.d_hi:
                return None
            picked.append(deviations[i])
        return float(lerp(picked[0], picked[1], t))


def _deviation_windows(
    job: QuantileJob, ranks: dict[str, Any], counts: IntArray
) -> _Windows | None:
    """Plan the bins for the MAD of a one-group median job from its histogram (None when the
    histogram cannot bound it: an open-ended bin, no values)."""
    hist = job.hist
    n = int(ranks["n"][0])
    if n == 0 or not ranks["valid"][0, 0]:
        return None
    m_lo = hist.edges(int(ranks["key0"][0, 0]))[0]
    m_hi = hist.edges(int(ranks["key1"][0, 0]))[1]
    if not (math.isfinite(m_lo) and math.isfinite(m_hi)):
        return None
    pos = 0.5 * (n - 1)
    k0 = math.floor(pos)
    k1 = min(k0 + 1, n - 1)
    cum = np.concatenate([[0], np.cumsum(counts)])  # cum[b] = values in bins < b

    def in_bins(first: IntArray, last: IntArray) -> IntArray:
        first, last = np.clip(first, 0, len(counts)), np.clip(last, -1, len(counts) - 1)
        return np.where(last >= first, cum[last + 1] - cum[first], 0)

    def bin_of(v: Any) -> Any:
        return hist.index(v)

    def d_at(i: Any) -> Any:  # the same products as np.arange(nbins + 1) * width
        return i * hist.width

    # at most how many values deviate by <= d from some median in [m_lo, m_hi], and at least
    # (both grow with d): d_lo is the largest d with at most k0 values (d < the k0-th
    # deviation), d_hi the smallest with at least k1 + 1 (d >= the k1-th deviation)
    def most(i: IntArray) -> IntArray:
        return in_bins(bin_of(m_lo - d_at(i)) - 1, bin_of(m_hi + d_at(i)) + 1)

    def least(i: IntArray) -> IntArray:
        return in_bins(bin_of(m_hi - d_at(i)) + 2, bin_of(m_lo + d_at(i)) - 2)

    steps = hist.nbins + 1
    first_over = _first_true(lambda i: most(i) > k0, steps)
    first_hi = _first_true(lambda i: least(i) >= k1 + 1, steps)
    if first_hi == steps:
        return None
    d_lo = float(d_at(np.int64(first_over - 1))) if first_over else 0.0
    d_hi = float(d_at(np.int64(first_hi)))
    # bins around median -+ MAD, one bin wider on each side than the bins' own arithmetic
    low = range(int(bin_of(m_lo - d_hi)) - 1, int(bin_of(m_hi - d_lo)) + 2)
    high = range(int(bin_of(m_lo + d_lo)) - 1, int(bin_of(m_hi + d_hi)) + 2)
    gathered = sorted(set(low) | set(high))
    if gathered[0] <= 0 or gathered[-1] >= hist.nbins + 1:
        return None  # an open-ended bin: could be anything
    inner = [b for b in range(gathered[0], gathered[-1] + 1) if b not in set(gathered)]
    return _Windows(tuple(gathered), tuple(inner), d_lo, d_hi, (k0, k1, pos - k0))


def _first_true(predicate: Callable[[IntArray], BoolArray], n: int, step: int = 64) -> int:
    """The first ``i`` in ``0..n-1`` where a predicate that stays true once true holds (``n``
    if none), evaluated on every ``step``-th index and then within one step, instead of on
    all ``n`` (a histogram's 40,000 bins: the driver runs this between two passes, while
    the workers wait).

    >>> _first_true(lambda i: i * i >= 5000, 1000), _first_true(lambda i: i > 5000, 1000)
    (71, 1000)
    """
    coarse = np.arange(0, n, step)
    hit = np.flatnonzero(predicate(coarse))
    if len(hit) and hit[0] == 0:
        return 0
    lo = int(coarse[hit[0] - 1]) + 1 if len(hit) else int(coarse[-1]) + 1
    hi = int(coarse[hit[0]]) + 1 if len(hit) else n
    fine = np.arange(lo, hi)
    found = np.flatnonzero(predicate(fine))
    return int(fine[found[0]]) if len(found) else n


def _wanted(
    name: str, job: QuantileJob, ranks: dict[str, Any], counts: IntArray
) -> tuple[int, ...]:
    """The bins that hold the order statistics (warning when one is very full)."""
    valid = ranks["valid"]
    wanted = np.unique(np.concatenate([ranks["key0"][valid], ranks["key1"][valid]]))
    big = counts[wanted][counts[wanted] > _LARGE_GATHER]
    if len(big):
        log.warning(
            "quantiles of %r gather %s values from single histogram bins; the bins "
            "(width %g) are too coarse for these data",
            name,
            big.tolist(),
            job.hist.width,
        )
    return tuple(int(k) for k in wanted)


def _pick(
    name: str, ranks: dict[str, Any], counts: IntArray, chunks: list[Any]
) -> tuple[FloatArray, IntArray]:
    """The quantiles from the gathered ``(keys, values)`` chunks."""
    keys = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, np.int64)
    values = np.concatenate([c[1] for c in chunks]) if chunks else np.zeros(0)
    # by bin, then by value: an unstable sort of the values, then a stable one of the keys
    # (as int32 where they fit), for numpy's lexsort took 2-3 ms for 30,000 values while
    # the workers waited
    order = np.argsort(values)
    narrow = keys.astype(np.int32) if len(keys) and keys.max() < 2**31 else keys
    order = order[np.argsort(narrow[order], kind="stable")]
    keys, values = keys[order], values[order]
    valid = ranks["valid"]
    picked = []
    for j in ("0", "1"):
        key = ranks["key" + j][valid]
        lo = np.searchsorted(keys, key, side="left")
        hi = np.searchsorted(keys, key, side="right")
        if np.any(hi - lo != counts[key]):  # both passes must see the same values
            raise SkydaskError(
                f"quantiles of {name!r}: the histogram and gather passes saw different "
                "values (the data changed between passes)"
            )
        picked.append(values[lo + ranks["offset" + j][valid]])
    result = np.full(valid.shape, np.nan)
    result[valid] = lerp(picked[0], picked[1], ranks["t"][valid])
    return result, ranks["n"]
