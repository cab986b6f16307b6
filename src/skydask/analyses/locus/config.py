"""Parameters of the stellar-locus analysis, with Rubin's and Ivezic's numbers as defaults.

Everything the analysis does is set here, as data: the three fitted principal colours
(:class:`LocusFit`, Rubin ``analysis_tools``' boxes and starting lines), the four SDSS
principal colours with fixed coefficients (:class:`PrincipalColour`, Ivezic et al. 2004), the
colour-colour planes that are plotted (:class:`ColourPlane`), the star selection, the
extinction correction and the validation thresholds (:class:`StellarLocusConfig`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from skydask.errors import SpecError

__all__ = [
    "LSST_EXTINCTION_COEFFS",
    "RUBIN_FITS",
    "RUBIN_THRESHOLDS",
    "SDSS_PRINCIPAL_COLOURS",
    "ColourPlane",
    "LocusFit",
    "PrincipalColour",
    "StellarLocusConfig",
    "colour_bands",
]

# A_b / E(B-V) for the LSST filters, R_V = 3.1: Schlafly & Finkbeiner (2011) scaling of the
# Fitzpatrick (1999) law, the values the Rubin DP0/DP1 tutorials use. For SDSS ugriz the same
# paper gives u 4.239, g 3.303, r 2.285, i 1.698, z 1.263 (pass them as extinction_coeffs).
LSST_EXTINCTION_COEFFS: dict[str, float] = {
    "u": 4.81,
    "g": 3.64,
    "r": 2.70,
    "i": 2.06,
    "z": 1.58,
    "y": 1.31,
}

# Rubin's normal ranges for validation runs (mmag): (low, high), both inclusive.
RUBIN_THRESHOLDS: dict[str, tuple[float, float]] = {
    "w_sigmaMAD": (10.0, 25.0),
    "w_median": (-4.0, 4.0),
    "x_sigmaMAD": (25.0, 80.0),
    "x_median": (-15.0, 15.0),
    "y_sigmaMAD": (10.0, 25.0),
    "y_median": (-4.0, 4.0),
}


def colour_bands(colour: str) -> tuple[str, str]:
    """The two bands of a colour name such as ``"g-r"``.

    Examples
    --------
    >>> colour_bands("g-r")
    ('g', 'r')
    >>> colour_bands("gr")
    Traceback (most recent call last):
    ...
    skydask.errors.SpecError: colour 'gr' is not of the form '<band>-<band>' (e.g. 'g-r')
    """
    parts = colour.split("-")
    if len(parts) != 2 or not all(p.isidentifier() for p in parts):
        raise SpecError(f"colour {colour!r} is not of the form '<band>-<band>' (e.g. 'g-r')")
    return parts[0], parts[1]


@dataclass(frozen=True)
class LocusFit:
    """One principal colour fitted as a straight line in a colour-colour plane.

    ``x`` and ``y`` are colours (``"g-r"``); the fit starts from the points inside the box
    ``x_min < x < x_max``, ``y_min < y < y_max`` (strict, as Rubin's code); ``slope`` and
    ``intercept`` are the starting line ``y = slope x + intercept`` of Rubin's configuration (an
    orthogonal fit needs no starting point, so they are reported beside the fit, not used by
    it); ``snr_band`` is the band whose PSF S/N and magnitude select the stars.
    """

    name: str
    x: str
    y: str
    x_min: float
    x_max: float
    y_min: float
    y_max: float
    slope: float
    intercept: float
    snr_band: str

    def __post_init__(self) -> None:
        colour_bands(self.x), colour_bands(self.y)
        if not (self.x_min < self.x_max and self.y_min < self.y_max):
            raise SpecError(
                f"fit {self.name!r}: the box needs x_min < x_max and y_min < y_max, got "
                f"x {self.x_min}..{self.x_max}, y {self.y_min}..{self.y_max}"
            )

    @property
    def bands(self) -> tuple[str, ...]:
        """The bands of both colours, in order of first use."""
        return tuple(dict.fromkeys(colour_bands(self.x) + colour_bands(self.y)))

    def describe(self) -> str:
        return (
            f"{self.name}: {self.y} vs {self.x}, box {self.x} {self.x_min}..{self.x_max}, "
            f"{self.y} {self.y_min}..{self.y_max}"
        )


# Rubin analysis_tools' stellar locus configurations (wPerp, xPerp, yPerp on PSF fluxes).
RUBIN_FITS: dict[str, LocusFit] = {
    "w": LocusFit("w", "g-r", "r-i", 0.28, 1.0, 0.02, 0.48, 0.483, -0.042, "r"),
    "x": LocusFit("x", "g-r", "r-i", 1.05, 1.55, 0.78, 1.62, 60.0, -75.0, "r"),
    "y": LocusFit("y", "r-i", "i-z", 0.82, 2.01, 0.37, 0.90, 0.385, 0.064, "i"),
}


@dataclass(frozen=True)
class PrincipalColour:
    """A principal colour with fixed coefficients, measured where its parallel colour is in range.

    ``value = sum(coeffs[b] * mag_b) + const`` and it is measured for stars with
    ``range_min < sum(range_coeffs[b] * mag_b) + range_const < range_max``.
    """

    name: str
    coeffs: tuple[tuple[str, float], ...]
    const: float
    range_coeffs: tuple[tuple[str, float], ...]
    range_const: float
    range_min: float
    range_max: float
    snr_band: str

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(b for b, _ in self.coeffs + self.range_coeffs))

    def formula(self) -> str:
        def text(coeffs: tuple[tuple[str, float], ...], const: float) -> str:
            terms = " ".join(f"{c:+g}{b}" for b, c in coeffs)
            return f"{terms} {const:+g}".lstrip("+")

        return (
            f"{self.name} = {text(self.coeffs, self.const)} for {self.range_min:g} < "
            f"{text(self.range_coeffs, self.range_const)} < {self.range_max:g}"
        )


# Ivezic et al. (2004, AN 325, 583) principal colours of the SDSS stellar locus, applied to the
# magnitudes exactly as published. Their coefficients do not sum to zero (w: -0.002, s: -0.010,
# y: -0.004), so each has a small magnitude term (2-10 mmag per mag), as in the original.
# The range of s is on its parallel colour P1s = 0.910u - 0.495g - 0.415r - 1.280, -0.2..0.8
# (Helmi et al. 2003; Ivezic et al. 2004).
SDSS_PRINCIPAL_COLOURS: dict[str, PrincipalColour] = {
    "s": PrincipalColour(
        "s",
        (("u", -0.249), ("g", 0.794), ("r", -0.555)),
        0.234,
        (("u", 0.910), ("g", -0.495), ("r", -0.415)),
        -1.280,
        -0.2,
        0.8,
        "r",
    ),
    "w": PrincipalColour(
        "w",
        (("g", -0.227), ("r", 0.792), ("i", -0.567)),
        0.050,
        (("g", 0.928), ("r", -0.556), ("i", -0.372)),
        -0.425,
        -0.2,
        0.6,
        "r",
    ),
    "x": PrincipalColour(
        "x",
        (("g", 0.707), ("r", -0.707)),
        -0.988,
        (("r", 1.0), ("i", -1.0)),
        0.0,
        0.8,
        1.6,
        "r",
    ),
    "y": PrincipalColour(
        "y",
        (("r", -0.270), ("i", 0.800), ("z", -0.534)),
        0.054,
        (("r", 0.895), ("i", -0.448), ("z", -0.447)),
        -0.600,
        0.1,
        1.2,
        "i",
    ),
}


@dataclass(frozen=True)
class ColourPlane:
    """A colour-colour plane to histogram and plot: ``y`` against ``x``, stars selected in
    ``snr_band``."""

    x: str
    y: str
    snr_band: str = "r"

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(colour_bands(self.x) + colour_bands(self.y)))

    @property
    def key(self) -> str:
        return f"{self.y}_vs_{self.x}"


_DEFAULT_PLANES = (
    ColourPlane("g-r", "r-i", "r"),
    ColourPlane("r-i", "i-z", "i"),
    ColourPlane("u-g", "g-r", "r"),
)
_EXTINCTION_MODES = ("auto", "none", "ebv", "A")


def _as_fit(value: Any) -> LocusFit:
    if isinstance(value, LocusFit):
        return value
    if isinstance(value, str) and value in RUBIN_FITS:
        return RUBIN_FITS[value]
    raise SpecError(
        f"fits: {value!r} is neither a LocusFit nor one of Rubin's fits {sorted(RUBIN_FITS)}"
    )


def _as_principal(value: Any) -> PrincipalColour:
    if isinstance(value, PrincipalColour):
        return value
    if isinstance(value, str) and value in SDSS_PRINCIPAL_COLOURS:
        return SDSS_PRINCIPAL_COLOURS[value]
    raise SpecError(
        f"principal_colours: {value!r} is neither a PrincipalColour nor one of "
        f"{sorted(SDSS_PRINCIPAL_COLOURS)}"
    )


def _as_plane(value: Any) -> ColourPlane:
    if isinstance(value, ColourPlane):
        return value
    if isinstance(value, tuple | list) and len(value) in (2, 3):
        return ColourPlane(*value)
    raise SpecError(f"planes: {value!r} is not a ColourPlane or an (x, y[, snr_band]) tuple")


@dataclass(frozen=True)
class StellarLocusConfig:
    """Parameters of :func:`skydask.analyses.stellar_locus.stellar_locus` (Rubin's defaults).

    Star selection (each part only where the catalogue has the quantity, except extendedness):
    ``extendedness < extendedness_max`` (per band in the bands used when the catalogue has
    ``<b>_extendedness`` or ``extendedness_<b>``, else the reference ``extendedness``), ``clean``
    (``require_clean``), no ``psFlux_flag_<b>`` in the bands used (``require_flags``), PSF
    ``snr_<b> >= snr_min`` and ``mag_<b> < mag_max`` in the piece's S/N band, and finite
    magnitudes in the bands used. ``snr_min=None`` or ``mag_max=None`` drop that cut (for
    catalogues without flux errors). ``where`` adds any further cut.

    Parameters
    ----------
    fits
        The fitted principal colours: :class:`LocusFit` objects or Rubin's names ``"w"``,
        ``"x"``, ``"y"``.
    principal_colours
        Ivezic's fixed-coefficient colours: :class:`PrincipalColour` objects or ``"s"``,
        ``"w"``, ``"x"``, ``"y"``.
    locus_colours
        Colours whose median locus in bins of g-i is measured and compared with Covey et al.
        (2007); stars selected in ``locus_snr_band``.
    planes
        Colour-colour planes histogrammed for the plots.
    clip_sigmas, iqr_to_sigma
        One refit per entry, clipping at ``n * iqr_to_sigma * IQR`` of the perpendicular
        distances (Rubin: 3.5 then 5.0, and 0.74).
    min_stars
        Fewest stars a fit may use at any step, else :class:`TooFewStarsError`.
    extinction
        ``"auto"`` (per-band ``A_<b>`` quantities if all bands have them, else ``ebv`` times
        ``extinction_coeffs`` if the catalogue has ``ebv_quantity``, else none), ``"none"``,
        ``"ebv"`` or ``"A"``.
    extinction_coeffs
        ``A_b / E(B-V)``; default the LSST values of :data:`LSST_EXTINCTION_COEFFS`.
    hist_bin_mmag, locus_hist_bin, density_bin
        Histogram bins (mmag for distances and principal colours, over +-2 mag; mag for the
        locus colours, over +-0.3 mag of Covey's median in each g-i bin; mag for the plotted
        density). They set how many values the exact quantiles gather, not the
        precision: quantiles are exact (see :mod:`skydask.analyses.locus.quantiles`).
    thresholds
        ``metric -> (low, high)`` (inclusive) for :meth:`StellarLocusResult.verdicts`.
    persist
        Keep the selected stars' magnitudes in worker memory between the passes (one scan of
        the catalogue). False re-reads the catalogue for every pass (no memory kept).

    Examples
    --------
    >>> cfg = StellarLocusConfig(fits=("w",), snr_min=100)
    >>> [f.name for f in cfg.fits], cfg.snr_min, cfg.mag_max
    (['w'], 100, 22.5)
    >>> StellarLocusConfig.for_bands("gri").locus_colours
    ('g-r', 'r-i')
    """

    fits: tuple[LocusFit, ...] = tuple(RUBIN_FITS.values())
    principal_colours: tuple[PrincipalColour, ...] = tuple(SDSS_PRINCIPAL_COLOURS.values())
    locus_colours: tuple[str, ...] = ("u-g", "g-r", "r-i", "i-z")
    planes: tuple[ColourPlane, ...] = _DEFAULT_PLANES
    snr_min: float | None = 300.0
    mag_max: float | None = 22.5
    extendedness_max: float | None = 0.5
    require_clean: bool = True
    require_flags: bool = True
    where: str | None = None
    clip_sigmas: tuple[float, ...] = (3.5, 5.0)
    iqr_to_sigma: float = 0.74
    min_stars: int = 7
    extinction: str = "auto"
    extinction_coeffs: Mapping[str, float] = field(
        default_factory=lambda: dict(LSST_EXTINCTION_COEFFS)
    )
    ebv_quantity: str = "ebv"
    locus_snr_band: str = "r"
    locus_min_stars: int = 10
    hist_bin_mmag: float = 0.1
    locus_hist_bin: float = 0.002
    density_bin: float = 0.01
    thresholds: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: dict(RUBIN_THRESHOLDS)
    )
    persist: bool = True
    split_every: int = 8
    progress: bool = False

    def __post_init__(self) -> None:
        # Accept names and plain tuples; store the typed objects (frozen: object.__setattr__).
        set_ = object.__setattr__
        set_(self, "fits", tuple(_as_fit(f) for f in _seq(self.fits, "fits")))
        set_(
            self,
            "principal_colours",
            tuple(_as_principal(p) for p in _seq(self.principal_colours, "principal_colours")),
        )
        set_(self, "planes", tuple(_as_plane(p) for p in _seq(self.planes, "planes")))
        set_(self, "locus_colours", tuple(_seq(self.locus_colours, "locus_colours")))
        set_(self, "clip_sigmas", tuple(float(c) for c in _seq(self.clip_sigmas, "clip_sigmas")))
        set_(self, "extinction_coeffs", dict(self.extinction_coeffs))
        set_(self, "thresholds", {k: (float(a), float(b)) for k, (a, b) in self.thresholds.items()})
        for colour in self.locus_colours:
            colour_bands(colour)
        names = [f.name for f in self.fits]
        if len(set(names)) != len(names):
            raise SpecError(f"fits: names must be unique, got {names}")
        checks = {
            "snr_min": self.snr_min is None or self.snr_min > 0,
            "extendedness_max": self.extendedness_max is None or self.extendedness_max > 0,
            "clip_sigmas": all(c > 0 for c in self.clip_sigmas),
            "iqr_to_sigma": self.iqr_to_sigma > 0,
            "min_stars": isinstance(self.min_stars, int) and self.min_stars >= 3,
            "locus_min_stars": self.locus_min_stars >= 1,
            "hist_bin_mmag": self.hist_bin_mmag > 0,
            "locus_hist_bin": self.locus_hist_bin > 0,
            "density_bin": self.density_bin > 0,
            "split_every": self.split_every >= 2,
            "extinction": self.extinction in _EXTINCTION_MODES,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            name = bad[0]
            raise SpecError(
                f"StellarLocusConfig.{name} = {getattr(self, name)!r} is not valid: expected "
                + {
                    "extinction": f"one of {_EXTINCTION_MODES}",
                    "min_stars": "an integer >= 3 (a line and its quartiles need a few points)",
                    "split_every": "an integer >= 2",
                }.get(name, "a positive number (or None where allowed)")
            )

    @classmethod
    def for_bands(cls, bands: Iterable[str], **overrides: Any) -> StellarLocusConfig:
        """The default configuration restricted to what ``bands`` can measure.

        Fits, principal colours, locus colours and planes that need another band are dropped;
        ``overrides`` then replace fields as in the constructor.
        """
        have = set(bands)
        base = cls()
        kept: dict[str, Any] = {
            "fits": tuple(f for f in base.fits if set(f.bands) <= have),
            "principal_colours": tuple(p for p in base.principal_colours if set(p.bands) <= have),
            "locus_colours": tuple(c for c in base.locus_colours if set(colour_bands(c)) <= have),
            "planes": tuple(p for p in base.planes if set(p.bands) <= have),
        }
        if not {"g", "i"} <= have:  # the median locus is binned in g-i
            kept["locus_colours"] = ()
        kept.update(overrides)
        return cls(**kept)

    def replace(self, **overrides: Any) -> StellarLocusConfig:
        """A copy with some fields replaced; an unknown field is a :class:`SpecError`."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise SpecError(
                f"unknown stellar_locus parameter(s) {unknown}; StellarLocusConfig has "
                f"{sorted(known)}"
            )
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record of every parameter."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("fits", "principal_colours", "planes"):
                value = [dataclasses.asdict(v) for v in value]
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
            out[f.name] = value
        return out


def _seq(value: Any, name: str) -> tuple[Any, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SpecError(f"StellarLocusConfig.{name} must be a sequence, got {value!r}")
    return tuple(value)
