"""LocalCluster: same numbers as the sync scheduler, survives a worker killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import dask
import pytest
from cluster_testdata import CUT, scan

import skydask
from skydask.cluster import connect


def test_local_cluster_gives_identical_numbers(small_catalog: Path, reference: tuple) -> None:
    # read first: a nanny running in this process puts its variables in its environment too
    inherited = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    with connect("local", n_workers=2, dashboard_address=None) as client:
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        env = client.run(lambda: os.environ.get("OMP_NUM_THREADS"))
        assert set(env.values()) == {"1"}
        # no glibc trim threshold: it would freeze the mmap threshold (see cluster.threads)
        trim = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        assert set(trim.values()) == {inherited}
        assert scan(small_catalog) == reference
    assert client.status == "closed"


@pytest.mark.slow
def test_worker_killed_mid_computation(small_catalog: Path, reference: tuple) -> None:
    with connect("local", n_workers=2, dashboard_address=None) as client:
        df = skydask.open_catalog(small_catalog).select(["g-r", "r-i"]).where(CUT).to_dask()
        # a lambda, so that it travels by value: workers cannot import this test module
        df = df.map_partitions(lambda frame: (time.sleep(0.4), frame)[1], meta=df._meta)
        futures = client.compute([df.shape[0], df["g-r"].mean(), df["r-i"].mean()])
        time.sleep(1.0)  # some partitions done, some running
        assert not all(f.done() for f in futures)
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)
        n, gr, ri = client.gather(futures)
        assert (int(n), float(gr), float(ri)) == reference
        # the nanny restarted the worker
        client.wait_for_workers(2, timeout=60)
        assert victim not in client.run(os.getpid).values()
    with dask.config.set(scheduler="sync"):
        assert scan(small_catalog) == reference


def test_join_a_running_scheduler_through_its_file(
    tmp_path: Path, small_catalog: Path, reference: tuple
) -> None:
    from distributed import LocalCluster

    scheduler_file = tmp_path / "scheduler.json"
    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"scheduler_file": str(scheduler_file)},
    ) as cluster:
        with connect(f"scheduler-file:{scheduler_file}") as client:
            assert client.scheduler.address == cluster.scheduler_address
            assert scan(small_catalog) == reference
        # closing the joining client leaves the running cluster alone
        assert cluster.status.name == "running"
