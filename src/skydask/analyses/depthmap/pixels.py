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

Pixels. Positions become NESTED pixels through :mod:`.positions`: hpgeom's own numbers,
computed with a few numpy operations per row (7-12 ns against hpgeom's 30, releasing the
GIL), and, for a compact partition, handed over as small codes (the pixel's rank among the
few thousand its box can hold), so that the grouping below counts them directly. HATS
catalogues give the pixel by a shift of ``_healpix_29``.

Sorting. The order statistics need each pixel's errors in order. A partition's rows are
grouped by pixel once, for all bands: as they are when already in pixel order (HATS files
are sorted by ``_healpix_29``), else by counting the pixels (``np.bincount`` of the codes,
or of the pixel numbers less the smallest, small ranges for a compact partition) and a
counting sort's scatter: each row takes the next free slot of its pixel, in one compiled
pass (:mod:`.kernels`; 1 ms for a DC2 tract of 1.24 million rows, where numpy's sort of
``place << b | row`` keys, the method before, took 10 ms). The groups fix a padded layout:
each pixel owns a row of slots, its width rounded up (at most 3 % of padding, +inf) so that
pixels of equal width form 2-d blocks whose rows numpy sorts independently
(``ndarray.sort(axis=1)``, about a thousand values a row). Per band this costs one scatter
of the errors into the layout (compiled, :func:`~.kernels.scatter`, from 32-bit slots: a
tract's band is scattered and sorted in 2.5 ms, against 3.1 ms with numpy's indexed
assignment) and the row sorts (1.7 ns a value), where one sort of 64-bit ``(pixel, error
bits)`` keys per band took 11-13 ms a million; the grouping (about 3 ms a million rows, with
the counts) is paid once. (Measured and not kept: a ``np.partition`` at the needed ranks
instead of the row sort, slower with more than one rank; gathering the six bands as one
interleaved array, or two as one 64-bit array, slower than six gathers with the copies it
needs; a stable radix ``argsort`` of 16-bit codes instead of the key sort, three times
slower.) The large work arrays (pixels, row slots, sorted errors) are kept per thread from
one partition to the next (:mod:`.scratch`): fresh ones cost as much again in page faults. A
merge of partitions concatenates the carried errors, pixel by pixel and as slices, into the
same kind of layout and sorts its rows, instead of sorting every carried value again as a
64-bit key (a third of the time or less). A pixel that only one of the merged summaries
holds keeps its sorted run where it is: at the root those are mostly the footprint's outer
edge, which would otherwise be copied and sorted again. Big merges (a million carried values
or more; in practice the root, which runs while the other cores idle) work on their bands in
threads: the bands are independent, and numpy releases the GIL for nearly all of the work
(the root of the 20-million-row benchmark went from 0.08-0.09 s to 0.06 s). Narrower trees,
which would start merging while the scan still runs, remained slower (fan-in 8 and 5 against
32).

Chunks. The partial works on the columns where the reader decoded them, one NumPy view of
Arrow's buffer per row group (:func:`~skydask.catalog.reader.read_chunks`), never joined
into whole columns: positions become pixels chunk by chunk, each band's errors are scattered
chunk by chunk to their slots (the grouping gives the slot of every row), and runs of rows
in pixel order are copied as slices of the chunks. Joining the chunks cost a write and a
read of every value (0.3 of the 1.7 s of the 20-million-row benchmark's per-partition work,
on one thread); a gather from the joined columns instead of the scatter was slower. A pandas
frame (the second pass, tests) is the case of one chunk per column.

Errors keep their stored precision (float32 in the catalogues); invalid ones (zero,
negative, infinite, NaN) sort to the two ends of a pixel's row and are left out by counting
them, only in the rows whose first or last value shows any. Depths are a decreasing function
of the flux error, so sorting errors sorts depths, and depths are computed for the few order
statistics only, with the same float64 arithmetic as the schema's ``m5_<b>`` quantity: a
median is bit-identical to numpy's on the ``m5_<b>`` column (for an even count the two
middle depths are averaged, not the two middle errors).

The ``"snr_window"`` method is decomposable: per pixel the count, mean and second central
moment of the window's magnitudes, merged with Chan et al.'s parallel formulae.
"""

from __future__ import annotations

import bisect
import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import hpgeom
import numpy as np
import numpy.typing as npt
import pandas as pd

from skydask.analyses.depthmap.kernels import fill_slots, scatter
from skydask.analyses.depthmap.positions import chunked_pixel_codes, nested_pixels, piece_bounds
from skydask.analyses.depthmap.scratch import Scratch
from skydask.catalog.healpix_index import HEALPIX29_COLUMN, HEALPIX29_ORDER
from skydask.catalog.reader import ChunkedColumns, Chunks

__all__ = ["BandStats", "PixelReducer", "ReductionState", "depth_from_flux_err"]

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntpArray = npt.NDArray[np.intp]

Q_LO, Q_HI = 0.15865525393145707, 0.8413447460685429
"""Percentiles of the spread: a Gaussian's mean -/+ one sigma, so the spread is its sigma."""

_RANK_TABLE = 1 << 16  # pixel numbers spanning up to this (or the rows) are counted by a table
_SLICED_SEGMENTS = 32  # segments this long on average are copied slice by slice
_PARALLEL_MERGE = 1 << 20  # merges carrying this many values work on their bands in threads
_ALL_ROWS = np.empty(0, dtype=np.int64)  # fill_slots: every row has a position
_EXACT_WIDTHS = 64
"""Rows of up to this many values are padded to nothing; wider rows to a multiple of 1/32 to
1/64 of their width, so a layout has at most 3 % of padding and about 32 widths per octave."""


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


def pixel_index(frame: pd.DataFrame | ChunkedColumns, nside: int) -> tuple[Int64Array, BoolArray]:
    """NESTED pixel of each row at ``nside``, and which rows have a position.

    From the HATS ``_healpix_29`` column when the frame has it (the pixel HATS assigned the
    row, and a shift instead of trigonometry), else from ``ra`` and ``dec``
    (:func:`~skydask.analyses.depthmap.positions.nested_pixels`: hpgeom's pixels, computed
    faster).
    """
    pix, coded, has_pos = pixel_codes(as_chunks(frame), nside)
    return (pix if coded is None else coded[pix]), has_pos


def as_chunks(part: pd.DataFrame | ChunkedColumns) -> ChunkedColumns:
    """A partition as chunked columns: as it is, or a frame's columns one chunk each."""
    if isinstance(part, ChunkedColumns):
        return part
    return ChunkedColumns.of_arrays({str(c): part[c].to_numpy() for c in part.columns}, len(part))


def pixel_codes(
    part: ChunkedColumns, nside: int, scratch: Scratch | None = None
) -> tuple[Int64Array, Int64Array | None, BoolArray]:
    """:func:`pixel_index` as ``(codes, coded, has_pos)``: the pixel of row ``i`` is
    ``coded[codes[i]]`` (``coded`` ascending), or ``codes[i]`` itself if ``coded`` is None.

    Computed chunk by chunk where the reader left the columns
    (:func:`~skydask.analyses.depthmap.positions.chunked_pixel_codes`). Rows of a compact
    partition are coded, which spares grouping a pass to number the pixels. With
    ``scratch``, the codes are one of its work arrays.

    Examples
    --------
    >>> ra, dec = np.array([56.0, 56.2, np.nan]), np.array([-39.0, -39.1, -39.0])
    >>> part = ChunkedColumns({"ra": [(0, ra[:2]), (2, ra[2:])], "dec": [(0, dec)]}, 3)
    >>> pix, coded, has_pos = pixel_codes(part, 1024)
    >>> pix[has_pos].tolist() == hpgeom.angle_to_pixel(
    ...     1024, ra[:2], dec[:2], nest=True, lonlat=True).tolist()
    True
    >>> has_pos.tolist(), coded is None
    ([True, True, False], True)
    """
    order = int(math.log2(nside))
    n = part.rows
    out = scratch.get("pixels", n, np.int64) if scratch is not None else np.empty(n, np.int64)
    if HEALPIX29_COLUMN in part:
        has_pos = np.empty(n, dtype=bool)
        for start, hp29 in part.chunks(HEALPIX29_COLUMN):
            hp29 = np.asarray(hp29, dtype=np.int64)
            rows = slice(start, start + len(hp29))
            np.right_shift(hp29, 2 * (HEALPIX29_ORDER - order), out=out[rows])
            np.greater_equal(hp29, 0, out=has_pos[rows])
        return out, None, has_pos
    if not n:
        return out, None, np.ones(0, dtype=bool)
    ra = [(start, np.asarray(v, dtype=np.float64)) for start, v in part.chunks("ra")]
    dec = [(start, np.asarray(v, dtype=np.float64)) for start, v in part.chunks("dec")]
    bounds = piece_bounds(ra, dec)  # finite extremes mean finite values (the usual case)
    ra_lo, ra_hi, dec_lo, dec_hi = bounds
    if math.isfinite(ra_lo) and math.isfinite(ra_hi) and -90.0 <= dec_lo <= dec_hi <= 90.0:
        codes, coded = chunked_pixel_codes(nside, ra, dec, bounds, out)
        return codes, coded, np.ones(n, dtype=bool)
    ra_all = np.asarray(part["ra"], dtype=np.float64)
    dec_all = np.asarray(part["dec"], dtype=np.float64)
    ok = np.isfinite(ra_all) & np.isfinite(dec_all) & (np.abs(dec_all) <= 90.0)
    pix = np.full(n, -1, dtype=np.int64)
    if ok.any():
        pix[ok] = nested_pixels(nside, ra_all[ok], dec_all[ok])
    return pix, None, ok


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


@dataclass(frozen=True)
class _Layout:
    """A buffer of sortable rows: group ``g`` owns slots ``offset[g]:offset[g] + width[g]``.

    Groups of equal width sit next to each other, so that each run of them is a 2-d block
    ``(rows, width)`` sorted row by row in one call; ``blocks`` lists them as
    ``(first slot, rows, width)``.
    """

    offset: Int64Array
    width: Int64Array
    blocks: tuple[tuple[int, int, int], ...]
    size: int

    @classmethod
    def for_counts(cls, counts: Int64Array) -> _Layout:
        """Rows holding ``counts`` values each, padded as :data:`_EXACT_WIDTHS` says."""
        if not len(counts):
            return cls(counts, counts, (), 0)
        step = np.ones(len(counts), dtype=np.int64)
        wide = counts > _EXACT_WIDTHS
        if wide.any():
            # a power of two between 1/64 and 1/32 of the count
            step[wide] = 1 << np.maximum(np.frexp(counts[wide].astype(np.float64))[1] - 6, 0)
        width = -(-counts // step) * step
        order = np.argsort(width, kind="stable")
        ordered = width[order]
        ends = np.cumsum(ordered)
        offset = np.empty(len(counts), dtype=np.int64)
        offset[order] = ends - ordered
        first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        last = np.r_[first[1:], len(order)]
        blocks = tuple(
            (int(ends[i] - ordered[i]), int(j - i), int(ordered[i]))
            for i, j in zip(first.tolist(), last.tolist(), strict=True)
            if ordered[i] > 1
        )
        return cls(offset, width, blocks, int(ends[-1]))

    def sort_rows(self, buffer: npt.NDArray[Any]) -> None:
        """Sort every group's slots of ``buffer`` in place."""
        for start, rows, width in self.blocks:
            buffer[start : start + rows * width].reshape(rows, width).sort(axis=1)


@dataclass(frozen=True)
class _PixelRows:
    """A partition's rows grouped by pixel for all bands: where each row goes in a layout.

    ``pixels`` ascending, with their numbers of rows and their rows of the layout. Rows in
    pixel order are copied run by run: ``runs`` lists, in layout order, each pixel's
    ``(first row, end row, padding)``. Other rows are scattered: ``inverse[i]`` is the slot
    row ``i`` fills (``layout.size``, a spare slot after the layout, for a row without a
    position), and ``pads`` lists the padding slots. Padding is +inf, so it sorts last.

    Examples
    --------
    Rows in any order, then in pixel order, in pieces, against a sort of each pixel's values
    (NaN, zero and negative errors are left out of the counts):

    >>> rng = np.random.default_rng(0)
    >>> pix, err = rng.integers(0, 300, 5000), rng.normal(20, 5, 5000).astype(np.float32)
    >>> err[::97] = np.nan
    >>> pieces = [(0, err[:1000]), (1000, err[1000:1001]), (1001, err[1001:])]
    >>> for p in (pix, np.sort(pix)):
    ...     rows = _PixelRows.group(p.copy(), np.ones(len(p), dtype=bool))
    ...     buffer, start, count = rows.sorted_values(pieces)
    ...     print(all(np.array_equal(buffer[s : s + c], np.sort(err[(p == q) & (err > 0)]))
    ...               for q, s, c in zip(rows.pixels, start, count)), rows.runs is not None)
    True False
    True True
    """

    pixels: Int64Array
    counts: Int64Array
    layout: _Layout
    runs: list[tuple[int, int, int]] | None
    inverse: npt.NDArray[np.integer[Any]] | None  # int32 or intp
    pads: IntpArray | None

    @classmethod
    def group(
        cls,
        pix: Int64Array,
        has_pos: BoolArray,
        scratch: Scratch | None = None,
        coded: Int64Array | None = None,
    ) -> _PixelRows:
        """Group the rows with a position by pixel; ``pix`` may be overwritten.

        ``pix`` holds pixel numbers, or codes of the pixels ``coded`` (:func:`pixel_codes`).
        Rows already in pixel order (HATS files are sorted by ``_healpix_29``) are grouped as
        they are, in runs; others are scattered (:meth:`_scattered`), with work arrays from
        ``scratch`` when given (``inverse`` is then one of them).
        """
        if bool(has_pos.all()) and _ascending(pix):
            return cls._runs(pix, coded)
        scratch = scratch if scratch is not None else Scratch()
        return cls._scattered(pix, has_pos, scratch, coded)

    @classmethod
    def _runs(cls, pix: Int64Array, coded: Int64Array | None) -> _PixelRows:
        first = np.flatnonzero(np.r_[True, pix[1:] != pix[:-1]]) if len(pix) else pix[:0]
        counts = np.diff(np.r_[first, len(pix)]).astype(np.int64)
        layout = _Layout.for_counts(counts)
        by_offset = np.argsort(layout.offset)
        pad = layout.width - counts
        runs = list(
            zip(
                first[by_offset].tolist(),
                (first + counts)[by_offset].tolist(),
                pad[by_offset].tolist(),
                strict=True,
            )
        )
        pixels = pix[first] if coded is None else coded[pix[first]]
        return cls(pixels.astype(np.int64), counts, layout, runs, None, None)

    @classmethod
    def _scattered(
        cls, pix: Int64Array, has_pos: BoolArray, scratch: Scratch, coded: Int64Array | None
    ) -> _PixelRows:
        """Rows in any order: the pixels are counted first (:func:`_count_pixels`), which
        fixes the layout; then each row takes the next free slot of its pixel's row, in one
        compiled pass (:func:`~skydask.analyses.depthmap.kernels.fill_slots`, a counting
        sort's scatter that releases the GIL, so that two partitions are grouped in
        parallel). Rows without a position take the spare slot after the layout.
        """
        n = len(pix)
        rows = None if bool(has_pos.all()) else np.flatnonzero(has_pos)
        pixels, counts, code, codes = _count_pixels(pix if rows is None else pix[rows], coded)
        layout = _Layout.for_counts(counts)
        if len(codes) and int(codes[-1]) >= len(codes):  # codes with gaps: a table by code
            cursor = np.zeros(int(codes[-1]) + 1, dtype=np.int64)
            cursor[codes] = layout.offset
        else:
            cursor = layout.offset.copy()
        # 32-bit slots when they fit: the bands' scatters read them six times
        inverse = scratch.get("inverse", n + 1, np.int32 if layout.size < 1 << 31 else np.intp)
        if rows is not None:
            inverse[:n] = layout.size
        inverse[n] = layout.size
        fill_slots(code, _ALL_ROWS if rows is None else rows, cursor, inverse)
        pad = layout.width - counts
        pad_before = np.cumsum(pad) - pad
        pads = np.repeat(layout.offset + counts - pad_before, pad) + np.arange(int(pad.sum()))
        return cls(pixels, counts, layout, None, inverse, pads.astype(np.intp))

    def sorted_values(
        self, values: Chunks, out: npt.NDArray[Any] | None = None
    ) -> tuple[npt.NDArray[Any], Int64Array, Int64Array]:
        """The layout filled with ``values`` (one per row, as ``(first row, values)`` pieces
        of one type) and sorted within each pixel.

        Returns the buffer (``out`` if given: at least ``layout.size + 1`` values of the
        pieces' type; the slot after the layout is scratch), and per pixel the first slot
        and the number of valid values (positive and finite; they are contiguous in a
        sorted row).
        """
        dtype = values[0][1].dtype
        size = self.layout.size
        held = np.empty(size + 1, dtype) if out is None else out
        buffer = held[:size]
        if self.runs is not None:
            pieces = _run_pieces(values, self.runs)
            if pieces:
                np.concatenate(pieces, out=buffer)
        else:
            assert self.inverse is not None and self.pads is not None
            for first, piece in values:  # scattered where the reader left them: no join
                scatter(piece, self.inverse[first : first + len(piece)], held)
            buffer[self.pads] = np.inf
        self.layout.sort_rows(buffer)
        start, counts = self.layout.offset.copy(), self.counts.copy()
        if not len(counts):
            return buffer, start, counts
        # sorted: -inf, negatives, zeros | positive finite | +inf (and padding), NaN
        with np.errstate(invalid="ignore"):
            low = buffer[start] <= 0
            high = ~(buffer[start + counts - 1] < np.inf)
        if low.any():
            below = _per_row(buffer <= 0, self.layout)
            start += below
            counts -= below
        if high.any():
            with np.errstate(invalid="ignore"):
                finite = _per_row(buffer < np.inf, self.layout)
            counts = finite - (start - self.layout.offset)
        return buffer, start, counts


def _run_pieces(values: Chunks, runs: list[tuple[int, int, int]]) -> list[npt.NDArray[Any]]:
    """The slices of ``values`` (pieces) and the padding (+inf) that fill a layout of runs
    (:class:`_PixelRows`), in order: a run across pieces is cut at their boundaries.

    >>> pieces = [(0, np.array([1.0, 2.0])), (2, np.array([3.0, 4.0]))]
    >>> np.concatenate(_run_pieces(pieces, [(1, 3, 1), (3, 4, 0), (0, 1, 0)])).tolist()
    [2.0, 3.0, inf, 4.0, 1.0]
    """
    dtype = values[0][1].dtype
    fill = np.full(max((p for _, _, p in runs), default=0), np.inf, dtype)
    starts = [start for start, _ in values]
    pieces = []
    for row, end, pad in runs:
        k = bisect.bisect_right(starts, row) - 1  # the piece holding the run's first row
        while row < end:
            first, piece = values[k]
            stop = min(end, first + len(piece))
            pieces.append(piece[row - first : stop - first])
            row, k = stop, k + 1
        if pad:
            pieces.append(fill[:pad])
    return pieces


def _ascending(values: Int64Array) -> bool:
    """Are ``values`` in ascending order? (A look at the first thousand settles most cases.)"""
    head = values[:1000]
    return bool(np.all(head[1:] >= head[:-1])) and bool(np.all(values[1:] >= values[:-1]))


def _count_pixels(
    pix: Int64Array, coded: Int64Array | None = None
) -> tuple[Int64Array, Int64Array, IntpArray, Int64Array]:
    """The distinct pixels (ascending), their numbers of rows, and a code per row.

    Rows already coded (``pix`` codes of the pixels ``coded``) are counted as they are.

    A partition covers a compact area, whose NESTED pixel numbers span a range of a few
    times their count (at most 66,000 for DC2 tracts at nside 1024): the codes are then the
    rows' pixel numbers less the smallest (``pix`` is overwritten), counted by
    ``np.bincount``, and ``codes`` gives each distinct pixel's code; no per-row array is
    made. Wider spans go through ``np.unique``, the codes being the ranks
    (``codes = arange``).

    Examples
    --------
    >>> [a.tolist() for a in _count_pixels(np.array([7, 3, 7, 5]))]
    [[3, 5, 7], [1, 1, 2], [4, 0, 4, 2], [0, 2, 4]]
    >>> [a.tolist() for a in _count_pixels(np.array([10**9, 3, 10**9]))]  # wide: np.unique
    [[3, 1000000000], [1, 2], [1, 0, 1], [0, 1]]
    """
    if not len(pix):
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.intp), empty
    if coded is not None:
        per_code = np.bincount(pix, minlength=len(coded))
        codes = np.flatnonzero(per_code).astype(np.int64)
        return coded[codes], per_code[codes].astype(np.int64), pix, codes
    low = int(pix.min())
    span = int(pix.max()) - low + 1
    if span > max(len(pix), _RANK_TABLE):
        uniques, rank, counts = np.unique(pix, return_inverse=True, return_counts=True)
        distinct = np.arange(len(uniques), dtype=np.int64)
        return (
            np.asarray(uniques, dtype=np.int64),
            counts.astype(np.int64),
            rank.astype(np.intp, copy=False),
            distinct,
        )
    pix -= low
    per_code = np.bincount(pix, minlength=span)
    codes = np.flatnonzero(per_code).astype(np.int64)
    return codes + low, per_code[codes].astype(np.int64), pix, codes


def _per_row(mask: BoolArray, layout: _Layout) -> Int64Array:
    """How many slots of each group's row are set in ``mask``."""
    running = np.zeros(len(mask) + 1, dtype=np.int64)
    np.cumsum(mask, out=running[1:])
    return running[layout.offset + layout.width] - running[layout.offset]


def _segments(pieces: npt.NDArray[Any], starts: Int64Array, counts: Int64Array) -> npt.NDArray[Any]:
    """The concatenation of ``pieces[start:start + count]`` for each segment, in order."""
    total = int(counts.sum())
    if total == 0:
        return pieces[:0].copy()  # a copy, not a view holding on to ``pieces``
    if len(counts) * _SLICED_SEGMENTS <= total:  # few long segments: copy them as slices
        ends = starts + counts
        return np.concatenate(
            [pieces[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
        )
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

    ``sorted_err`` (flux errors) is ascending within each segment, so the depths are
    descending: the ``k``-th smallest depth of a segment of ``n`` is at ``start + n - 1 - k``.
    """
    out = np.empty((len(counts), 3), dtype=np.float64)
    if not len(counts):
        return out
    n, last = counts, starts + counts - 1

    def kth(k: Int64Array) -> FloatArray:
        return depth_from_flux_err(sorted_err[last - k], snr)

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
    open_values: npt.NDArray[Any]  # flux errors: each open pixel's run, sorted
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
    scratch: Scratch = field(default_factory=Scratch, compare=False, repr=False, init=False)

    # -- per partition ---------------------------------------------------------------------
    def partial(self, frame: pd.DataFrame | ChunkedColumns) -> ReductionState:
        """Summary of one partition: its selected quantities, as a pandas DataFrame or as
        the reader's chunks (:class:`~skydask.catalog.reader.ChunkedColumns`, worked on
        chunk by chunk, never joined)."""
        part = as_chunks(frame)
        pix, coded, has_pos = pixel_codes(part, self.nside, self.scratch)
        if coded is not None and (self.restrict is not None or self.method != "flux_err"):
            pix, coded = coded[pix], None
        if self.restrict is not None:
            has_pos &= np.isin(pix, self.restrict)
        out: dict[str, ExactPart | MomentPart] = {}
        if self.method == "flux_err":
            rows = _PixelRows.group(pix, has_pos, self.scratch, coded)  # shared by the bands
            if self.local:
                edge = np.zeros(len(rows.pixels), dtype=bool)
            elif self.restrict is not None:
                edge = np.ones(len(rows.pixels), dtype=bool)
            else:
                edge = _on_edge(self.nside, rows.pixels)
            for band in self.bands:
                err = part.chunks(f"psFluxErr_{band}")
                if err[0][1].dtype != np.float32:  # float32 as stored, else float64
                    err = [(start, np.asarray(v, dtype=np.float64)) for start, v in err]
                dtype = err[0][1].dtype
                buffer = self.scratch.get("sorted_errors", rows.layout.size + 1, dtype)
                out[band] = self._exact_partial(err, rows, edge, buffer)
        else:
            upix, rank_all = pixel_ranks(pix, has_pos)
            for band in self.bands:
                out[band] = self._moment_partial(part, band, upix, rank_all, has_pos)
        carried = sum(len(p.open_values) for p in out.values() if isinstance(p, ExactPart))
        return ReductionState(out, part.rows, int(part.rows - has_pos.sum()), 1, carried)

    def _exact_partial(
        self, err: Chunks, rows: _PixelRows, edge: BoolArray, buffer: npt.NDArray[Any]
    ) -> ExactPart:
        """One band's summary: its errors (pieces) sorted within each pixel of ``rows`` in
        ``buffer`` (see :meth:`_PixelRows.sorted_values`)."""
        values, starts, counts = rows.sorted_values(err, out=buffer)
        held = counts > 0  # pixels with at least one finite depth in this band
        closed, open_ = held & ~edge, held & edge
        no_pixels = np.empty(0, np.int64)
        return ExactPart(
            closed_pixels=rows.pixels[closed],
            closed_counts=counts[closed],
            closed_stats=_order_stats(values, starts[closed], counts[closed], self.snr_threshold),
            open_pixels=rows.pixels[open_],
            open_counts=counts[open_],
            open_values=_segments(values, starts[open_], counts[open_]),
            conflict_pixels=no_pixels,
            conflict_counts=no_pixels,
        )

    def _moment_partial(
        self,
        part: ChunkedColumns,
        band: str,
        upix: Int64Array,
        rank_all: Int64Array,
        has_pos: BoolArray,
    ) -> MomentPart:
        flux = np.asarray(part[f"psFlux_{band}"], dtype=np.float64)
        err = np.asarray(part[f"psFluxErr_{band}"], dtype=np.float64)
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
        if self.method == "flux_err":
            # a second pass reads only pixels already known to straddle partitions: it must
            # merge them all, never close one early
            close = None if self.restrict is not None else (self.nside, self.snr_threshold)
            exact = {
                b: [p for s in states if isinstance(p := s.bands[b], ExactPart)] for b in self.bands
            }
            carried = sum(len(p.open_values) for parts in exact.values() for p in parts)
            merge = functools.partial(_merge_exact, close=close)
            workers = min(len(exact), _cores()) if carried >= _PARALLEL_MERGE else 1
            if workers > 1:
                # the root of the tree runs alone while the other cores idle; its bands are
                # independent and numpy releases the GIL for nearly all of their merge
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    merged = list(pool.map(merge, exact.values()))
            else:
                merged = [merge(parts) for parts in exact.values()]
            bands.update(zip(exact, merged, strict=True))
        else:
            for band in self.bands:
                parts = [s.bands[band] for s in states]
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


def _cores() -> int:
    return max(1, len(os.sched_getaffinity(0)))


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

    # Open values of pixels that stay open. A pixel met in several summaries has its sorted
    # runs gathered into sortable rows; a pixel met once keeps its run where it is (sorted
    # already): at the top of the tree most of those are the footprint's outer edge, which
    # would otherwise be copied and sorted again at every level.
    arrays = [p.open_values for p in parts]
    open_pix = np.concatenate([p.open_pixels for p in parts])
    seg_group = np.searchsorted(upix, open_pix)
    seg_array = np.repeat(np.arange(len(parts)), [len(p.open_pixels) for p in parts])
    seg_start = np.concatenate([np.cumsum(p.open_counts) - p.open_counts for p in parts])
    seg_count = np.concatenate([p.open_counts for p in parts])
    runs = merged_open & (seen > 1)
    gather = runs[seg_group]
    values, layout = _gather_rows(
        arrays,
        seg_array[gather],
        seg_start[gather],
        seg_count[gather],
        np.searchsorted(upix[runs], open_pix[gather]),
        total[runs],
    )
    lone = merged_open[seg_group] & ~gather  # segments that are their pixel's only one
    # every pixel that stays open, as (values, first slot, count): gathered ones, then lone
    sources = [values, *arrays]
    src = np.concatenate([np.zeros(int(runs.sum()), np.int64), seg_array[lone] + 1])
    open_pixels = np.concatenate([upix[runs], open_pix[lone]])
    open_counts = np.concatenate([total[runs], seg_count[lone]])
    open_starts = np.concatenate([layout.offset, seg_start[lone]])
    if close is None:
        interior, snr = np.zeros(len(open_pixels), dtype=bool), 0.0
    else:
        interior, snr = _interior(close[0], open_pixels, upix), close[1]
    closed_pix = np.concatenate([closed_pix, open_pixels[interior]])
    order = np.argsort(closed_pix, kind="stable")
    still = ~interior
    return ExactPart(
        closed_pixels=closed_pix[order],
        closed_counts=np.concatenate([closed_counts, open_counts[interior]])[order],
        closed_stats=np.concatenate(
            [closed_stats, *_per_source(sources, src, open_starts, open_counts, interior, snr)]
        )[order],
        open_pixels=open_pixels[still],
        open_counts=open_counts[still],
        open_values=np.concatenate(
            _per_source(sources, src, open_starts, open_counts, still, None)
        ).astype(values.dtype, copy=False),
        conflict_pixels=upix[conflict],
        conflict_counts=total[conflict],
    )


def _per_source(
    sources: list[npt.NDArray[Any]],
    src: Int64Array,
    starts: Int64Array,
    counts: Int64Array,
    which: BoolArray,
    snr: float | None,
) -> list[npt.NDArray[Any]]:
    """For the segments ``which`` (segment ``i`` is ``sources[src[i]][starts[i]:][:counts[i]]``,
    sorted; ``src`` ascending), in order: their order statistics at S/N ``snr``, or their
    values when ``snr`` is None."""
    out = []
    for k in np.unique(src[which]).tolist():
        sel = which & (src == k)
        if snr is None:
            out.append(_segments(sources[k], starts[sel], counts[sel]))
        else:
            out.append(_order_stats(sources[k], starts[sel], counts[sel], snr))
    if not out:
        out.append(np.empty((0, 3)) if snr is not None else sources[0][:0])
    return out


def _gather_rows(
    arrays: list[npt.NDArray[Any]],
    seg_array: Int64Array,
    seg_start: Int64Array,
    seg_count: Int64Array,
    seg_group: Int64Array,
    group_counts: Int64Array,
) -> tuple[npt.NDArray[Any], _Layout]:
    """Segments of several arrays gathered by group into a layout, and sorted per group.

    Segment ``i`` is ``arrays[seg_array[i]][seg_start[i]:][:seg_count[i]]`` and belongs to
    group ``seg_group[i]``; ``group_counts`` are the groups' totals. The buffer is one
    concatenation of the segments' slices, group after group in layout order, each group's
    padding (+inf) after its segments.
    """
    layout = _Layout.for_counts(group_counts)
    dtype = np.result_type(*arrays) if arrays else np.dtype(np.float64)
    if not len(seg_group):
        return np.empty(0, dtype=dtype), layout
    pad = (layout.width - group_counts).tolist()
    fill = np.full(max(pad), np.inf, dtype=dtype)
    order = np.argsort(layout.offset[seg_group], kind="stable")
    pieces: list[npt.NDArray[Any]] = []
    current = int(seg_group[order[0]])
    for a, start, count, g in zip(
        seg_array[order].tolist(),
        seg_start[order].tolist(),
        seg_count[order].tolist(),
        seg_group[order].tolist(),
        strict=True,
    ):
        if g != current:
            pieces.append(fill[: pad[current]])
            current = g
        pieces.append(arrays[a][start : start + count])
    pieces.append(fill[: pad[current]])
    buffer = np.concatenate(pieces).astype(dtype, copy=False)
    layout.sort_rows(buffer)
    return buffer, layout


def _interior(nside: int, pixels: Int64Array, held: Int64Array) -> BoolArray:
    """Which ``pixels`` have all their neighbours in ``held`` (sorted, not empty)."""
    if not len(pixels):
        return np.zeros(0, dtype=bool)
    neighbours = hpgeom.neighbors(nside, pixels, nest=True)
    found = held[np.minimum(np.searchsorted(held, neighbours), len(held) - 1)] == neighbours
    return np.asarray(found.all(axis=1))


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
