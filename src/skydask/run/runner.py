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
footers, one plan); each analysis then reads only the columns it needs. Analyses do not yet
share one pass over the data: that needs them to expose their reductions (a later step).
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


def _run_analysis(
    spec: RunSpec, analysis: AnalysisSpec, catalog: Catalog, staging: Path, key: str
) -> dict[str, Any]:
    """Run one analysis into ``staging/<name>`` (atomically) unless it already finished there."""
    final = staging / analysis.name
    akey = _analysis_key(key, analysis)
    done = _read_json(final / ANALYSIS_FILE)
    if done is not None and done.get("key") == akey:
        log.info("analysis %s already finished in %s: reused", analysis.name, final)
        return done
    if final.exists():
        shutil.rmtree(final)
    registered = get_analysis(analysis.analysis)
    function = registered.load()
    tmp = staging / f".{analysis.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        t0 = time.perf_counter()
        result = function(_analysis_catalog(spec, analysis, catalog), **analysis.params)
        seconds = time.perf_counter() - t0
        result.write(tmp)
        _prune_outputs(tmp, analysis.outputs)
        metrics = flat_metrics(result)
        record = {
            "key": akey,
            "analysis": analysis.analysis,
            "params": analysis.params,
            "seconds": seconds,
            "metrics": _with_verdicts(analysis, metrics),
        }
        (tmp / ANALYSIS_FILE).write_text(json.dumps(record, indent=2, default=str))
        os.replace(tmp, final)
        return record
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
        for analysis in spec.analyses:
            records[analysis.name] = _run_analysis(spec, analysis, catalog, staging, key)
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
