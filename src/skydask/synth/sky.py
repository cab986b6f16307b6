"""Sky geometry of the synthetic catalogue: footprint, tracts, patches, projections.

The sky map imitates the LSST "rings" sky map that DC2 uses, simplified to boxes:

* Declination is cut into rings of constant height ``TRACT_HEIGHT_DEG = 2`` deg starting at
  the south pole (ring ``k`` covers ``[-90 + 2k, -88 + 2k]``).
* Ring ``k`` holds ``max(1, round(360 cos(dec_mid) / 2))`` tracts of equal RA width, so a tract
  is about 2 x 2 deg on the sky (its RA width is ~2 deg / cos(dec)). Tract ids count rings from
  the south pole and, within a ring, RA from 0: they are global, so a small footprint inside a
  large one has the same tract numbers.
* Each tract is cut into ``PATCHES_PER_SIDE x PATCHES_PER_SIDE = 7 x 7`` patches, equal steps in
  RA (patch x) and Dec (patch y); the sequential patch index is ``x + 7 y`` and its name
  ``"x,y"``, as in the LSST sky map.
* Tracts and patches are clipped to the footprint (an RA/Dec box). Patches that do not overlap
  it are dropped; edge patches are partial, as in DC2.

Tract pixel grid: gnomonic (TAN) projection about the tract centre with
``PIXEL_SCALE_ARCSEC`` (0.2") pixels, **x increasing towards east (+RA), y towards north**
(a simplification: real coadds put east to the left). The origin is offset so that the whole
tract box has positive coordinates. Shapes and shears in this package are given in the local
(east, north) frame of each object; the tract grid's axes agree with it to about
``Delta RA sin(dec) < 1 deg`` over a tract, which is neglected.

The footprint must not wrap through RA = 0 (``0 <= ra_min < ra_max <= 360``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from skydask.errors import SpecError
from skydask.schema.definitions import PIXEL_SCALE_ARCSEC

__all__ = [
    "PATCHES_PER_SIDE",
    "TRACT_HEIGHT_DEG",
    "Patch",
    "Tract",
    "allocate_rows",
    "box_solid_angle",
    "gnomonic",
    "local_north_angle",
    "north_angle_in_plane",
    "plan_tracts",
    "position_angle",
    "uniform_in_box",
    "validate_footprint",
]

TRACT_HEIGHT_DEG = 2.0
PATCHES_PER_SIDE = 7
# Pixels of margin around the tract box on the tract pixel grid (as the LSST sky map's overlap).
_TRACT_MARGIN_PIX = 100

Footprint = tuple[float, float, float, float]


def validate_footprint(footprint: Sequence[float]) -> Footprint:
    """Check a footprint ``(ra_min, ra_max, dec_min, dec_max)`` in degrees and return it.

    Raises
    ------
    SpecError
        If it does not have four numbers, wraps through RA = 0, or leaves the sphere.

    Examples
    --------
    >>> validate_footprint([55, 65, -40, -32])
    (55.0, 65.0, -40.0, -32.0)
    """
    try:
        ra_min, ra_max, dec_min, dec_max = (float(v) for v in footprint)
    except (TypeError, ValueError) as exc:
        raise SpecError(
            f"parameter 'footprint' must be four numbers (ra_min, ra_max, dec_min, dec_max) in "
            f"degrees; got {footprint!r}"
        ) from exc
    if not (0.0 <= ra_min < ra_max <= 360.0 and -90.0 <= dec_min < dec_max <= 90.0):
        raise SpecError(
            "parameter 'footprint' must satisfy 0 <= ra_min < ra_max <= 360 and "
            f"-90 <= dec_min < dec_max <= 90 (no wrap through RA = 0); got {footprint!r}"
        )
    return (ra_min, ra_max, dec_min, dec_max)


def box_solid_angle(ra_min: float, ra_max: float, dec_min: float, dec_max: float) -> float:
    """Solid angle (sr) of an RA/Dec box given in degrees.

    Examples
    --------
    >>> round(box_solid_angle(0, 360, -90, 90) / (4 * math.pi), 12)
    1.0
    """
    return math.radians(ra_max - ra_min) * (
        math.sin(math.radians(dec_max)) - math.sin(math.radians(dec_min))
    )


def gnomonic(
    ra: NDArray[np.float64] | float,
    dec: NDArray[np.float64] | float,
    ra0: float,
    dec0: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gnomonic (TAN) projection about ``(ra0, dec0)``; all angles in degrees.

    Returns the standard coordinates ``(xi, eta)`` in degrees, ``xi`` towards east, ``eta``
    towards north at the tangent point.

    Examples
    --------
    >>> xi, eta = gnomonic(10.0, 1.0, 10.0, 0.0)
    >>> round(float(xi), 12), round(float(eta), 6)
    (0.0, 1.000102)
    """
    a = np.radians(np.asarray(ra, dtype=np.float64) - ra0)
    d = np.radians(np.asarray(dec, dtype=np.float64))
    d0 = math.radians(dec0)
    cos_c = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(a)
    xi = np.cos(d) * np.sin(a) / cos_c
    eta = (math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(a)) / cos_c
    return np.degrees(xi), np.degrees(eta)


def local_north_angle(
    ra: NDArray[np.float64], dec: NDArray[np.float64], ra0: float, dec0: float
) -> NDArray[np.float64]:
    """Angle (rad) from the projection's eta axis to the local north at each point.

    Counter-clockwise (from eta towards -xi) is positive. A spin-2 quantity ``z`` given in the
    projection's (xi, eta) frame is ``z * exp(-2i beta)`` in the local (east, north) frame.

    Examples
    --------
    >>> abs(float(local_north_angle(np.array([10.0]), np.array([0.0]), 10.0, 0.0)[0]))
    0.0
    """
    xi, eta = gnomonic(ra, dec, ra0, dec0)
    return north_angle_in_plane(xi, eta, dec0)


def north_angle_in_plane(
    xi: NDArray[np.float64], eta: NDArray[np.float64], dec0: float
) -> NDArray[np.float64]:
    """:func:`local_north_angle` from projected coordinates ``(xi, eta)`` (deg) directly.

    A gnomonic projection maps great circles to straight lines, so every meridian is a line
    through the projected pole ``(0, cot dec0)``; north at ``(xi, eta)`` points along
    ``(-xi sin dec0, cos dec0 - eta sin dec0)`` (the factor ``sin dec0`` also flips the
    direction when the north pole is behind the tangent plane, ``dec0 < 0``).

    Examples
    --------
    >>> round(float(north_angle_in_plane(np.array([0.0]), np.array([5.0]), 30.0)[0]), 12)
    0.0
    """
    x = np.radians(xi)
    y = np.radians(eta)
    s0, c0 = math.sin(math.radians(dec0)), math.cos(math.radians(dec0))
    return np.asarray(np.arctan2(x * s0, c0 - y * s0), dtype=np.float64)


def position_angle(
    ra: NDArray[np.float64], dec: NDArray[np.float64], ra0: float, dec0: float
) -> NDArray[np.float64]:
    """Direction at each point pointing away from ``(ra0, dec0)``, in the local frame (rad).

    Measured counter-clockwise from local east towards local north, by spherical trigonometry
    (exact at any separation, unlike angles read off a gnomonic plane, which is not
    conformal).

    Examples
    --------
    >>> round(float(position_angle(np.array([10.0]), np.array([1.0]), 10.0, 0.0)[0]), 12)
    1.570796326795
    """
    a = np.radians(ra)
    d = np.radians(dec)
    d0 = math.radians(dec0)
    da = math.radians(ra0) - a
    # east and north components of the direction from the point towards the centre (the
    # spherical bearing); pointing away flips both
    towards_east = np.sin(da) * math.cos(d0)
    towards_north = np.cos(d) * math.sin(d0) - np.sin(d) * math.cos(d0) * np.cos(da)
    return np.asarray(np.arctan2(-towards_north, -towards_east), dtype=np.float64)


@dataclass(frozen=True)
class Patch:
    """One patch of a tract, clipped to the footprint (degrees)."""

    tract: int
    index: int
    x: int
    y: int
    ra_min: float
    ra_max: float
    dec_min: float
    dec_max: float

    @property
    def name(self) -> str:
        """The DC2 patch name ``"x,y"``."""
        return f"{self.x},{self.y}"

    @property
    def solid_angle(self) -> float:
        """Solid angle of the clipped patch (sr)."""
        return box_solid_angle(self.ra_min, self.ra_max, self.dec_min, self.dec_max)


@dataclass(frozen=True)
class Tract:
    """One tract: its full (unclipped) box, pixel-grid origin and its clipped patches."""

    tract: int
    ra_min: float
    ra_max: float
    dec_min: float
    dec_max: float
    patches: tuple[Patch, ...]

    @property
    def ra_center(self) -> float:
        return 0.5 * (self.ra_min + self.ra_max)

    @property
    def dec_center(self) -> float:
        return 0.5 * (self.dec_min + self.dec_max)

    def pixel_origin(self) -> tuple[float, float]:
        """Pixel coordinates of the tract centre (so the whole tract box has x, y > 0)."""
        # sample the box edges: in the gnomonic plane the parallels are curved, so the extreme
        # eta is not always at a corner
        t = np.linspace(0.0, 1.0, 33)
        ra_e = np.concatenate(
            [self.ra_min + t * (self.ra_max - self.ra_min)] * 2
            + [np.full_like(t, self.ra_min), np.full_like(t, self.ra_max)]
        )
        dec_e = np.concatenate(
            [np.full_like(t, self.dec_min), np.full_like(t, self.dec_max)]
            + [self.dec_min + t * (self.dec_max - self.dec_min)] * 2
        )
        xi, eta = gnomonic(ra_e, dec_e, self.ra_center, self.dec_center)
        scale = PIXEL_SCALE_ARCSEC / 3600.0
        x0 = math.ceil(float(np.max(np.abs(xi))) / scale) + _TRACT_MARGIN_PIX
        y0 = math.ceil(float(np.max(np.abs(eta))) / scale) + _TRACT_MARGIN_PIX
        return float(x0), float(y0)

    def pixel_xy(
        self, ra: NDArray[np.float64], dec: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Positions on the tract pixel grid (0.2" pixels, x towards east, y towards north)."""
        x0, y0 = self.pixel_origin()
        xi, eta = gnomonic(ra, dec, self.ra_center, self.dec_center)
        scale = PIXEL_SCALE_ARCSEC / 3600.0
        return x0 + xi / scale, y0 + eta / scale


def _ring_tract_counts() -> list[int]:
    nrings = round(180.0 / TRACT_HEIGHT_DEG)
    counts = []
    for k in range(nrings):
        dec_mid = -90.0 + (k + 0.5) * TRACT_HEIGHT_DEG
        counts.append(max(1, round(360.0 * math.cos(math.radians(dec_mid)) / TRACT_HEIGHT_DEG)))
    return counts


def plan_tracts(footprint: Sequence[float]) -> tuple[Tract, ...]:
    """The tracts (with their clipped patches) that overlap the footprint, by tract id.

    Examples
    --------
    >>> tracts = plan_tracts((58.0, 66.0, -36.0, -32.0))
    >>> [t.tract for t in tracts]
    [2149, 2150, 2151, 2152, 2297, 2298, 2299, 2300]
    >>> tracts[0].patches[0].name, len(tracts[1].patches)
    ('4,0', 49)
    """
    ra_lo, ra_hi, dec_lo, dec_hi = validate_footprint(footprint)
    counts = _ring_tract_counts()
    offsets = np.concatenate([[0], np.cumsum(counts)])
    tracts: list[Tract] = []
    for k, n in enumerate(counts):
        t_dec0 = -90.0 + k * TRACT_HEIGHT_DEG
        t_dec1 = t_dec0 + TRACT_HEIGHT_DEG
        if t_dec1 <= dec_lo or t_dec0 >= dec_hi:
            continue
        width = 360.0 / n
        for j in range(int(ra_lo // width), min(n, math.ceil(ra_hi / width))):
            t_ra0, t_ra1 = j * width, (j + 1) * width
            if t_ra1 <= ra_lo or t_ra0 >= ra_hi:
                continue
            tract_id = int(offsets[k]) + j
            patches = _clipped_patches(
                tract_id, (t_ra0, t_ra1, t_dec0, t_dec1), (ra_lo, ra_hi, dec_lo, dec_hi)
            )
            if patches:
                tracts.append(Tract(tract_id, t_ra0, t_ra1, t_dec0, t_dec1, patches))
    return tuple(tracts)


def _clipped_patches(tract: int, box: Footprint, footprint: Footprint) -> tuple[Patch, ...]:
    ra0, ra1, dec0, dec1 = box
    step_ra = (ra1 - ra0) / PATCHES_PER_SIDE
    step_dec = (dec1 - dec0) / PATCHES_PER_SIDE
    out = []
    for py in range(PATCHES_PER_SIDE):
        for px in range(PATCHES_PER_SIDE):
            p_ra0 = max(ra0 + px * step_ra, footprint[0])
            p_ra1 = min(ra0 + (px + 1) * step_ra, footprint[1])
            p_dec0 = max(dec0 + py * step_dec, footprint[2])
            p_dec1 = min(dec0 + (py + 1) * step_dec, footprint[3])
            if p_ra1 > p_ra0 and p_dec1 > p_dec0:
                out.append(
                    Patch(tract, px + PATCHES_PER_SIDE * py, px, py, p_ra0, p_ra1, p_dec0, p_dec1)
                )
    return tuple(out)


def allocate_rows(weights: Sequence[float], total: int) -> NDArray[np.int64]:
    """Split ``total`` into integers proportional to ``weights`` (largest-remainder method).

    The result sums to exactly ``total``; ties in the remainders go to the earlier entry, so
    the allocation is deterministic.

    Examples
    --------
    >>> allocate_rows([1.0, 1.0, 1.0], 10).tolist()
    [4, 3, 3]
    """
    w = np.asarray(weights, dtype=np.float64)
    quota = total * w / w.sum()
    out = np.floor(quota).astype(np.int64)
    short = total - int(out.sum())
    order = np.argsort(-(quota - out), kind="stable")
    out[order[:short]] += 1
    return out


def uniform_in_box(
    rng: np.random.Generator, n: int, patch: Patch
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``n`` positions uniform on the sphere inside a patch box (uniform in RA and sin Dec)."""
    ra = rng.uniform(patch.ra_min, patch.ra_max, n)
    s0, s1 = math.sin(math.radians(patch.dec_min)), math.sin(math.radians(patch.dec_max))
    dec = np.degrees(np.arcsin(rng.uniform(s0, s1, n)))
    # arcsin(sin(x)) can land a few ulp outside [dec_min, dec_max]; keep objects in their patch
    return ra, np.clip(dec, patch.dec_min, patch.dec_max)
