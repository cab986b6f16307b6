"""Compiled loops for the analyses: numba's ``njit`` as skydask uses it.

An analysis compiles a loop where numpy would make several passes over the same values (each
with a temporary array) or needs a sort. Every kernel releases the GIL (``nogil``), so that
dask's threads run two partitions at once, and is cached on disk (``cache``): numba compiles
it once per installation (a few tenths of a second per signature) and later processes, the
cluster's workers included, load it. Each process still pays about 0.9 s once, on the
first call: importing numba (0.37 s), the kernels' module (0.13 s) and LLVM's start with the
first kernel loaded (0.37 s); later kernels load in a few milliseconds. The price in memory:
a process that loads a kernel holds about 95 MB more (numba's compiler and LLVM, private to
each process), so only the modules that need kernels import this one (the depth map's
:mod:`.depthmap.kernels` and the stellar locus' :mod:`.locus.kernels`), never ``import
skydask``.

Without a writable cache location (a read-only installation run with a read-only home, as
in some containers) numba refuses to cache at decoration; the kernels then compile in each
process instead of failing to import.
"""

from __future__ import annotations

from typing import Any

import numba

__all__ = ["jit"]


def jit(function: Any) -> Any:
    """``numba.njit(nogil=True, cache=True)``, or without the cache where numba has none."""
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(function)
