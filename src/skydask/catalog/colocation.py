"""Which partitions hold which objects: co-located reads, and the shuffle when there are none.

Per-object work (light curves, joins of Source to Object) needs every row of an object in one
task. How to get there depends on the layout, and this module decides it from what is known
without reading data:

* **One partition**: nothing to do.
* **Partitioned by an object-defining key**: a survey assigns every object to one tract and one
  patch, and writes an object's forced sources (and DC2 its objects) into that tract's or
  patch's files. When every planned piece has a single value of ``tract`` (or ``patch``) --
  from its hive directory (``tract=3812/``), or from footer statistics (min == max, as in DC2's
  ``object_tract_<N>.parquet``), or from the data of an in-memory partition -- the pieces of one
  value are read together in one task and no row moves between workers.
* **HEALPix (HATS) pixels**: a table partitioned by the *object's* position (ForcedSource, or the
  Object table itself) keeps an object in one pixel, but a Source table partitioned by the
  *measured* positions can put a detection near a pixel edge into the neighbouring pixel. The
  layout cannot tell which, so pixels are used only when the caller says so
  (``locality="partition"``, ``strategy="partitionwise"``).
* **Anything else** (DC2's per-visit files: an object is in every visit that saw it): a **shuffle
  by objectId**, named as such. It uses dask's peer-to-peer shuffle (``"p2p"``) when a
  ``distributed`` client is active and the in-memory task shuffle (``"tasks"``) otherwise, unless
  dask's ``dataframe.shuffle.method`` is configured.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd

from skydask.catalog.catalog import Catalog
from skydask.catalog.footers import as_bound
from skydask.catalog.healpix_index import parse_hats_pixel_path
from skydask.catalog.reader import MemoryPiece, ParquetPiece, ReadPlan, read_piece
from skydask.catalog.sources import ParquetSource
from skydask.errors import SchemaError
from skydask.scheduling import active_client

__all__ = [
    "LOCALITIES",
    "OBJECT_KEYS",
    "ObjectFrame",
    "Piece",
    "by_object",
    "grouped_pieces",
    "healpix_groups",
    "read_group",
    "read_groups",
    "shuffle_method",
]

log = logging.getLogger(__name__)

OBJECT_KEYS = ("tract", "patch")
"""Partition keys that are functions of the object: a survey puts each object, and its forced
sources, in one tract and one patch."""

LOCALITIES = ("auto", "partition", "shuffle")

SHUFFLE_ROWS = 2_000_000
"""Rows per output partition of a shuffle by object (a few columns: ~100 MB)."""

Piece = ParquetPiece | MemoryPiece


def shuffle_method() -> str:
    """The shuffle dask should use: its configured method, else ``"p2p"`` with a distributed
    client (peer-to-peer, disk-backed, the efficient one on a cluster), else ``"tasks"``.

    Examples
    --------
    >>> import dask
    >>> with dask.config.set({"dataframe.shuffle.method": "disk"}):
    ...     shuffle_method()
    'disk'
    """
    configured = dask.config.get("dataframe.shuffle.method", None)
    if configured:
        return str(configured)
    return "tasks" if active_client() is None else "p2p"


def _constant(values: Any) -> object | None:
    """The single value of a column chunk, or None when it holds several (or none)."""
    if len(values) == 0:
        return None
    first = values[0]
    if pd.isna(first):
        return None
    return first if bool((values == first).all()) else None


def _piece_value(catalog: Catalog, piece: Piece, key: str) -> object | None:
    """The value of ``key`` shared by every row of a piece, known without reading data."""
    if isinstance(piece, MemoryPiece):
        return _constant(piece.frame[key].to_numpy()) if key in piece.frame else None
    keys = dict(piece.partition_values)
    if key in keys:
        return keys[key]
    source = catalog._source
    if not isinstance(source, ParquetSource) or key not in source.arrow_schema.names:
        return None
    index = {f.path: i for i, f in enumerate(source.layout.files)}
    footer = source.footers.footers()[index[piece.path]]
    bounds = footer.bounds(key)
    groups = piece.row_groups if piece.row_groups is not None else range(footer.num_row_groups)
    value: object | None = None
    for rg in groups:
        b = bounds[rg]
        if b is None:
            return None
        lo, hi = as_bound(b[0]), as_bound(b[1])
        if lo is None or lo != hi or (value is not None and value != lo):
            return None
        value = lo
    return value


def grouped_pieces(
    catalog: Catalog, keys: Sequence[str]
) -> dict[tuple[Any, ...], list[Piece]] | None:
    """The planned pieces grouped by their constant values of ``keys``, or None if some piece
    has no single value (the layout does not partition by those keys)."""
    groups: dict[tuple[Any, ...], list[Piece]] = {}
    for piece in catalog._planned_pieces():
        values = tuple(_piece_value(catalog, piece, k) for k in keys)
        if any(v is None for v in values):
            return None
        groups.setdefault(values, []).append(piece)
    return groups


def healpix_groups(catalog: Catalog) -> dict[tuple[Any, ...], list[Piece]] | None:
    """The planned pieces grouped by HATS pixel, when every file is one pixel of one order."""
    source = catalog._source
    if not isinstance(source, ParquetSource) or source.layout.kind != "hats":
        return None
    groups: dict[tuple[Any, ...], list[Piece]] = {}
    for piece in catalog._planned_pieces():
        assert isinstance(piece, ParquetPiece)
        pixel = parse_hats_pixel_path(piece.path)
        if pixel is None:
            return None
        groups.setdefault(pixel, []).append(piece)
    if len({order for order, _ in groups}) > 1:
        return None
    return groups


def read_group(pieces: Sequence[Piece], plan: ReadPlan, empty: pd.DataFrame) -> pd.DataFrame:
    """Read several pieces with one plan and concatenate them (``empty`` when none has rows)."""
    frames = [f for f in (read_piece(p, plan) for p in pieces) if len(f)]
    if not frames:
        return empty
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def read_groups(catalog: Catalog, groups: Sequence[Sequence[Piece]], label: str) -> dd.DataFrame:
    """A dask DataFrame with one task (partition) per group of pieces, read together."""
    plan = catalog._plan()
    meta = catalog._meta(plan)
    # as in Catalog.to_dask: the reader yields pandas strings, so no conversion task is added
    with dask.config.set({"dataframe.convert-string": False}):
        if not groups:
            return dd.from_pandas(meta, npartitions=1)
        return dd.from_map(
            read_group,
            [tuple(g) for g in groups],
            plan=plan,
            empty=meta,
            meta=meta,
            label=label,
            enforce_metadata=False,
        )


@dataclass(frozen=True)
class ObjectFrame:
    """Rows grouped so that each partition holds whole objects.

    Attributes
    ----------
    frame
        The lazy dask DataFrame.
    strategy
        How it was done, for logs and results: ``"one partition"``, ``"partition-wise by
        tract"``, ``"partition-wise by HEALPix pixel"``, or ``"shuffle by objectId (p2p)"``.
    shuffled
        Whether rows move between workers (a shuffle).
    """

    frame: dd.DataFrame
    strategy: str
    shuffled: bool


def by_object(catalog: Catalog, *, on: str = "objectId", locality: str = "auto") -> ObjectFrame:
    """The catalogue's selected rows with every ``on`` value complete in one partition.

    Parameters
    ----------
    catalog
        The table (its selection and cuts apply); it must offer ``on``.
    on
        The object key.
    locality
        ``"auto"``: one partition, or partitions keyed by tract/patch, else a shuffle.
        ``"partition"``: also trust HEALPix pixels (tables partitioned by object position).
        ``"shuffle"``: always shuffle by ``on``.

    Examples
    --------
    >>> import pandas as pd, skydask
    >>> fs = skydask.from_pandas(pd.DataFrame({"objectId": [1, 2, 1, 2], "visit": [1, 1, 2, 2],
    ...                                        "psFlux": [1.0, 2.0, 3.0, 4.0]}), npartitions=2)
    >>> grouped = by_object(fs)
    >>> grouped.strategy
    'shuffle by objectId (tasks)'
    >>> sorted(grouped.frame.map_partitions(lambda d: d.groupby("objectId").size()).compute())
    [2, 2]
    """
    if locality not in LOCALITIES:
        raise SchemaError(f"parameter 'locality' must be one of {LOCALITIES}; got {locality!r}")
    catalog.schema.check([on])
    if on not in catalog.columns:
        catalog = catalog.select([*catalog.columns, on])
    if locality != "shuffle":
        if catalog.npartitions <= 1:
            return ObjectFrame(catalog.to_dask(), "one partition", False)
        stored = set(catalog.schema.stored)
        for key in OBJECT_KEYS:
            if key not in stored:
                continue
            groups = grouped_pieces(catalog, [key])
            if groups is not None:
                frame = read_groups(catalog, [groups[k] for k in sorted(groups)], f"by-{key}")
                return ObjectFrame(frame, f"partition-wise by {key}", False)
        if locality == "partition":
            hp = healpix_groups(catalog)
            if hp is not None:
                frame = read_groups(catalog, [hp[k] for k in sorted(hp)], "by-pixel")
                return ObjectFrame(frame, "partition-wise by HEALPix pixel", False)
            raise SchemaError(
                f"locality='partition' but {catalog.source_description} is partitioned neither "
                f"by {' nor '.join(OBJECT_KEYS)} nor by HEALPix pixel; use locality='auto'"
            )
    method = shuffle_method()
    # Output partitions of about SHUFFLE_ROWS rows: per-visit files are small and many, and a
    # task shuffle costs inputs x outputs tasks.
    stats = catalog.prune_stats
    rows = stats.rows_kept or catalog._source.total_rows()
    outputs = max(1, min(catalog.npartitions, math.ceil(rows / SHUFFLE_ROWS)))
    log.info(
        "shuffle by %s (%s) of %d partitions into %d: objects' rows are spread over partitions",
        on, method, catalog.npartitions, outputs,
    )  # fmt: skip
    # SHUFFLE: every row moves to the partition of its object's hash (dask's hash partitioning)
    frame = catalog.to_dask().shuffle(on=on, npartitions=outputs, shuffle_method=method)
    return ObjectFrame(frame, f"shuffle by {on} ({method})", True)
