"""Fixtures for the cluster tests: a small synthetic catalogue and the localhost SLURM."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import dask
import pytest
from cluster_testdata import scan

from skydask.synth import generate_object_catalog


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cluster") / "synth"
    generate_object_catalog(path, rows=60_000, seed=11, footprint=(60.0, 66.0, -36.0, -32.0))
    return path


@pytest.fixture(scope="session")
def reference(small_catalog: Path) -> tuple[int, float, float]:
    with dask.config.set(scheduler="sync"):
        return scan(small_catalog)


def slurm_available() -> bool:
    if shutil.which("sinfo") is None:
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, check=False)
    return out.returncode == 0 and any(
        s.startswith(("idle", "mixed", "alloc")) for s in out.stdout.split()
    )


@pytest.fixture(scope="session")
def slurm() -> None:
    """Skip without a SLURM, unless SKYDASK_REQUIRE_SLURM=1 (CI), where it is a failure."""
    if slurm_available():
        return
    if os.environ.get("SKYDASK_REQUIRE_SLURM") == "1":
        pytest.fail("SLURM is required (SKYDASK_REQUIRE_SLURM=1) but sinfo shows no usable node")
    pytest.skip("no SLURM here: run scripts/slurm-up.sh (CI does)")
