"""Sky patches: k-means centres, each row's patch, and the rows grouped into patch catalogues.

1. :func:`kmeans_centers` runs TreeCorr's k-means on a subsample (every ``every_nth`` object of
   the patch-defining sample), in one task. All catalogues of a measurement share the centres,
   so patch ``k`` is the same piece of sky for sources, lenses and randoms.
2. :func:`split_partition` takes the columns a sample needs, summarises them
   (:func:`.samples.summarise_arrays`), gives each finite row its patch (TreeCorr's own
   assignment to the nearest centre, exactly what ``Catalog(..., patch_centers=...)``
   does) and cuts the partition into one piece per patch, each in input order. It runs
   on a group of consecutive partitions read in the same task (:func:`split_read`), one
   group per worker thread, giving per patch the list of the group's pieces.
3. :func:`build_patch` (one task per patch) concatenates that patch's pieces in partition
   order, converts them (:func:`.samples.convert`, once the shape calibration is known),
   builds the patch's TreeCorr catalogue and its statistics: a :class:`Patch`. The task
   takes the groups' whole split outputs and picks its pieces (``whole_splits``):
   a worker then fetches another worker's output once for all the patches it builds,
   where one ``getitem`` task per group and patch made every build wait for its own
   transfer (NG on two workers: the phase before the pairs 0.68-0.72 -> 0.52-0.63 s).

Steps 2 and 3 are THE SHUFFLE of the two-point analyses, written as a plain task shuffle
(``groups * npatch`` small pieces, a group being the partitions one task reads) instead of
a DataFrame shuffle. It replaced
``set_index(patch)`` (dask's p2p shuffle on a cluster), a sort back into input order and a
separate pass for the patch statistics: at 1 million sources in 8 partitions and 16 patches
those took 2.5-4 s on two cores, half of TreeCorr's whole run at 1-100 arcmin, where steps
2 and 3 take 0.7 s, reading included (``reduction["seconds"]``). The patch holds a TreeCorr
catalogue, not a DataFrame: its positions are derived once, here, instead of in every pair
task (see :mod:`._treecorr`), and no pandas frame outlives step 2. Rows are kept in their
stored precision until :func:`build_patch` converts them. Reading the partitions in groups,
one per worker thread, rather than one task per partition, cut the tasks before the first
pair from about 400 to about 150 for 16 patches and two samples of 8 partitions each (NG on
two workers: the phase from 0.84-0.91 s to 0.75 s). For very many groups times patches (say
beyond 10^5 pieces) the scheduler's per-task cost grows, and a DataFrame shuffle would again
be the better tool.

:func:`sweep_rank` orders the patches along the footprint, the order of the pair tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from skydask.analyses.twopoint import _treecorr as tc
from skydask.analyses.twopoint.samples import (
    Calibration,
    Columns,
    combine_summaries,
    convert,
    finite_rows,
    summarise_arrays,
    value_arrays,
)
from skydask.errors import SpecError

__all__ = [
    "Patch",
    "assign",
    "build_patch",
    "kmeans_centers",
    "split_partition",
    "split_parts",
    "split_read",
    "sweep_rank",
]

log = logging.getLogger(__name__)

Piece = dict[str, NDArray[np.floating[Any]]]


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


def sweep_rank(centers: NDArray[np.float64]) -> NDArray[np.int64]:
    """Each patch's place in a sweep across the footprint, along the longest axis of the
    patch centres (their first principal axis): patches near each other in the sweep are
    near each other on the sky, which is the order in which :mod:`.pairs` runs its tasks.

    Examples
    --------
    >>> ra = np.radians([10.0, 30.0, 20.0, 40.0]); dec = np.radians([0.0, 1.0, -1.0, 0.0])
    >>> c = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], 1)
    >>> r = sweep_rank(c)
    >>> r.tolist() in ([0, 2, 1, 3], [3, 1, 2, 0])
    True
    """
    c = np.asarray(centers, dtype=np.float64)
    if len(c) < 2:
        return np.zeros(len(c), dtype=np.int64)
    _, _, axes = np.linalg.svd(c - c.mean(axis=0), full_matrices=False)
    rank = np.empty(len(c), dtype=np.int64)
    rank[np.argsort((c - c.mean(axis=0)) @ axes[0], kind="stable")] = np.arange(len(c))
    return rank


def assign(
    ra: NDArray[np.float64], dec: NDArray[np.float64], centers: NDArray[np.float64]
) -> NDArray[np.int64]:
    """Patch index of each position: TreeCorr's nearest-centre assignment."""
    import treecorr

    if len(ra) == 0:
        return np.empty(0, dtype=np.int64)
    cat = treecorr.Catalog(ra=ra, dec=dec, ra_units="deg", dec_units="deg", patch_centers=centers)
    return np.asarray(cat.patch, dtype=np.int64)


def split_partition(
    frame: Columns,
    columns: list[str],
    shapes: bool,
    sigma: bool,
    centers: NDArray[np.float64],
) -> list[Any]:
    """One partition's summary, then its finite rows cut into one piece per patch.

    Returns ``[summary, piece_0, ..., piece_{npatch-1}]``: ``piece_k`` holds the ``columns``
    of the rows of patch ``k``, in input order. Rows with a non-finite value are counted in
    the summary and left out of the pieces (a measurement with ``nan_policy="raise"`` stops
    on the summary before any piece is used).

    Examples
    --------
    >>> centers = np.array([[0.5, 0.5, -0.7071], [0.5, -0.5, -0.7071]])
    >>> frame = {"ra": np.array([44.0, 46.0, -44.0, np.nan]), "dec": np.full(4, -45.0)}
    >>> summary, p0, p1 = split_partition(frame, ["ra", "dec"], False, False, centers)
    >>> summary.rows, summary.nonfinite, p0["ra"].tolist(), p1["ra"].tolist()
    (4, 1, [44.0, 46.0], [-44.0])
    """
    arrays = value_arrays(frame, columns)
    ok = finite_rows(arrays, columns)
    summary = summarise_arrays(arrays, columns, shapes, sigma, 0, ok)
    if not ok.all():
        arrays = {c: v[ok] for c, v in arrays.items()}
    patch = assign(arrays["ra"].astype(np.float64), arrays["dec"].astype(np.float64), centers)
    # a stable sort keeps the input order within each patch; numpy sorts 16-bit integers
    # by radix (275,000 rows: 1.3 ms, against 9 ms for the int64 patch numbers)
    order = np.argsort(
        patch.astype(np.int16 if len(centers) <= 1 << 15 else np.int64), kind="stable"
    )
    bounds = np.zeros(len(centers) + 1, dtype=np.int64)
    np.cumsum(np.bincount(patch, minlength=len(centers)), out=bounds[1:])
    grouped = {c: v[order] for c, v in arrays.items()}
    pieces = [
        {c: v[bounds[k] : bounds[k + 1]] for c, v in grouped.items()} for k in range(len(centers))
    ]
    return [summary, *pieces]


def split_parts(
    parts: Iterable[Columns],
    columns: list[str],
    shapes: bool,
    sigma: bool,
    centers: NDArray[np.float64],
) -> list[Any]:
    """:func:`split_partition` of consecutive partitions in one task: their combined summary,
    then per patch the list of its pieces, one per partition that has rows there, in order.

    One task per group of partitions instead of per partition gives ``npatch`` outputs per
    group (the scheduler's cost of the shuffle is per output); splitting partition by
    partition, rather than their rows joined, holds one partition's columns at a time
    besides the pieces, and sums the summary as the per-partition tasks did.
    """
    summaries = []
    grouped: list[list[Piece]] = [[] for _ in range(len(centers))]
    for frame in parts:
        summary, *pieces = split_partition(frame, columns, shapes, sigma, centers)
        summaries.append(summary)
        for found, piece in zip(grouped, pieces, strict=True):
            if len(piece["ra"]):
                found.append(piece)
    return [combine_summaries(summaries), *grouped]


def split_read(
    readers: Sequence[Callable[[], Columns]],
    columns: list[str],
    shapes: bool,
    sigma: bool,
    centers: NDArray[np.float64],
) -> list[Any]:
    """:func:`split_parts` of partitions read in this task, one after the other.

    Examples
    --------
    >>> from functools import partial
    >>> centers = np.array([[0.5, 0.5, -0.7071], [0.5, -0.5, -0.7071]])
    >>> parts = [{"ra": np.array([44.0, -44.0]), "dec": np.full(2, -45.0)},
    ...          {"ra": np.array([46.0]), "dec": np.array([-45.0])}]
    >>> readers = [partial(dict, p) for p in parts]
    >>> summary, p0, p1 = split_read(readers, ["ra", "dec"], False, False, centers)
    >>> summary.rows, [p["ra"].tolist() for p in p0], [p["ra"].tolist() for p in p1]
    (3, [[44.0], [46.0]], [[-44.0]])
    """
    return split_parts((read() for read in readers), columns, shapes, sigma, centers)


@dataclass
class Patch:
    """One patch of one sample: its TreeCorr catalogue (None if empty) and its statistics.

    ``nbytes`` is the size of the catalogue's arrays (what moving it costs); Dask's memory
    accounting reads it through ``sys.getsizeof``.
    """

    name: str
    catalog: Any
    stats: tc.PatchStats
    nbytes: int

    def __sizeof__(self) -> int:
        return self.nbytes + 200


def build_patch(
    name: str,
    patch: int,
    field: str,
    role: str,
    calibration: Calibration | None,
    inverse_variance: bool,
    *pieces: Piece | Sequence[Piece],
    whole_splits: bool = False,
) -> Patch:
    """Patch ``patch`` of sample ``name`` from its pieces, in partition order (each a piece,
    or the list of a group's pieces, :func:`split_parts`): converted, as a TreeCorr
    catalogue, with its statistics.

    With ``whole_splits`` the ``pieces`` are instead the whole outputs of
    :func:`split_parts` (one per group, in order), whose output ``patch + 1`` holds this
    patch's pieces: the build task depends on the groups' outputs themselves.
    """
    items: Sequence[Any] = pieces
    if whole_splits:
        items = [cast(Sequence[Any], split)[patch + 1] for split in pieces]
    flat: list[Piece] = []
    for item in items:
        flat.extend([item] if isinstance(item, dict) else item)
    columns = list(flat[0]) if flat else []
    rows = {c: np.concatenate([p[c] for p in flat]) for c in columns}
    if not rows or len(rows["ra"]) == 0:
        return Patch(name, None, tc.patch_stats(None, field, patch), 0)
    cat = tc.make_catalog(convert(rows, role, calibration, inverse_variance), field)
    del rows
    stats = tc.patch_stats(cat, field, patch)
    tc.drop_positions(cat)  # derived again where a tree is built (.pairs.run_pairs)
    return Patch(name, cat, stats, tc.catalog_nbytes(cat))
