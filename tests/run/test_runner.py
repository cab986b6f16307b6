"""skydask run: outputs, metrics, provenance, cache, atomicity, resumption, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from runner_testdata import spec_text

from skydask.cli import main
from skydask.run import run
from skydask.synth import generate_object_catalog


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("run") / "synth"
    generate_object_catalog(path, rows=150_000, seed=5, footprint=(60.0, 64.0, -36.0, -33.0))
    return path


def write_spec(directory: Path, catalog: Path, **kw: float) -> Path:
    spec = directory / "suite.yaml"
    spec.write_text(spec_text(catalog, **kw))
    return spec


def test_run_writes_metrics_provenance_and_outputs(catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    outcome = run(write_spec(tmp_path, catalog), out=out)
    assert outcome.directory == out and not outcome.cache_hit
    metrics = json.loads((out / "metrics.json").read_text())
    provenance = json.loads((out / "provenance.json").read_text())
    locus = metrics["analyses"]["locus"]
    w = locus["w_sigmaMAD"]
    assert w["unit"] == "mmag" and 5 <= w["value"] <= 40
    assert w["threshold"] == "5 <= x <= 40" and w["verdict"] == "pass"
    depth = metrics["analyses"]["depth"]["i_depth_median"]
    assert depth["verdict"] == "pass" and depth["unit"] == "mag" and 25 < depth["value"] < 28
    assert metrics["passed"] is True and metrics["n_thresholds"] == 3 and metrics["n_failed"] == 0
    # provenance: the spec as run, its hash, the catalogue's fingerprint, code and cluster
    assert provenance["spec"]["analyses"][1]["params"] == {"nside": 256, "bands": "gri"}
    assert len(provenance["spec_sha256"]) == 64
    assert len(provenance["catalog"]["fingerprint_sha256"]) == 64
    assert provenance["catalog"]["query"] == "where mag_i < 26"
    assert provenance["packages"]["dask"] and provenance["code"]["skydask"]
    assert provenance["cluster"]["kind"].startswith("local")
    assert provenance["seed"] == 7 and provenance["started"] <= provenance["finished"]
    # the analyses' own outputs
    assert list((out / "locus").glob("*.png")) and list((out / "depth").glob("*.png"))
    assert (out / "locus" / "analysis.json").exists()
    # the stellar locus and the depth maps keep the same rows: they shared one scan
    for name in ("locus", "depth"):
        record = json.loads((out / name / "analysis.json").read_text())
        assert record["shared_scan"] == {"analyses": ["locus", "depth"]}
    # nothing left behind
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cache_hit_and_what_misses_it(catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = write_spec(tmp_path, catalog)
    first = run(spec, out=out)
    t0 = time.perf_counter()
    again = run(spec, out=out)
    assert again.cache_hit and time.perf_counter() - t0 < 5
    assert again.metrics == first.metrics
    # a changed threshold is a changed spec
    assert not run(write_spec(tmp_path, catalog, w_min=6.0), out=out).cache_hit
    # a changed parameter
    spec.write_text(spec_text(catalog).replace("nside: 256", "nside: 128"))
    assert not run(spec, out=out).cache_hit
    assert run(spec, out=out).cache_hit
    # --force recomputes
    assert not run(spec, out=out, force=True).cache_hit


def test_a_changed_input_file_misses_the_cache(catalog: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(catalog, copy)
    spec = write_spec(tmp_path, copy)
    out = tmp_path / "out"
    run(spec, out=out)
    assert run(spec, out=out).cache_hit
    victim = sorted(copy.glob("object_tract_*.parquet"))[0]
    table = pq.read_table(victim)
    flux = table["psFlux_i"].to_numpy().copy()
    flux[0] *= 1.01  # one value of one file
    i = table.schema.get_field_index("psFlux_i")
    table = table.set_column(i, table.schema.field(i), pa.array(flux, type=pa.float32()))
    pq.write_table(table, victim)
    assert not run(spec, out=out).cache_hit


def test_exit_codes(catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(write_spec(tmp_path, catalog)), "--out", str(tmp_path / "a")]) == 0
    assert "PASS" in capsys.readouterr().out
    failing = write_spec(tmp_path, catalog, w_min=39.0)
    assert main(["run", str(failing), "--out", str(tmp_path / "b")]) == 1
    assert "fail  locus.w_sigmaMAD" in capsys.readouterr().out
    broken = tmp_path / "broken.yaml"
    broken.write_text(spec_text(catalog).replace("analysis: depth_map", "analysis: nope"))
    assert main(["run", str(broken)]) == 2
    assert "broken.yaml:13: unknown analysis 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_run_leaves_nothing_complete_and_resumes(catalog: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, catalog)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "skydask.cli", "run", str(spec), "--out", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # wait until the first analysis of the suite is finished in the staging directory
    deadline = time.time() + 120
    done = None
    while time.time() < deadline and done is None:
        found = list(tmp_path.glob(".out.staging-*/locus/analysis.json"))
        done = found[0] if found else None
        time.sleep(0.05)
    assert done is not None, "the first analysis never finished"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # nothing that looks complete
    first_record = done.read_text()
    mtime = done.stat().st_mtime_ns
    # the restart reuses the finished analysis and completes the run
    outcome = run(spec, out=out)
    assert outcome.passed and not outcome.cache_hit
    assert (out / "locus" / "analysis.json").read_text() == first_record
    assert (out / "locus" / "analysis.json").stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob(".out.staging-*"))


TWO_POINT_SPEC = """\
name: two-point
catalog: {catalog}
analyses:
  - name: gg
    analysis: shear_shear
    params: {{npatch: 4, min_sep: 2.0, max_sep: 30.0, nbins: 4, bin_slop: 0.1}}
    thresholds:
      source_0_rows_used: {{min: 1000}}
      source_0_e_rms: {{min: 0.25, max: 0.45}}
  - name: ng
    analysis: galaxy_shear
    params: {{npatch: 4, min_sep: 2.0, max_sep: 30.0, nbins: 4, bin_slop: 0.1}}
    thresholds:
      lens_0_rows_used: {{min: 1000}}
"""


def test_two_point_analyses_run_from_a_spec(catalog: Path, tmp_path: Path) -> None:
    spec = tmp_path / "tp.yaml"
    spec.write_text(TWO_POINT_SPEC.format(catalog=catalog))
    outcome = run(spec, out=tmp_path / "out")
    metrics = outcome.metrics["analyses"]
    assert outcome.passed, metrics
    assert 0.3 < metrics["gg"]["source_0_e_rms"]["value"] < 0.4  # the generator's e_rms is 0.349
    assert metrics["ng"]["lens_0_rows_used"]["value"] > 1000
    files = {p.suffix for p in (tmp_path / "out" / "gg").iterdir()}
    assert ".png" in files and (".fits" in files or ".sacc" in files)


GROUPS_SPEC = """\
name: groups
catalog: {catalog}
analyses:
  - name: locus
    analysis: stellar_locus
  - name: depth_all
    analysis: depth_map
  - name: depth_bright
    analysis: depth_map
    cuts: "mag_i < 24"
  - name: gg
    analysis: shear_shear
  - name: depth_bright_again
    analysis: depth_map
    cuts: "mag_i < 24"
"""


def test_analyses_on_the_same_rows_share_a_scan(catalog: Path, tmp_path: Path) -> None:
    from skydask.run.runner import _shared_groups, validate
    from skydask.run.spec import load_spec

    path = tmp_path / "groups.yaml"
    path.write_text(GROUPS_SPEC.format(catalog=catalog))
    spec = load_spec(path)
    groups = _shared_groups(spec, list(spec.analyses), validate(spec))
    assert [[a.name for a in g] for g in groups] == [
        ["locus", "depth_all"],
        ["depth_bright", "depth_bright_again"],
        ["gg"],
    ]
