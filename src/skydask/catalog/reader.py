"""Read one partition: the columns it needs, the rows that pass, the quantities asked for.

This is the function every dask task of a catalogue runs, so it is the hot path: it reads only
the planned columns of only the planned row groups, evaluates the filter and the region tests
on numpy arrays, drops the failing rows, and only then computes the requested quantities, on
the surviving rows. One task per partition, whatever the number of cuts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from skydask.catalog.healpix_index import HEALPIX29_COLUMN
from skydask.catalog.regions import HealpixRegion, Region
from skydask.errors import CatalogReadError
from skydask.schema import expressions as ex

__all__ = ["MemoryPiece", "ParquetPiece", "ReadPlan", "read_piece"]


@dataclass(frozen=True)
class ParquetPiece:
    """Part of one Parquet file: the row groups to read (None: all)."""

    path: str
    row_groups: tuple[int, ...] | None = None
    partition_values: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class MemoryPiece:
    """One in-memory pandas partition (from ``from_pandas``)."""

    frame: pd.DataFrame
    index: int

    def __dask_tokenize__(self) -> tuple[str, int, int]:
        return ("skydask-memory-piece", self.index, id(self.frame))


@dataclass(frozen=True)
class ReadPlan:
    """What to read and compute, in stored-column terms (the schema is already applied)."""

    columns: tuple[str, ...]
    outputs: tuple[tuple[str, ex.Expr], ...]
    filter: ex.Expr | None = None
    regions: tuple[Region, ...] = ()
    ra: ex.Expr | None = None
    dec: ex.Expr | None = None


class _Float64Columns(Mapping[str, Any]):
    """Columns as float64 for expression evaluation, converted once on first use.

    Stored fluxes are often float32; computing magnitudes and cuts in float64 keeps the
    numbers equal to a hand computation and makes a cut identical whatever the storage type.
    """

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._cache:
            value = self._raw[key]
            if (
                isinstance(value, np.ndarray)
                and value.dtype.kind == "f"
                and value.dtype != np.float64
            ):
                value = value.astype(np.float64)
            self._cache[key] = value
        return self._cache[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _to_numpy(column: pa.ChunkedArray) -> npt.NDArray[Any]:
    if pa.types.is_boolean(column.type):
        # Flags are never null in survey catalogues; a null flag reads as "not set".
        return np.asarray(column.fill_null(False).to_numpy(), dtype=bool)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return column.to_numpy()
    return np.asarray(column.to_pandas().to_numpy())


def _read_parquet(piece: ParquetPiece, columns: tuple[str, ...]) -> tuple[dict[str, Any], int]:
    keys = dict(piece.partition_values)
    wanted = [c for c in columns if c not in keys]
    try:
        pf = pq.ParquetFile(piece.path)
        present = set(pf.schema_arrow.names)
        missing = [c for c in wanted if c not in present]
        if missing:
            raise CatalogReadError(
                f"{piece.path!r} has no column(s) {missing} (needed by this selection)"
            )
        row_groups = piece.row_groups if piece.row_groups is not None else range(pf.num_row_groups)
        table = pf.read_row_groups(list(row_groups), columns=wanted, use_threads=True)
    except CatalogReadError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise CatalogReadError(f"cannot read {piece.path!r}: {exc}") from exc
    n = table.num_rows
    cols = {name: _to_numpy(table.column(name)) for name in wanted}
    for key, value in keys.items():
        if key in columns:
            cols[key] = np.full(n, value)
    return cols, n


def _read_memory(piece: MemoryPiece, columns: tuple[str, ...]) -> tuple[dict[str, Any], int]:
    frame = piece.frame
    return {c: frame[c].to_numpy() for c in columns}, len(frame)


def _as_length(value: Any, n: int) -> Any:
    arr = np.asarray(value)
    return np.broadcast_to(arr, (n,)).copy() if arr.ndim == 0 else arr


def _cost(expr: ex.Expr) -> tuple[int, int]:
    """Rough cost of a test, so the cheapest run first: fewer functions, fewer columns."""
    calls = 0
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ex.Call):
            calls += 1
        stack.extend(
            getattr(node, name) for name in ("operand", "left", "right") if hasattr(node, name)
        )
        if isinstance(node, ex.Call):
            stack.extend(node.args)
    return calls, len(ex.names(expr))


def _tests(plan: ReadPlan, cols: Mapping[str, Any]) -> list[Any]:
    """The row tests of a plan, cheapest first: the filter's conjuncts, then the regions."""
    tests: list[Any] = (
        sorted(ex.conjuncts(plan.filter), key=_cost) if plan.filter is not None else []
    )
    for region in plan.regions:
        tests.append(region)
    return tests


def _apply_test(
    test: Any, plan: ReadPlan, cols: Mapping[str, Any], n: int
) -> npt.NDArray[np.bool_]:
    as64 = _Float64Columns(cols)
    if isinstance(test, ex.Expr):
        return np.asarray(_as_length(ex.evaluate(test, as64), n), dtype=bool)
    if isinstance(test, HealpixRegion) and HEALPIX29_COLUMN in cols:
        return test.contains_hp29(cols[HEALPIX29_COLUMN])
    assert plan.ra is not None and plan.dec is not None
    ra = _as_length(ex.evaluate(plan.ra, as64), n)
    dec = _as_length(ex.evaluate(plan.dec, as64), n)
    return np.asarray(test.contains(ra, dec))


def row_mask(plan: ReadPlan, cols: Mapping[str, Any], n: int) -> npt.NDArray[np.bool_] | None:
    """Which rows pass the filter and every region; None means all of them.

    The filter's conjuncts and the regions are applied one after the other, each only on the
    rows that passed the previous ones (cheapest first), so an expensive test (a magnitude's
    logarithm, a cone's trigonometry) runs on few rows when an early cut is selective.
    """
    tests = _tests(plan, cols)
    if not tests:
        return None
    survivors: npt.NDArray[np.intp] | None = None  # row indices still in; None: all rows
    for test in tests:
        if survivors is None:
            passed = _apply_test(test, plan, cols, n)
            survivors = np.flatnonzero(passed)
        else:
            needed = ex.names(test) if isinstance(test, ex.Expr) else None
            subset = {k: v[survivors] for k, v in cols.items() if needed is None or k in needed}
            passed = _apply_test(test, plan, subset, len(survivors))
            survivors = survivors[passed]
        if survivors.size == 0:
            break
    mask = np.zeros(n, dtype=bool)
    mask[survivors] = True
    return mask


def read_piece(piece: ParquetPiece | MemoryPiece, plan: ReadPlan) -> pd.DataFrame:
    """Read one partition and return its requested quantities for the rows that pass."""
    if isinstance(piece, MemoryPiece):
        cols, n = _read_memory(piece, plan.columns)
    else:
        cols, n = _read_parquet(piece, plan.columns)
    mask = row_mask(plan, cols, n)
    if mask is not None:
        needed: set[str] = set()
        for _, expr in plan.outputs:
            needed |= ex.names(expr)
        cols = {k: v[mask] for k, v in cols.items() if k in needed}
        n = int(mask.sum())
    as64 = _Float64Columns(cols)
    out: dict[str, Any] = {}
    for name, expr in plan.outputs:
        # a plain column keeps its stored type; anything computed is float64
        value = cols[expr.id] if isinstance(expr, ex.Name) else ex.evaluate(expr, as64)
        out[name] = _as_length(value, n)
    # an explicit index keeps the row count when no quantity is asked for (counting)
    return pd.DataFrame(out, index=pd.RangeIndex(n), copy=False)


def empty_frame(plan: ReadPlan, arrow_schema: pa.Schema) -> pd.DataFrame:
    """The zero-row result of a plan: dask's ``meta``, built by the same code path."""
    present = set(arrow_schema.names)
    arrays = {
        name: pa.chunked_array(
            [], type=arrow_schema.field(name).type if name in present else pa.float64()
        )
        for name in plan.columns
    }
    cols = {name: _to_numpy(arr) for name, arr in arrays.items()}
    frame = read_columns(plan, cols, 0)
    return frame


def read_columns(plan: ReadPlan, cols: dict[str, Any], n: int) -> pd.DataFrame:
    """Apply a plan to columns already in memory (the tail of :func:`read_piece`)."""
    piece = MemoryPiece(
        pd.DataFrame(cols, copy=False) if cols else pd.DataFrame(index=range(n)), -1
    )
    return read_piece(piece, plan)
