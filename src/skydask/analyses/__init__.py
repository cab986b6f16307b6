"""Analyses: pure functions from a Catalog (or image stack) to a typed result.

An analysis never opens files or starts clusters; it takes a :class:`skydask.Catalog`, runs
one-pass decomposable reductions (:mod:`.reduction`) on whatever dask scheduler is active, and
returns a result with ``.table()``, ``.plot()`` and ``.write(directory)``.
"""

from skydask.analyses.reduction import tree_reduce

__all__ = ["tree_reduce"]
