"""Running dask work on whatever scheduler is active, with a progress bar when asked.

Every part of skydask that computes (the analyses, the synthetic generator, the run records)
asks the same two questions: is a distributed client active, and how to compute or persist
some collections with a progress bar on it or on the local scheduler. This module is the one
answer, with no skydask import, so the data layer and the generator can use it without
loading the analyses.
"""

from __future__ import annotations

from typing import Any

import dask

__all__ = ["active_client", "compute", "persist"]


def active_client() -> Any:
    """The active distributed client, or None (no client, or distributed not installed).

    >>> active_client() is None
    True
    """
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def compute(*collections: Any, progress: bool = False) -> tuple[Any, ...]:
    """``dask.compute(*collections)``, with a progress bar when asked.

    The bar is ``distributed.progress`` when a distributed client is active, dask's
    ``ProgressBar`` for the local schedulers. On a client, a failure or an interrupt cancels
    the other tasks, so none keeps running (or writing) after the call has failed.

    >>> compute(dask.delayed(sum)([1, 2]), dask.delayed(len)("abc"))
    (3, 3)
    """
    return _run(collections, progress, keep=False)


def persist(*collections: Any, progress: bool = False) -> tuple[Any, ...]:
    """``dask.persist(*collections)`` in one computation, with a progress bar when asked.

    With a distributed client the results stay on the workers (the collections come back
    backed by futures); with a local scheduler they are computed into this process.
    """
    return _run(collections, progress, keep=True)


def _run(collections: tuple[Any, ...], progress: bool, keep: bool) -> tuple[Any, ...]:
    client = active_client()
    if keep:
        # dask.persist goes through the active client by itself, and accepts collections
        # nested in lists (an analysis may keep a list of delayed partitions)
        if progress and client is None:
            from dask.diagnostics import ProgressBar

            with ProgressBar():
                return tuple(dask.persist(*collections))
        kept = tuple(dask.persist(*collections))
        if progress:
            from distributed import futures_of
            from distributed import progress as distributed_progress

            distributed_progress(futures_of(kept))
        return kept
    if client is None:
        if not progress:
            return tuple(dask.compute(*collections))
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return tuple(dask.compute(*collections))
    futures = client.compute(list(collections))
    try:
        if progress:
            from distributed import progress as distributed_progress

            distributed_progress(futures)
        return tuple(client.gather(futures))
    except BaseException:
        client.cancel(futures)  # no task keeps running (or writing) after the call failed
        raise
