"""Sky position to NESTED HEALPix pixel, exactly as ``hpgeom.angle_to_pixel`` gives it.

hpgeom costs about 30 ns a row and holds the GIL. For rows of the equatorial zone
(``|sin dec| <= 2/3``) the pixel is a function of two integers, HEALPix's edge-line indices

    ``jp = floor(a - b)`` and ``jm = floor(a + b)``, with ``a = nside (1/2 + ra / 90 deg)``
    and ``b = 3/4 nside sin(dec)``

(``loc2pix`` of Healpix C++, which hpgeom uses). :func:`nested_pixels` computes ``a - b`` and
``a + b`` in one compiled loop (:func:`~skydask.analyses.depthmap.kernels.equatorial_pixels`),
taking ``sin(dec)`` from a Taylor polynomial about the middle of the rows' declinations (a
few multiply-adds where ``sin`` costs several times as much; the polynomial's truncation
error is bounded and added to the margin below), and maps ``(jp, jm)`` to the pixel through
a table over the small range of edge lines a compact partition covers (or, for wide
ranges, with the same integer arithmetic row by row): 4.5 ns a row, releasing the GIL, where
hpgeom takes 30 ns and holds it. (The same method as about fifteen numpy calls over chunks
of rows took 6.5 ns a row.) With the table, rows can also be returned as codes (the rank of
their pixel among the table's), which :mod:`.pixels` counts without another pass.

Exactness. ``a - b`` and ``a + b`` computed here and in hpgeom differ by rounding (a few
float64 roundings of numbers below ``5 nside``, and ``sin(dec)`` against hpgeom's
``cos(pi/2 - dec)``) and by the polynomial's truncation, bounded by Taylor's remainder
(every derivative of sin is at most 1). A row whose ``a - b`` or ``a + b`` lies within
``margin = 1e-9 + 1e-12 nside + 3/4 nside (truncation bound)`` of an integer goes to hpgeom
itself (about one row in 10^7 at nside 1024); the rounding part of the margin is 250 to
500 times the largest difference measured (4e-12 at nside 1024, 4e-9 at 2**20), and the
tests compare with hpgeom on points on and one ulp off pixel edges. Rows in the polar caps
(``|dec| > 41.8 deg``: their edge lines are not straight in ``(ra, sin dec)``; not done yet),
with an ``ra`` within 1e-6 deg of 0/360 or outside [0, 360], or not finite, go to hpgeom as
well, so every row gets hpgeom's answer, bit for bit.
"""

from __future__ import annotations

import math
from typing import Any

import hpgeom
import numpy as np
import numpy.typing as npt

from skydask.analyses.depthmap.kernels import edge_lines_to_nested, equatorial_pixels
from skydask.catalog.reader import Chunks

__all__ = ["chunked_pixel_codes", "nested_pixels", "piece_bounds"]

FloatArray = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]

_HPGEOM_CHUNK = 1 << 16  # rows per hpgeom call: 2 ms holding the GIL
_TWO_THIRDS = 2.0 / 3.0
_ZONE_MARGIN = 1e-9  # |sin dec| this close to 2/3 goes to hpgeom (zone decided by rounding)
# declinations (deg) strictly within this of the equator are surely in the equatorial zone
_ZONE_DEC = math.degrees(math.asin(_TWO_THIRDS - _ZONE_MARGIN))
_RA_MARGIN = 1e-6  # deg: ra this close to 0/360 goes to hpgeom (phi wraps there)
_TRUNCATION = 1e-10  # largest truncation error of the sine polynomial used (else np.sin)
_TABLE_CELLS = 1 << 18  # (jp, jm) table size limit; wider ranges use the formula per row
_ROWS_PER_CELL = 8  # a table costs ~80 ns a cell and saves ~18 ns a row: only for many rows
_NO_TABLE = np.empty(0, dtype=np.int64)


def nested_pixels(
    nside: int,
    ra: FloatArray,
    dec: FloatArray,
    bounds: tuple[float, float, float, float] | None = None,
) -> Int64Array:
    """``hpgeom.angle_to_pixel(nside, ra, dec, nest=True, lonlat=True)``, faster.

    ``ra`` and ``dec`` in degrees (float64); ``bounds``, if known, their
    ``(ra.min(), ra.max(), dec.min(), dec.max())``. Rows outside the equatorial zone or
    near ``ra`` 0/360, and any that are not finite or out of range, are passed to hpgeom
    (with its own behaviour for them).

    Examples
    --------
    >>> ra, dec = np.array([10.0, 200.5, 359.9999999]), np.array([-30.0, 41.0, 0.0])
    >>> nested_pixels(1024, ra, dec).tolist() == hpgeom.angle_to_pixel(
    ...     1024, ra, dec, nest=True, lonlat=True).tolist()
    True
    """
    codes, pixels = nested_pixel_codes(nside, ra, dec, bounds)
    return codes if pixels is None else pixels[codes]


def nested_pixel_codes(
    nside: int,
    ra: FloatArray,
    dec: FloatArray,
    bounds: tuple[float, float, float, float] | None = None,
    out: Int64Array | None = None,
) -> tuple[Int64Array, Int64Array | None]:
    """The rows' pixels as :func:`nested_pixels`, coded when they lie in a compact box.

    Returns ``(codes, pixels)``: the pixel of row ``i`` is ``pixels[codes[i]]``, ``pixels``
    ascending and distinct (the pixels of the box's edge-line table), so that codes order
    as pixels do and count with a short ``np.bincount``; or ``(pixel numbers, None)``
    where the rows are not all in one compact box of the equatorial zone. ``out``, if
    given, receives the codes (or pixel numbers).

    Examples
    --------
    >>> ra, dec = np.array([56.0, 56.2, 56.0]), np.array([-39.0, -39.1, -39.0])
    >>> codes, pixels = nested_pixel_codes(1024, ra, dec)
    >>> pixels[codes].tolist() == nested_pixels(1024, ra, dec).tolist(), bool(codes[0] == codes[2])
    (True, True)
    """
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    order = int(math.log2(nside))
    if nside < 1 or 1 << order != nside:
        raise ValueError(f"nside {nside} is not a power of two")
    if out is None:
        out = np.empty(len(ra), dtype=np.int64)
    if not len(ra):
        return out, None
    if bounds is None:
        bounds = (float(ra.min()), float(ra.max()), float(dec.min()), float(dec.max()))
    if _in_box(bounds):
        box = _Equatorial.for_box(order, *bounds, rows=len(ra))
        return box.pixels(ra, dec, out), box.coded
    with np.errstate(invalid="ignore"):
        fast = (ra >= _RA_MARGIN) & (ra <= 360.0 - _RA_MARGIN)
        fast &= (dec > -_ZONE_DEC) & (dec < _ZONE_DEC)
    slow = ~fast
    if slow.any():
        out[slow] = _hpgeom(nside, ra[slow], dec[slow])
    if fast.any():
        ra, dec = ra[fast], dec[fast]
        box = _Equatorial.for_box(
            order, float(ra.min()), float(ra.max()), float(dec.min()), float(dec.max()), len(ra)
        )
        codes = box.pixels(ra, dec, np.empty(len(ra), dtype=np.int64))
        out[fast] = codes if box.coded is None else box.coded[codes]
    return out, None


def chunked_pixel_codes(
    nside: int,
    ra: Chunks,
    dec: Chunks,
    bounds: tuple[float, float, float, float],
    out: Int64Array,
) -> tuple[Int64Array, Int64Array | None]:
    """:func:`nested_pixel_codes` of ``len(out)`` rows held in pieces, piece by piece.

    ``ra`` and ``dec`` (float64, degrees) are ``(first row, values)`` pieces in row order,
    as :meth:`skydask.catalog.reader.ChunkedColumns.chunks` gives them (one per row group),
    and ``bounds`` their :func:`piece_bounds`. Rows in one compact box of the equatorial
    zone have their codes computed where the pieces are, into ``out``: joining the pieces
    into whole columns first would cost a write and a read of every position. Other rows,
    or pieces of the two columns that do not match, are joined and passed to
    :func:`nested_pixel_codes`.

    Examples
    --------
    >>> ra, dec = np.array([56.0, 56.2, 56.0]), np.array([-39.0, -39.1, -39.0])
    >>> ra_p, dec_p = [(0, ra[:1]), (1, ra[1:])], [(0, dec[:1]), (1, dec[1:])]
    >>> out = np.empty(3, dtype=np.int64)
    >>> codes, pixels = chunked_pixel_codes(1024, ra_p, dec_p, piece_bounds(ra_p, dec_p), out)
    >>> pixels[codes].tolist() == nested_pixels(1024, ra, dec).tolist()
    True
    """
    same_pieces = [(s, len(v)) for s, v in ra] == [(s, len(v)) for s, v in dec]
    if len(out) and same_pieces and _in_box(bounds):
        box = _Equatorial.for_box(int(math.log2(nside)), *bounds, rows=len(out))
        coded = box.coded
        for (start, r), (_, d) in zip(ra, dec, strict=True):
            box.pixels(r, d, out[start : start + len(r)])
            if box.coded is not coded:  # a pixel outside the table: never, by construction
                break
        else:
            return out, coded
    joined_ra = np.concatenate([v for _, v in ra]) if ra else np.empty(0)
    joined_dec = np.concatenate([v for _, v in dec]) if dec else np.empty(0)
    return nested_pixel_codes(nside, joined_ra, joined_dec, bounds, out=out)


def piece_bounds(ra: Chunks, dec: Chunks) -> tuple[float, float, float, float]:
    """``(ra min, ra max, dec min, dec max)`` over all the pieces; NaN if any value is NaN.

    >>> piece_bounds([(0, np.array([3.0, 1.0])), (2, np.array([2.0]))], [(0, np.ones(3))])
    (1.0, 3.0, 1.0, 1.0)
    """

    def extreme(pieces: Chunks, reduce: Any, empty: float) -> float:
        # np.min and np.max propagate NaN (Python's min and max would not)
        return float(reduce([reduce(v) for _, v in pieces if len(v)], initial=empty))

    return (
        extreme(ra, np.min, np.inf),
        extreme(ra, np.max, -np.inf),
        extreme(dec, np.min, np.inf),
        extreme(dec, np.max, -np.inf),
    )


def _in_box(bounds: tuple[float, float, float, float]) -> bool:
    """Do ``(ra_lo, ra_hi, dec_lo, dec_hi)`` bound a box of :class:`_Equatorial`'s fast path
    (the equatorial zone, away from ``ra`` 0/360)? Comparisons with NaN bounds are false:
    such rows take the row-by-row route."""
    ra_lo, ra_hi, dec_lo, dec_hi = bounds
    in_zone = dec_lo > -_ZONE_DEC and dec_hi < _ZONE_DEC
    return in_zone and ra_lo >= _RA_MARGIN and ra_hi <= 360.0 - _RA_MARGIN


def _hpgeom(nside: int, ra: FloatArray, dec: FloatArray) -> Int64Array:
    """hpgeom in chunks, so that it hands the GIL back within milliseconds."""
    out = np.empty(len(ra), dtype=np.int64)
    for start in range(0, len(ra), _HPGEOM_CHUNK):
        end = start + _HPGEOM_CHUNK
        out[start:end] = hpgeom.angle_to_pixel(
            nside, ra[start:end], dec[start:end], nest=True, lonlat=True
        )
    return out


class _Equatorial:
    """The fast path for rows known to lie in a box of the equatorial zone (see module)."""

    def __init__(
        self,
        order: int,
        coefficients: FloatArray,
        centre: float,
        margin: float,
        table: tuple[Int64Array, int, int, int] | None,
        coded: Int64Array | None,
    ) -> None:
        self.order = order
        self.nside = 1 << order
        self.coefficients = coefficients  # of 3/4 nside sin(centre + h), h in radians
        self.centre = centre
        self.margin = margin
        # (codes, jp0, jm0, width): the code of edge lines (jp, jm) is
        # codes[(jp - jp0) width + jm - jm0], its pixel coded[code] (coded: ascending)
        self.table = table
        self.coded = coded

    @classmethod
    def for_box(
        cls, order: int, ra_lo: float, ra_hi: float, dec_lo: float, dec_hi: float, rows: int
    ) -> _Equatorial:
        """The fast path for ``rows`` rows in this box (a table of edge lines if it pays)."""
        nside = 1 << order
        centre = math.radians((dec_lo + dec_hi) / 2)
        half = math.radians((dec_hi - dec_lo) / 2) * (1 + 1e-9) + 1e-15
        # every derivative of sin is at most 1: Taylor's remainder bounds the truncation
        # (degree 4 for a 2-degree tract; 12 for the whole equatorial zone, |dec| < 41.9)
        degree = 2
        while half ** (degree + 1) / math.factorial(degree + 1) > _TRUNCATION:
            degree += 1
        truncation = half ** (degree + 1) / math.factorial(degree + 1)
        s, c = math.sin(centre), math.cos(centre)
        cycle = [s, c, -s, -c]
        coefficients = np.array(
            [0.75 * nside * cycle[k % 4] / math.factorial(k) for k in range(degree + 1)]
        )
        margin = 1e-9 + 1e-12 * nside + 0.75 * nside * truncation
        # edge lines of the box's corners, widened by one line each way
        a_lo, a_hi = nside * (0.5 + ra_lo / 90.0), nside * (0.5 + ra_hi / 90.0)
        b_lo = 0.75 * nside * math.sin(math.radians(dec_lo))
        b_hi = 0.75 * nside * math.sin(math.radians(dec_hi))
        jp0, jp1 = int(a_lo - b_hi) - 1, int(a_hi - b_lo) + 1
        jm0, jm1 = int(a_lo + b_lo) - 1, int(a_hi + b_hi) + 1
        width = jm1 - jm0 + 1
        table, coded = None, None
        if (jp1 - jp0 + 1) * width <= min(_TABLE_CELLS, max(4096, rows // _ROWS_PER_CELL)):
            jp = np.repeat(np.arange(jp0, jp1 + 1, dtype=np.int64), width)
            jm = np.tile(np.arange(jm0, jm1 + 1, dtype=np.int64), jp1 - jp0 + 1)
            # distinct pixels by construction (edge lines name a pixel), and np.unique
            # keeps codes one-to-one with pixels even for the unused lines at the borders
            coded, codes = np.unique(edge_lines_to_nested(order, jp, jm), return_inverse=True)
            table = (codes.astype(np.int64), jp0, jm0, width)
        return cls(order, coefficients, centre, margin, table, coded)

    def pixels(self, ra: FloatArray, dec: FloatArray, out: Int64Array) -> Int64Array:
        """Codes of the rows' pixels (pixel numbers if ``coded`` is None) into ``out``.

        Rows must lie in the box; ``coded`` is reset to None if a row left to hpgeom has a
        pixel outside the table (which the table's widening by one line rules out)."""
        ra = np.ascontiguousarray(ra, dtype=np.float64)
        dec = np.ascontiguousarray(dec, dtype=np.float64)
        table, jp0, jm0, width = self.table if self.table is not None else (_NO_TABLE, 0, 0, 0)
        doubtful = np.empty(len(ra), dtype=np.int64)  # pages untouched unless written
        n_doubtful = equatorial_pixels(
            ra, dec, out, self.order, self.centre, self.coefficients, self.margin,
            table, jp0, jm0, width, doubtful,
        )  # fmt: skip
        if n_doubtful:
            rows = doubtful[:n_doubtful]
            exact = hpgeom.angle_to_pixel(self.nside, ra[rows], dec[rows], nest=True, lonlat=True)
            if self.coded is None:
                out[rows] = exact
            else:
                code = np.minimum(np.searchsorted(self.coded, exact), len(self.coded) - 1)
                if not np.array_equal(self.coded[code], exact):  # never, by construction
                    pixels = self.coded[out]
                    pixels[rows] = exact
                    self.coded = None
                    out[:] = pixels
                    return out
                out[rows] = code
        return out
