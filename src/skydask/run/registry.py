"""The analyses a run spec can name, and how the runner calls them and reads their metrics.

Each entry points at an analysis function ``f(catalog, config=None, **params) -> result`` and
its config dataclass (used to type-check a spec's ``params`` before anything runs). Results
give ``.metrics``; this module turns them into one flat ``{name: (value, unit)}`` mapping, the
shape ``metrics.json`` and thresholds use. Imports are lazy, so naming an analysis costs
nothing until it runs.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from skydask.errors import SpecError

__all__ = ["RegisteredAnalysis", "analysis_names", "flat_metrics", "get_analysis"]


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class RegisteredAnalysis:
    """An analysis the runner knows."""

    name: str
    function: str
    config: str
    description: str
    metric_names: frozenset[str] = frozenset()
    # ``f(catalog, **params) -> ScanPlan``: the analysis can share a scan with others
    planner: str | None = None

    def load(self) -> Callable[..., Any]:
        fn: Callable[..., Any] = _load(self.function)
        return fn

    def load_planner(self) -> Callable[..., Any]:
        if self.planner is None:
            raise SpecError(f"analysis {self.name!r} cannot share a catalogue scan")
        fn: Callable[..., Any] = _load(self.planner)
        return fn

    def config_class(self) -> type:
        cls: type = _load(self.config)
        return cls


def _locus_metric_names() -> frozenset[str]:
    names = set()
    for fit in ("w", "x", "y"):
        names |= {f"{fit}_{m}" for m in ("sigmaMAD", "median", "nstars", "slope", "intercept")}
    for pc in ("s", "w", "x", "y"):
        names |= {f"sdss_{pc}_{m}" for m in ("sigmaMAD", "median", "nstars")}
    for c in ("u-g", "g-r", "r-i", "i-z"):
        names |= {f"locus_{c}_{m}" for m in ("nbins", "frac_within_spread", "median_offset")}
    return frozenset(names)


# The per-band columns of DepthMapResult.table(), with their units (the table has none).
_DEPTH_COLUMNS = {
    "n_pixels": "", "area_deg2": "deg2", "n_objects": "", "objects_per_pixel": "",
    "depth_median": "mag", "depth_sigma68": "mag", "spread_median": "mag", "depth_cut": "mag",
    "area_above_cut_deg2": "deg2", "design_single_visit": "mag", "design_10yr": "mag",
    "median_minus_10yr": "mag",
}  # fmt: skip


def _depth_metric_names() -> frozenset[str]:
    names = {"mask_area_deg2"}
    for b in "ugrizy":
        names |= {f"{b}_{column}" for column in _DEPTH_COLUMNS}
    return frozenset(names)


_REGISTRY: dict[str, RegisteredAnalysis] = {
    entry.name: entry
    for entry in (
        RegisteredAnalysis(
            "stellar_locus",
            "skydask.analyses.stellar_locus:stellar_locus",
            "skydask.analyses.locus.config:StellarLocusConfig",
            "Stellar-locus principal-colour widths (Ivezic et al. 2004, Rubin analysis_tools)",
            _locus_metric_names(),
            "skydask.analyses.stellar_locus:stellar_locus_plan",
        ),
        RegisteredAnalysis(
            "shear_shear",
            "skydask.analyses.twopoint:shear_shear",
            "skydask.analyses.twopoint:TwoPointConfig",
            "Shear-shear correlations xi+/xi- through TreeCorr, distributed by patch",
        ),
        RegisteredAnalysis(
            "galaxy_shear",
            "skydask.run.adapters:galaxy_shear_one_catalog",
            "skydask.analyses.twopoint:TwoPointConfig",
            "Galaxy-shear gamma_t/gamma_x, lenses and sources cut from the same catalogue",
        ),
        RegisteredAnalysis(
            "depth_map",
            "skydask.analyses.depthmap:depth_map",
            "skydask.analyses.depthmap:DepthMapConfig",
            "5-sigma point-source depth per HEALPix pixel and band",
            _depth_metric_names(),
            "skydask.analyses.depthmap.analysis:depth_map_plan",
        ),
    )
}


def analysis_names() -> list[str]:
    return sorted(_REGISTRY)


def get_analysis(name: str) -> RegisteredAnalysis:
    """The registered analysis ``name``, or a SpecError listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SpecError(f"unknown analysis {name!r}; known analyses: {analysis_names()}") from None


def _scalar(value: Any) -> tuple[float, str] | None:
    unit = ""
    if hasattr(value, "unit") and hasattr(value, "value"):  # astropy Quantity
        unit = value.unit.to_string()
        value = value.value
    if isinstance(value, bool):
        return float(value), unit
    if isinstance(value, int | float):
        return float(value), unit
    try:
        import numpy as np

        if isinstance(value, np.generic) and np.issubdtype(value.dtype, np.number):
            return float(value), unit
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    return None


def flat_metrics(result: Any) -> dict[str, tuple[float, str]]:
    """``{name: (value, unit)}`` from a result's ``.metrics``.

    Flat mappings of scalars or Quantities are taken as they are. The depth-map summary nests
    per-band rows under ``bands``; they become ``<band>_<column>``.
    """
    metrics: Mapping[str, Any] = result.metrics
    out: dict[str, tuple[float, str]] = {}
    if metrics.get("analysis") == "two_point":
        # per sample: the rows used and the shape noise the shear calibration estimated
        for name, sample in metrics.get("samples", {}).items():
            out[f"{name}_rows_used"] = (float(sample.get("rows_used", math.nan)), "")
        for name, cal in metrics.get("calibrations", {}).items():
            if "e_rms" in cal:
                out[f"{name}_e_rms"] = (float(cal["e_rms"]), "")
        return out
    if "bands" in metrics and isinstance(metrics["bands"], Mapping):
        for band, row in metrics["bands"].items():
            for key, value in row.items():
                scalar = _scalar(value) if value is not None else (math.nan, "")
                if scalar is not None:
                    out[f"{band}_{key}"] = (scalar[0], scalar[1] or _DEPTH_COLUMNS.get(key, ""))
        mask = metrics.get("mask", {})
        if isinstance(mask, Mapping) and "area_deg2" in mask:
            out["mask_area_deg2"] = (float(mask["area_deg2"]), "deg2")
        return out
    for key, value in metrics.items():
        scalar = _scalar(value)
        if scalar is not None:
            out[str(key)] = scalar
    return out
