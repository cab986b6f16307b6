"""Parameters of the depth map, and the LSST design depths it is compared with.

Defaults, and why:

* ``nside = 1024`` (3.4 arcmin pixels, 11.8 arcmin^2). At LSST/DC2 object densities (about
  40-70 objects per arcmin^2 at full depth) a pixel holds several hundred objects, so the
  per-pixel median of the ``"flux_err"`` method is precise to a few mmag, and the S/N window
  of the ``"snr_window"`` method (a few per cent of the objects) still holds tens of them.
  The pixels resolve the dither pattern (1.75 deg field of view) well. DESC's mask maps use
  nside 2048 or 4096; at those resolutions the S/N window holds a handful of objects per
  pixel, so they suit the ``"flux_err"`` method only (pass ``nside=2048``).
* ``nside_coverage = 32`` (1.8 deg coverage pixels, about one per LSST field of view):
  healsparse allocates the sparse map per covered coverage pixel (1,024 map pixels at nside
  1024), so a survey footprint costs little beyond its own pixels.
* ``depth_cuts = {"i": 25.3}``: DESC's large-scale-structure cut on the i-band 5-sigma depth;
  the mask keeps the pixels deeper than every cut.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from skydask.errors import SpecError
from skydask.schema.definitions import BANDS

__all__ = [
    "LSST_DESIGN_10YR",
    "LSST_DESIGN_SINGLE_VISIT",
    "METHODS",
    "DepthMapConfig",
]

LSST_DESIGN_SINGLE_VISIT: Mapping[str, float] = MappingProxyType(
    {"u": 23.9, "g": 25.0, "r": 24.7, "i": 24.0, "z": 23.3, "y": 22.1}
)
"""LSST design 5-sigma point-source depth of one 30 s visit (Science Requirements Document)."""

LSST_DESIGN_10YR: Mapping[str, float] = MappingProxyType(
    {"u": 26.1, "g": 27.4, "r": 27.5, "i": 26.8, "z": 26.1, "y": 24.9}
)
"""LSST design 5-sigma point-source depth of the 10-year coadd."""

METHODS = ("flux_err", "snr_window")
"""``"flux_err"``: per-pixel median of each object's depth from its PSF flux error.
``"snr_window"``: per-pixel mean PSF magnitude of the objects whose S/N is near the threshold
(TXPipe's method)."""

# NESTED pixel numbers below 12 * 4**14 < 2**32 fit the high half of the reduction's sort key;
# finer maps (13 arcsec pixels) would hold a handful of objects per pixel anyway
_MAX_NSIDE = 2**14


def _is_power_of_two(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 1 and n & (n - 1) == 0


@dataclass(frozen=True)
class DepthMapConfig:
    """Parameters of :func:`depth_map` (keyword arguments of ``depth_map`` override them).

    Attributes
    ----------
    bands : str
        Bands to map, e.g. ``"ugrizy"`` or ``"ri"``.
    nside : int
        HEALPix resolution (NESTED) of the maps; a power of two up to 16384.
    nside_coverage : int
        Coverage resolution of the healsparse maps; a power of two, at most ``nside``.
    method : str
        ``"flux_err"`` (default) or ``"snr_window"``, see :data:`METHODS`.
    snr_threshold : float
        S/N of the depth: 5 for the 5-sigma depth, 10 for a 10-sigma depth. ``"flux_err"``
        computes ``-2.5 log10(snr_threshold * psFluxErr) + 31.4`` per object;
        ``"snr_window"`` averages the magnitudes of objects with
        ``|S/N - snr_threshold| < snr_delta``.
    snr_delta : float
        Half-width of the S/N window of ``"snr_window"`` (TXPipe's ``snr_delta``).
    where : str or None
        Cut applied to the objects first, in the catalogue's filter language, for instance
        ``"extendedness == 0"`` for point sources only.
    min_objects : int
        A pixel needs at least this many objects to be in a map; emptier pixels are absent.
    depth_cuts : mapping of str to float
        Per band, the depth a pixel must exceed to be in the mask (every cut must hold); the
        summary gives each band's area above its cut.
    carry_budget : int
        Most object values held at once when the rows of some pixels must be gathered in a
        second pass (unordered catalogues); larger batches are split into more passes.

    Examples
    --------
    >>> DepthMapConfig().nside, DepthMapConfig().method
    (1024, 'flux_err')
    >>> DepthMapConfig().with_overrides(bands="ri", nside=512).bands
    'ri'
    >>> DepthMapConfig(nside=1000)
    Traceback (most recent call last):
    ...
    skydask.errors.SpecError: parameter 'nside' must be a power of two from 1 to 16384; got 1000
    """

    bands: str = "ugrizy"
    nside: int = 1024
    nside_coverage: int = 32
    method: str = "flux_err"
    snr_threshold: float = 5.0
    snr_delta: float = 0.5
    where: str | None = None
    min_objects: int = 1
    depth_cuts: Mapping[str, float] = field(default_factory=lambda: {"i": 25.3})
    carry_budget: int = 50_000_000

    def __post_init__(self) -> None:
        bands = self.bands
        if not isinstance(bands, str) or not bands:
            raise SpecError(f"parameter 'bands' must be a non-empty string such as 'ugrizy'; "
                            f"got {bands!r}")  # fmt: skip
        unknown = [b for b in bands if b not in BANDS]
        if unknown or len(set(bands)) != len(bands):
            raise SpecError(
                f"parameter 'bands' must list distinct bands among {''.join(BANDS)!r}; got "
                f"{bands!r}"
            )
        for name in ("nside", "nside_coverage"):
            value = getattr(self, name)
            if not _is_power_of_two(value) or value > _MAX_NSIDE:
                raise SpecError(
                    f"parameter {name!r} must be a power of two from 1 to {_MAX_NSIDE}; "
                    f"got {value!r}"
                )
        if self.nside_coverage > self.nside:
            raise SpecError(
                f"parameter 'nside_coverage' ({self.nside_coverage}) must not exceed 'nside' "
                f"({self.nside})"
            )
        if self.method not in METHODS:
            raise SpecError(f"parameter 'method' must be one of {METHODS}; got {self.method!r}")
        for name in ("snr_threshold", "snr_delta"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
                raise SpecError(f"parameter {name!r} must be a number > 0; got {value!r}")
        if self.method == "snr_window" and self.snr_delta >= self.snr_threshold:
            raise SpecError(
                f"parameter 'snr_delta' ({self.snr_delta}) must be below 'snr_threshold' "
                f"({self.snr_threshold}) so that the S/N window excludes non-detections"
            )
        if self.where is not None and not isinstance(self.where, str):
            raise SpecError(f"parameter 'where' must be a filter string or None; got "
                            f"{self.where!r}")  # fmt: skip
        for name in ("min_objects", "carry_budget"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"parameter {name!r} must be a positive integer; got {value!r}")
        if not isinstance(self.depth_cuts, Mapping):
            raise SpecError(
                f"parameter 'depth_cuts' must map bands to depths, e.g. {{'i': 25.3}}; got "
                f"{self.depth_cuts!r}"
            )
        for band, cut in self.depth_cuts.items():
            if band not in bands:
                raise SpecError(
                    f"parameter 'depth_cuts' has a cut in band {band!r}, which is not among the "
                    f"mapped bands {bands!r}"
                )
            if not isinstance(cut, int | float) or not math.isfinite(cut):
                raise SpecError(f"parameter 'depth_cuts' needs a finite depth for band "
                                f"{band!r}; got {cut!r}")  # fmt: skip
        # a private copy, so the frozen config cannot change through the caller's dict
        object.__setattr__(
            self, "depth_cuts", MappingProxyType({b: float(c) for b, c in self.depth_cuts.items()})
        )

    def __hash__(self) -> int:  # the mapping of cuts is hashed as its sorted items
        return hash(
            tuple(
                tuple(sorted(v.items())) if isinstance(v, Mapping) else v
                for v in (getattr(self, f.name) for f in fields(self))
            )
        )

    def with_overrides(self, **overrides: Any) -> DepthMapConfig:
        """A copy with some parameters replaced (validated like the constructor)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise SpecError(
                f"depth_map has no parameter(s) {unknown}; expected some of {sorted(known)}"
            )
        if "depth_cuts" not in overrides and "bands" in overrides:
            # cuts in bands that are no longer mapped are dropped rather than refused
            overrides["depth_cuts"] = {
                b: c for b, c in self.depth_cuts.items() if b in overrides["bands"]
            }
        return replace(self, **overrides)

    @property
    def depth_label(self) -> str:
        """What the maps hold, for axis labels: e.g. ``"5σ depth"``."""
        return f"{self.snr_threshold:g}σ depth"

    def design_depth(self, band: str, which: str) -> float:
        """LSST design depth of ``band`` at this S/N threshold (``which``: single, 10yr).

        The design numbers are 5-sigma depths; for a background-limited point source the flux
        at S/N ``t`` is ``t / 5`` times the 5-sigma flux, hence the ``2.5 log10(t / 5)`` shift.

        Examples
        --------
        >>> DepthMapConfig().design_depth("i", "10yr")
        26.8
        >>> round(DepthMapConfig(snr_threshold=10.0).design_depth("i", "10yr"), 3)
        26.047
        """
        table = {"single": LSST_DESIGN_SINGLE_VISIT, "10yr": LSST_DESIGN_10YR}[which]
        shift = 0.0 if self.snr_threshold == 5.0 else 2.5 * math.log10(self.snr_threshold / 5.0)
        return table[band] - shift

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["depth_cuts"] = dict(self.depth_cuts)
        return out
