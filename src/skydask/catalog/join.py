"""Join two catalogues on a key: partition-wise when their layouts agree, else a shuffle.

:meth:`skydask.Catalog.join` (Source or ForcedSource to Object, on ``objectId``) plans the join
from the layouts alone (:mod:`skydask.catalog.colocation`):

* **Partition-wise** when both sides are partitioned by the same keys and those keys are
  either part of the join key or functions of the object (``tract``, ``patch``) for a join on
  ``objectId``: the pieces of each key value are read and merged in one task, and no row
  moves. DC2 writes its Object table one file per tract and its ForcedSource per tract (or
  patch); a hive ``tract=`` directory and a file whose ``tract`` column is constant (footer
  statistics) both count. With ``strategy="partitionwise"`` HEALPix pixels of the same order
  count too (exact when both sides are partitioned by the *object's* position).
* **Otherwise a shuffle join** (dask's hash join: both sides are shuffled by the key; a side
  of one partition is broadcast instead), with :func:`~skydask.catalog.colocation.shuffle_method`:
  peer-to-peer with a distributed client, in-memory tasks without.

The result is a lazy dask DataFrame (the rows of ``pandas.merge`` of the two selections, in
some order): the two sides' quantities, the key once, clashing names with ``suffixes``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd

from skydask.catalog.catalog import Catalog
from skydask.catalog.colocation import (
    OBJECT_KEYS,
    Piece,
    grouped_pieces,
    healpix_groups,
    read_group,
    shuffle_method,
)
from skydask.catalog.reader import ReadPlan
from skydask.errors import SchemaError

__all__ = ["HOWS", "STRATEGIES", "join_catalogs"]

log = logging.getLogger(__name__)

HOWS = ("inner", "left", "right", "outer")
STRATEGIES = ("auto", "partitionwise", "shuffle")


def _with_keys(catalog: Catalog, keys: Sequence[str], side: str) -> Catalog:
    missing = [k for k in keys if k not in catalog.schema]
    if missing:
        raise SchemaError(
            f"cannot join on {list(keys)}: the {side} catalogue "
            f"({catalog.source_description}) has no quantity {missing[0]!r}"
        )
    columns = catalog.columns
    return catalog if set(keys) <= set(columns) else catalog.select([*columns, *keys])


def _candidate_keys(left: Catalog, right: Catalog, keys: Sequence[str]) -> list[str]:
    """Partition keys both sides may share, that keep every join-key value in one key value."""
    shared = [c for c in left.schema.stored if c in set(right.schema.stored)]
    usable = [c for c in shared if c in keys]
    if "objectId" in keys:
        usable += [c for c in OBJECT_KEYS if c in shared and c not in usable]
    return usable


def _colocated(
    left: Catalog, right: Catalog, keys: Sequence[str], allow_healpix: bool
) -> tuple[dict[Any, list[Piece]], dict[Any, list[Piece]], str] | None:
    if left.npartitions <= 1 and right.npartitions <= 1:
        return None  # one task either way; dask's merge is as good
    for key in _candidate_keys(left, right, keys):
        lg = grouped_pieces(left, [key])
        if lg is None:
            continue
        rg = grouped_pieces(right, [key])
        if rg is not None:
            return lg, rg, f"partition-wise by {key}"
    if allow_healpix:
        lh, rh = healpix_groups(left), healpix_groups(right)
        if lh and rh and {o for o, _ in lh} == {o for o, _ in rh}:
            return lh, rh, "partition-wise by HEALPix pixel"
    return None


def _merge_group(
    pair: tuple[tuple[Piece, ...], tuple[Piece, ...]],
    plans: tuple[ReadPlan, ReadPlan],
    empties: tuple[pd.DataFrame, pd.DataFrame],
    on: list[str],
    how: str,
    suffixes: tuple[str, str],
) -> pd.DataFrame:
    left = read_group(pair[0], plans[0], empties[0])
    right = read_group(pair[1], plans[1], empties[1])
    return left.merge(right, on=on, how=how, suffixes=suffixes)  # type: ignore[arg-type]


def _matched(lg: dict[Any, list[Piece]], rg: dict[Any, list[Piece]], how: str) -> list[Any]:
    if how == "inner":
        keys = set(lg) & set(rg)
    elif how == "left":
        keys = set(lg)
    elif how == "right":
        keys = set(rg)
    else:
        keys = set(lg) | set(rg)
    return sorted(keys, key=repr)


def join_catalogs(
    left: Catalog,
    right: Catalog,
    on: str | Sequence[str] = "objectId",
    how: str = "inner",
    *,
    strategy: str = "auto",
    suffixes: tuple[str, str] = ("_x", "_y"),
) -> dd.DataFrame:
    """Join two catalogues' selected quantities on ``on`` (see :meth:`skydask.Catalog.join`).

    Parameters
    ----------
    left, right
        The catalogues; their selections and cuts apply. The key is added to a selection that
        lacks it.
    on
        Key quantity (or quantities) present in both.
    how
        ``"inner"``, ``"left"``, ``"right"`` or ``"outer"``, as in :func:`pandas.merge`.
    strategy
        ``"auto"`` (partition-wise when the layouts allow it, else a shuffle),
        ``"partitionwise"`` (require it; HEALPix pixels of equal order also count), or
        ``"shuffle"``.
    suffixes
        Appended to names present on both sides (other than the key).

    Returns
    -------
    dask.dataframe.DataFrame
        Lazy; ``.compute()`` gives the rows of ``pandas.merge`` of the two selections.

    Raises
    ------
    SchemaError
        For an unknown ``how``/``strategy``, a missing key, or ``strategy="partitionwise"``
        on layouts that are not co-partitioned.
    """
    if how not in HOWS:
        raise SchemaError(f"parameter 'how' must be one of {HOWS}; got {how!r}")
    if strategy not in STRATEGIES:
        raise SchemaError(f"parameter 'strategy' must be one of {STRATEGIES}; got {strategy!r}")
    keys = [on] if isinstance(on, str) else list(on)
    left = _with_keys(left, keys, "left")
    right = _with_keys(right, keys, "right")
    lplan, rplan = left._plan(), right._plan()
    lmeta, rmeta = left._meta(lplan), right._meta(rplan)
    meta = lmeta.merge(rmeta, on=keys, how=how, suffixes=suffixes)  # type: ignore[arg-type]

    if strategy != "shuffle":
        colocated = _colocated(left, right, keys, allow_healpix=strategy == "partitionwise")
        if colocated is not None:
            lg, rg, description = colocated
            pairs = [(tuple(lg.get(k, ())), tuple(rg.get(k, ()))) for k in _matched(lg, rg, how)]
            log.info("join on %s (%s): %s, %d tasks", keys, how, description, len(pairs))
            with dask.config.set({"dataframe.convert-string": False}):
                if not pairs:
                    return dd.from_pandas(meta, npartitions=1)
                return dd.from_map(
                    _merge_group,
                    pairs,
                    plans=(lplan, rplan),
                    empties=(lmeta, rmeta),
                    on=keys,
                    how=how,
                    suffixes=suffixes,
                    meta=meta,
                    label="join",
                    enforce_metadata=False,
                )
        if strategy == "partitionwise":
            raise SchemaError(
                f"cannot join {left.source_description} and {right.source_description} "
                f"partition-wise: they are not partitioned by a shared key among "
                f"{_candidate_keys(left, right, keys) or list(OBJECT_KEYS)} (nor by HEALPix "
                "pixels of one order); use strategy='auto' or 'shuffle'"
            )
    method = shuffle_method()
    log.info(
        "join on %s (%s): SHUFFLE (%s) of %d and %d partitions",
        keys, how, method, left.npartitions, right.npartitions,
    )  # fmt: skip
    # SHUFFLE: dask's hash join moves both sides' rows to the partition of their key's hash
    # (a one-partition side is broadcast to the other's partitions instead)
    return left.to_dask().merge(
        right.to_dask(), on=keys, how=how, suffixes=suffixes, shuffle_method=method
    )
