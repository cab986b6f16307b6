"""Run specifications: YAML files naming a catalogue, cuts, analyses, thresholds and outputs.

A spec is validated completely before anything runs, and every error names the file and line::

    name: dc2-stellar-locus
    catalog: skydask_demo            # a registered name or a path
    cuts: "clean & mag_i < 25"       # optional: the filter language of Catalog.where
    cluster: local                   # optional: a cluster profile
    analyses:
      - name: locus                  # unique in the spec: the output sub-directory
        analysis: stellar_locus      # see skydask.run.registry
        params: {mag_max: 22.5}      # the analysis's config fields, type-checked
        cuts: "extendedness < 0.5"   # optional, ANDed with the global cuts
        thresholds:                  # metric: {min, max, abs_max}; verdicts in metrics.json
          w_sigmaMAD: {min: 10, max: 25}
          w_median: {abs_max: 4}

YAML is read with ``yaml.safe_load``'s composer so each value keeps its line; nothing in a spec
is ever evaluated as code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from skydask.errors import SpecError

__all__ = ["AnalysisSpec", "RunSpec", "Threshold", "load_spec", "parse_spec"]

_TOP_KEYS = {"name", "description", "catalog", "schema", "cuts", "cluster", "seed", "analyses"}
_ANALYSIS_KEYS = {"name", "analysis", "params", "cuts", "thresholds", "outputs"}
_THRESHOLD_KEYS = {"min", "max", "abs_max"}
OUTPUT_KINDS = ("tables", "plots", "maps", "metrics")


@dataclass(frozen=True)
class Threshold:
    """Pass/fail bounds on one metric: ``min <= value <= max`` and ``|value| <= abs_max``."""

    metric: str
    min: float | None = None
    max: float | None = None
    abs_max: float | None = None

    def passes(self, value: float) -> bool:
        if value != value:  # NaN never passes
            return False
        if self.min is not None and value < self.min:
            return False
        if self.max is not None and value > self.max:
            return False
        return not (self.abs_max is not None and abs(value) > self.abs_max)

    def describe(self) -> str:
        parts = []
        if self.min is not None and self.max is not None:
            parts.append(f"{self.min:g} <= x <= {self.max:g}")
        elif self.min is not None:
            parts.append(f"x >= {self.min:g}")
        elif self.max is not None:
            parts.append(f"x <= {self.max:g}")
        if self.abs_max is not None:
            parts.append(f"|x| <= {self.abs_max:g}")
        return " and ".join(parts)


@dataclass(frozen=True)
class AnalysisSpec:
    """One analysis of a suite."""

    name: str
    analysis: str
    params: dict[str, Any] = field(default_factory=dict)
    cuts: tuple[str, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    outputs: tuple[str, ...] = OUTPUT_KINDS
    line: int = 0


@dataclass(frozen=True)
class RunSpec:
    """A validated run specification."""

    name: str
    catalog: str
    source: str
    analyses: tuple[AnalysisSpec, ...]
    description: str = ""
    schema: str | None = None
    cuts: tuple[str, ...] = ()
    cluster: str | None = None
    seed: int = 0
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    cuts_line: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The spec as run, in canonical form (what the provenance records and hashes)."""
        return {
            "name": self.name,
            "description": self.description,
            "catalog": self.catalog,
            "schema": self.schema,
            "cuts": list(self.cuts),
            "cluster": self.cluster,
            "seed": self.seed,
            "analyses": [
                {
                    "name": a.name,
                    "analysis": a.analysis,
                    "params": a.params,
                    "cuts": list(a.cuts),
                    "thresholds": [dataclasses.asdict(t) for t in a.thresholds],
                    "outputs": list(a.outputs),
                }
                for a in self.analyses
            ],
        }

    def digest(self) -> str:
        """SHA-256 of the canonical spec (the cluster is left out: it does not change results)."""
        data = self.as_dict()
        data.pop("cluster")
        data.pop("description")
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


class _Located:
    """Plain Python values from a YAML node tree, with the line of every mapping value."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, node: yaml.Node | None, message: str) -> SpecError:
        line = node.start_mark.line + 1 if node is not None else 0
        return SpecError(f"{self.source}:{line}: {message}")

    def mapping(self, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping of keys to values")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in out:
                raise self.error(key_node, f"{what}: key {key!r} appears twice")
            out[key] = (key_node, value_node)
        return out

    def check_keys(
        self, items: dict[str, tuple[yaml.Node, yaml.Node]], allowed: set[str], what: str
    ) -> None:
        for key, (key_node, _) in items.items():
            if key not in allowed:
                raise self.error(
                    key_node, f"unknown key {key!r} in {what}; allowed: {sorted(allowed)}"
                )

    @staticmethod
    def value(node: yaml.Node) -> Any:
        return yaml.safe_load(yaml.serialize(node))


def _as_cuts(loc: _Located, node: yaml.Node, what: str) -> tuple[str, ...]:
    value = loc.value(node)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise loc.error(node, f"{what} must be a filter string or a list of filter strings")


def _type_ok(value: Any, annotation: Any) -> bool:
    """Is ``value`` (from YAML) acceptable for a dataclass field annotation?"""
    if annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (str, bool):
        return isinstance(value, annotation)
    if origin in (tuple, list, typing.Sequence) or annotation in (tuple, list):
        if not isinstance(value, list | tuple):
            return False
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return not args or all(any(_type_ok(v, a) for a in args) for v in value)
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    return True  # a type this checker does not know: let the analysis validate it


def check_params(
    loc: _Located, node: yaml.Node | None, params: dict[str, Any], config_cls: type, analysis: str
) -> None:
    """Every parameter must be a field of the analysis's config, of the declared type."""
    hints = typing.get_type_hints(config_cls)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    items = loc.mapping(node, f"params of {analysis}") if node is not None else {}
    for key, value in params.items():
        key_node = items[key][0] if key in items else node
        if key not in fields:
            raise loc.error(
                key_node, f"{analysis} has no parameter {key!r}; parameters: {sorted(fields)}"
            )
        if not _type_ok(value, hints.get(key, Any)):
            raise loc.error(
                key_node, f"parameter {key!r} of {analysis} must be {hints.get(key)}, got {value!r}"
            )


def parse_spec(text: str, source: str = "<spec>") -> RunSpec:
    """Parse and validate a spec's structure, parameters and thresholds (not its cuts' names,
    which need the catalogue: see :func:`skydask.run.runner.validate`)."""
    from skydask.run.registry import get_analysis

    loc = _Located(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}") from exc
    if root is None:
        raise SpecError(f"{source}: the spec is empty")
    top = loc.mapping(root, "the spec")
    loc.check_keys(top, _TOP_KEYS, "the spec")
    for required in ("catalog", "analyses"):
        if required not in top:
            raise loc.error(root, f"the spec needs a {required!r} key")
    name = str(loc.value(top["name"][1])) if "name" in top else Path(source).stem
    catalog = loc.value(top["catalog"][1])
    if not isinstance(catalog, str):
        raise loc.error(top["catalog"][1], "catalog must be a registered name or a path (a string)")
    analyses_node = top["analyses"][1]
    if not isinstance(analyses_node, yaml.SequenceNode) or not analyses_node.value:
        raise loc.error(analyses_node, "analyses must be a non-empty list")
    analyses = []
    seen: set[str] = set()
    for item in analyses_node.value:
        entry = loc.mapping(item, "an analysis")
        loc.check_keys(entry, _ANALYSIS_KEYS, "an analysis")
        if "analysis" not in entry:
            raise loc.error(item, "each analysis needs an 'analysis' key naming what to run")
        kind_node = entry["analysis"][1]
        kind = str(loc.value(kind_node))
        try:
            registered = get_analysis(kind)
        except SpecError as exc:
            raise loc.error(kind_node, str(exc)) from None
        label = str(loc.value(entry["name"][1])) if "name" in entry else kind
        if label in seen:
            raise loc.error(item, f"two analyses are named {label!r}; give each a unique 'name'")
        seen.add(label)
        params_node = entry["params"][1] if "params" in entry else None
        params = loc.value(params_node) if params_node is not None else {}
        if not isinstance(params or {}, dict):
            raise loc.error(params_node, f"params of {label} must be a mapping")
        check_params(loc, params_node, params or {}, registered.config_class(), kind)
        thresholds = []
        if "thresholds" in entry:
            tnode = entry["thresholds"][1]
            for metric, (mkey, mnode) in loc.mapping(tnode, f"thresholds of {label}").items():
                bounds = loc.mapping(mnode, f"threshold {metric}")
                loc.check_keys(bounds, _THRESHOLD_KEYS, f"threshold {metric}")
                values = {}
                for k, (_, vnode) in bounds.items():
                    v = loc.value(vnode)
                    if not isinstance(v, int | float) or isinstance(v, bool):
                        raise loc.error(
                            vnode, f"threshold {metric}.{k} must be a number, got {v!r}"
                        )
                    values[k] = float(v)
                if registered.metric_names and metric not in registered.metric_names:
                    raise loc.error(
                        mkey,
                        f"{kind} has no metric {metric!r}; "
                        f"metrics: {sorted(registered.metric_names)}",
                    )
                thresholds.append(Threshold(metric, **values))
        outputs = OUTPUT_KINDS
        if "outputs" in entry:
            onode = entry["outputs"][1]
            value = loc.value(onode)
            if not isinstance(value, list) or any(v not in OUTPUT_KINDS for v in value):
                raise loc.error(onode, f"outputs must be a list of {list(OUTPUT_KINDS)}")
            outputs = tuple(value)
        analyses.append(
            AnalysisSpec(
                name=label,
                analysis=kind,
                params=params or {},
                cuts=_as_cuts(loc, entry["cuts"][1], f"cuts of {label}") if "cuts" in entry else (),
                thresholds=tuple(thresholds),
                outputs=tuple(outputs),
                line=item.start_mark.line + 1,
            )
        )
    seed = loc.value(top["seed"][1]) if "seed" in top else 0
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise loc.error(top["seed"][1], f"seed must be an integer, got {seed!r}")
    return RunSpec(
        name=name,
        catalog=catalog,
        source=source,
        analyses=tuple(analyses),
        description=str(loc.value(top["description"][1])) if "description" in top else "",
        schema=loc.value(top["schema"][1]) if "schema" in top else None,
        cuts=_as_cuts(loc, top["cuts"][1], "cuts") if "cuts" in top else (),
        cluster=loc.value(top["cluster"][1]) if "cluster" in top else None,
        seed=seed,
        raw=yaml.safe_load(text),
        cuts_line=top["cuts"][1].start_mark.line + 1 if "cuts" in top else 0,
    )


def load_spec(path: str | Path) -> RunSpec:
    """Read and validate a spec file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read the spec {str(path)!r}: {exc}") from exc
    return parse_spec(text, str(path))
