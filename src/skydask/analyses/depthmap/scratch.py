"""Work arrays reused from one partition to the next, one set per thread.

A tract partition's reduction needs about 40 MB of temporary arrays (pixel numbers, the
rows' slots, a band's sorted errors). Fresh arrays that large come from ``mmap``,
and the kernel zeroes every page on first touch: 2-4 ms per 10 MB, a tenth of the
reduction. :class:`Scratch` keeps them per thread (dask's threaded scheduler runs
partitions on a few threads) for as long as its owner, the reducer of one ``depth_map``
call, lives; pickling (the distributed scheduler) sends an empty one.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Scratch"]


class Scratch:
    """Named work arrays, grown on demand and never shared between threads.

    An array obtained with :meth:`get` stays valid until the same thread asks for the same
    name again: results must never be views of one.

    Examples
    --------
    >>> s = Scratch()
    >>> a = s.get("keys", 10, np.uint32)
    >>> len(a), a.dtype.name, s.get("keys", 4, np.uint32).base is a.base
    (10, 'uint32', True)
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def _arrays(self) -> dict[tuple[str, np.dtype[Any]], npt.NDArray[Any]]:
        arrays = getattr(self._local, "arrays", None)
        if arrays is None:
            arrays = self._local.arrays = {}
        return arrays

    def get(self, name: str, size: int, dtype: Any) -> npt.NDArray[Any]:
        """An uninitialised array of ``size`` elements of ``dtype`` (a view of a kept one)."""
        dt = np.dtype(dtype)
        arrays = self._arrays()
        held = arrays.get((name, dt))
        if held is None or len(held) < size:
            # a little room, so that slightly larger partitions do not reallocate
            held = arrays[(name, dt)] = np.empty(size + size // 16, dtype=dt)
        return held[:size]

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._local = threading.local()

    def __dask_tokenize__(self) -> str:
        return "skydask.analyses.depthmap.scratch.Scratch"
