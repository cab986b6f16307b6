"""SLURM through dask-jobqueue, against the real single-node SLURM of scripts/slurm-up.sh."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
from cluster_testdata import CUT, scan
from distributed import Client
from distributed.security import Security

import skydask
from skydask.cluster import connect

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm")]


def _job_ids(client: Client) -> dict[str, str | None]:
    return client.run(lambda: os.environ.get("SLURM_JOB_ID"))


def test_same_numbers_on_slurm_workers_inside_jobs(small_catalog: Path, reference: tuple) -> None:
    with connect("localhost-slurm") as client:
        client.wait_for_workers(2, timeout=120)
        ids = _job_ids(client)
        assert len(ids) == 2 and all(ids.values()) and len(set(ids.values())) == 2
        queue = subprocess.run(
            ["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True
        )
        assert set(ids.values()) <= set(queue.stdout.split())
        # the job script's exports gave the workers skydask.cluster.housekeeping's timers
        ticks = client.run(lambda dask_worker: dask_worker.periodic_callbacks["tick"].callback_time)
        assert set(ticks.values()) == {100}
        assert scan(small_catalog) == reference
    # closing the client cancelled the jobs
    deadline = time.time() + 30
    while time.time() < deadline:
        queue = subprocess.run(
            ["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True
        )
        if not set(ids.values()) & set(queue.stdout.split()):
            break
        time.sleep(1)
    else:
        pytest.fail(f"jobs {ids} still queued after the client closed")


@pytest.mark.slow
def test_scancel_mid_computation_is_survived_and_replaced(
    small_catalog: Path, reference: tuple
) -> None:
    with connect("localhost-slurm") as client:
        client.wait_for_workers(2, timeout=120)
        before = _job_ids(client)
        df = skydask.open_catalog(small_catalog).select(["g-r", "r-i"]).where(CUT).to_dask()
        # a lambda, so that it travels by value: workers cannot import this test module
        df = df.map_partitions(lambda frame: (time.sleep(0.5), frame)[1], meta=df._meta)
        futures = client.compute([df.shape[0], df["g-r"].mean(), df["r-i"].mean()])
        time.sleep(1.5)
        assert not all(f.done() for f in futures)
        victim = sorted(before.values())[0]
        subprocess.run(["scancel", str(victim)], check=True)
        n, gr, ri = client.gather(futures)
        assert (int(n), float(gr), float(ri)) == reference
        # adapt submits a replacement job, which joins
        deadline = time.time() + 120
        while time.time() < deadline:
            now = _job_ids(client)
            if len(now) == 2 and victim not in now.values():
                break
            time.sleep(1)
        else:
            pytest.fail(f"no replacement joined; workers now in jobs {_job_ids(client)}")
        assert set(now.values()) - set(before.values())


def test_tls_refuses_clients_without_the_credentials() -> None:
    with connect("localhost-slurm", jobs=1) as client:
        address = client.scheduler.address
        assert address.startswith("tls://127.0.0.1:")
        tls_dir = Path(client.owned_cluster.shared_temp_directory)
        assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((tls_dir / "key.pem").stat().st_mode) == 0o600
        with pytest.raises((OSError, TimeoutError)):
            Client(address.replace("tls://", "tcp://"), timeout="3s")
        with pytest.raises((OSError, TimeoutError)):
            Client(address, security=Security.temporary(), timeout="3s")
        # the legitimate client still works
        assert client.submit(lambda: 1 + 1).result() == 2
    assert not tls_dir.exists()
