"""Sky regions for catalogue selections: cones, RA/Dec boxes and HEALPix pixel sets.

Each region answers two questions. ``contains(ra, dec)`` is the exact row test. The
``may_overlap_*`` methods are conservative tests against what is known before reading (the
ra/dec min/max of a Parquet row group, or the HEALPix pixel a HATS file covers): they may say
"perhaps" for a file that turns out empty, but never "no" for one that holds a matching row.
Files and row groups for which every region says "no" are never read.

RA ranges are handled on the circle: a box with ``ra_min > ra_max`` wraps through RA = 0/360,
and a cone's RA extent wraps too. Near a pole a cone's RA extent is the whole circle.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Protocol

import hpgeom
import numpy as np
import numpy.typing as npt

__all__ = ["Box", "Cone", "HealpixRegion", "Region", "angular_separation_deg"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def angular_separation_deg(
    ra1: npt.ArrayLike, dec1: npt.ArrayLike, ra2: float, dec2: float
) -> FloatArray:
    """Great-circle distance in degrees (haversine form: accurate at small separations).

    Examples
    --------
    >>> float(angular_separation_deg(0.0, 0.0, 90.0, 0.0))
    90.0
    >>> round(float(angular_separation_deg(359.5, 0.0, 0.5, 0.0)), 9)
    1.0
    """
    ra1r, dec1r = np.radians(ra1), np.radians(dec1)
    ra2r, dec2r = math.radians(ra2), math.radians(dec2)
    h = (
        np.sin((dec1r - dec2r) / 2) ** 2
        + np.cos(dec1r) * math.cos(dec2r) * np.sin((ra1r - ra2r) / 2) ** 2
    )
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))


def _ra_intervals_overlap(lo: float, hi: float, start: float, width: float) -> bool:
    """Does [lo, hi] (no wrap, in [0, 360]) meet the arc from ``start`` going ``width`` deg east?"""
    if width >= 360.0 or hi - lo >= 360.0:
        return True
    start %= 360.0
    # the arc may wrap: test it as up to two plain intervals
    end = start + width
    if end <= 360.0:
        return not (hi < start or lo > end)
    return not (hi < start and lo > end - 360.0)


class Region(Protocol):
    """What the catalogue layer asks of a region."""

    def contains(self, ra: FloatArray, dec: FloatArray) -> BoolArray: ...

    def may_overlap_bounds(
        self, ra_lo: float, ra_hi: float, dec_lo: float, dec_hi: float
    ) -> bool: ...

    def may_overlap_pixel(self, order: int, pixel: int) -> bool: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Cone:
    """All points within ``radius`` degrees of (``ra``, ``dec``).

    Examples
    --------
    >>> c = Cone(0.2, 10.0, 0.5)
    >>> c.contains(np.array([359.9, 1.0]), np.array([10.0, 10.0])).tolist()
    [True, False]
    >>> c.may_overlap_bounds(359.0, 359.95, 9.0, 11.0)
    True
    """

    ra: float
    dec: float
    radius: float

    def __post_init__(self) -> None:
        if not (-90.0 <= self.dec <= 90.0):
            raise ValueError(f"cone dec={self.dec} is outside [-90, 90] degrees")
        if not (0.0 < self.radius <= 180.0):
            raise ValueError(f"cone radius={self.radius} must be in (0, 180] degrees")

    def contains(self, ra: FloatArray, dec: FloatArray) -> BoolArray:
        ra, dec = np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64)
        # cheap comparisons first: only rows in the cone's Dec band and RA window need the
        # trigonometry of the exact distance
        candidate = np.abs(dec - self.dec) <= self.radius
        start, width = self._ra_arc
        if width < 360.0:
            candidate &= ((ra - start) % 360.0) <= width
        out = np.zeros(ra.shape, dtype=bool)
        idx = np.flatnonzero(candidate)
        out[idx] = angular_separation_deg(ra[idx], dec[idx], self.ra, self.dec) <= self.radius
        return out

    @functools.cached_property
    def _ra_arc(self) -> tuple[float, float]:
        """(start, width) of the cone's RA extent; width 360 when it holds a pole."""
        if abs(self.dec) + self.radius >= 90.0:
            return 0.0, 360.0
        half = math.degrees(
            math.asin(
                min(1.0, math.sin(math.radians(self.radius)) / math.cos(math.radians(self.dec)))
            )
        )
        return self.ra - half, 2 * half

    def may_overlap_bounds(self, ra_lo: float, ra_hi: float, dec_lo: float, dec_hi: float) -> bool:
        if dec_hi < self.dec - self.radius or dec_lo > self.dec + self.radius:
            return False
        return _ra_intervals_overlap(ra_lo, ra_hi, *self._ra_arc)

    @functools.cache  # noqa: B019  (regions are few, small and immutable)
    def _pixels(self, order: int) -> frozenset[int]:
        pix = hpgeom.query_circle(
            2**order, self.ra, self.dec, self.radius, inclusive=True, fact=8 if order <= 26 else 1
        )
        return frozenset(int(p) for p in pix)

    def may_overlap_pixel(self, order: int, pixel: int) -> bool:
        return pixel in self._pixels(order)

    def describe(self) -> str:
        return f"cone(ra={self.ra:g}, dec={self.dec:g}, r={self.radius:g} deg)"


@dataclass(frozen=True)
class Box:
    """An RA/Dec box; ``ra_min > ra_max`` means the box wraps through RA = 0/360.

    Examples
    --------
    >>> b = Box(350.0, 10.0, -5.0, 5.0)
    >>> b.contains(np.array([355.0, 5.0, 180.0]), np.zeros(3)).tolist()
    [True, True, False]
    """

    ra_min: float
    ra_max: float
    dec_min: float
    dec_max: float

    def __post_init__(self) -> None:
        if not (-90.0 <= self.dec_min < self.dec_max <= 90.0):
            raise ValueError(
                f"box needs -90 <= dec_min < dec_max <= 90, got {self.dec_min}, {self.dec_max}"
            )

    @property
    def _ra_width(self) -> float:
        width = (self.ra_max - self.ra_min) % 360.0
        return 360.0 if width == 0.0 and self.ra_max != self.ra_min else width

    def contains(self, ra: FloatArray, dec: FloatArray) -> BoolArray:
        in_dec = (dec >= self.dec_min) & (dec <= self.dec_max)
        return np.asarray(in_dec & (((ra - self.ra_min) % 360.0) <= self._ra_width))

    def may_overlap_bounds(self, ra_lo: float, ra_hi: float, dec_lo: float, dec_hi: float) -> bool:
        if dec_hi < self.dec_min or dec_lo > self.dec_max:
            return False
        return _ra_intervals_overlap(ra_lo, ra_hi, self.ra_min, self._ra_width)

    @functools.cache  # noqa: B019
    def _pixels(self, order: int) -> frozenset[int]:
        ra_max = self.ra_min + self._ra_width
        pix = hpgeom.query_box(
            2**order, self.ra_min, ra_max, self.dec_min, self.dec_max, inclusive=True
        )
        return frozenset(int(p) for p in pix)

    def may_overlap_pixel(self, order: int, pixel: int) -> bool:
        return pixel in self._pixels(order)

    def describe(self) -> str:
        return f"box(ra={self.ra_min:g}..{self.ra_max:g}, dec={self.dec_min:g}..{self.dec_max:g})"


@dataclass(frozen=True)
class HealpixRegion:
    """The union of HEALPix NESTED pixels of one order.

    Examples
    --------
    >>> h = HealpixRegion(3, (0, 1))
    >>> h.may_overlap_pixel(2, 0), h.may_overlap_pixel(4, 5), h.may_overlap_pixel(4, 8)
    (True, True, False)
    """

    order: int
    pixels: tuple[int, ...]

    def __post_init__(self) -> None:
        if not (0 <= self.order <= 29):
            raise ValueError(f"HEALPix order {self.order} is outside 0..29")
        npix = 12 * 4**self.order
        bad = [p for p in self.pixels if not (0 <= p < npix)]
        if bad:
            raise ValueError(
                f"HEALPix pixels {bad[:5]} are outside 0..{npix - 1} at order {self.order}"
            )

    @functools.cached_property
    def _sorted(self) -> npt.NDArray[np.int64]:
        return np.unique(np.asarray(self.pixels, dtype=np.int64))

    def contains(self, ra: FloatArray, dec: FloatArray) -> BoolArray:
        pix = hpgeom.angle_to_pixel(2**self.order, ra, dec, nest=True, lonlat=True)
        return np.isin(pix, self._sorted)

    def contains_hp29(self, hp29: npt.NDArray[np.int64]) -> BoolArray:
        """The same test from a precomputed order-29 index (the ``_healpix_29`` column)."""
        return np.isin(hp29 >> (2 * (29 - self.order)), self._sorted)

    def may_overlap_hp29_range(self, lo: int, hi: int) -> bool:
        """Could a row group whose ``_healpix_29`` spans [lo, hi] hold a pixel of the region?"""
        shift = 2 * (29 - self.order)
        i = np.searchsorted(self._sorted, lo >> shift)
        return bool(i < len(self._sorted) and self._sorted[i] <= hi >> shift)

    @functools.cached_property
    def _bounds(self) -> tuple[float, float, float, float, float]:
        """(ra_lo, ra_hi, dec_lo, dec_hi, pad) enclosing the pixels, for files without an index."""
        ra, dec = hpgeom.boundaries(2**self.order, self._sorted, step=4, nest=True, lonlat=True)
        pad = float(hpgeom.max_pixel_radius(2**self.order)) * 0.05
        return float(ra.min()), float(ra.max()), float(dec.min()), float(dec.max()), pad

    def may_overlap_bounds(self, ra_lo: float, ra_hi: float, dec_lo: float, dec_hi: float) -> bool:
        rlo, rhi, dlo, dhi, pad = self._bounds
        if dec_hi < dlo - pad or dec_lo > dhi + pad:
            return False
        if rhi - rlo > 180.0:  # the pixels straddle RA = 0/360 or are huge: no RA pruning
            return True
        return not (ra_hi < rlo - pad or ra_lo > rhi + pad)

    def may_overlap_pixel(self, order: int, pixel: int) -> bool:
        if order <= self.order:
            shift = 2 * (self.order - order)
            return bool(np.any((self._sorted >> shift) == pixel))
        return bool(np.isin(pixel >> (2 * (order - self.order)), self._sorted))

    def describe(self) -> str:
        shown = ", ".join(str(p) for p in self.pixels[:4]) + (
            ", ..." if len(self.pixels) > 4 else ""
        )
        return f"healpix(order={self.order}, pixels=[{shown}])"
