"""A LocalCluster on 127.0.0.1, sized to the machine, for notebooks, the demo and tests."""

from __future__ import annotations

import logging
import os
from typing import Any

import dask.config
from distributed import LocalCluster

from skydask.cluster.housekeeping import housekeeping_config
from skydask.cluster.profile import Profile
from skydask.cluster.threads import pre_spawn_environ

__all__ = ["start_local_cluster"]

log = logging.getLogger(__name__)


def start_local_cluster(profile: Profile) -> LocalCluster:
    """Start the LocalCluster a ``local`` profile describes.

    One single-threaded worker process per core by default (Parquet decoding and numpy release
    the GIL only partly, so processes scale better than threads); scheduler, workers and
    dashboard listen on 127.0.0.1 only.
    """
    options: dict[str, Any] = {
        "n_workers": os.cpu_count() or 1,
        "threads_per_worker": 1,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": profile.dashboard_address,
        # the scheduler's and workers' INFO chatter drowns a notebook's or terminal's output
        "silence_logs": logging.WARNING,
    }
    options.update(profile.local)
    threads = profile.omp_threads or int(options["threads_per_worker"])
    settings = {
        "distributed.nanny.pre-spawn-environ": pre_spawn_environ(threads),
        **housekeeping_config(),
    }
    # the scheduler and nannies read these as they start; each nanny passes its configuration
    # to the worker process it spawns
    with dask.config.set(settings):
        cluster = LocalCluster(**options)
    log.info("LocalCluster with %d workers at %s", options["n_workers"], cluster.scheduler_address)
    return cluster
