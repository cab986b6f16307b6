"""skydask report: a self-contained HTML page, rendered in a real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from runner_testdata import spec_text

from skydask.cli import main
from skydask.errors import SkydaskError
from skydask.run import run
from skydask.run.report import render_report
from skydask.synth import generate_object_catalog

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("report")
    catalog = base / "synth"
    generate_object_catalog(catalog, rows=100_000, seed=9, footprint=(60.0, 63.0, -36.0, -34.0))
    spec = base / "suite.yaml"
    spec.write_text(spec_text(catalog))
    a = run(spec, out=base / "run_a").directory
    spec.write_text(spec_text(catalog, w_min=39.0))  # fails a threshold
    b = run(spec, out=base / "run_b").directory
    return a, b


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("SKYDASK_REQUIRE_BROWSER") == "1":
            pytest.fail(
                "chromium is required (SKYDASK_REQUIRE_BROWSER=1): run scripts/install-browser.sh"
            )
        pytest.skip("no chromium here: scripts/install-browser.sh installs it")
    return path


def test_report_contents(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    text = render_report([a, b])
    assert text.count("data:image/png;base64,") >= 2 * len(list(a.rglob("*.png")))
    assert "<details><summary>Provenance</summary>" in text
    assert "Comparison: run_a (A) and run_b (B)" in text
    assert 'class="fail">fail</td>' in text and 'class="pass">pass</td>' in text
    w_a = json.loads((a / "metrics.json").read_text())["analyses"]["locus"]["w_sigmaMAD"]["value"]
    assert f"{w_a:.6g}" in text
    with pytest.raises(SkydaskError, match="not a finished skydask run"):
        render_report([a.parent])


def test_report_renders_in_headless_chromium(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    browser = chromium()
    a, b = two_runs
    html_file = tmp_path / "report.html"
    assert main(["report", str(a), str(b), "--out", str(html_file)]) == 0
    profile = tmp_path / "profile"
    common = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run(
        [*common, "--dump-dom", html_file.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    # the browser parsed the page and laid out our content
    assert "skydask validation report" in dom.stdout
    assert dom.stdout.count("<img") >= 2
    shot = tmp_path / "report.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1280,2400", html_file.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 20_000
    assert "Uncaught" not in dom.stderr
