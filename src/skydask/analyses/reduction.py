"""One-pass, decomposable reductions over a catalogue's partitions.

An analysis describes its reduction as two plain functions: ``partial(frame) -> P`` computes a
small summary of one partition (partial sums, histograms, counts), and ``combine([P, ...]) -> P``
merges summaries. :func:`tree_reduce` applies ``partial`` to every partition of a dask
DataFrame and merges the results in a tree of fan-in ``split_every``, so no worker ever holds
more than ``split_every`` summaries and the rows themselves never leave the workers. It runs on
whatever scheduler is active (threads, processes, or a distributed client), and shows a
progress bar when asked.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import dask
from dask.delayed import Delayed

from skydask.scheduling import active_client, compute, persist

if TYPE_CHECKING:  # not at run time: a worker running a reduction's tasks needs neither
    import dask.dataframe as dd
    import pandas as pd

__all__ = ["compute", "parallel_slots", "persist", "reduce_tree", "tree_reduce"]

log = logging.getLogger(__name__)

P = TypeVar("P")


def reduce_tree(
    items: Sequence[Delayed], combine: Callable[[list[Any]], Any], split_every: int = 8
) -> Delayed:
    """The lazy tree that merges delayed summaries with ``combine``, ``split_every`` at a time.

    >>> import dask
    >>> parts = [dask.delayed(v) for v in range(10)]
    >>> reduce_tree(parts, sum, split_every=3).compute()
    45
    """
    if split_every < 2:
        raise ValueError(f"split_every must be at least 2, got {split_every}")
    level = list(items)
    combine_task = dask.delayed(combine, pure=True)
    if not level:  # nothing to merge: combine's own answer for no summaries
        return combine_task([])
    while len(level) > 1:
        level = [
            combine_task(level[i : i + split_every]) for i in range(0, len(level), split_every)
        ]
    return level[0]


def tree_reduce(
    frame: dd.DataFrame,
    partial: Callable[[pd.DataFrame], P],
    combine: Callable[[list[P]], P],
    *,
    split_every: int = 8,
    progress: bool = False,
) -> P:
    """Reduce a dask DataFrame with ``partial`` per partition and ``combine`` in a tree.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        The (lazy) rows to reduce, e.g. ``catalog.select(...).where(...).to_dask()``.
    partial : callable
        Summary of one pandas partition. Must give a valid summary for an empty partition.
    combine : callable
        Merges a list of summaries into one; must be associative.
    split_every : int
        Fan-in of the tree.
    progress : bool
        Show a progress bar (``distributed.progress`` with a client, dask's otherwise).

    Examples
    --------
    >>> import pandas as pd, dask.dataframe as dd
    >>> frame = dd.from_pandas(pd.DataFrame({"x": range(10)}), npartitions=4)
    >>> tree_reduce(frame, lambda df: int(df["x"].sum()), sum, split_every=2)
    45
    """
    if split_every < 2:
        raise ValueError(f"split_every must be at least 2, got {split_every}")
    partial_task = dask.delayed(partial, pure=True)
    parts = [partial_task(part) for part in frame.to_delayed()]
    (result,) = compute(reduce_tree(parts, combine, split_every), progress=progress)
    return result


def parallel_slots() -> int:
    """How many tasks the active scheduler runs at once (its threads, over all workers).

    A distributed client's total worker threads; else dask's ``num_workers`` setting or the
    machine's CPU count (what the local threaded scheduler uses). Analyses that make several
    passes over a small, persisted intermediate coalesce it into this many partitions: a pass
    then costs a few tasks instead of one per catalogue file, and every slot still has work.

    Examples
    --------
    >>> import dask
    >>> with dask.config.set(num_workers=3):
    ...     parallel_slots()
    3
    """
    client = active_client()
    if client is None:
        configured = dask.config.get("num_workers", None)
        return max(1, int(configured) if configured else os.cpu_count() or 1)
    return max(1, sum(client.nthreads().values()))
