"""``skydask run``: execute a spec into one output directory, atomically, with a cache.

Layout of a finished run directory::

    <out>/
      metrics.json        every metric: value, unit, threshold, verdict; and the overall verdict
      provenance.json     spec as run and its hash, catalogue fingerprint, versions, git commit,
                          cluster and its size, start/end times, seed, cache key
      <analysis name>/    what the analysis wrote (tables, maps, PNG plots) + analysis.json

How the guarantees are kept:

- **Atomic.** Everything is written under ``.<name>.staging-<key>`` beside the final directory
  and renamed into place at the very end; a crash or Ctrl-C leaves only the hidden staging
  directory, never one that looks complete.
- **Resumable.** Inside the staging directory each analysis is itself written under a temporary
  name and renamed when complete; a restarted run with the same key reuses the analyses that
  finished and runs only the rest.
- **Cached.** The key hashes the spec (everything but the cluster), the catalogue's fingerprint
  (file list and Parquet footers) and the skydask version. If the output directory already holds
  a run with this key, it is returned at once; ``force=True`` recomputes.

Sharing: the catalogue is opened once and its cuts applied once for the suite (one set of
footers, one plan). Analyses that describe their read as a scan plan (the stellar locus and the
depth maps; :mod:`skydask.analyses.scan`) and keep the same rows share one pass over the data:
the union of their quantities is read once per file, and each analysis' reduction runs on its
share of every partition. The two-point analyses read their own columns (their patch assignment
and pair tasks have a different shape); they still share the opened catalogue.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from skydask.analyses.scan import scan_together
from skydask.catalog.catalog import Catalog
from skydask.catalog.open import open_catalog
from skydask.errors import SkydaskError, SpecError
from skydask.run.provenance import cluster_description, code_version, package_versions
from skydask.run.registry import flat_metrics, get_analysis
from skydask.run.spec import OUTPUT_KINDS, AnalysisSpec, RunSpec, load_spec

__all__ = ["RunOutcome", "run", "validate"]

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
PROVENANCE_FILE = "provenance.json"
ANALYSIS_FILE = "analysis.json"


@dataclass(frozen=True)
class RunOutcome:
    """Where a run's results are and whether every threshold passed."""

    directory: Path
    passed: bool
    cache_hit: bool
    metrics: dict[str, Any]

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def _version() -> str:
    from skydask import __version__

    return __version__


def validate(spec: RunSpec) -> Catalog:
    """Open the spec's catalogue (listing and one footer) and check every cut's names.

    Returns the catalogue with the global cuts applied. Nothing is read.
    """
    try:
        catalog = open_catalog(spec.catalog, schema=spec.schema)
    except SkydaskError as exc:
        raise SpecError(f"{spec.source}: catalog {spec.catalog!r}: {exc}") from exc
    for cut in spec.cuts:
        try:
            catalog = catalog.where(cut)
        except SkydaskError as exc:
            raise SpecError(f"{spec.source}:{spec.cuts_line}: cuts: {exc}") from exc
    for analysis in spec.analyses:
        _analysis_catalog(spec, analysis, catalog)
    return catalog


def _analysis_catalog(spec: RunSpec, analysis: AnalysisSpec, catalog: Catalog) -> Catalog:
    for cut in analysis.cuts:
        try:
            catalog = catalog.where(cut)
        except SkydaskError as exc:
            raise SpecError(
                f"{spec.source}:{analysis.line}: cuts of {analysis.name}: {exc}"
            ) from exc
    return catalog


def _cache_key(spec: RunSpec, fingerprint: str) -> str:
    text = json.dumps({"spec": spec.digest(), "catalog": fingerprint, "skydask": _version()})
    return hashlib.sha256(text.encode()).hexdigest()


def _analysis_key(key: str, analysis: AnalysisSpec) -> str:
    return hashlib.sha256(f"{key}/{analysis.name}".encode()).hexdigest()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return None


def _prune_outputs(directory: Path, outputs: tuple[str, ...]) -> None:
    """Remove the kinds of file a spec did not ask for (everything is written, then pruned)."""
    if set(outputs) >= set(OUTPUT_KINDS):
        return
    for path in directory.rglob("*"):
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        is_map = "map" in path.name.lower() and suffix in {".fits", ".fz", ".hs"}
        kind = (
            "plots"
            if suffix in {".png", ".pdf", ".svg"}
            else "metrics"
            if suffix == ".json"
            else "maps"
            if is_map
            else "tables"
        )
        if kind not in outputs:
            path.unlink()


def _finished(staging: Path, analysis: AnalysisSpec, key: str) -> dict[str, Any] | None:
    """The record of an analysis that already finished in ``staging`` for this key, if any."""
    done = _read_json(staging / analysis.name / ANALYSIS_FILE)
    if done is not None and done.get("key") == _analysis_key(key, analysis):
        log.info("analysis %s already finished in %s: reused", analysis.name, staging)
        return done
    return None


def _write_analysis(
    staging: Path,
    analysis: AnalysisSpec,
    key: str,
    compute: Any,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compute one analysis' result (``compute()``) and write it into ``staging/<name>``,
    atomically: under a temporary name, renamed when complete."""
    final = staging / analysis.name
    if final.exists():
        shutil.rmtree(final)
    tmp = staging / f".{analysis.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        t0 = time.perf_counter()
        result = compute()
        seconds = time.perf_counter() - t0
        result.write(tmp)
        _prune_outputs(tmp, analysis.outputs)
        metrics = flat_metrics(result)
        record = {
            "key": _analysis_key(key, analysis),
            "analysis": analysis.analysis,
            "params": analysis.params,
            "seconds": seconds,
            **(extra or {}),
            "metrics": _with_verdicts(analysis, metrics),
        }
        (tmp / ANALYSIS_FILE).write_text(json.dumps(record, indent=2, default=str))
        os.replace(tmp, final)
        return record
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _shared_groups(
    spec: RunSpec, pending: list[AnalysisSpec], catalog: Catalog
) -> list[list[AnalysisSpec]]:
    """The pending analyses, grouped so that each group shares one scan of the catalogue.

    Analyses with a scan plan (``RegisteredAnalysis.planner``) whose rows are the same (same
    per-analysis cuts) form one group; every other analysis is a group of its own.
    """
    groups: list[list[AnalysisSpec]] = []
    shared: list[tuple[Catalog, list[AnalysisSpec]]] = []
    for analysis in pending:
        if get_analysis(analysis.analysis).planner is None:
            groups.append([analysis])
            continue
        rows = _analysis_catalog(spec, analysis, catalog)
        for other_rows, group in shared:
            if other_rows.same_rows(rows):
                group.append(analysis)
                break
        else:
            group = [analysis]
            shared.append((rows, group))
            groups.append(group)
    return groups


def _run_group(
    spec: RunSpec, group: list[AnalysisSpec], catalog: Catalog, staging: Path, key: str
) -> dict[str, dict[str, Any]]:
    """Run a group of analyses into ``staging``; a group of several shares one scan."""
    if len(group) == 1 and get_analysis(group[0].analysis).planner is None:
        analysis = group[0]
        function = get_analysis(analysis.analysis).load()
        rows = _analysis_catalog(spec, analysis, catalog)
        return {analysis.name: _write_analysis(
            staging, analysis, key, lambda: function(rows, **analysis.params)
        )}  # fmt: skip
    plans = [
        get_analysis(a.analysis).load_planner()(_analysis_catalog(spec, a, catalog), **a.params)
        for a in group
    ]
    names = [a.name for a in group]
    log.info("one scan of the catalogue for %s", names)
    t0 = time.perf_counter()
    results = scan_together(*plans)
    scan_seconds = time.perf_counter() - t0
    # the analyses of a group finish together: each records the whole group's time
    extra = {"seconds": scan_seconds, "shared_scan": {"analyses": names}}
    return {
        a.name: _write_analysis(staging, a, key, lambda r=r: r, extra)
        for a, r in zip(group, results, strict=True)
    }


def _with_verdicts(analysis: AnalysisSpec, metrics: dict[str, tuple[float, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    thresholds = {t.metric: t for t in analysis.thresholds}
    for name, (value, unit) in metrics.items():
        entry: dict[str, Any] = {"value": None if value != value else value, "unit": unit}
        if name in thresholds:
            t = thresholds[name]
            entry["threshold"] = t.describe()
            entry["verdict"] = "pass" if t.passes(value) else "fail"
        out[name] = entry
    for name, t in thresholds.items():
        if name not in out:  # a threshold on a metric the analysis did not produce fails
            out[name] = {"value": None, "unit": "", "threshold": t.describe(), "verdict": "fail"}
    return out


@contextlib.contextmanager
def _cluster(profile: str | None) -> Iterator[None]:
    if profile is None:
        yield
        return
    from skydask.cluster import connect

    with connect(profile):
        yield


def _replace_dir(staging: Path, final: Path) -> None:
    """Put ``staging`` at ``final``; an older run there is moved aside, then deleted."""
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def run(
    spec: RunSpec | str | Path,
    *,
    out: str | Path | None = None,
    cluster: str | None = None,
    force: bool = False,
) -> RunOutcome:
    """Run a spec (or a spec file) and return where its results are and the verdict.

    ``out`` defaults to ``runs/<spec name>/<first 12 characters of the cache key>``.
    ``cluster`` (or the spec's ``cluster``) names a profile for :func:`skydask.connect`;
    without one, the active dask scheduler or client is used.
    """
    spec = spec if isinstance(spec, RunSpec) else load_spec(spec)
    catalog = validate(spec)
    fingerprint = catalog.fingerprint()
    key = _cache_key(spec, fingerprint)
    final = Path(out) if out is not None else Path("runs") / spec.name / key[:12]
    previous = _read_json(final / PROVENANCE_FILE)
    if previous is not None and previous.get("cache_key") == key and not force:
        metrics = _read_json(final / METRICS_FILE) or {}
        log.info("cache hit: %s", final)
        return RunOutcome(final, bool(metrics.get("passed")), True, metrics)

    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.staging-{key[:16]}"
    if force and staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(exist_ok=True)
    started = datetime.now(UTC).isoformat()
    records: dict[str, Any] = {}
    with _cluster(cluster or spec.cluster):
        cluster_info = cluster_description()
        pending = []
        for analysis in spec.analyses:
            done = _finished(staging, analysis, key)
            if done is None:
                pending.append(analysis)
            else:
                records[analysis.name] = done
        for group in _shared_groups(spec, pending, catalog):
            records.update(_run_group(spec, group, catalog, staging, key))
        records = {a.name: records[a.name] for a in spec.analyses}  # in the spec's order
    verdicts = [
        m.get("verdict") for r in records.values() for m in r["metrics"].values() if "verdict" in m
    ]
    passed = all(v == "pass" for v in verdicts)
    metrics = {
        "spec": spec.name,
        "passed": passed,
        "n_thresholds": len(verdicts),
        "n_failed": sum(v == "fail" for v in verdicts),
        "analyses": {name: r["metrics"] for name, r in records.items()},
    }
    provenance = {
        "spec": spec.as_dict(),
        "spec_source": spec.source,
        "spec_sha256": spec.digest(),
        "cache_key": key,
        "catalog": {
            "name_or_path": spec.catalog,
            "source": catalog.source_description,
            "schema": catalog.schema.flavour,
            "fingerprint_sha256": fingerprint,
            "query": catalog.describe_query(),
        },
        "code": {"skydask": _version(), **code_version()},
        "packages": package_versions(),
        "cluster": cluster_info,
        "seed": spec.seed,
        "started": started,
        "finished": datetime.now(UTC).isoformat(),
        "analysis_seconds": {name: r["seconds"] for name, r in records.items()},
    }
    (staging / METRICS_FILE).write_text(json.dumps(metrics, indent=2, default=str))
    (staging / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, default=str))
    _replace_dir(staging, final)
    return RunOutcome(final, passed, False, metrics)
