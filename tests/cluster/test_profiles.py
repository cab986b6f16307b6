"""Cluster profiles: shipped files validate, job scripts carry what they ask for."""

from __future__ import annotations

from pathlib import Path

import dask
import pytest

from skydask.cluster import available_profiles, job_script, load_profile
from skydask.cluster.profile import parse_duration
from skydask.cluster.slurm import slurm_arguments
from skydask.errors import SpecError


def test_shipped_profiles() -> None:
    assert {"local", "localhost-slurm", "nersc-perlmutter", "ccin2p3"} <= set(available_profiles())
    repo_dir = Path(__file__).parents[2] / "cluster_configs"
    assert {p.stem for p in repo_dir.glob("*.yaml")} == set(available_profiles())


@pytest.mark.parametrize("name", ["localhost-slurm", "nersc-perlmutter", "ccin2p3"])
def test_job_script_contains_the_profiles_directives(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRATCH", str(tmp_path))  # Perlmutter's logs go to $SCRATCH
    monkeypatch.setenv("HOME", str(tmp_path))  # and the others' to ~: nothing made outside
    profile = load_profile(name)
    script = (
        job_script(name, account="m1727")
        if profile.jobqueue.get("account", 0) is None
        else job_script(name)
    )
    jq = profile.jobqueue
    assert f"#SBATCH -p {jq['queue']}" in script
    assert f"#SBATCH --cpus-per-task={jq['cores']}" in script
    assert f"#SBATCH -t {jq['walltime']}" in script
    for directive in jq.get("job_extra_directives", []):
        assert f"#SBATCH {directive}" in script
    for line in jq.get("job_script_prologue", []):
        assert line in script
    if "account" in jq:
        assert "#SBATCH -A m1727" in script
    threads = int(jq["cores"]) // int(jq.get("processes", 1))
    assert f"export OMP_NUM_THREADS={threads}" in script
    assert f"'OMP_NUM_THREADS': {threads}" in script
    # TLS on by default, workers retire before the walltime
    assert "--protocol tls://" in script and "--tls-key" in script
    lifetime = int(parse_duration(jq["walltime"]) - parse_duration(profile.lifetime_margin))
    assert f"--lifetime {lifetime}s" in script
    assert "--lifetime-stagger" in script
    if jq.get("processes", 1) > 1:
        assert f"--nworkers {jq['processes']}" in script


def test_profile_errors_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: slurm\njobqueue: {cores: 4, memory: 8GB, cpus: 3}\n")
    with pytest.raises(SpecError, match=r"unknown jobqueue key\(s\) \['cpus'\]"):
        load_profile(bad)
    bad.write_text("kind: slurm\nworkers: 3\n")
    with pytest.raises(SpecError, match="unknown key"):
        load_profile(bad)
    bad.write_text("kind: pbs\n")
    with pytest.raises(SpecError, match="kind 'pbs'"):
        load_profile(bad)
    with pytest.raises(SpecError, match="no cluster profile 'nowhere'"):
        load_profile("nowhere")


def test_overrides() -> None:
    p = load_profile("localhost-slurm").with_overrides(
        {"jobs": 3, "walltime": "01:00:00", "omp_threads": 2}
    )
    assert (p.minimum_jobs, p.maximum_jobs, p.jobqueue["walltime"], p.omp_threads) == (
        3,
        3,
        "01:00:00",
        2,
    )
    assert "export OMP_NUM_THREADS=2" in job_script("localhost-slurm", omp_threads=2)


def test_worker_environ_reaches_the_job_script() -> None:
    # skydask.cluster.worker-environ: extra variables for every worker (here distributed's
    # allocator default, which skydask leaves out), beside the thread counts
    assert "MALLOC_TRIM_THRESHOLD_" not in job_script("localhost-slurm")
    with dask.config.set({"skydask.cluster.worker-environ": {"MALLOC_TRIM_THRESHOLD_": 65536}}):
        script = job_script("localhost-slurm", omp_threads=2)
    assert "'MALLOC_TRIM_THRESHOLD_': 65536" in script and "'OMP_NUM_THREADS': 2" in script
    bad = {"skydask.cluster.worker-environ": ["MALLOC_TRIM_THRESHOLD_"]}
    with dask.config.set(bad), pytest.raises(SpecError, match="worker-environ must be a mapping"):
        job_script("localhost-slurm")


def test_log_directory_variables_are_expanded_before_sbatch_sees_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SLURM does not expand ``$SCRATCH`` in ``#SBATCH -e``: the path is expanded on the
    submitting host, and an unset variable is an error naming it, not a directory literally
    called ``$SCRATCH`` in the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCRATCH", str(tmp_path / "scratch"))
    script = job_script("nersc-perlmutter", account="m1727")
    logs = tmp_path / "scratch" / "skydask" / "dask-logs"
    assert f"#SBATCH -e {logs}/" in script and "$SCRATCH" not in script
    monkeypatch.delenv("SCRATCH")
    # starting the cluster (these arguments) stops, naming the setting and the variable
    with pytest.raises(SpecError, match=r"log_directory '\$SCRATCH/skydask/dask-logs'"):
        slurm_arguments(load_profile("nersc-perlmutter"))
    # showing the script leaves the log lines out (the CLI says why)
    assert "#SBATCH -e" not in job_script("nersc-perlmutter", account="m1727")
    assert not (tmp_path / "$SCRATCH").exists()
