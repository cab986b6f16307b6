"""Galaxies: number counts, two colour populations, sizes and intrinsic shapes.

Numbers (all in :class:`GalaxyModel`, written to ``synth.json``):

* True i magnitude from ``dN/dm ~ 10**(0.35 m)`` between 18 and the local i depth + 1 (``m5_i``
  of the object's pixel; the single-visit depth where a pixel has no i visit). About half of
  the galaxies are then fainter than the 5-sigma depth and mostly end up as noise, as faint
  detections do in a real catalogue.
* Colours: a red population (fraction 0.25) with adjacent colours u-g 1.80, g-r 0.90, r-i 0.45,
  i-z 0.30, z-y 0.15, scatter 0.10 mag each; a blue population with u-g 0.60, g-r 0.40,
  r-i 0.25, i-z 0.12, z-y 0.05, scatter 0.15 mag each (Gaussian, independent).
* Size: a Gaussian profile whose determinant radius sigma (arcsec) is log-normal with median
  ``0.35" * 10**(-0.08 (m_i - 22))`` (brighter galaxies are bigger: 0.73" at i = 18, 0.24" at
  i = 24) and ``ln`` scatter 0.3.
* Intrinsic shear-ellipticity: Gaussian sigma 0.2 per component, ``|eps| < 0.9``
  (:mod:`skydask.synth.shapes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from skydask.synth.magnitudes import (
    adjacent_colours,
    magnitudes_from_colours,
    power_law_magnitudes,
)
from skydask.synth.shapes import draw_intrinsic_ellipticity

__all__ = ["GalaxyModel", "GalaxySample", "draw_galaxies"]


def _colour_table(values: list[float]) -> dict[str, float]:
    names = [f"{a}-{b}" for a, b in adjacent_colours()]
    return dict(zip(names, values, strict=True))


@dataclass(frozen=True)
class GalaxyModel:
    """Parameters of the galaxy population (see the module docstring)."""

    anchor_band: str = "i"
    mag_bright: float = 18.0
    count_slope: float = 0.35
    depth_margin: float = 1.0
    red_fraction: float = 0.25
    red_colours: dict[str, float] = field(
        default_factory=lambda: _colour_table([1.80, 0.90, 0.45, 0.30, 0.15])
    )
    red_scatter: float = 0.10
    blue_colours: dict[str, float] = field(
        default_factory=lambda: _colour_table([0.60, 0.40, 0.25, 0.12, 0.05])
    )
    blue_scatter: float = 0.15
    size_median_arcsec: float = 0.35
    size_pivot_mag: float = 22.0
    size_mag_slope: float = -0.08
    size_ln_scatter: float = 0.3
    eps_sigma: float = 0.2
    eps_max: float = 0.9

    def to_dict(self) -> dict[str, Any]:
        return {
            "anchor_band": self.anchor_band,
            "count_law": "dN/dm ~ 10**(count_slope m) from mag_bright to m5 + depth_margin",
            "mag_bright": self.mag_bright,
            "count_slope": self.count_slope,
            "depth_margin": self.depth_margin,
            "red_fraction": self.red_fraction,
            "red_colours": dict(self.red_colours),
            "red_scatter": self.red_scatter,
            "blue_colours": dict(self.blue_colours),
            "blue_scatter": self.blue_scatter,
            "size": "Gaussian; sigma_arcsec lognormal, median "
            "size_median_arcsec * 10**(size_mag_slope (m_i - size_pivot_mag))",
            "size_median_arcsec": self.size_median_arcsec,
            "size_pivot_mag": self.size_pivot_mag,
            "size_mag_slope": self.size_mag_slope,
            "size_ln_scatter": self.size_ln_scatter,
            "eps_sigma": self.eps_sigma,
            "eps_max": self.eps_max,
        }


@dataclass(frozen=True)
class GalaxySample:
    """Drawn galaxies: true magnitudes ``(n, bands)``, size (arcsec), population, shape."""

    mags: NDArray[np.float64]
    sigma_arcsec: NDArray[np.float64]
    is_red: NDArray[np.bool_]
    eps_int: NDArray[np.complex128]


def draw_galaxies(
    rng: np.random.Generator, depth_anchor: NDArray[np.float64], model: GalaxyModel
) -> GalaxySample:
    """Draw galaxies given the local 5-sigma depth in the anchor band (i).

    Examples
    --------
    >>> s = draw_galaxies(np.random.default_rng(0), np.full(5000, 26.0), GalaxyModel())
    >>> s.mags.shape, bool(s.mags[:, 3].min() >= 18.0), bool(s.mags[:, 3].max() <= 27.0)
    ((5000, 6), True, True)
    >>> bool(0.2 < s.is_red.mean() < 0.3)
    True
    """
    n = len(depth_anchor)
    anchor = power_law_magnitudes(
        rng, model.mag_bright, depth_anchor + model.depth_margin, model.count_slope
    )
    is_red = rng.random(n) < model.red_fraction
    colours = {}
    for name in model.red_colours:
        red = model.red_colours[name] + rng.normal(0.0, model.red_scatter, n)
        blue = model.blue_colours[name] + rng.normal(0.0, model.blue_scatter, n)
        colours[name] = np.where(is_red, red, blue)
    mags = magnitudes_from_colours(model.anchor_band, anchor, colours)
    median = model.size_median_arcsec * 10.0 ** (
        model.size_mag_slope * (anchor - model.size_pivot_mag)
    )
    sigma = median * np.exp(rng.normal(0.0, model.size_ln_scatter, n))
    eps = draw_intrinsic_ellipticity(rng, n, model.eps_sigma, model.eps_max)
    return GalaxySample(mags, sigma, is_red, eps)
