"""Stars: number counts and colours on the Covey et al. (2007) median stellar locus.

Numbers (all in :class:`StarModel`, written to ``synth.json``):

* Star fraction ``0.15`` of all objects (each object is a star with that probability).
* True r magnitude from ``dN/dm ~ 10**(0.1 m)`` between 16 and the local r depth + 0.5
  (``m5_r`` of the object's pixel; the single-visit depth where a pixel has no r visit).
* Colours: ``g-i`` drawn from the Covey table's bins weighted by their star counts ``N``, then
  uniform within the bin (bin edges halfway between the tabulated ``g-i``; the end bins are
  symmetric about their centre). The median ``u-g``, ``g-r``, ``r-i``, ``i-z`` are interpolated
  at that ``g-i`` (``np.interp``), so the noise-free colours lie on the piecewise-linear locus
  through the table's points. ``z-y = 0.5 (i-z)`` is an approximation: Covey has no y band.
* Intrinsic scatter: ``locus_width = 0.02`` mag added independently (Gaussian) to each of the
  five adjacent colours. For a straight locus the width perpendicular to it in any
  colour-colour plane of two adjacent colours is then 0.02 mag (an isotropic 2-D Gaussian
  projects to the same sigma in every direction).

The magnitudes are built outwards from r along the band order with the adjacent colours.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from skydask.data import covey_locus
from skydask.errors import SchemaError
from skydask.schema.definitions import BANDS
from skydask.synth.magnitudes import (
    adjacent_colours,
    magnitudes_from_colours,
    power_law_magnitudes,
)

__all__ = ["StarModel", "draw_star_magnitudes", "locus_colours"]


@dataclass(frozen=True)
class StarModel:
    """Parameters of the star population (see the module docstring)."""

    fraction: float = 0.15
    anchor_band: str = "r"
    mag_bright: float = 16.0
    count_slope: float = 0.1
    depth_margin: float = 0.5
    locus_width: float = 0.02
    zy_over_iz: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return {
            "star_fraction": self.fraction,
            "anchor_band": self.anchor_band,
            "mag_bright": self.mag_bright,
            "count_law": "dN/dm ~ 10**(count_slope m) from mag_bright to m5 + depth_margin",
            "count_slope": self.count_slope,
            "depth_margin": self.depth_margin,
            "locus": "Covey et al. 2007 median locus, g-i weighted by N, np.interp",
            "locus_width": self.locus_width,
            "z-y": f"{self.zy_over_iz} * (i-z) (approximation: Covey has no y band)",
        }


@functools.cache
def _locus_bins() -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    table = covey_locus()
    centre = table["g-i"].to_numpy(dtype=np.float64)
    mid = 0.5 * (centre[1:] + centre[:-1])
    lo = np.concatenate([[centre[0] - (mid[0] - centre[0])], mid])
    hi = np.concatenate([mid, [centre[-1] + (centre[-1] - mid[-1])]])
    weight = table["N"].to_numpy(dtype=np.float64)
    return lo, hi, weight / weight.sum()


def locus_colours(gi: NDArray[np.float64], model: StarModel) -> dict[str, NDArray[np.float64]]:
    """Noise-free adjacent colours on the Covey locus at the given ``g-i``.

    Examples
    --------
    >>> c = locus_colours(np.array([0.10, 1.0]), StarModel())
    >>> c["g-r"].tolist(), c["z-y"].round(3).tolist()
    ([0.09, 0.73], [-0.015, 0.06])
    """
    table = covey_locus()
    x = table["g-i"].to_numpy(dtype=np.float64)
    out = {
        c: np.interp(gi, x, table[c].to_numpy(dtype=np.float64))
        for c in ("u-g", "g-r", "r-i", "i-z")
    }
    out["z-y"] = model.zy_over_iz * out["i-z"]
    return out


def draw_star_magnitudes(
    rng: np.random.Generator, depth_anchor: NDArray[np.float64], model: StarModel
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """True magnitudes ``(n, len(BANDS))`` of stars and their locus parameter ``g-i``.

    ``depth_anchor`` is the local 5-sigma depth in the anchor band (r).

    Examples
    --------
    >>> mags, gi = draw_star_magnitudes(np.random.default_rng(0), np.full(1000, 27.0), StarModel())
    >>> mags.shape, bool(mags[:, 2].min() >= 16.0), bool(mags[:, 2].max() <= 27.5)
    ((1000, 6), True, True)
    """
    n = len(depth_anchor)
    r = power_law_magnitudes(
        rng, model.mag_bright, depth_anchor + model.depth_margin, model.count_slope
    )
    lo, hi, p = _locus_bins()
    k = rng.choice(len(p), size=n, p=p)
    gi = rng.uniform(lo[k], hi[k])
    colours = locus_colours(gi, model)
    for name in colours:  # independent scatter per colour, in the dict's fixed order
        colours[name] = colours[name] + rng.normal(0.0, model.locus_width, n)
    expected = {f"{a}-{b}" for a, b in adjacent_colours()}
    if set(colours) != expected:  # the schema's bands must be Covey's ugriz plus y
        raise SchemaError(
            f"star colours {sorted(colours)} do not match the schema's bands {BANDS}; "
            "the stellar locus model needs bands ugrizy"
        )
    return magnitudes_from_colours(model.anchor_band, r, colours), gi
