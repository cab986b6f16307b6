"""Read one partition: the columns it needs, the rows that pass, the quantities asked for.

This is the function every dask task of a catalogue runs, so it is the hot path: it reads only
the planned columns of only the planned row groups, evaluates the filter and the region tests
on numpy arrays, drops the failing rows, and only then computes the requested quantities, on
the surviving rows. One task per partition, whatever the number of cuts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import dask
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from skydask.catalog.footers import read_footer
from skydask.catalog.healpix_index import HEALPIX29_COLUMN
from skydask.catalog.regions import HealpixRegion, Region
from skydask.errors import CatalogReadError, SpecError
from skydask.schema import expressions as ex

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ChunkedColumns",
    "MemoryPiece",
    "ParquetPiece",
    "ReadPlan",
    "arrow_threads",
    "read_chunks",
    "read_piece",
]

Chunks = list[tuple[int, npt.NDArray[Any]]]
"""A column as ``(first row, values)`` pieces, in row order, covering its rows without gaps."""


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
    """A column (one chunk per row group, as read) as one NumPy array.

    Numbers and flags are joined by Arrow (``combine_chunks``) and taken from its buffers by
    NumPy: ``to_numpy`` on many chunks takes a slower path (1.0 against 0.4 ms for a float
    column of a 1.2M-row tract, 0.9 against 0.1 for flags), and pyarrow's conversions, its
    ``fill_null`` and its array constructors import pandas, which a worker reading for NumPy
    code (:func:`read_arrays`) never needs. Missing numbers become NaN (integers with missing
    values, float64); a missing flag reads as "not set", as flags are never null in survey
    catalogues.
    """
    if pa.types.is_boolean(column.type):
        flags = column.combine_chunks()
        set_ = _bits(flags.buffers()[1], flags.offset, len(flags))
        if flags.null_count:
            set_ &= _bits(flags.buffers()[0], flags.offset, len(flags))
        return set_
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        numbers = column.combine_chunks()
        dtype = np.dtype(numbers.type.to_pandas_dtype())
        values = _data_view(numbers, dtype)
        if values is None:
            return np.empty(0, dtype=dtype)
        if numbers.null_count:
            values = values.astype(np.float64 if dtype.kind in "iu" else dtype)
            values[~_bits(numbers.buffers()[0], numbers.offset, len(numbers))] = np.nan
        return values
    return np.asarray(column.to_pandas().to_numpy())


def _data_view(array: pa.Array, dtype: np.dtype[Any]) -> npt.NDArray[Any] | None:
    """The values of a numeric Arrow array as a NumPy view of its data buffer (no copy; None
    when it holds none). Missing values are whatever the buffer holds there."""
    data = array.buffers()[1]
    if data is None or not len(array):
        return None
    return np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def _bits(buffer: pa.Buffer | None, offset: int, length: int) -> npt.NDArray[np.bool_]:
    """``length`` bits of an Arrow bitmap from bit ``offset``, as booleans."""
    if buffer is None or not length:
        return np.zeros(length, dtype=np.bool_)
    packed = np.frombuffer(buffer, dtype=np.uint8)
    unpacked = np.unpackbits(packed, count=offset + length, bitorder="little")
    return unpacked[offset:].view(np.bool_)


def _indices(rows: npt.NDArray[Any]) -> pa.Array:
    """Row numbers as an Arrow array, from their bytes (``pa.array`` would import pandas)."""
    data = np.ascontiguousarray(rows, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def arrow_threads(npartitions: int) -> bool:
    """Whether a partition's read should decode its columns on Arrow's own threads.

    ``skydask.catalog.arrow-threads`` (``auto``, ``true``, ``false``): ``auto`` uses them only
    for a single partition. With several, the partitions already run in parallel on every core
    (dask threads or workers), and Arrow's pool on top of them oversubscribes the cores: reading
    19 files on 2 cores took 1.9 s without Arrow's threads and 4.4 s with them.

    Examples
    --------
    >>> arrow_threads(1), arrow_threads(19)
    (True, False)
    """
    setting = dask.config.get("skydask.catalog.arrow-threads", "auto")
    if isinstance(setting, str) and setting.lower() == "auto":
        return npartitions <= 1
    if isinstance(setting, bool):
        return setting
    raise SpecError(f"skydask.catalog.arrow-threads must be 'auto', true or false, got {setting!r}")


_FEW_ROW_GROUPS = 4
"""Pieces of at most this many row groups are decoded through ``ParquetFile`` (see
:func:`_read_parquet`)."""


@functools.cache
def _dataset_reader() -> tuple[Any, Any]:
    """Arrow's Parquet format for fragments, and the local filesystem (imported on first use:
    ``pyarrow.dataset`` imports pandas)."""
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    options = ds.ParquetFragmentScanOptions(pre_buffer=False)  # pre-buffering helps remote reads
    return ds.ParquetFileFormat(default_fragment_scan_options=options), pafs.LocalFileSystem()


def decode_row_groups(
    path: str,
    row_groups: tuple[int, ...] | None,
    columns: list[str],
    use_threads: bool,
    lean: bool = False,
    metadata: pq.FileMetaData | None = None,
) -> pa.Table:
    """Decode ``columns`` of the ``row_groups`` (None: all) of one local Parquet file.

    Every data read of the catalogue layer goes through here (tests count them). By default
    through Arrow's dataset reader, which decodes a file row group by row group into one
    chunk each; ``lean``: through ``ParquetFile.read_row_groups`` (given the file's parsed
    ``metadata``, if the caller has it), which does not import pandas. :func:`_read_parquet`
    says when each is used.
    """
    if lean:
        parquet = pq.ParquetFile(path, metadata=metadata)
        groups = range(parquet.num_row_groups) if row_groups is None else row_groups
        return parquet.read_row_groups(list(groups), columns=columns, use_threads=use_threads)
    parquet_format, filesystem = _dataset_reader()
    fragment = parquet_format.make_fragment(path, filesystem, row_groups=row_groups)
    return fragment.to_table(columns=columns, use_threads=use_threads)


def _read_parquet(
    piece: ParquetPiece, columns: tuple[str, ...], use_threads: bool = True, lean: bool = False
) -> tuple[Mapping[str, Any], int]:
    """Decode a piece's columns; ``lean``: never through ``pyarrow.dataset``.

    Arrow's dataset reader is about twice as fast as ``ParquetFile.read_row_groups`` (50
    against 115 ms for the 14 columns of a 1.2M-row DC2 tract, one thread), which decodes each
    column across all the row groups into one growing buffer. That gain is the many row
    groups': a piece of at most :data:`_FEW_ROW_GROUPS` goes through ``ParquetFile``, as the
    dataset reader's own machinery then costs more than it saves when two reads share two
    cores (the depth maps of the 103-file HATS copy of the 20M-row benchmark, one to three
    row groups a file: 1.41 s through ``ParquetFile`` against 1.54; its 19 tract files of 49
    row groups: 1.66 against 1.57, the stellar locus 2.10 against 1.86). And
    ``pyarrow.dataset`` imports pandas, 40 MB in every process: a ``lean`` read, for tasks
    whose workers otherwise never need pandas (:func:`read_arrays`), always goes through
    ``ParquetFile``.
    """
    keys = dict(piece.partition_values)
    wanted = [c for c in columns if c not in keys]
    try:
        # the planner has read this footer already (cached): its schema names what is there,
        # and ParquetFile need not parse it again
        footer = read_footer(piece.path)
        present = set(footer.schema.names)
        missing = [c for c in wanted if c not in present]
        if missing:
            raise CatalogReadError(
                f"{piece.path!r} has no column(s) {missing} (needed by this selection)"
            )
        groups = footer.num_row_groups if piece.row_groups is None else len(piece.row_groups)
        table = decode_row_groups(
            piece.path,
            piece.row_groups,
            wanted,
            use_threads,
            lean=lean or groups <= _FEW_ROW_GROUPS,
            metadata=footer.metadata if footer.row_group_ids is None else None,
        )
    except CatalogReadError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise CatalogReadError(f"cannot read {piece.path!r}: {exc}") from exc
    n = table.num_rows
    constants = {key: value for key, value in keys.items() if key in columns}
    return _ArrowColumns(table, constants), n


def _chunk_views(column: pa.ChunkedArray) -> list[tuple[int, npt.NDArray[Any]]]:
    """``(first row, NumPy view)`` of every non-empty chunk of a numeric column (no copy)."""
    dtype = np.dtype(column.type.to_pandas_dtype())
    views = []
    start = 0
    for chunk in column.chunks:
        view = _data_view(chunk, dtype)
        if view is not None:
            views.append((start, view))
        start += len(chunk)
    return views


class _ArrowColumns(Mapping[str, Any]):
    """A read table's columns, converted to NumPy only when a test or an output asks.

    The row tests touch a few columns of every row; the other columns are only needed for the
    rows that pass, so :meth:`take` gathers just those rows (a cut that keeps 3 % of the rows
    then never converts 97 % of the other columns' values). Float columns are compared
    (:meth:`compare`) and gathered chunk by chunk from NumPy views of Arrow's buffers, never
    joined into one array; other columns are gathered by Arrow, or converted whole when a test
    needs all their rows.
    """

    def __init__(self, table: pa.Table, constants: Mapping[str, Any]) -> None:
        self._table = table
        self._constants = dict(constants)
        self._converted: dict[str, Any] = {}
        self._views_cache: dict[str, list[tuple[int, npt.NDArray[Any]]] | None] = {}
        self._last_split: tuple[Any, tuple[int, ...], list[npt.NDArray[np.intp]]] | None = None

    def __getitem__(self, key: str) -> Any:
        if key not in self._converted:
            if key in self._constants:
                self._converted[key] = np.full(self._table.num_rows, self._constants[key])
            else:
                self._converted[key] = _to_numpy(self._table.column(key))
        return self._converted[key]

    def __iter__(self) -> Iterator[str]:
        return iter([*self._table.column_names, *self._constants])

    def __len__(self) -> int:
        return self._table.num_columns + len(self._constants)

    def _views(self, key: str) -> list[tuple[int, npt.NDArray[Any]]] | None:
        """A float column without missing values as ``(first row, NumPy view)`` per chunk,
        without copying (None for other columns: they are converted whole)."""
        if key not in self._views_cache:
            column = self._table.column(key)
            floats = pa.types.is_floating(column.type) and not column.null_count
            self._views_cache[key] = _chunk_views(column) if floats else None
        return self._views_cache[key]

    def chunks(self, key: str) -> Chunks | None:
        """A numeric column without missing values as Arrow decoded it, one NumPy view per
        non-empty chunk (row group), without copying; a column already converted, as its one
        array. None for other columns (flags, strings, missing values: they are converted
        whole, see :func:`_to_numpy`)."""
        if key in self._converted or key in self._constants:
            return [(0, self[key])]
        column = self._table.column(key)
        numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
        if not numeric or column.null_count:
            return None
        if pa.types.is_floating(column.type):
            return self._views(key)  # shared with the comparisons and gathers
        return _chunk_views(column)

    def compare(self, test: ex.Compare) -> npt.NDArray[np.bool_] | None:
        """``name OP number`` on every row of a column not converted yet, chunk by chunk.

        The chunks (one per row group) are compared where Arrow decoded them, into one mask:
        joining them first would write and read the whole column once more (a 1.2M-row
        float32 column: 1.1 against 0.45 ms). None when the column does not allow it.
        """
        assert isinstance(test.left, ex.Name)
        key = test.left.id
        if key in self._converted or key in self._constants:
            return None
        views = self._views(key)
        return _compare_chunks(test, views, self._table.num_rows) if views else None

    def take(self, key: str, rows: npt.NDArray[np.intp]) -> Any:
        """Column ``key`` at ``rows`` (sorted indices), as NumPy.

        A float column not converted yet is gathered chunk by chunk from Arrow's buffers
        (0.42 against 0.74 ms through Arrow's ``take`` for 3.5 % of a 1.2M-row column).
        """
        if key in self._converted or key in self._constants:
            return self[key][rows]
        views = self._views(key)
        if views is None or not len(rows):
            return _to_numpy(self._table.column(key).take(_indices(rows)))
        split = self._split(rows, views)
        parts = [view[local] for (_, view), local in zip(views, split, strict=True) if len(local)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _split(
        self, rows: npt.NDArray[np.intp], views: list[tuple[int, npt.NDArray[Any]]]
    ) -> list[npt.NDArray[np.intp]]:
        """``rows`` as indices into each chunk of ``views``; the last split is reused, as
        every column taken at the same rows has the same chunks (the row groups)."""
        starts = tuple(start for start, _ in views)
        held = self._last_split
        if held is not None and held[0] is rows and held[1] == starts:
            return held[2]
        bounds = [*np.searchsorted(rows, starts).tolist(), len(rows)]
        ranges = zip(starts, bounds[:-1], bounds[1:], strict=True)
        local = [rows[lo:hi] - start for start, lo, hi in ranges]
        self._last_split = (rows, starts, local)
        return local


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


def _leaf_mask(
    test: ex.Expr, cols: Mapping[str, Any], rows: npt.NDArray[np.intp] | None, n: int
) -> npt.NDArray[np.bool_]:
    """Evaluate one test on the given rows (None: all rows), gathering only its columns."""
    simple = test if isinstance(test, ex.Compare) and isinstance(test.left, ex.Name) else None
    if simple is not None and rows is None and isinstance(cols, _ArrowColumns):
        chunked = cols.compare(simple)
        if chunked is not None:
            return chunked
    needed = ex.names(test)
    subset: Mapping[str, Any]
    if rows is None:
        subset = cols
    elif isinstance(cols, _ArrowColumns):
        subset = {k: cols.take(k, rows) for k in needed}
    else:
        subset = {k: cols[k][rows] for k in needed}
    length = n if rows is None else len(rows)
    if simple is not None:
        assert isinstance(simple.left, ex.Name)
        fast = _compare_native(simple, subset[simple.left.id])
        if fast is not None:
            return fast
    return np.asarray(_as_length(ex.evaluate(test, _Float64Columns(subset)), length), dtype=bool)


def _native_compare(test: ex.Compare, dtype: np.dtype[Any]) -> tuple[Any, Any] | bool | None:
    """``column OP number`` for a float column of ``dtype``, exactly as in float64, without
    widening it: ``(ufunc, constant of the column's type)``, or the answer for every row
    (``True``/``False``), or None when the test is not of that kind.

    Widening float32 to float64 is exact and keeps the order, so the float64 comparison with a
    constant ``c`` only depends on where ``c`` falls between two neighbouring float32 values
    ``lo <= c <= hi``: ``x > c`` is ``x > lo`` when ``c`` is not a float32 (no float32 lies
    strictly between ``lo`` and ``c``), and so on. NaN compares false either way.

    Examples
    --------
    >>> ufunc, value = _native_compare(ex.parse("x > 0.1"), np.dtype(np.float32))
    >>> ufunc.__name__, float(value) < 0.1 < float(np.nextafter(value, np.float32(1)))
    ('greater', True)
    >>> _native_compare(ex.parse("x == 0.1"), np.dtype(np.float32))
    False
    """
    if not isinstance(test.right, ex.Number) or test.op not in ex.COMPARISONS:
        return None
    c = float(test.right.value)
    if dtype == np.float64:
        return ex.COMPARISONS[test.op], c
    if dtype != np.float32 or math.isnan(c):
        return None
    with np.errstate(over="ignore"):
        near = np.float32(c)
    if float(near) == c:  # c is a float32: compare as it is
        return ex.COMPARISONS[test.op], near
    lo, hi = (np.nextafter(near, np.float32(-np.inf)), near) if float(near) > c else (
        near, np.nextafter(near, np.float32(np.inf)))  # fmt: skip
    if test.op in (">", ">="):
        return np.greater, lo  # x >= c and x > c: x > lo
    if test.op in ("<", "<="):
        return np.less, hi
    return test.op == "!="  # no float32 equals c


def _compare_native(test: ex.Compare, column: Any) -> npt.NDArray[np.bool_] | None:
    """``column OP number`` on a float column (see :func:`_native_compare`); None for other
    columns and tests.

    Examples
    --------
    >>> x = np.array([0.1, 0.5, np.nan], dtype=np.float32)
    >>> test = ex.parse("x > 0.1")
    >>> _compare_native(test, x).tolist(), (x.astype(np.float64) > 0.1).tolist()
    ([True, True, False], [True, True, False])
    """
    if not isinstance(column, np.ndarray):
        return None
    return _compare_chunks(test, [(0, column)], len(column))


def _compare_chunks(
    test: ex.Compare, chunks: list[tuple[int, npt.NDArray[Any]]], n: int
) -> npt.NDArray[np.bool_] | None:
    """``name OP number`` on ``n`` rows held as ``(first row, array)`` chunks of one float
    type, into one mask (see :func:`_native_compare`); None for other types and tests."""
    how = _native_compare(test, chunks[0][1].dtype)
    if how is None:
        return None
    if isinstance(how, bool):
        return np.full(n, how)
    ufunc, value = how
    out = np.empty(n, dtype=np.bool_)
    for start, values in chunks:
        ufunc(values, value, out=out[start : start + len(values)])
    return out


# While at least this fraction of a partition's rows is still in question, tests run on whole
# columns and the rows are a boolean mask: a compare and an ``&`` over a whole column cost less
# than gathering a large subset of it by index (0.4 ms against 1-4 ms for a 1.2M-row tract).
# Below it, the rows become sorted indices and each test gathers only their values.
_DENSE_FRACTION = 0.25

# Rows still in question: None (all of them), a boolean mask over the partition, or sorted
# indices into it.
_Rows = npt.NDArray[Any] | None


def _is_mask(rows: _Rows) -> bool:
    return rows is not None and rows.dtype == np.bool_


def _settle(rows: _Rows, n: int) -> _Rows:
    """A mask that has become sparse, as indices (kept a mask while dense)."""
    if rows is not None and _is_mask(rows) and np.count_nonzero(rows) < _DENSE_FRACTION * n:
        return np.flatnonzero(rows)
    return rows


def _as_mask(rows: _Rows, n: int) -> npt.NDArray[np.bool_]:
    if rows is None:
        return np.ones(n, dtype=np.bool_)
    if _is_mask(rows):
        return rows
    mask = np.zeros(n, dtype=np.bool_)
    mask[rows] = True
    return mask


def _filter(test: ex.Expr, cols: Mapping[str, Any], rows: _Rows, n: int) -> _Rows:
    """The rows among ``rows`` that pass a boolean test (see :data:`_Rows`).

    ``&`` runs its parts cheapest first, each on the rows the previous ones kept; ``|`` runs
    its second side only on the rows the first rejected. While most rows are in, the rows are
    a mask and the tests run on whole columns; once few are, indices, and a test gathers only
    their values: a cut such as ``clean & extendedness < 0.5 & ((snr_r >= 300 & psFlux_r >
    f) | (snr_i >= 300 & psFlux_i > f))`` compares whole columns until the flux limits leave
    a few per cent of the rows, and divides only those rows' fluxes.
    """
    if isinstance(test, ex.BinOp) and test.op == "&":
        for part in sorted(ex.conjuncts(test), key=_cost):
            rows = _settle(_filter(part, cols, rows, n), n)
            if rows is not None and not _is_mask(rows) and len(rows) == 0:
                break
        return rows
    if isinstance(test, ex.BinOp) and test.op == "|":
        left = _settle(_filter(test.left, cols, rows, n), n)
        if (rows is None or _is_mask(rows)) and left is not None and not _is_mask(left):
            # few rows passed the first side: mark them off a copy of the rows in question
            # (one full-length array where the masks' &, ~ and | made six)
            unmarked = np.ones(n, dtype=np.bool_) if rows is None else rows.copy()
            unmarked[left] = False
            right = _settle(_filter(test.right, cols, _settle(unmarked, n), n), n)
            if right is not None and not _is_mask(right):
                return np.sort(np.concatenate([left, right]))  # disjoint: a sorted union
            return _as_mask(right, n) | _as_mask(left, n)
        if rows is None or _is_mask(rows):
            kept = _as_mask(left, n)
            rest = _settle(_as_mask(rows, n) & ~kept, n)
            return kept | _as_mask(_filter(test.right, cols, rest, n), n)
        # indices: merge two sorted subsets by marking row numbers (no sort); from indices,
        # both sides come back as indices
        marked = np.zeros(n, dtype=bool)
        marked[left] = True
        rest = rows[~marked[rows]]
        marked[_filter(test.right, cols, rest, n)] = True
        return rows[marked[rows]]
    if rows is None:
        return _leaf_mask(test, cols, None, n)
    if _is_mask(rows):
        mask = _leaf_mask(test, cols, None, n)
        if isinstance(test, ex.Name):  # the column itself: never written to
            return rows & mask
        return np.logical_and(mask, rows, out=mask)
    if len(rows) == 0:
        return rows
    return rows[_leaf_mask(test, cols, rows, n)]


def row_indices(plan: ReadPlan, cols: Mapping[str, Any], n: int) -> npt.NDArray[np.intp] | None:
    """The rows that pass the filter and every region, as sorted indices; None means all.

    The filter's conjuncts and then the regions are applied one after the other, each only on
    the rows that passed the previous ones (cheapest first, see :func:`_filter`), so an
    expensive test (a magnitude's logarithm, a cone's trigonometry) runs on few rows when an
    early cut is selective.
    """
    if plan.filter is None and not plan.regions:
        return None
    survivors = None  # row indices still in; None: all rows
    if plan.filter is not None:
        kept = _filter(plan.filter, cols, None, n)
        dense = kept is None or _is_mask(kept)
        survivors = np.flatnonzero(_as_mask(kept, n)) if dense else kept
    for region in plan.regions:
        if survivors is None:
            survivors = np.flatnonzero(_apply_test(region, plan, cols, n))
        elif survivors.size == 0:
            break
        else:
            subset = {k: v[survivors] for k, v in cols.items()}
            survivors = survivors[_apply_test(region, plan, subset, len(survivors))]
    return survivors


def read_arrays(
    piece: ParquetPiece | MemoryPiece, plan: ReadPlan, use_threads: bool = True
) -> dict[str, npt.NDArray[Any]]:
    """Read one partition: its requested quantities, as NumPy arrays, for the rows that pass.

    What :func:`read_piece` puts in a DataFrame. Tasks that only hand the columns to NumPy
    code (the two-point split) read through this, so that their workers never import pandas
    (40 MB a process): it decodes through ``ParquetFile`` (:func:`_read_parquet`).

    ``use_threads``: decode the columns on Arrow's threads (see :func:`arrow_threads`).
    """
    return _read(piece, plan, use_threads, lean=True)[0]


def _read(
    piece: ParquetPiece | MemoryPiece, plan: ReadPlan, use_threads: bool, lean: bool = False
) -> tuple[dict[str, npt.NDArray[Any]], int]:
    """:func:`read_arrays`, and the number of rows (known even when no column is asked)."""
    cols, n = _decode(piece, plan.columns, use_threads, lean)
    return _outputs(plan, cols, n, row_indices(plan, cols, n))


def _decode(
    piece: ParquetPiece | MemoryPiece, columns: tuple[str, ...], use_threads: bool, lean: bool
) -> tuple[Mapping[str, Any], int]:
    """A partition's stored ``columns`` (NumPy arrays, or Arrow's as :class:`_ArrowColumns`)."""
    if isinstance(piece, MemoryPiece):
        return _read_memory(piece, columns)
    return _read_parquet(piece, columns, use_threads, lean)


def _outputs(
    plan: ReadPlan, cols: Mapping[str, Any], n: int, keep: npt.NDArray[np.intp] | None
) -> tuple[dict[str, npt.NDArray[Any]], int]:
    """The plan's outputs at the rows ``keep`` (None: all), and their number."""
    if keep is not None:
        needed: set[str] = set()
        for _, expr in plan.outputs:
            needed |= ex.names(expr)
        # a take by index reads only the surviving rows; a boolean mask would scan all of
        # them again for every column (cuts usually keep few rows)
        if isinstance(cols, _ArrowColumns):
            arrow = cols
            cols = {k: arrow.take(k, keep) for k in arrow if k in needed}
        else:
            cols = {k: v[keep] for k, v in cols.items() if k in needed}
        n = len(keep)
    as64 = _Float64Columns(cols)
    out: dict[str, Any] = {}
    for name, expr in plan.outputs:
        # a plain column keeps its stored type; anything computed is float64
        value = cols[expr.id] if isinstance(expr, ex.Name) else ex.evaluate(expr, as64)
        out[name] = _as_length(value, n)
    return out, n


class ChunkedColumns(Mapping[str, npt.NDArray[Any]]):
    """A partition's columns as the reader decoded them: each a list of chunks.

    ``chunks(name)`` gives a column as ``(first row, values)`` pieces (:data:`Chunks`), in
    row order, covering its ``rows`` rows, at least one piece (an empty column is one empty
    array, which keeps its type). As a mapping, ``self[name]`` is the column as one array,
    joined on first use; code that can work piece by piece never pays for the join.

    Examples
    --------
    >>> part = ChunkedColumns({"x": [(0, np.array([1.0, 2.0])), (2, np.array([3.0]))]}, 3)
    >>> part["x"].tolist(), [start for start, _ in part.chunks("x")], part.rows
    ([1.0, 2.0, 3.0], [0, 2], 3)
    >>> ChunkedColumns.of_arrays({"x": np.arange(2)}, 2).chunks("x")
    [(0, array([0, 1]))]
    """

    def __init__(self, columns: Mapping[str, Chunks], rows: int) -> None:
        self._columns = dict(columns)
        self.rows = rows
        self._joined: dict[str, npt.NDArray[Any]] = {}

    @classmethod
    def of_arrays(cls, arrays: Mapping[str, npt.NDArray[Any]], rows: int) -> ChunkedColumns:
        """Columns held as whole arrays, one chunk each."""
        return cls({name: [(0, values)] for name, values in arrays.items()}, rows)

    def chunks(self, name: str) -> Chunks:
        """Column ``name`` as ``(first row, values)`` pieces, without copying."""
        return self._columns[name]

    def subset(self, names: Sequence[str]) -> ChunkedColumns:
        """These columns only (sharing their chunks)."""
        return ChunkedColumns({name: self._columns[name] for name in names}, self.rows)

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        if name not in self._joined:
            pieces = [values for _, values in self._columns[name]]
            self._joined[name] = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        return self._joined[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def read_chunks(
    piece: ParquetPiece | MemoryPiece, plan: ReadPlan, use_threads: bool = True
) -> ChunkedColumns:
    """Read one partition: its requested quantities for the rows that pass, as chunks.

    What :func:`read_piece` reads, for code that can work on a column piece by piece: a plain
    numeric column without missing values, when every row is kept, is handed over as Arrow
    decoded it (one NumPy view of Arrow's buffer per row group, see
    :meth:`_ArrowColumns.chunks`), never joined into one array, which would write and read
    every value once more (0.3 s of the 20M-row depth-map benchmark). Other outputs
    (computed quantities, flags, strings, columns with missing values), and every output of
    a read whose filter or regions select rows (which are gathered anyway), are one array
    each, as :func:`read_piece` has them.

    ``use_threads``: decode the columns on Arrow's threads (see :func:`arrow_threads`).
    """
    cols, n = _decode(piece, plan.columns, use_threads, lean=False)
    keep = row_indices(plan, cols, n)
    chunked: dict[str, Chunks] = {}
    if keep is None and isinstance(cols, _ArrowColumns):
        for name, expr in plan.outputs:
            views = cols.chunks(expr.id) if isinstance(expr, ex.Name) else None
            if views:  # (no chunk at all: no rows, joined below into a typed empty array)
                chunked[name] = views
    rest = replace(plan, outputs=tuple(o for o in plan.outputs if o[0] not in chunked))
    joined, rows = _outputs(rest, cols, n, keep)
    pieces = {name: chunked.get(name) or [(0, joined[name])] for name, _ in plan.outputs}
    return ChunkedColumns(pieces, rows)


def read_piece(
    piece: ParquetPiece | MemoryPiece, plan: ReadPlan, use_threads: bool = True
) -> pd.DataFrame:
    """Read one partition and return its requested quantities for the rows that pass.

    ``use_threads``: decode the columns on Arrow's threads (see :func:`arrow_threads`).
    """
    import pandas as pd

    out, n = _read(piece, plan, use_threads)
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
    import pandas as pd

    piece = MemoryPiece(
        pd.DataFrame(cols, copy=False) if cols else pd.DataFrame(index=range(n)), -1
    )
    return read_piece(piece, plan)
