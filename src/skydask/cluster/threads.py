"""OpenMP and BLAS threads per worker: each worker gets its share of the cores, no more.

distributed's nanny sets the variables below in every worker process it starts, from the
config key ``distributed.nanny.pre-spawn-environ`` (its default is 1 thread each). skydask sets
them to the worker's share of its job's cores, so an OpenMP library (TreeCorr, numexpr, BLAS)
neither oversubscribes the node nor sits on one core while the others idle.
"""

from __future__ import annotations

from typing import Any

__all__ = ["THREAD_VARIABLES", "pre_spawn_environ"]

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_MAX_THREADS",
)


def pre_spawn_environ(threads: int) -> dict[str, Any]:
    """The nanny's pre-spawn environment with ``threads`` OpenMP/BLAS threads per worker.

    Examples
    --------
    >>> pre_spawn_environ(4)["OMP_NUM_THREADS"]
    4
    """
    if threads < 1:
        raise ValueError(f"threads per worker must be at least 1, got {threads}")
    env: dict[str, Any] = {"MALLOC_TRIM_THRESHOLD_": 65536}
    env.update({name: threads for name in THREAD_VARIABLES})
    return env
