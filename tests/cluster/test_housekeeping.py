"""distributed's timers on skydask's clusters: parsed from skydask.cluster.housekeeping, given
to the scheduler and the workers it starts, and to SLURM jobs as environment variables."""

from __future__ import annotations

import dask
import pytest

import skydask  # noqa: F401  (registers skydask.yaml)
from skydask.cluster import connect
from skydask.cluster.connect import job_script
from skydask.cluster.housekeeping import housekeeping_config, housekeeping_environ
from skydask.errors import SpecError


def test_defaults_and_overrides() -> None:
    assert housekeeping_config() == {
        "distributed.admin.tick.interval": "100ms",
        "distributed.worker.memory.monitor-interval": "500ms",
        "distributed.admin.system-monitor.interval": "1s",
    }
    with dask.config.set({"skydask.cluster.housekeeping.memory-monitor-interval": "50ms"}):
        assert housekeeping_config()["distributed.worker.memory.monitor-interval"] == "50ms"
        assert housekeeping_environ()["DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL"] == (
            "50ms"
        )
    with dask.config.set({"skydask.cluster.housekeeping": None}):
        assert housekeeping_config() == {} and housekeeping_environ() == {}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"tick": "1s"}, "unknown setting 'tick'; expected one of"),
        ({"tick-interval": "soon"}, r"tick-interval must be a positive duration.*'soon'"),
        ({"tick-interval": 0}, "must be a positive duration"),
        (["tick-interval"], "must be a mapping"),
    ],
)
def test_bad_settings_name_the_setting(setting: object, message: str) -> None:
    with (
        dask.config.set({"skydask.cluster.housekeeping": setting}),
        pytest.raises(SpecError, match=message),
    ):
        housekeeping_config()


def test_the_job_script_exports_them() -> None:
    script = job_script("localhost-slurm")
    assert "export DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=100ms" in script
    assert "export DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL=1s" in script
    with dask.config.set({"skydask.cluster.housekeeping": None}):
        assert "DASK_DISTRIBUTED__ADMIN" not in job_script("localhost-slurm")


def test_a_local_cluster_runs_with_them() -> None:
    # defined here, so that they travel by value: workers cannot import this test module
    def _worker_timers(dask_worker: object) -> dict[str, float]:
        callbacks = dask_worker.periodic_callbacks  # type: ignore[attr-defined]
        return {k: callbacks[k].callback_time for k in ("tick", "memory_monitor", "monitor")}

    def _scheduler_timers(dask_scheduler: object) -> dict[str, float]:
        callbacks = dask_scheduler.periodic_callbacks  # type: ignore[attr-defined]
        return {k: callbacks[k].callback_time for k in ("tick", "monitor")}

    # callback_time is in milliseconds
    with connect("local", n_workers=1, dashboard_address=None) as client:
        assert list(client.run(_worker_timers).values()) == [
            {"tick": 100, "memory_monitor": 500, "monitor": 1000}
        ]
        assert client.run_on_scheduler(_scheduler_timers) == {"tick": 100, "monitor": 1000}
    with (
        dask.config.set({"skydask.cluster.housekeeping": None}),
        connect("local", n_workers=1, dashboard_address=None) as client,
    ):
        # distributed's own defaults
        assert list(client.run(_worker_timers).values()) == [
            {"tick": 20, "memory_monitor": 100, "monitor": 500}
        ]
