"""Uniform random points inside a footprint given as a healsparse map, never all in memory.

The footprint is a :class:`healsparse.HealSparseMap`: a boolean map (its True pixels, e.g. the
``mask`` of a depth-map result) or any other map (its valid pixels, e.g. a depth map). Each
covered coverage pixel is drawn on its own, from ``numpy.random.default_rng([seed, pixel])``:

* the number of points is Poisson with mean ``n_per_arcmin2`` times the area of the
  footprint's pixels inside it;
* each point falls in one of those (equal-area) pixels at random, then at a random position
  inside it: the centre of a random sub-pixel at ``nside = 2**23`` (0.025 arcsec), far below
  any separation a two-point function uses.

So the points are the same whatever the partitioning. The result is a lazy dask DataFrame
(columns ``ra``, ``dec`` in degrees, float64), one partition per group of coverage pixels;
the two-point analyses take it as ``randoms=`` directly.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import dask
import numpy as np
import pandas as pd

from skydask.errors import SpecError

__all__ = ["randoms"]

_NSIDE_FINE = 2**23
_ARCMIN2_PER_SR = (180.0 * 60.0 / math.pi) ** 2


def _draw(footprint: Any, covpix: list[int], n_per_arcmin2: float, seed: int) -> pd.DataFrame:
    import hpgeom

    nside = int(footprint.nside_sparse)
    pixel_arcmin2 = hpgeom.nside_to_pixel_area(nside, degrees=False) * _ARCMIN2_PER_SR
    shift = 2 * (int(math.log2(_NSIDE_FINE)) - int(math.log2(nside)))
    ras, decs = [], []
    for c in covpix:
        valid = np.asarray(footprint.valid_pixels_single_covpix(c), dtype=np.int64)
        rng = np.random.default_rng([seed, int(c)])
        n = int(rng.poisson(n_per_arcmin2 * pixel_arcmin2 * len(valid))) if len(valid) else 0
        if n == 0:
            continue
        pix = valid[rng.integers(0, len(valid), n)]
        fine = (pix << shift) + rng.integers(0, 1 << shift, n, dtype=np.int64)
        ra, dec = hpgeom.pixel_to_angle(_NSIDE_FINE, fine, nest=True, lonlat=True)
        ras.append(ra)
        decs.append(dec)
    if not ras:
        return pd.DataFrame({"ra": np.empty(0), "dec": np.empty(0)})
    return pd.DataFrame({"ra": np.concatenate(ras), "dec": np.concatenate(decs)})


def randoms(
    footprint: Any,
    n_per_arcmin2: float,
    seed: int,
    *,
    rows_per_partition: int = 2_000_000,
) -> Any:
    """Uniform random points inside ``footprint`` (see the module docstring).

    Parameters
    ----------
    footprint : healsparse.HealSparseMap
        Boolean map (True pixels) or any other map (valid pixels).
    n_per_arcmin2 : float
        Mean number of points per arcmin^2.
    seed : int
        Seed; the points depend on it and on the footprint only.
    rows_per_partition : int
        About this many points per partition (at most; coverage pixels are never split).

    Returns
    -------
    dask.dataframe.DataFrame
        Columns ``ra``, ``dec`` (degrees).

    Examples
    --------
    >>> import healsparse, hpgeom
    >>> m = healsparse.HealSparseMap.make_empty(32, 1024, np.bool_)
    >>> m[hpgeom.query_circle(1024, 60.0, -35.0, 0.5, nest=True)] = True
    >>> r = randoms(m, 1.0, seed=3)
    >>> n = len(r.compute())
    >>> area = m.get_valid_area(degrees=True) * 3600
    >>> bool(abs(n - area) < 4 * area**0.5)
    True
    """
    import dask.dataframe as dd
    import healsparse

    if not isinstance(footprint, healsparse.HealSparseMap):
        raise SpecError(
            f"randoms() needs a healsparse.HealSparseMap footprint (a boolean mask or a depth "
            f"map); got {type(footprint).__name__}"
        )
    if (
        isinstance(n_per_arcmin2, bool)
        or not isinstance(n_per_arcmin2, int | float)
        or not (math.isfinite(n_per_arcmin2) and n_per_arcmin2 > 0)
    ):
        raise SpecError(f"parameter 'n_per_arcmin2' must be a number > 0; got {n_per_arcmin2!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError(f"parameter 'seed' must be a non-negative integer; got {seed!r}")
    covered = np.flatnonzero(footprint.coverage_mask)
    if len(covered) == 0:
        raise SpecError("the footprint map has no valid pixel: no randoms to draw")
    import hpgeom

    # an upper bound of the points per coverage pixel (a full one), to size the partitions
    cov_arcmin2 = (
        hpgeom.nside_to_pixel_area(footprint.nside_coverage, degrees=False) * _ARCMIN2_PER_SR
    )
    per_partition = max(1, int(rows_per_partition // max(1.0, n_per_arcmin2 * cov_arcmin2)))
    groups = [covered[i : i + per_partition].tolist()
              for i in range(0, len(covered), per_partition)]  # fmt: skip
    meta = pd.DataFrame({"ra": pd.Series(dtype=np.float64), "dec": pd.Series(dtype=np.float64)})
    # the map is one key of the graph, sent once to each worker that needs it, not per task
    fp = dask.delayed(footprint, pure=False, name=f"randoms-footprint-{uuid.uuid4().hex}")
    draw = dask.delayed(_draw, pure=True)
    parts = [draw(fp, g, float(n_per_arcmin2), int(seed)) for g in groups]
    return dd.from_delayed(parts, meta=meta, verify_meta=False)
