"""Line geometry and the per-partition tasks of the stellar-locus passes.

The orthogonal-distance fit of a straight line to points with equal errors in x and y is the
principal axis of their 2x2 covariance (total least squares), which needs only the partial sums
``n, Sx, Sy, Sxx, Syy, Sxy``: they add up over partitions, so a fit is one decomposable pass
(:class:`SumsTask`, :func:`line_from_sums`). ``scipy.odr``, which Rubin's code uses, converges to
the same line; it is deprecated since SciPy 1.17 and not needed.

Every task is a small frozen dataclass with a ``partial(stars) -> dict`` method, so a pass is a
list of tasks applied to each partition of the selected stars and merged with
:func:`~skydask.analyses.locus.quantiles.merge_partials`. A partition of the selected stars
(:class:`~skydask.analyses.locus.stars.StarArrays`) holds, computed once from the
extinction-corrected magnitudes, the colours of each fit's plane for the stars of its cut, each
principal colour and each locus colour with its g-i bin, each array holding only the stars it
describes. A pass then does only the arithmetic that depends on the current fit, and a strip
or a clip first takes the stars inside it, so the distances are computed for those alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from skydask.analyses.locus import kernels
from skydask.analyses.locus.config import ColourPlane, LocusFit
from skydask.analyses.locus.stars import StarArrays, locus_key, pair_key

__all__ = [
    "ClipSumsTask",
    "CountTask",
    "DensityTask",
    "Line",
    "LocusValues",
    "PerpValues",
    "PrincipalValues",
    "Region",
    "SumsTask",
    "line_from_sums",
    "perpendicular_mmag",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Line:
    """``y = slope * x + intercept`` in a colour-colour plane."""

    slope: float
    intercept: float

    def perpendicular_mmag(self, x: FloatArray, y: FloatArray) -> FloatArray:
        return perpendicular_mmag(x, y, self)

    def ends(self, fit: LocusFit) -> tuple[tuple[float, float], tuple[float, float]]:
        """The points where the perpendiculars through the box ends cross the line.

        As Rubin's code: the box's x limits for a shallow line, its y limits for a steep one.
        """
        m, b = self.slope, self.intercept
        if abs(m) > 1:
            return ((fit.y_min - b) / m, fit.y_min), ((fit.y_max - b) / m, fit.y_max)
        return (fit.x_min, m * fit.x_min + b), (fit.x_max, m * fit.x_max + b)

    def along(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Coordinate along the line (projection on its unit direction)."""
        t = np.multiply(self.slope, y)  # x + m y, in place (the same operations, fewer arrays)
        t += x
        t /= math.hypot(1.0, self.slope)
        return t


def perpendicular_mmag(x: FloatArray, y: FloatArray, line: Line) -> FloatArray:
    """Signed perpendicular distance (mmag) of points from a line, positive above it.

    Examples
    --------
    >>> perpendicular_mmag(np.array([0.0, 1.0]), np.array([1.0, 0.0]), Line(1.0, 0.0)).round(3)
    array([ 707.107, -707.107])
    """
    # (y - m x - b) / hypot(1, m) * 1e3, operation by operation in place
    d = np.multiply(line.slope, x)
    np.subtract(y, d, out=d)
    d -= line.intercept
    d /= math.hypot(1.0, line.slope)
    d *= 1e3
    return d


def line_from_sums(sums: FloatArray, origin: tuple[float, float]) -> Line:
    """The orthogonal-distance (total least squares) line from partial sums.

    ``sums`` is ``[n, Sx, Sy, Sxx, Syy, Sxy]`` of ``x - origin[0]`` and ``y - origin[1]``
    (shifting to a point near the data keeps the moments free of cancellation). The line passes
    through the mean, along the principal axis of the covariance, whose angle is
    ``0.5 atan2(2 Cxy, Cxx - Cyy)``.

    Examples
    --------
    >>> x = np.array([0.0, 1.0, 2.0, 3.0]); y = 2 * x + 1
    >>> s = np.array([4, x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum()])
    >>> line = line_from_sums(s, (0.0, 0.0))
    >>> round(line.slope, 12), round(line.intercept, 12)
    (2.0, 1.0)
    """
    n, sx, sy, sxx, syy, sxy = (float(v) for v in sums)
    mx, my = sx / n, sy / n
    cxx, cyy, cxy = sxx / n - mx * mx, syy / n - my * my, sxy / n - mx * my
    theta = 0.5 * math.atan2(2.0 * cxy, cxx - cyy)
    if abs(math.cos(theta)) < 1e-12:
        raise ValueError("the points lie on a vertical line; y = m x + b cannot describe it")
    slope = math.tan(theta)
    return Line(slope, (origin[1] + my) - slope * (origin[0] + mx))


@dataclass(frozen=True)
class Region:
    """Which points of a fit's plane a step uses.

    ``box``: inside the fit box (strict). ``strip``: between the perpendiculars through the
    ends of ``line``. ``clip``: in the strip and within ``clip_mmag`` of ``line``.
    """

    kind: str
    line: Line | None = None
    clip_mmag: float | None = None

    def select(
        self, stars: StarArrays, fit: LocusFit, selection: str
    ) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        """The points of a fit's plane (the stars of ``selection``) in the region, and for a
        strip or a clip their distances (mmag) from ``line``.

        A strip takes its points first, so the distances are computed for those alone; and
        it is remembered on ``stars`` for the next pass with the same line
        (:func:`_strip`).

        Examples
        --------
        >>> from skydask.analyses.locus.config import RUBIN_FITS
        >>> w = RUBIN_FITS["w"]
        >>> plane = (np.array([0.5, 0.5, 2.0]), np.array([0.2, 0.9, 0.7]))
        >>> stars = StarArrays({"sel0": 3}, {"g-r|r-i@sel0": plane}, {}, {})
        >>> Region("box").select(stars, w, "sel0")[0].tolist()
        [0.5]
        >>> xs, ys, d = Region("clip", Line(0.4, 0.0), 100.0).select(stars, w, "sel0")
        >>> xs.tolist(), d.round(1).tolist()
        ([0.5], [0.0])
        """
        if self.kind == "box":
            x, y = stars.pairs[pair_key(fit.x, fit.y, selection)]
            inside = (x > fit.x_min) & (x < fit.x_max) & (y > fit.y_min) & (y < fit.y_max)
            return x[inside], y[inside], None
        assert self.line is not None
        x, y, perp = _strip(stars, fit, selection, self.line)
        if self.kind != "clip":
            return x, y, perp
        assert self.clip_mmag is not None
        keep = np.abs(perp) <= self.clip_mmag
        return x[keep], y[keep], perp[keep]


def _strip(
    stars: StarArrays, fit: LocusFit, selection: str, line: Line
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The points of a fit's plane between the perpendiculars through the ends of ``line``,
    and their distances (mmag) from it.

    Kept on ``stars`` (:attr:`~skydask.analyses.locus.stars.StarArrays.memo`, one line per
    fit and cut: a new line replaces the old) for the passes after: the histogram pass of a
    clip step, its gather pass and its refit all take the strip of the same line, which cost
    the passes as much as everything else they do (the 20M-row benchmark: 150 of 250 ms of
    the passes' work, one thread, when each pass took it anew).
    """
    key = ("strip", fit, selection)
    held = stars.memo.get(key)
    if held is not None and held[0] == line:
        return held[1]
    x, y = stars.pairs[pair_key(fit.x, fit.y, selection)]
    (x1, y1), (x2, y2) = line.ends(fit)
    t1, t2 = (float(v) for v in line.along(np.array([x1, x2]), np.array([y1, y2])))
    # one compiled pass: the coordinate along the line, the test, the distance of those kept
    # (the operations of Line.along and perpendicular_mmag; 3 ms a fit in numpy)
    out = np.empty((3, len(x)))
    n = kernels.strip(
        x, y, line.slope, line.intercept, math.hypot(1.0, line.slope),
        min(t1, t2), max(t1, t2), out[0], out[1], out[2],
    )  # fmt: skip
    found = (out[0, :n].copy(), out[1, :n].copy(), out[2, :n].copy())
    stars.memo[key] = (line, found)
    return found


@dataclass(frozen=True)
class SumsTask:
    """Partial sums ``[n, Sx, Sy, Sxx, Syy, Sxy]`` of a fit's points in a region."""

    key: str
    fit: LocusFit
    selection: str
    region: Region

    def partial(self, stars: StarArrays) -> dict[str, Any]:
        x, y, _ = self.region.select(stars, self.fit, self.selection)
        return {self.key: _sums(x, y, box_centre(self.fit))}


def box_centre(fit: LocusFit) -> tuple[float, float]:
    """The centre of a fit's box: the origin of its partial sums (keeps them free of
    cancellation)."""
    return 0.5 * (fit.x_min + fit.x_max), 0.5 * (fit.y_min + fit.y_max)


def _sums(x: FloatArray, y: FloatArray, origin: tuple[float, float]) -> FloatArray:
    """``[n, Sx, Sy, Sxx, Syy, Sxy]`` of ``x - origin[0]`` and ``y - origin[1]``."""
    dx, dy = x - origin[0], y - origin[1]
    sums = [len(dx), dx.sum(), dy.sum(), (dx * dx).sum(), (dy * dy).sum(), (dx * dy).sum()]
    return np.array(sums, dtype=np.float64)


@dataclass(frozen=True)
class ClipSumsTask:
    """A clip's refit sums while its limit is only known to lie in ``(lo, hi]``.

    The clip limit is ``n x 0.74 x IQR`` of the distances in the strip, and the gather pass
    that finds the quartiles exactly is also the pass that could refit. After the histogram
    pass the limit is known to lie in a narrow range (the quartiles' bins), so this task sums
    the strip's points within ``lo`` of ``line`` and returns the few points between ``lo`` and
    ``hi`` as they are; :meth:`total` adds those within the exact limit once it is known. The
    refit then costs no pass of its own and equals :class:`SumsTask` on ``Region("clip",
    line, limit)``, up to the order of the additions.
    """

    key: str
    fit: LocusFit
    selection: str
    line: Line
    lo: float
    hi: float

    def partial(self, stars: StarArrays) -> dict[str, Any]:
        x, y, perp = Region("strip", self.line).select(stars, self.fit, self.selection)
        assert perp is not None
        distance = np.abs(perp)
        inner = distance <= self.lo
        edge = ~inner & (distance <= self.hi)
        return {self.key: [(_sums(x[inner], y[inner], box_centre(self.fit)), x[edge], y[edge])]}

    def total(self, merged: list[Any], clip_mmag: float) -> FloatArray:
        """The sums of the points within ``clip_mmag`` (in ``[lo, hi]``) of ``line``."""
        if not self.lo <= clip_mmag <= self.hi:
            raise ValueError(
                f"clip limit {clip_mmag} outside the planned range {self.lo}..{self.hi}"
            )
        sums = np.zeros(6)
        for inner, x, y in merged:
            sums += inner
            # the same distances and comparison as Region("clip", ...).select
            keep = np.abs(self.line.perpendicular_mmag(x, y)) <= clip_mmag
            sums += _sums(x[keep], y[keep], box_centre(self.fit))
        return sums


@dataclass(frozen=True)
class PerpValues:
    """Perpendicular distances (mmag) from ``line`` of a fit's points in ``region``."""

    fit: LocusFit
    selection: str
    region: Region
    line: Line

    def values(self, stars: StarArrays) -> tuple[IntArray, FloatArray]:
        x, y, d = self.region.select(stars, self.fit, self.selection)
        if d is None or self.region.line != self.line:  # a clip's distances serve when they can
            d = self.line.perpendicular_mmag(x, y)
        return np.zeros(len(d), dtype=np.int64), d


@dataclass(frozen=True)
class PrincipalValues:
    """An SDSS principal colour (mmag) of the stars of its cut whose parallel colour is in
    range (computed when the star arrays are built)."""

    name: str

    def values(self, stars: StarArrays) -> tuple[IntArray, FloatArray]:
        value = stars.values[self.name]
        return np.zeros(len(value), dtype=np.int64), value


@dataclass(frozen=True)
class LocusValues:
    """One colour (mag) of the stars of a cut, grouped by their g-i bin."""

    colour: str
    selection: str

    def values(self, stars: StarArrays) -> tuple[IntArray, FloatArray]:
        group, value = stars.groups[locus_key(self.colour, self.selection)]
        return group.astype(np.int64), value


@dataclass(frozen=True)
class DensityTask:
    """Counts of the selected stars in a colour-colour plane, on a fixed grid."""

    key: str
    plane: ColourPlane
    selection: str
    x_range: tuple[float, float, int]
    y_range: tuple[float, float, int]

    def partial(self, stars: StarArrays) -> dict[str, Any]:
        x, y = stars.pairs[pair_key(self.plane.x, self.plane.y, self.selection)]
        (x0, x1, nx), (y0, y1, ny) = self.x_range, self.y_range
        counts = np.zeros(nx * ny, dtype=np.int64)  # cells floor((x - x0) / (x1 - x0) * nx)
        kernels.grid_counts(x, y, x0, x1 - x0, nx, y0, y1 - y0, ny, counts)
        return {self.key: counts}


@dataclass(frozen=True)
class CountTask:
    """Number of stars in a selection."""

    key: str
    selection: str

    def partial(self, stars: StarArrays) -> dict[str, Any]:
        return {self.key: int(stars.counts[self.selection])}
