"""What a run records about itself: code, inputs, cluster, times."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from skydask.scheduling import active_client

__all__ = ["cluster_description", "code_version", "package_versions"]

_PACKAGES = (
    "skydask", "dask", "distributed", "dask-jobqueue", "numpy", "pandas", "pyarrow", "astropy",
    "treecorr", "healsparse", "hpgeom", "xarray", "scipy",
)  # fmt: skip


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def code_version() -> dict[str, Any]:
    """The git commit of the skydask source in use, when it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if commit.returncode != 0:
            return {"git_commit": None}
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"git_commit": commit.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None}


def cluster_description() -> dict[str, Any]:
    """The scheduler the run used: a distributed cluster's size, or the local scheduler."""
    client = active_client()
    if client is None:
        import dask

        scheduler = dask.config.get("scheduler", "threads")
        return {"kind": f"local {scheduler} scheduler", "threads": os.cpu_count()}
    info = client.scheduler_info()
    workers = info.get("workers", {})
    return {
        "kind": "distributed",
        "scheduler": client.scheduler.address if client.scheduler else None,
        "workers": len(workers),
        "threads": sum(w.get("nthreads", 0) for w in workers.values()),
        "profile": getattr(getattr(client, "cluster_profile", None), "name", None),
    }
