"""Parameters of the multi-epoch analyses, with faro's defaults, and the LSST requirements.

Defaults, and where they come from:

* Photometric repeatability PA1 (Rubin ``faro``'s ``PA1Task`` and ``filterMatches``): a star
  is an object with at least 2 measurements in the band, all magnitudes finite, median S/N of
  at least 200 (``brightSnrMin``), ``extendedness < 0.9`` in every visit, no saturated,
  cosmic-ray, bad or edge pixel flag in any visit, a primary detection in every visit. Its
  repeatability is the rms (``numpy.nanstd``, ddof 0) of its magnitudes about their mean; PA1
  is the median over the stars with more than 2 measurements, in mmag, and is reported only
  when at least ``min_stars`` stars qualify (faro: 50; faro's own rule is "more than").
* Astrometric repeatability AM1 (faro's ``AMxTask``): the same star selection with median
  S/N >= 50 and median magnitude in [17, 21.5); pairs of stars whose mean positions are
  ``annulus_arcmin +- width_arcmin / 2`` = 4-6 arcmin apart; for each pair, the sample rms
  (ddof 1) over the visits in which both were measured of their separation; AM1 is the median
  over pairs, in milliarcseconds.
* The LSST Science Requirements (LPM-17), quoted in the DESC data-access talk as "single-visit
  astrometry 10 mas relative, photometry 0.5 % relative": PA1 design 5 mmag (minimum 8,
  stretch 3), AM1 design 10 mas (minimum 20, stretch 5).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from types import MappingProxyType
from typing import Any, TypeVar

from skydask.catalog.colocation import LOCALITIES
from skydask.errors import SpecError
from skydask.schema.definitions import BANDS

__all__ = [
    "AM1_REQUIREMENT_MAS",
    "PA1_REQUIREMENT_MMAG",
    "AstrometricRepeatabilityConfig",
    "LightCurveConfig",
    "PhotometricRepeatabilityConfig",
]

PA1_REQUIREMENT_MMAG: Mapping[str, float] = MappingProxyType(
    {"design": 5.0, "minimum": 8.0, "stretch": 3.0}
)
"""LSST SRD photometric repeatability PA1 (mmag): 0.5 % relative at the design level."""

AM1_REQUIREMENT_MAS: Mapping[str, float] = MappingProxyType(
    {"design": 10.0, "minimum": 20.0, "stretch": 5.0}
)
"""LSST SRD relative astrometry AM1 at 5 arcmin (mas)."""

C = TypeVar("C")


def _check_bands(bands: str | None) -> None:
    if bands is None:
        return
    if not isinstance(bands, str) or not bands or any(b not in BANDS for b in bands):
        raise SpecError(
            f"parameter 'bands' must be None or a string of bands among {''.join(BANDS)!r}; "
            f"got {bands!r}"
        )


def _check_number(name: str, value: object, *, low: float = 0.0, inclusive: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        assert isinstance(value, int | float)
        ok = value >= low if inclusive else value > low
    if not ok:
        relation = ">=" if inclusive else ">"
        raise SpecError(f"parameter {name!r} must be a number {relation} {low:g}; got {value!r}")


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SpecError(f"parameter {name!r} must be an integer >= {low}; got {value!r}")


def _with_overrides(config: C, what: str, overrides: dict[str, Any]) -> C:
    known = {f.name for f in fields(config)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SpecError(f"{what} has no parameter(s) {unknown}; expected some of {sorted(known)}")
    return replace(config, **overrides)  # type: ignore[type-var]


def _to_dict(config: Any) -> dict[str, Any]:
    out = {}
    for f in fields(config):
        value = getattr(config, f.name)
        out[f.name] = None if isinstance(value, float) and math.isinf(value) else value
    return out


@dataclass(frozen=True)
class _StarSelection:
    """The faro star selection shared by PA1 and AM1 (see the module docstring)."""

    bands: str | None = None
    where: str | None = None
    snr_min: float = 200.0
    snr_max: float = math.inf
    mag_min: float | None = None
    mag_max: float | None = None
    extendedness_max: float | None = 0.9
    pixel_flags: bool = True
    primary: bool = True
    min_measurements: int = 2
    locality: str = "auto"

    def __post_init__(self) -> None:
        _check_bands(self.bands)
        if self.where is not None and not isinstance(self.where, str):
            raise SpecError(
                f"parameter 'where' must be a filter string or None; got {self.where!r}"
            )
        _check_number("snr_min", self.snr_min, inclusive=True)
        _check_number("snr_max", self.snr_max, low=float(self.snr_min))
        for name in ("mag_min", "mag_max", "extendedness_max"):
            value = getattr(self, name)
            if value is not None:
                _check_number(name, value, low=-math.inf)
        if self.mag_min is not None and self.mag_max is not None and self.mag_max <= self.mag_min:
            raise SpecError(
                f"parameter 'mag_max' ({self.mag_max}) must exceed 'mag_min' ({self.mag_min})"
            )
        _check_int("min_measurements", self.min_measurements, 2)
        if self.locality not in LOCALITIES:
            raise SpecError(
                f"parameter 'locality' must be one of {LOCALITIES}; got {self.locality!r}"
            )


@dataclass(frozen=True)
class PhotometricRepeatabilityConfig(_StarSelection):
    """Parameters of :func:`photometric_repeatability` (keyword arguments override them).

    Attributes
    ----------
    bands : str or None
        Bands to measure (default: every band in the data).
    where : str or None
        A cut applied to the measurements first, in the filter language.
    snr_min, snr_max : float
        Window on a star's median S/N over its measurements (faro: 200, inf).
    mag_min, mag_max : float or None
        Window on a star's mean magnitude (faro: none).
    extendedness_max : float or None
        A star has ``extendedness`` below this in every visit (None: not required).
    pixel_flags : bool
        Reject stars with a saturated, cosmic-ray, bad or edge pixel flag in any visit.
    primary : bool
        Require ``detect_isPrimary`` in every visit.
    min_measurements : int
        Fewest measurements of a star to be selected (faro: 2); PA1 itself uses the stars
        with at least ``pa1_min_measurements`` (faro: 3, "count > 2").
    pa1_min_measurements : int
        See above.
    min_stars : int
        PA1 is NaN with fewer stars (faro's ``nMinPhotRepeat``, 50).
    locality : str
        How rows are grouped by object: see :func:`skydask.catalog.colocation.by_object`.

    Examples
    --------
    >>> PhotometricRepeatabilityConfig().snr_min
    200.0
    >>> PhotometricRepeatabilityConfig(snr_min=-1)
    Traceback (most recent call last):
    ...
    skydask.errors.SpecError: parameter 'snr_min' must be a number >= 0; got -1
    """

    pa1_min_measurements: int = 3
    min_stars: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("pa1_min_measurements", self.pa1_min_measurements, 2)
        _check_int("min_stars", self.min_stars, 1)

    def with_overrides(self, **overrides: Any) -> PhotometricRepeatabilityConfig:
        """A copy with some parameters replaced (validated like the constructor)."""
        return _with_overrides(self, "photometric_repeatability", overrides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (infinity as null)."""
        return _to_dict(self)


@dataclass(frozen=True)
class AstrometricRepeatabilityConfig(_StarSelection):
    """Parameters of :func:`astrometric_repeatability` (keyword arguments override them).

    Attributes
    ----------
    bands, where, snr_min, snr_max, extendedness_max, pixel_flags, primary, min_measurements,
    locality
        The star selection, as for PA1, with faro's AM1 defaults (``snr_min = 50``).
    mag_min, mag_max : float
        Window on a star's *median* magnitude, ``mag_min <= m < mag_max`` (faro: 17, 21.5).
    annulus_arcmin, width_arcmin : float
        Pairs whose mean positions are ``annulus - width/2 <= d < annulus + width/2`` apart
        (AM1: 5 and 2; AM2 and AM3 are 20 and 200 arcmin).
    min_stars : int
        AM1 is NaN with fewer selected stars.
    pair_nside : int
        HEALPix resolution of the sky cells in which pairs are formed (each cell with a
        margin of the annulus's outer radius); 32 gives 1.8 deg cells.
    histogram_max_mas, histogram_bins : float, int
        The histogram of pair rms values (faro: 0-30 mas in 200 bins).

    Examples
    --------
    >>> c = AstrometricRepeatabilityConfig()
    >>> (c.annulus_arcmin, c.width_arcmin, c.mag_min, c.mag_max, c.snr_min)
    (5.0, 2.0, 17.0, 21.5, 50.0)
    """

    snr_min: float = 50.0
    mag_min: float | None = 17.0
    mag_max: float | None = 21.5
    annulus_arcmin: float = 5.0
    width_arcmin: float = 2.0
    min_stars: int = 2
    pair_nside: int = 32
    histogram_max_mas: float = 30.0
    histogram_bins: int = 200

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_number("annulus_arcmin", self.annulus_arcmin)
        _check_number("width_arcmin", self.width_arcmin)
        if self.width_arcmin >= 2 * self.annulus_arcmin:
            raise SpecError(
                f"parameter 'width_arcmin' ({self.width_arcmin}) must be below twice "
                f"'annulus_arcmin' ({self.annulus_arcmin})"
            )
        _check_int("min_stars", self.min_stars, 2)
        n = self.pair_nside
        if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n & (n - 1):
            raise SpecError(f"parameter 'pair_nside' must be a power of two; got {n!r}")
        _check_number("histogram_max_mas", self.histogram_max_mas)
        _check_int("histogram_bins", self.histogram_bins, 1)

    @property
    def annulus_deg(self) -> tuple[float, float]:
        """The separation range ``[inner, outer)`` in degrees."""
        half = self.width_arcmin / 2.0
        return (self.annulus_arcmin - half) / 60.0, (self.annulus_arcmin + half) / 60.0

    def with_overrides(self, **overrides: Any) -> AstrometricRepeatabilityConfig:
        """A copy with some parameters replaced (validated like the constructor)."""
        return _with_overrides(self, "astrometric_repeatability", overrides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (infinity as null)."""
        return _to_dict(self)


@dataclass(frozen=True)
class LightCurveConfig:
    """Parameters of :func:`light_curves` (keyword arguments override them).

    Attributes
    ----------
    bands : str or None
        Bands to keep (default: all).
    where : str or None
        A cut on the measurements, in the filter language (e.g. ``"mjd > 60700"``).
    exclude_flagged : bool
        Drop measurements with ``psFlux_flag`` set (when the table has the flag).
    locality : str
        How rows are grouped by object (:func:`skydask.catalog.colocation.by_object`).
    variable_chi2_dof : float
        Objects whose reduced chi^2 about their weighted mean flux exceeds this count as
        variable in the metrics and plots.
    max_curve_rows : int
        Most measurements collected as light curves; more is refused (select objects with
        ``object_ids`` or ``where``). Statistics are computed for any number of rows.

    Examples
    --------
    >>> LightCurveConfig().with_overrides(bands="r").bands
    'r'
    """

    bands: str | None = None
    where: str | None = None
    exclude_flagged: bool = True
    locality: str = "auto"
    variable_chi2_dof: float = 5.0
    max_curve_rows: int = 20_000_000

    def __post_init__(self) -> None:
        _check_bands(self.bands)
        if self.where is not None and not isinstance(self.where, str):
            raise SpecError(
                f"parameter 'where' must be a filter string or None; got {self.where!r}"
            )
        if self.locality not in LOCALITIES:
            raise SpecError(
                f"parameter 'locality' must be one of {LOCALITIES}; got {self.locality!r}"
            )
        _check_number("variable_chi2_dof", self.variable_chi2_dof)
        _check_int("max_curve_rows", self.max_curve_rows, 1)

    def with_overrides(self, **overrides: Any) -> LightCurveConfig:
        """A copy with some parameters replaced (validated like the constructor)."""
        return _with_overrides(self, "light_curves", overrides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        return _to_dict(self)
