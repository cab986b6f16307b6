"""Exact per-pixel statistics of object depths, reduced over a catalogue's partitions.

The ``"flux_err"`` depth of a pixel is the median over its objects of
``-2.5 log10(t * psFluxErr) + 31.4`` (``t`` the S/N threshold, 5 for m5), exactly as numpy
would compute it on all of the pixel's objects at once, and its spread the half-difference of
the 15.87 and 84.13 percentiles (numpy's default linear interpolation). Medians do not
decompose, and the rows of one pixel can sit in several partitions, so the reduction keeps,
for each pixel, one of three states:

``closed``
    every row of the pixel is in this summary: only the final statistics travel.
``open``
    the pixel may have rows elsewhere: its flux errors travel, sorted, and are merged with
    the other partitions' (an exact merge; the statistics are computed once all are in).
``conflict``
    the pixel was closed in one summary and also has rows in another (the layout broke the
    assumption that made it closed): its statistics cannot be merged, so only its count is
    kept and its rows are gathered again in a second pass, restricted to such pixels.

Which pixels a partition closes depends on what is known about the layout:

* HATS catalogues partitioned at an order no finer than the map's, one file per partition
  (``local=True``): every map pixel lies in one file, so everything is closed and only final
  statistics leave the workers; memory is that of the map.
* Otherwise each partition closes the pixels all of whose eight neighbours also hold its
  rows, and leaves open the pixels on the edge of its own footprint. In a spatially compact
  layout (DC2 tracts and patches, HATS at a finer order) the pixels shared between partitions
  lie on those edges, so they are merged exactly in this single pass; the open values are
  those of the edge pixels (8 % of the rows at nside 1024 for 2-degree tracts). Each merge
  applies the same rule to the union of its inputs, so pixels along the common edges of
  neighbouring partitions are settled on the way up the tree and what travels scales with
  the perimeter of the merged area. The rule is a heuristic; when it fails (a pixel closed
  in one partition also has rows in another) the pixel becomes a conflict, never a wrong
  number.
* In an unordered catalogue (rows of every pixel in every partition) most pixels end as
  conflicts; the second pass gathers them in batches of at most ``carry_budget`` values, one
  restricted read per batch, so memory stays bounded at the cost of extra reads.

Flux errors are kept in their stored precision: depths are a decreasing function of the flux
error, so sorting errors sorts depths, and float32 errors sort fast as one integer key
``pixel << 32 | bits`` (positive floats order like their bit patterns). Depths are
computed for the few order statistics only, with the same float64 arithmetic as the schema's
``m5_<b>`` quantity, so a median is bit-identical to numpy's on the ``m5_<b>`` column.

The ``"snr_window"`` method is decomposable: per pixel the count, mean and second central
moment of the window's magnitudes, merged with Chan et al.'s parallel formulae.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import hpgeom
import numpy as np
import numpy.typing as npt
import pandas as pd

from skydask.catalog.healpix_index import HEALPIX29_COLUMN, HEALPIX29_ORDER

__all__ = ["BandStats", "PixelReducer", "ReductionState", "depth_from_flux_err"]

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

Q_LO, Q_HI = 0.15865525393145707, 0.8413447460685429
"""Percentiles of the spread: a Gaussian's mean -/+ one sigma, so the spread is its sigma."""

_LOW32 = np.uint64(0xFFFFFFFF)
_NO_PIXEL = np.uint64(0xFFFFFFFF) << np.uint64(32)  # sort-key high half of rows without a pixel
_SMALLEST_POSITIVE = np.uint64(1)  # float32 bit patterns: 1 is the smallest positive number
_INFINITY = np.uint64(0x7F800000)  # +inf; every larger pattern is NaN or negative


def depth_from_flux_err(err: npt.ArrayLike, snr: float = 5.0) -> FloatArray:
    """Depth at S/N ``snr`` from a PSF flux error in nJy: ``-2.5 log10(snr * err) + 31.4``.

    Computed in float64 in the order of the schema's ``m5_<b>`` definition, so that for
    ``snr = 5`` the numbers are bit-identical to that quantity.

    Examples
    --------
    >>> depth_from_flux_err([20.0, 200.0]).round(3).tolist()
    [26.4, 23.9]
    """
    e = np.asarray(err, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(-2.5 * np.log10(snr * e) + 31.4, dtype=np.float64)


def pixel_index(frame: pd.DataFrame, nside: int) -> tuple[Int64Array, BoolArray]:
    """NESTED pixel of each row at ``nside``, and which rows have a position.

    From the HATS ``_healpix_29`` column when the frame has it (the pixel HATS assigned the
    row, and a shift instead of trigonometry), else from ``ra`` and ``dec``.
    """
    order = int(math.log2(nside))
    if HEALPIX29_COLUMN in frame.columns:
        hp29 = np.asarray(frame[HEALPIX29_COLUMN].to_numpy(), dtype=np.int64)
        return hp29 >> (2 * (HEALPIX29_ORDER - order)), hp29 >= 0
    ra = np.asarray(frame["ra"].to_numpy(), dtype=np.float64)
    dec = np.asarray(frame["dec"].to_numpy(), dtype=np.float64)
    if len(ra) and _all_valid(ra, dec):  # the usual case, checked by four reductions
        pix = hpgeom.angle_to_pixel(nside, ra, dec, nest=True, lonlat=True)
        return np.asarray(pix, dtype=np.int64), np.ones(len(ra), dtype=bool)
    ok = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
    pix = np.full(len(ra), -1, dtype=np.int64)
    if ok.any():
        pix[ok] = hpgeom.angle_to_pixel(nside, ra[ok], dec[ok], nest=True, lonlat=True)
    return pix, ok


def _all_valid(ra: FloatArray, dec: FloatArray) -> bool:
    # min and max propagate NaN, so finite extremes mean finite values
    ra_lo, ra_hi, dec_lo, dec_hi = ra.min(), ra.max(), dec.min(), dec.max()
    return bool(np.isfinite(ra_lo) and np.isfinite(ra_hi) and -90.0 <= dec_lo <= dec_hi <= 90.0)


def pixel_ranks(pix: Int64Array, valid: BoolArray) -> tuple[Int64Array, Int64Array]:
    """The distinct valid pixels (ascending) and each row's rank among them (-1: invalid).

    A hash factorisation (linear time) and a sort of the few distinct pixels, instead of
    ``np.unique``'s sort of every row.
    """
    all_valid = bool(valid.all())
    codes, uniques = pd.factorize(pix if all_valid else pix[valid])
    order = np.argsort(uniques)
    remap = np.empty(len(order), dtype=np.int64)
    remap[order] = np.arange(len(order), dtype=np.int64)
    ranks = remap[codes]
    if all_valid:
        return np.asarray(uniques[order], dtype=np.int64), ranks
    full = np.full(len(pix), -1, dtype=np.int64)
    full[valid] = ranks
    return np.asarray(uniques[order], dtype=np.int64), full


def _sort_within(rank: Int64Array, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``values`` sorted by (rank, value): ranks ascending, values ascending within a rank.

    Values must be positive and finite. float32 values and their rank fit one uint64 key,
    sorted by value (several times faster than an argsort); others go through
    ``np.lexsort``. Either way the result is exact.
    """
    if values.dtype == np.float32:
        key = (rank.astype(np.uint64) << np.uint64(32)) | values.view(np.uint32)
        key.sort()
        return _low_floats(key)
    return np.asarray(values[np.lexsort((values, rank))])


def _low_floats(key: npt.NDArray[np.uint64]) -> npt.NDArray[np.float32]:
    """The float32 values held in the low 32 bits of sort keys."""
    return (key & _LOW32).astype(np.uint32).view(np.float32)


def _as_values(sorted_values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Flux errors from sorted values or from (pixel, float32 bits) sort keys."""
    return _low_floats(sorted_values) if sorted_values.dtype == np.uint64 else sorted_values


def _segments(pieces: npt.NDArray[Any], starts: Int64Array, counts: Int64Array) -> npt.NDArray[Any]:
    """The concatenation of ``pieces[start:start + count]`` for each segment, in order."""
    total = int(counts.sum())
    if total == 0:
        return pieces[:0]
    offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return pieces[offsets + np.arange(total)]


def _lerp(a: FloatArray, b: FloatArray, t: FloatArray) -> FloatArray:
    """numpy's quantile interpolation, operation for operation (``numpy.lib._lerp``)."""
    diff = b - a
    out = a + diff * t
    upper = t >= 0.5
    out[upper] = (b - diff * (1 - t))[upper]
    return out


def _order_stats(
    sorted_err: npt.NDArray[Any], starts: Int64Array, counts: Int64Array, snr: float
) -> FloatArray:
    """Per segment (median, percentile 15.87, percentile 84.13) of the depths, shape (k, 3).

    ``sorted_err`` (flux errors, or uint64 sort keys holding float32 errors in their low
    bits) is ascending within each segment, so the depths are descending: the ``k``-th
    smallest depth of a segment of ``n`` is at ``start + n - 1 - k``.
    """
    out = np.empty((len(counts), 3), dtype=np.float64)
    if not len(counts):
        return out
    n, last = counts, starts + counts - 1

    def kth(k: Int64Array) -> FloatArray:
        return depth_from_flux_err(_as_values(sorted_err[last - k]), snr)

    # numpy's median: the mean of the two middle values (one value twice when n is odd)
    out[:, 0] = (kth((n - 1) // 2) + kth(n // 2)) / 2
    nf = n.astype(np.float64)
    for col, q in ((1, Q_LO), (2, Q_HI)):
        # numpy's "linear" method: virtual index n q + (1 - q) - 1, clipped to the sample
        virtual = nf * q + (1.0 + q * (1.0 - 1.0 - 1.0)) - 1.0
        below = np.floor(virtual).astype(np.int64)
        above = below + 1
        top = virtual >= nf - 1
        below[top] = n[top] - 1
        above[top] = n[top] - 1
        bottom = virtual < 0
        below[bottom] = 0
        above[bottom] = 0
        gamma = virtual - np.floor(virtual)
        out[:, col] = _lerp(kth(below), kth(np.minimum(above, n - 1)), gamma)
    return out


@dataclass
class ExactPart:
    """Summary of one band for the ``"flux_err"`` method (see the module docstring)."""

    closed_pixels: Int64Array
    closed_counts: Int64Array
    closed_stats: FloatArray  # (k, 3) median, low and high percentile of the depth
    open_pixels: Int64Array
    open_counts: Int64Array
    open_values: npt.NDArray[Any]  # flux errors, sorted by (pixel, value)
    conflict_pixels: Int64Array
    conflict_counts: Int64Array

    @classmethod
    def empty(cls, dtype: Any = np.float64) -> ExactPart:
        i = np.empty(0, np.int64)
        return cls(i, i, np.empty((0, 3)), i, i, np.empty(0, dtype), i, i)


@dataclass
class MomentPart:
    """Summary of one band for the ``"snr_window"`` method: count, mean, sum of squares."""

    pixels: Int64Array
    counts: Int64Array
    mean: FloatArray
    m2: FloatArray

    @classmethod
    def empty(cls) -> MomentPart:
        i, f = np.empty(0, np.int64), np.empty(0, np.float64)
        return cls(i, i, f, f)


@dataclass
class ReductionState:
    """What one partition (or a subtree of partitions) contributes, for every band."""

    bands: dict[str, ExactPart | MomentPart]
    rows: int = 0
    rows_without_position: int = 0
    partitions: int = 1
    values_carried: int = 0  # flux errors that left their partition (open pixels)


@dataclass(frozen=True)
class BandStats:
    """Final per-pixel statistics of one band; ``pixels`` ascending."""

    pixels: Int64Array
    counts: Int64Array
    depth: FloatArray
    spread: FloatArray


@dataclass(frozen=True)
class PixelReducer:
    """The per-partition summary and the merge of summaries (see the module docstring).

    Parameters
    ----------
    nside : int
        Map resolution (NESTED).
    bands : str
        Bands to reduce.
    method : str
        ``"flux_err"`` or ``"snr_window"``.
    snr_threshold, snr_delta : float
        S/N of the depth and half-width of the S/N window.
    local : bool
        Every map pixel's rows are in one partition (HATS layout at an order no finer than
        the map's, one file per partition): close every pixel.
    restrict : numpy.ndarray or None
        Second pass: only rows of these (sorted) pixels count, and every pixel stays open.

    Examples
    --------
    Three partitions of one pixel's objects give numpy's median of all of them:

    >>> import pandas as pd
    >>> err = np.array([10.0, 12.0, 11.0, 30.0, 9.0], dtype=np.float32)
    >>> frame = pd.DataFrame({"ra": np.full(5, 10.0), "dec": np.full(5, 5.0),
    ...                       "psFluxErr_r": err})
    >>> r = PixelReducer(nside=64, bands="r")
    >>> parts = [r.partial(frame.iloc[s]) for s in (slice(0, 2), slice(2, 4), slice(4, 5))]
    >>> stats = r.finish(r.combine(parts))["r"]
    >>> bool(stats.depth[0] == np.median(depth_from_flux_err(err))), stats.counts.tolist()
    (True, [5])
    """

    nside: int
    bands: str
    method: str = "flux_err"
    snr_threshold: float = 5.0
    snr_delta: float = 0.5
    local: bool = False
    restrict: Int64Array | None = field(default=None, compare=False)

    # -- per partition ---------------------------------------------------------------------
    def partial(self, frame: pd.DataFrame) -> ReductionState:
        """Summary of one partition (a pandas DataFrame of the selected quantities)."""
        pix, has_pos = pixel_index(frame, self.nside)
        if self.restrict is not None:
            has_pos &= np.isin(pix, self.restrict)
        out: dict[str, ExactPart | MomentPart] = {}
        if self.method == "flux_err":
            # the pixel in the high half of a uint64 sort key, shared by the bands (NESTED
            # pixel numbers fit 32 bits up to nside 2**14); rows without a position get the
            # largest high half, so they sort last and belong to no pixel
            base = np.left_shift(pix.view(np.uint64), np.uint64(32))
            if not has_pos.all():
                base[~has_pos] = _NO_PIXEL
            upix: Int64Array | None = None
            for band in self.bands:
                out[band], upix = self._exact_partial(frame, band, pix, has_pos, base, upix)
        else:
            upix, rank_all = pixel_ranks(pix, has_pos)
            for band in self.bands:
                out[band] = self._moment_partial(frame, band, upix, rank_all, has_pos)
        carried = sum(len(p.open_values) for p in out.values() if isinstance(p, ExactPart))
        return ReductionState(out, len(frame), int(len(frame) - has_pos.sum()), 1, carried)

    def _exact_partial(
        self,
        frame: pd.DataFrame,
        band: str,
        pix: Int64Array,
        has_pos: BoolArray,
        base: npt.NDArray[np.uint64],
        upix: Int64Array | None,
    ) -> tuple[ExactPart, Int64Array | None]:
        err = frame[f"psFluxErr_{band}"].to_numpy()
        values: npt.NDArray[Any]
        if err.dtype == np.float32:
            # One sort of (pixel, error bits) keys for all rows. Positive float32 numbers
            # order like their bit patterns, and zero, infinities, NaN and negative numbers
            # (sign bit set) fall at the ends of each pixel's run, so the rows with a finite
            # depth are one range per pixel, found by binary search: no mask, no gather.
            values = base | err.view(np.uint32)
            values.sort()
            if upix is None:  # the partition's pixels, the same for every band
                high = values >> np.uint64(32)
                first = np.flatnonzero(np.r_[True, high[1:] != high[:-1]]) if len(high) else high
                runs_high = high[first]
                upix = runs_high[runs_high != _NO_PIXEL >> np.uint64(32)].astype(np.int64)
            runs = upix.astype(np.uint64) << np.uint64(32)
            starts = np.searchsorted(values, runs | _SMALLEST_POSITIVE).astype(np.int64)
            counts = np.searchsorted(values, runs | _INFINITY).astype(np.int64) - starts
            held = counts > 0
            pixels, starts, counts = upix[held], starts[held], counts[held]
        else:
            err = np.asarray(err, dtype=np.float64)
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(err) & (err > 0) & has_pos  # the rows with a finite depth
            pixels, rank = pixel_ranks(pix, ok)
            rank = rank[ok]
            counts = np.bincount(rank, minlength=len(pixels)).astype(np.int64)
            starts = np.cumsum(counts) - counts
            values = _sort_within(rank, np.ascontiguousarray(err[ok]))
        if self.local:
            open_mask = np.zeros(len(pixels), dtype=bool)
        elif self.restrict is not None:
            open_mask = np.ones(len(pixels), dtype=bool)
        else:
            open_mask = _on_edge(self.nside, pixels)
        closed = ~open_mask
        no_pixels = np.empty(0, np.int64)
        part = ExactPart(
            closed_pixels=pixels[closed],
            closed_counts=counts[closed],
            closed_stats=_order_stats(values, starts[closed], counts[closed], self.snr_threshold),
            open_pixels=pixels[open_mask],
            open_counts=counts[open_mask],
            open_values=_as_values(_segments(values, starts[open_mask], counts[open_mask])),
            conflict_pixels=no_pixels,
            conflict_counts=no_pixels,
        )
        return part, upix

    def _moment_partial(
        self,
        frame: pd.DataFrame,
        band: str,
        upix: Int64Array,
        rank_all: Int64Array,
        has_pos: BoolArray,
    ) -> MomentPart:
        flux = np.asarray(frame[f"psFlux_{band}"].to_numpy(), dtype=np.float64)
        err = np.asarray(frame[f"psFluxErr_{band}"].to_numpy(), dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = flux / err  # the schema's snr_<b>
            # a positive error and snr_delta < snr_threshold make every window flux positive
            ok = has_pos & (err > 0) & (np.abs(snr - self.snr_threshold) < self.snr_delta)
            mag = -2.5 * np.log10(flux[ok]) + 31.4  # the schema's mag_<b>, window rows only
        rank = rank_all[ok]
        counts = np.bincount(rank, minlength=len(upix)).astype(np.int64)
        present = counts > 0
        sums = _weighted_counts(rank, mag, len(upix))
        mean = np.zeros(len(upix))
        mean[present] = sums[present] / counts[present]
        m2 = _weighted_counts(rank, (mag - mean[rank]) ** 2, len(upix))
        return MomentPart(upix[present], counts[present], mean[present], m2[present])

    # -- merging -----------------------------------------------------------------------------
    def combine(self, states: list[ReductionState]) -> ReductionState:
        """Merge summaries (associative; the order of ``states`` does not matter)."""
        bands: dict[str, ExactPart | MomentPart] = {}
        for band in self.bands:
            parts = [s.bands[band] for s in states]
            if self.method == "flux_err":
                # a second pass reads only pixels already known to straddle partitions: it
                # must merge them all, never close one early
                close = None if self.restrict is not None else (self.nside, self.snr_threshold)
                exact = [p for p in parts if isinstance(p, ExactPart)]
                bands[band] = _merge_exact(exact, close)
            else:
                bands[band] = _merge_moments([p for p in parts if isinstance(p, MomentPart)])
        return ReductionState(
            bands,
            sum(s.rows for s in states),
            sum(s.rows_without_position for s in states),
            sum(s.partitions for s in states),
            sum(s.values_carried for s in states),
        )

    def finish(self, state: ReductionState) -> dict[str, BandStats]:
        """Final statistics per band of the closed and open pixels (conflicts left out)."""
        out = {}
        for band, part in state.bands.items():
            if isinstance(part, MomentPart):
                spread = np.sqrt(part.m2 / np.maximum(part.counts, 1))
                out[band] = BandStats(part.pixels, part.counts, part.mean, spread)
                continue
            starts = np.cumsum(part.open_counts) - part.open_counts
            open_stats = _order_stats(
                part.open_values, starts, part.open_counts, self.snr_threshold
            )
            pixels = np.concatenate([part.closed_pixels, part.open_pixels])
            order = np.argsort(pixels, kind="stable")
            counts = np.concatenate([part.closed_counts, part.open_counts])[order]
            stats = np.concatenate([part.closed_stats, open_stats])[order]
            spread = (stats[:, 2] - stats[:, 1]) / 2
            out[band] = BandStats(pixels[order], counts, stats[:, 0], spread)
        return out


def _on_edge(nside: int, pixels: Int64Array) -> BoolArray:
    """Pixels with a neighbour that holds none of this partition's rows (or no neighbour)."""
    if not len(pixels):
        return np.zeros(0, dtype=bool)
    neighbours = hpgeom.neighbors(nside, pixels, nest=True)
    return np.asarray(~np.isin(neighbours, pixels).all(axis=1))


def _merge_exact(parts: list[ExactPart], close: tuple[int, float] | None = None) -> ExactPart:
    """Merge by pixel: open with open stays open; any other meeting is a conflict.

    With ``close = (nside, snr)``, open pixels whose eight neighbours all hold rows of the
    merged summaries are closed, by the same rule as in one partition: merging neighbouring
    partitions (consecutive tracts) settles the pixels along their common edges, so the
    values carried up the tree scale with the perimeter of the merged area, not its rows.
    """
    if not parts:
        return ExactPart.empty()
    if len(parts) == 1:
        return parts[0]
    kinds = []
    pixels, counts = [], []
    for code, pix_name, cnt_name in (
        (0, "closed_pixels", "closed_counts"),
        (1, "open_pixels", "open_counts"),
        (2, "conflict_pixels", "conflict_counts"),
    ):
        for p in parts:
            pix = getattr(p, pix_name)
            pixels.append(pix)
            counts.append(getattr(p, cnt_name))
            kinds.append(np.full(len(pix), code, dtype=np.int8))
    all_pix = np.concatenate(pixels)
    all_counts = np.concatenate(counts)
    all_kinds = np.concatenate(kinds)
    upix, inv, seen = np.unique(all_pix, return_inverse=True, return_counts=True)
    n_open = np.bincount(inv, weights=all_kinds == 1, minlength=len(upix)).astype(np.int64)
    total = np.bincount(inv, weights=all_counts, minlength=len(upix)).astype(np.int64)
    single_closed = (seen == 1) & (np.bincount(inv, weights=all_kinds == 0) > 0)
    merged_open = n_open == seen
    conflict = ~(single_closed | merged_open)

    # closed pixels met once keep their statistics as they are
    closed_pix = np.concatenate([p.closed_pixels for p in parts])
    keep = single_closed[np.searchsorted(upix, closed_pix)]
    closed_counts = np.concatenate([p.closed_counts for p in parts])[keep]
    closed_stats = np.concatenate([p.closed_stats for p in parts])[keep]
    closed_pix = closed_pix[keep]
    order = np.argsort(closed_pix, kind="stable")

    # open values of pixels that stay open are sorted again by (pixel, value)
    open_pix = np.concatenate([p.open_pixels for p in parts])
    open_counts = np.concatenate([p.open_counts for p in parts])
    values = np.concatenate([p.open_values for p in parts])
    row_rank = np.repeat(np.searchsorted(upix, open_pix), open_counts)
    stay = merged_open[row_rank]
    values = _sort_within(row_rank[stay], np.ascontiguousarray(values[stay]))

    merged = ExactPart(
        closed_pixels=closed_pix[order],
        closed_counts=closed_counts[order],
        closed_stats=closed_stats[order],
        open_pixels=upix[merged_open],
        open_counts=total[merged_open],
        open_values=values,
        conflict_pixels=upix[conflict],
        conflict_counts=total[conflict],
    )
    return merged if close is None else _close_interior(merged, upix, *close)


def _close_interior(part: ExactPart, held: Int64Array, nside: int, snr: float) -> ExactPart:
    """Close the open pixels of ``part`` all of whose neighbours are in ``held`` (sorted)."""
    if not len(part.open_pixels) or not len(held):
        return part
    neighbours = hpgeom.neighbors(nside, part.open_pixels, nest=True)
    found = held[np.minimum(np.searchsorted(held, neighbours), len(held) - 1)] == neighbours
    interior = found.all(axis=1)
    if not interior.any():
        return part
    starts = np.cumsum(part.open_counts) - part.open_counts
    stats = _order_stats(part.open_values, starts[interior], part.open_counts[interior], snr)
    closed_pix = np.concatenate([part.closed_pixels, part.open_pixels[interior]])
    order = np.argsort(closed_pix, kind="stable")
    still = ~interior
    return ExactPart(
        closed_pixels=closed_pix[order],
        closed_counts=np.concatenate([part.closed_counts, part.open_counts[interior]])[order],
        closed_stats=np.concatenate([part.closed_stats, stats])[order],
        open_pixels=part.open_pixels[still],
        open_counts=part.open_counts[still],
        open_values=_segments(part.open_values, starts[still], part.open_counts[still]),
        conflict_pixels=part.conflict_pixels,
        conflict_counts=part.conflict_counts,
    )


def _weighted_counts(index: Int64Array, weights: FloatArray, length: int) -> FloatArray:
    """Sum of ``weights`` per value of ``index`` (``np.bincount``, typed as float64)."""
    return np.asarray(np.bincount(index, weights=weights, minlength=length), dtype=np.float64)


def _merge_moments(parts: list[MomentPart]) -> MomentPart:
    """Chan et al. (1979): merge counts, means and second central moments by pixel."""
    if not parts:
        return MomentPart.empty()
    if len(parts) == 1:
        return parts[0]
    pixels = np.concatenate([p.pixels for p in parts])
    counts = np.concatenate([p.counts for p in parts])
    mean = np.concatenate([p.mean for p in parts])
    m2 = np.concatenate([p.m2 for p in parts])
    upix, inv = np.unique(pixels, return_inverse=True)
    total = _weighted_counts(inv, counts.astype(np.float64), len(upix))
    new_mean = _weighted_counts(inv, counts * mean, len(upix)) / total
    new_m2 = _weighted_counts(inv, m2 + counts * (mean - new_mean[inv]) ** 2, len(upix))
    return MomentPart(upix, total.astype(np.int64), new_mean, new_m2)
