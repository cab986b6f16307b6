"""One scan of a catalogue shared by several analyses.

Every catalogue analysis starts the same way: read some quantities of the rows that pass some
cut, once, partition by partition, and reduce them. When a validation suite runs several
analyses on the same catalogue, reading it once per analysis pays the I/O, the Parquet
decoding and the per-file overhead again each time. An analysis that can share its scan
describes it as a :class:`ScanPlan`:

``quantities`` and ``where``
    what it reads (catalogue quantities) and the rows it keeps (an expression of the
    catalogue's filter language, or None for all rows);
``collect(frames, scanned)``
    the lazy dask work on its rows, given one delayed pandas frame per partition (only its
    quantities, only its rows) and the catalogue that was scanned (its layout: partitions,
    HEALPix order); returns the dask collection(s) to keep: a reduction tree's root, or a
    small persisted intermediate. A plan made with ``chunks=True`` is given
    :class:`~skydask.catalog.reader.ChunkedColumns` instead of frames: its columns as Arrow
    decoded them, never joined (where its rows are all the partition's; rows it selects are
    gathered into one chunk), and no pandas frame is built for it;
``finish(kept)``
    what it does once those are in memory (further passes over the kept intermediate, the
    final arithmetic) and returns the analysis' result.

:func:`scan_together` reads the union of the plans' quantities once, with the union (``|``) of
their cuts pushed down to the catalogue (footer pruning, conjunct-by-conjunct filtering), then
splits each partition into every plan's rows with the catalogue reader's own row selection
(joining a column into one array only for the plans that need it), and
persists every plan's collections in a single dask computation: one read of each file for the
whole suite. The analyses' own functions (:func:`~skydask.analyses.stellar_locus`,
:func:`~skydask.analyses.depth_map`) are this with one plan, so a suite and a single analysis
run the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
from dask.delayed import Delayed

from skydask.analyses.reduction import persist
from skydask.catalog.catalog import Catalog
from skydask.catalog.reader import ChunkedColumns, ReadPlan, row_indices
from skydask.schema import expressions as ex

__all__ = ["ScanPlan", "scan_together"]


@dataclass(frozen=True)
class ScanPlan:
    """One analysis' share of a catalogue scan (see the module docstring).

    ``catalog`` is the catalogue the analysis was given (its cuts and regions define the rows
    every plan of one scan must share); ``name`` labels the plan in errors and logs;
    ``chunks``: ``collect`` is given chunked columns, not frames (see the module docstring).
    """

    name: str
    catalog: Catalog
    quantities: tuple[str, ...]
    where: str | None
    collect: Callable[[list[Delayed], Catalog], Any]
    finish: Callable[[Any], Any]
    chunks: bool = False


_Step = tuple[ex.Expr | None, tuple[str, ...], bool]
"""One plan's share of a partition: its cut (None: every row), quantities, and whether it
takes chunked columns."""


def _split(part: ChunkedColumns, steps: tuple[_Step, ...]) -> Any:
    """Every plan's rows and columns of one partition (a tuple, one part per plan).

    Columns are joined (``part[name]``, once for all the plans) only for a plan that selects
    rows or takes a frame; a plan that takes chunks of all the rows gets them as read.
    """
    out = []
    for where, quantities, chunks in steps:
        if where is None and chunks:
            out.append(part.subset(quantities))
            continue
        rows = None if where is None else row_indices(ReadPlan((), (), where), part, part.rows)
        arrays = {q: part[q] if rows is None else part[q][rows] for q in quantities}
        n = part.rows if rows is None else len(rows)
        out.append(ChunkedColumns.of_arrays(arrays, n) if chunks else _frame(arrays, n))
    return tuple(out)


def _frame(arrays: dict[str, Any], n: int) -> Any:
    """The columns as a pandas frame (as the reader makes one: its rows numbered from 0)."""
    import pandas as pd  # only for plans that take frames

    return pd.DataFrame(arrays, index=pd.RangeIndex(n), copy=False)


def _check_same_rows(plans: Sequence[ScanPlan]) -> Catalog:
    base = plans[0].catalog
    for plan in plans[1:]:
        if not base.same_rows(plan.catalog):
            raise ValueError(
                f"scan_together: plan {plan.name!r} is on other rows than {plans[0].name!r} "
                f"({plan.catalog.describe_query()!r} vs {base.describe_query()!r}); plans "
                "sharing one scan need the same catalogue with the same cuts and regions"
            )
    return base


def _union_cut(wheres: list[str | None]) -> str | None:
    """The cut to push down: rows any plan keeps (None as soon as one plan keeps all)."""
    if any(w is None for w in wheres):
        return None
    distinct = list(dict.fromkeys(w for w in wheres if w is not None))
    if len(distinct) == 1:
        return distinct[0]
    return " | ".join(f"({w})" for w in distinct)


def scan_together(*plans: ScanPlan, progress: bool = False) -> list[Any]:
    """Run several analyses' plans on one scan of their (common) catalogue.

    Parameters
    ----------
    *plans : ScanPlan
        Plans on the same catalogue with the same cuts and regions (e.g. from
        ``stellar_locus_plan(cat)`` and ``depth_map_plan(cat)``).
    progress : bool
        Show a progress bar for the scan.

    Returns
    -------
    list
        Each plan's result, in the order of ``plans``.

    Raises
    ------
    ValueError
        No plan, or plans on different rows.

    Examples
    --------
    Two trivial plans, a row count and the sum of a flux over the bright rows, on one read:

    >>> import pandas as pd, skydask, dask
    >>> df = pd.DataFrame({"psFlux_r": [10.0, 2000.0, 5000.0], "psFluxErr_r": [1.0, 1.0, 1.0]})
    >>> cat = skydask.from_pandas(df, npartitions=2, schema="dc2")
    >>> def total(column):
    ...     def collect(frames, scanned):
    ...         sums = [dask.delayed(lambda f: f[column].sum())(f) for f in frames]
    ...         return dask.delayed(sum)(sums)
    ...     return collect
    >>> rows = ScanPlan("rows", cat, ("psFluxErr_r",), None, total("psFluxErr_r"),
    ...                 lambda kept: int(kept.compute()))
    >>> bright = ScanPlan("bright", cat, ("psFlux_r",), "psFlux_r > 1000", total("psFlux_r"),
    ...                   lambda kept: float(kept.compute()))
    >>> scan_together(rows, bright)
    [3, 7000.0]
    """
    if not plans:
        raise ValueError("scan_together needs at least one plan")
    base = _check_same_rows(plans)
    wheres = [p.where for p in plans]
    pushdown = _union_cut(wheres)
    parsed = [None if w is None or w == pushdown else base.schema.parse(w) for w in wheres]
    wanted: dict[str, None] = {}
    for plan, expr in zip(plans, parsed, strict=True):
        wanted.update(dict.fromkeys(plan.quantities))
        if expr is not None:
            wanted.update(dict.fromkeys(sorted(ex.names(expr))))
    scanned = base.select(list(wanted))
    if pushdown is not None:
        scanned = scanned.where(pushdown)
    if len(plans) == 1 and parsed[0] is None:
        per_plan = [scanned.to_delayed(chunks=plans[0].chunks)]
    else:
        parts = scanned.to_delayed(chunks=True)
        steps = tuple(
            (expr, plan.quantities, plan.chunks) for plan, expr in zip(plans, parsed, strict=True)
        )
        split = dask.delayed(_split, pure=True, nout=len(plans))
        pieces = [split(part, steps) for part in parts]
        per_plan = [[piece[i] for piece in pieces] for i in range(len(plans))]
    collected = [
        plan.collect(frames, scanned) for plan, frames in zip(plans, per_plan, strict=True)
    ]
    kept = persist(*collected, progress=progress)
    return [plan.finish(k) for plan, k in zip(plans, kept, strict=True)]
