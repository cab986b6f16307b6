"""The analyses' numba decorator: cached where it can be, compiled per process where not."""

from __future__ import annotations

import numpy as np
import pytest

from skydask.analyses.compiled import jit


def test_jit_compiles_where_numba_cannot_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no writable cache location numba raises at decoration (a read-only installation
    with a read-only home); the decorator then compiles without the cache."""
    import numba.core.caching as caching

    def total(values: np.ndarray) -> float:
        out = 0.0
        for v in values:
            out += v
        return out

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])
    with pytest.raises(RuntimeError, match="cannot cache"):
        __import__("numba").njit(cache=True)(total)
    assert jit(total)(np.arange(5.0)) == 10.0
