"""The full configuration of one synthetic catalogue and its ``synth.json`` parameter record.

:class:`SynthConfig` gathers the call's parameters (rows, seed, footprint, years) and the
physics models with their stated defaults. :meth:`SynthConfig.parameters` is the JSON-ready
record of *every* number that determines the data; two catalogues with equal records are
identical, which is what the cache in :func:`skydask.synth.generate_object_catalog` relies on.
``GENERATOR_VERSION`` is part of the record and changes whenever the algorithm does.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from skydask.errors import SpecError
from skydask.synth.galaxies import GalaxyModel
from skydask.synth.measure import MeasurementModel
from skydask.synth.shapes import distortion_rms
from skydask.synth.shear import ShearModel, draw_halos
from skydask.synth.sky import PATCHES_PER_SIDE, TRACT_HEIGHT_DEG, validate_footprint
from skydask.synth.stars import StarModel
from skydask.synth.survey import SurveyModel

__all__ = ["GENERATOR_VERSION", "NSIDE_TRUTH", "SynthConfig"]

GENERATOR_VERSION = 1
# HEALPix resolution of the depth truth: nside 512 pixels are 6.9 arcmin across (0.013 deg^2),
# small against the 1.75 deg field of view, so the dither pattern is resolved.
NSIDE_TRUTH = 512
# objectId = tract * 2**32 + patch_index * 2**24 + i, so a patch holds fewer than 2**24 rows
MAX_ROWS_PER_PATCH = 2**24


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines a synthetic catalogue."""

    rows: int
    seed: int
    footprint: tuple[float, float, float, float]
    years: float
    nside_truth: int = NSIDE_TRUTH
    survey: SurveyModel = field(default_factory=SurveyModel)
    shear: ShearModel = field(default_factory=ShearModel)
    stars: StarModel = field(default_factory=StarModel)
    galaxies: GalaxyModel = field(default_factory=GalaxyModel)
    measurement: MeasurementModel = field(default_factory=MeasurementModel)

    @classmethod
    def create(
        cls,
        rows: int,
        seed: int,
        footprint: tuple[float, float, float, float],
        years: float,
        shear: ShearModel | None = None,
    ) -> SynthConfig:
        """Validate the call's parameters and build a configuration with the default models
        (the shear model ``shear`` if given).

        Examples
        --------
        >>> SynthConfig.create(1000, 1, (60, 61, -35, -34), 5.0).footprint
        (60.0, 61.0, -35.0, -34.0)
        >>> config = SynthConfig.create(1000, 1, (60, 61, -35, -34), 5.0, ShearModel(n_halos=0))
        >>> config.shear.n_halos
        0
        """
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise SpecError(f"parameter 'rows' must be a positive integer; got {rows!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise SpecError(f"parameter 'seed' must be a non-negative integer; got {seed!r}")
        try:
            years_f = float(years)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"parameter 'years' must be a number > 0; got {years!r}") from exc
        if not (math.isfinite(years_f) and years_f > 0):
            raise SpecError(f"parameter 'years' must be a number > 0; got {years!r}")
        if shear is None:
            shear = ShearModel()
        elif not isinstance(shear, ShearModel):
            raise SpecError(
                "parameter 'shear' must be a skydask.synth.shear.ShearModel or None; got "
                f"{type(shear).__name__}"
            )
        footprint = validate_footprint(footprint)
        return cls(rows=rows, seed=seed, footprint=footprint, years=years_f, shear=shear)

    @property
    def e_rms(self) -> float:
        """Per-component rms of the intrinsic galaxy distortion (exact, by quadrature)."""
        return distortion_rms(self.galaxies.eps_sigma, self.galaxies.eps_max)

    def parameters(self) -> dict[str, Any]:
        """The JSON-ready record of every number that determines the data."""
        halos = draw_halos(self.footprint, self.seed, self.shear)
        record = {
            "generator_version": GENERATOR_VERSION,
            "rows": self.rows,
            "seed": self.seed,
            "footprint": list(self.footprint),
            "years": self.years,
            "nside_truth": self.nside_truth,
            "layout": {
                "tract_height_deg": TRACT_HEIGHT_DEG,
                "patches_per_side": PATCHES_PER_SIDE,
                "objectId": "tract * 2**32 + patch_index * 2**24 + i",
                "parentObjectId": "0, or tract * 2**32 + 2**31 + patch_index * 2**24 + j",
                "rng": "numpy default_rng([seed, tract, patch_index]) per patch",
            },
            "survey": self.survey.to_dict(),
            "shear": {**self.shear.to_dict(), "halos": [h.to_dict() for h in halos]},
            "stars": self.stars.to_dict(),
            "galaxies": {**self.galaxies.to_dict(), "e_rms": self.e_rms},
            "measurement": self.measurement.to_dict(),
        }
        # round-trip through JSON so that tuples become lists and the record compares equal to
        # one read back from synth.json
        normalised: dict[str, Any] = json.loads(json.dumps(record))
        return normalised


def diff_parameters(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Human-readable differences between two parameter records (dotted keys).

    Examples
    --------
    >>> diff_parameters({"rows": 1, "a": {"b": 2}}, {"rows": 3, "a": {"b": 2}})
    ['rows: 1 -> 3']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(f"{name}: (absent) -> {new[key]!r}")
            elif key not in new:
                out.append(f"{name}: {old[key]!r} -> (absent)")
            else:
                out.extend(diff_parameters(old[key], new[key], name))
        return out
    return [] if old == new else [f"{prefix}: {old!r} -> {new!r}"]
