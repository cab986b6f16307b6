"""A LocalCluster on 127.0.0.1, sized to the machine, for notebooks, the demo and tests."""

from __future__ import annotations

import logging
import os
from typing import Any

from distributed import Client

from skydask.errors import SpecError

__all__ = ["connect"]

log = logging.getLogger(__name__)


def connect(profile: str = "local", **overrides: Any) -> Client:
    """Start a cluster and return a client attached to it (closing the client closes it).

    Parameters
    ----------
    profile : str
        ``"local"``: a LocalCluster listening on 127.0.0.1 only, one single-threaded worker
        process per core (Parquet decoding and numpy release the GIL only partly, so processes
        scale better than threads), dashboard on 127.0.0.1.
    **overrides
        Passed to :class:`distributed.LocalCluster` (``n_workers``, ``threads_per_worker``,
        ``memory_limit``, ``dashboard_address`` ...).
    """
    if profile != "local":
        raise SpecError(
            f"cluster profile {profile!r} is not available yet: "
            f"only 'local' is implemented in this "
            f"version (SLURM profiles are tracked in the cluster issue)"
        )
    cores = os.cpu_count() or 1
    options: dict[str, Any] = {
        "n_workers": cores,
        "threads_per_worker": 1,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:8787",
        # the scheduler's and workers' INFO chatter drowns a notebook's or terminal's output
        "silence_logs": logging.WARNING,
    }
    options.update(overrides)
    # Client(**cluster_kwargs) starts a LocalCluster that the client owns: closing the client
    # (or leaving its ``with`` block) shuts the cluster down too.
    client = Client(**options)
    log.info(
        "LocalCluster with %d workers, dashboard %s", options["n_workers"], client.dashboard_link
    )
    return client
