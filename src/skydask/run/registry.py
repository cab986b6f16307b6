"""The analyses a run spec can name, and how the runner calls them and reads their metrics.

Each entry points at an analysis function ``f(catalog, config=None, **params) -> result`` and
its config dataclass (used to type-check a spec's ``params`` before anything runs). Every
result gives its scalars flat, by name (``.scalar_metrics``); this module turns them into
``{name: (value, unit)}``, the shape ``metrics.json`` and thresholds use. Imports are lazy, so
naming an analysis costs nothing until it is validated or run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
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
    # ``f() -> frozenset`` of the metric names thresholds may use (None: not checked)
    metrics: str | None = None
    # ``f(catalog, **params) -> ScanPlan``: the analysis can share a scan with others
    planner: str | None = None

    def load(self) -> Callable[..., Any]:
        fn: Callable[..., Any] = _load(self.function)
        return fn

    @property
    def metric_names(self) -> frozenset[str]:
        """The metric names a threshold may name (empty: any name is accepted)."""
        if self.metrics is None:
            return frozenset()
        names: frozenset[str] = _load(self.metrics)()
        return names

    def load_planner(self) -> Callable[..., Any]:
        if self.planner is None:
            raise SpecError(f"analysis {self.name!r} cannot share a catalogue scan")
        fn: Callable[..., Any] = _load(self.planner)
        return fn

    def config_class(self) -> type:
        cls: type = _load(self.config)
        return cls


_REGISTRY: dict[str, RegisteredAnalysis] = {
    entry.name: entry
    for entry in (
        RegisteredAnalysis(
            "stellar_locus",
            "skydask.analyses.stellar_locus:stellar_locus",
            "skydask.analyses.locus.config:StellarLocusConfig",
            "Stellar-locus principal-colour widths (Ivezic et al. 2004, Rubin analysis_tools)",
            "skydask.analyses.locus.result:metric_names",
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
            "skydask.analyses.depthmap.result:metric_names",
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
    """``{name: (value, unit)}`` from a result's ``scalar_metrics`` (every analysis result
    offers its scalars flat, by name, as Quantities or numbers)."""
    out: dict[str, tuple[float, str]] = {}
    for key, value in result.scalar_metrics.items():
        scalar = _scalar(value)
        if scalar is not None:
            out[str(key)] = scalar
    return out
