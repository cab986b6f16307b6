"""The foundation computation the cluster tests run everywhere, and its cut."""

from __future__ import annotations

from pathlib import Path

import dask

import skydask

CUT = "extendedness == 0 & mag_r < 23"


def scan(path: Path) -> tuple[int, float, float]:
    """The foundation computation: count and mean colours after a cut."""
    df = skydask.open_catalog(path).select(["g-r", "r-i"]).where(CUT).to_dask()
    n, gr, ri = dask.compute(df.shape[0], df["g-r"].mean(), df["r-i"].mean())
    return int(n), float(gr), float(ri)
