"""``connect()``: one call that gives a distributed Client, on a laptop or on SLURM."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distributed import Client

from skydask.cluster.local import start_local_cluster
from skydask.cluster.profile import Profile, load_profile
from skydask.cluster.slurm import render_job_script, start_slurm_cluster

__all__ = ["SkydaskClient", "connect"]

log = logging.getLogger(__name__)

SCHEDULER_FILE_PREFIX = "scheduler-file:"


class SkydaskClient(Client):
    """A Client that owns the cluster it was started with: closing it closes the cluster.

    ``client.cluster_profile`` is the profile it came from; ``client.owned_cluster`` the
    cluster object (None when joining a running scheduler).
    """

    def __init__(
        self,
        address: Any,
        *,
        profile: Profile | None,
        cluster: Any = None,
        on_close: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(address, **kwargs)
        self.cluster_profile = profile
        self.owned_cluster = cluster
        self._on_close = on_close

    def close(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().close(*args, **kwargs)
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()


def connect(profile: str | Path = "local", **overrides: Any) -> SkydaskClient:
    """Start (or join) a Dask cluster and return a client for it.

    Parameters
    ----------
    profile : str or path
        ``"local"``; the name of a profile in ``cluster_configs/`` (``"nersc-perlmutter"``,
        ``"ccin2p3"``, ``"localhost-slurm"``); a path to a profile YAML; or
        ``"scheduler-file:PATH"`` to join a running scheduler (e.g. one started by dask-mpi).
    **overrides
        Profile keys (``jobs``, ``minimum_jobs``, ``omp_threads``, ``security`` ...) or, beyond
        those, dask-jobqueue / LocalCluster arguments (``cores``, ``walltime``, ``n_workers``).

    Use it as a context manager; leaving the block closes the client and its cluster::

        with skydask.connect("localhost-slurm", jobs=4) as client:
            ...
    """
    text = str(profile)
    if text.startswith(SCHEDULER_FILE_PREFIX):
        path = Path(text[len(SCHEDULER_FILE_PREFIX) :]).expanduser()
        return SkydaskClient(None, profile=None, scheduler_file=str(path), **overrides)
    prof = load_profile(profile).with_overrides(overrides) if overrides else load_profile(profile)
    if prof.kind == "local":
        local = start_local_cluster(prof)

        def close_local() -> None:
            local.close()

        return SkydaskClient(local, profile=prof, cluster=local, on_close=close_local)
    setup = start_slurm_cluster(prof)
    try:
        return SkydaskClient(
            setup.cluster,
            profile=prof,
            cluster=setup.cluster,
            on_close=setup.close,
            security=setup.cluster.security,
        )
    except Exception:
        setup.close()
        raise


def job_script(profile: str | Path, **overrides: Any) -> str:
    """The job script a SLURM profile would submit, without submitting anything."""
    prof = load_profile(profile).with_overrides(overrides) if overrides else load_profile(profile)
    return render_job_script(prof)
