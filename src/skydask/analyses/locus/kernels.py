"""The stellar locus' compiled loops: the star arrays of a partition, a histogram pass's
counts, a gather pass's values, a fit's strip and the density grids, each in one pass.

In numpy each of these was a chain of array operations over the same values, each with a
temporary array: a locus colour's gather pass binned 330,000 values in six operations
before looking them up (5 ms of a pass), a fit's strip took about twelve (3 ms), the star
arrays about forty a tract (6.4 ms). The kernels do the same float64 operations in the same
order (no fast-math), so every number is the one numpy gave, and the tests compare each
kernel with its numpy formulas bit for bit. A bin is defined once (:func:`_bin`), for the
passes and for the driver, which plans the median absolute deviation's bins with
:meth:`.quantiles.HistSpec.index`: the two must agree on every value.
Compiled as :mod:`skydask.analyses.compiled` says.

Measured on the 20-million-row benchmark, each step paired against the one before (4
alternations of 5 rounds, the analysis' metrics and tables identical as text): the passes'
counts, gathers and density grids 1.116-1.140 -> 1.054-1.115 s; then the strips and the
star arrays, each lowering the ratio to the pyarrow loop in every pair (1.30-1.39 ->
1.24-1.35 -> 1.23-1.30, on a machine whose pyarrow loop had slowed to 0.85-0.94 s).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from skydask.analyses.compiled import jit

__all__ = [
    "CENTRED",
    "PLAIN",
    "SHIFTED",
    "bin_counts",
    "bin_gather",
    "bin_indices",
    "colour_pairs",
    "grid_counts",
    "locus_colour",
    "lookup_bins",
    "principal_colour",
    "strip",
]

# how a job's values are binned (QuantileJob): as they are, less their group's offset, or as
# their absolute deviation from their group's centre (which then is the value itself)
PLAIN, SHIFTED, CENTRED = 0, 1, 2

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.integer[Any]]


@jit
def _bin(value: float, lo: float, scale: float, nbins: int) -> int:  # pragma: no cover
    """The bin of a value: 0 underflow, 1..nbins inside, nbins + 1 overflow (shifted by one
    bin, scaled, clipped to [0, nbins + 1], then truncated, which is floor as it is >= 0).
    The one definition of a bin: the passes and the driver's planning
    (:meth:`.quantiles.HistSpec.index`) both bin through it."""
    s = value - lo
    s *= scale
    s += 1.0
    if s < 0.0:
        s = 0.0
    elif s > nbins + 1.0:
        s = nbins + 1.0
    return int(s)


@jit
def bin_indices(  # pragma: no cover - compiled
    values: Floats, lo: float, scale: float, nbins: int, out: npt.NDArray[np.int64]
) -> None:
    """The bin of each value (:func:`_bin`)."""
    for i in range(len(values)):
        out[i] = _bin(values[i], lo, scale, nbins)


@jit
def _key(  # pragma: no cover - compiled
    group: int, value: float, mode: int, shift: Floats, lo: float, scale: float, nbins: int
) -> tuple[int, float]:
    """The flat bin key of one value and the value the job keeps (see :data:`PLAIN`)."""
    if mode == SHIFTED:
        binned = value - shift[group]
    elif mode == CENTRED:
        value = abs(value - shift[group])
        binned = value
    else:
        binned = value
    return group * (nbins + 2) + _bin(binned, lo, scale, nbins), value


@jit
def bin_counts(  # pragma: no cover - compiled
    groups: Ints,
    values: Floats,
    mode: int,
    shift: Floats,
    lo: float,
    scale: float,
    nbins: int,
    counts: npt.NDArray[np.int64],
) -> None:
    """Add each value to ``counts[key]`` (``groups`` empty: every value in group 0)."""
    grouped = len(groups) > 0
    for i in range(len(values)):
        g = groups[i] if grouped else 0
        key, _ = _key(g, values[i], mode, shift, lo, scale, nbins)
        counts[key] += 1


@jit
def bin_gather(  # pragma: no cover - compiled
    groups: Ints,
    values: Floats,
    mode: int,
    shift: Floats,
    lo: float,
    scale: float,
    nbins: int,
    wanted: npt.NDArray[np.bool_],
    keys_out: npt.NDArray[np.int64],
    values_out: Floats,
) -> int:
    """Keep the key and value of each value whose bin is ``wanted``; return how many."""
    grouped = len(groups) > 0
    n = 0
    for i in range(len(values)):
        g = groups[i] if grouped else 0
        key, value = _key(g, values[i], mode, shift, lo, scale, nbins)
        if wanted[key]:
            keys_out[n] = key
            values_out[n] = value
            n += 1
    return n


@jit
def grid_counts(  # pragma: no cover - compiled
    x: Floats,
    y: Floats,
    x0: float,
    x_span: float,
    nx: int,
    y0: float,
    y_span: float,
    ny: int,
    counts: npt.NDArray[np.int64],
) -> None:
    """Count the points in an ``nx`` x ``ny`` grid (row-major, ``x`` first) from ``(x0,
    y0)``, cells ``floor((x - x0) / x_span * nx)``; points outside are not counted."""
    for i in range(len(x)):
        ix = np.floor((x[i] - x0) / x_span * nx)
        iy = np.floor((y[i] - y0) / y_span * ny)
        if 0 <= ix < nx and 0 <= iy < ny:
            counts[int(ix) * ny + int(iy)] += 1


@jit
def strip(  # pragma: no cover - compiled
    x: Floats,
    y: Floats,
    slope: float,
    intercept: float,
    norm: float,
    t_lo: float,
    t_hi: float,
    x_out: Floats,
    y_out: Floats,
    d_out: Floats,
) -> int:
    """The points whose coordinate along a line, ``(x + slope y) / norm``, lies strictly
    between ``t_lo`` and ``t_hi``, and their perpendicular distances in mmag, ``(y - slope x
    - intercept) / norm * 1e3`` (``norm = hypot(1, slope)``): the operations of
    :meth:`.fitting.Line.along` and :func:`.fitting.perpendicular_mmag`, in their order.
    Returns how many were kept."""
    n = 0
    for i in range(len(x)):
        t = slope * y[i]
        t += x[i]
        t /= norm
        if t > t_lo and t < t_hi:
            d = slope * x[i]
            d = y[i] - d
            d -= intercept
            d /= norm
            d *= 1e3
            x_out[n] = x[i]
            y_out[n] = y[i]
            d_out[n] = d
            n += 1
    return n


@jit
def lookup_bins(  # pragma: no cover - compiled
    values: Floats,
    edges: Floats,
    first: float,
    per_unit: float,
    lookup: npt.NDArray[np.int16],
    out: npt.NDArray[np.int16],
) -> None:
    """The bin ``b`` with ``edges[b] <= value < edges[b + 1]`` of each value (-1 outside or
    NaN): the lookup cell's bin, then moved past the neighbouring edges (see
    :func:`.stars.bin_index`)."""
    top = len(edges) - 2
    for i in range(len(values)):
        v = values[i]
        if not (v >= edges[0] and v < edges[-1]):
            out[i] = -1
            continue
        b = lookup[int((v - first) * per_unit)]
        while b > 0 and v < edges[b]:
            b -= 1
        while b < top and v >= edges[b + 1]:
            b += 1
        out[i] = b


@jit
def colour_pairs(  # pragma: no cover - compiled
    mags: npt.NDArray[np.float64],
    rows: Ints,
    xa: int,
    xb: int,
    ya: int,
    yb: int,
    x_out: Floats,
    y_out: Floats,
) -> int:
    """Colours ``mags[xa] - mags[xb]`` and ``mags[ya] - mags[yb]`` (rows of ``mags``: bands)
    at ``rows``, where both are finite; returns how many."""
    n = 0
    for k in range(len(rows)):
        r = rows[k]
        cx = mags[xa, r] - mags[xb, r]
        cy = mags[ya, r] - mags[yb, r]
        if np.isfinite(cx) and np.isfinite(cy):
            x_out[n] = cx
            y_out[n] = cy
            n += 1
    return n


@jit
def principal_colour(  # pragma: no cover - compiled
    mags: npt.NDArray[np.float64],
    rows: Ints,
    bands: Ints,
    coeffs: Floats,
    const: float,
    range_bands: Ints,
    range_coeffs: Floats,
    range_const: float,
    range_min: float,
    range_max: float,
    out: Floats,
) -> int:
    """A principal colour in mmag, ``(sum c mag + const) 1e3``, at ``rows`` whose parallel
    colour (the same form with the range's coefficients) lies strictly inside the range and
    whose value is finite; returns how many. The sums start at 0 and add each term in
    order, as :func:`.stars.star_arrays` did in numpy."""
    n = 0
    for k in range(len(rows)):
        r = rows[k]
        parallel = 0.0
        for j in range(len(range_bands)):
            parallel += range_coeffs[j] * mags[range_bands[j], r]
        parallel += range_const
        value = 0.0
        for j in range(len(bands)):
            value += coeffs[j] * mags[bands[j], r]
        value += const
        value *= 1e3
        if parallel > range_min and parallel < range_max and np.isfinite(value):
            out[n] = value
            n += 1
    return n


@jit
def locus_colour(  # pragma: no cover - compiled
    mags: npt.NDArray[np.float64],
    rows: Ints,
    a: int,
    b: int,
    group: npt.NDArray[np.int16],
    group_out: npt.NDArray[np.int16],
    value_out: Floats,
) -> int:
    """The colour ``mags[a] - mags[b]`` and g-i bin of the ``rows`` in a bin (``group >= 0``)
    with a finite colour; returns how many."""
    n = 0
    for k in range(len(rows)):
        r = rows[k]
        g = group[r]
        value = mags[a, r] - mags[b, r]
        if g >= 0 and np.isfinite(value):
            group_out[n] = g
            value_out[n] = value
            n += 1
    return n
