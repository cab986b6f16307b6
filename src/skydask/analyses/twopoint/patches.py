"""Sky patches: k-means centres, each row's patch, and the rows regrouped by patch.

1. :func:`kmeans_centers` runs TreeCorr's k-means on a subsample (every ``every_nth`` object of
   the patch-defining sample), in one task. All catalogues of a measurement share the centres,
   so patch ``k`` is the same piece of sky for sources, lenses and randoms.
2. :func:`prepare_partition` converts a partition (see :mod:`.samples`) and gives each row its
   patch (TreeCorr's own assignment to the nearest centre, exactly what ``Catalog(...,
   patch_centers=...)`` does) and its position in the input (``_row``).
3. :func:`shuffle_by_patch` is the one shuffle of the two-point analyses: it regroups the rows
   so that partition ``k`` holds patch ``k`` and nothing else, in input order. The result is
   persisted once and every pair task then reads only its two patches: no worker ever holds
   the whole catalogue.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from skydask.analyses.twopoint.samples import Calibration, convert
from skydask.errors import SpecError

__all__ = ["kmeans_centers", "prepare_partition", "shuffle_by_patch"]

log = logging.getLogger(__name__)

PATCH = "patch"
ROW = "_row"
# a partition holds fewer than 2**32 rows; the partition number takes the high bits
_ROW_BITS = 32


def kmeans_centers(
    ra: NDArray[np.float64], dec: NDArray[np.float64], npatch: int, seed: int
) -> NDArray[np.float64]:
    """Patch centres (unit vectors, shape ``(npatch, 3)``) from TreeCorr's k-means.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> c = kmeans_centers(rng.uniform(10, 12, 5000), rng.uniform(-1, 1, 5000), 4, seed=1)
    >>> c.shape, bool(np.allclose(np.linalg.norm(c, axis=1), 1.0, atol=0.01))
    ((4, 3), True)
    """
    import treecorr

    if len(ra) < npatch:
        raise SpecError(
            f"cannot make npatch={npatch} patches from a subsample of {len(ra)} objects; "
            "lower 'npatch' or 'every_nth'"
        )
    cat = treecorr.Catalog(
        ra=np.asarray(ra, dtype=np.float64),
        dec=np.asarray(dec, dtype=np.float64),
        ra_units="deg",
        dec_units="deg",
        npatch=npatch,
        rng=np.random.default_rng(seed),
    )
    centers: NDArray[np.float64] = np.asarray(cat.patch_centers, dtype=np.float64)
    return centers


def assign(
    ra: NDArray[np.float64], dec: NDArray[np.float64], centers: NDArray[np.float64]
) -> NDArray[np.int64]:
    """Patch index of each position: TreeCorr's nearest-centre assignment."""
    import treecorr

    if len(ra) == 0:
        return np.empty(0, dtype=np.int64)
    cat = treecorr.Catalog(ra=ra, dec=dec, ra_units="deg", dec_units="deg", patch_centers=centers)
    return np.asarray(cat.patch, dtype=np.int64)


def prepare_partition(
    frame: pd.DataFrame,
    columns: list[str],
    role: str,
    calibration: Calibration | None,
    inverse_variance: bool,
    drop_nonfinite: bool,
    centers: NDArray[np.float64],
    partition_info: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Convert one partition and add its rows' ``patch`` and ``_row`` (input order)."""
    out = convert(frame, columns, role, calibration, inverse_variance, drop_nonfinite)
    number = int(partition_info["number"]) if partition_info else 0
    out[PATCH] = assign(out["ra"].to_numpy(), out["dec"].to_numpy(), centers)
    out[ROW] = (np.int64(number) << _ROW_BITS) + np.arange(len(out), dtype=np.int64)
    return out


def _in_input_order(part: pd.DataFrame) -> pd.DataFrame:
    return part.sort_values(ROW, kind="stable").reset_index(drop=True)


def shuffle_by_patch(frame: Any, npatch: int) -> Any:
    """THE SHUFFLE: regroup a prepared dask DataFrame so that partition ``k`` is patch ``k``.

    ``set_index`` on the patch number with the divisions ``0, 1, ..., npatch - 1`` moves each
    row to its patch's partition (dask's p2p shuffle on a distributed cluster, its task
    shuffle otherwise); each partition is then put back in input order (``_row``), so a patch
    holds the same rows in the same order as TreeCorr's ``get_patches()`` would, whatever the
    partitioning of the input.
    """
    divisions = [*range(npatch), npatch - 1]
    by_patch = frame.set_index(PATCH, divisions=divisions)
    meta = by_patch._meta.reset_index(drop=True)
    return by_patch.map_partitions(_in_input_order, meta=meta)
