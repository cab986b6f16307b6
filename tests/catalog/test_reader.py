"""The partition reader's row selection: exact float32 comparisons and short-circuit & and |."""

from __future__ import annotations

import itertools
from typing import Any

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import skydask
from skydask.catalog.reader import ReadPlan, _to_numpy, arrow_threads, row_indices
from skydask.errors import SpecError
from skydask.schema import expressions as ex

OPS = ("<", "<=", ">", ">=", "==", "!=")


@pytest.mark.parametrize("op", OPS)
def test_float32_comparisons_equal_float64_ones(op: str) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(0, 1e3, 20_000).astype(np.float32)
    x[:50] = np.nan
    x[50:60] = np.inf
    # constants that are and are not float32 values, including values stored in the column
    constants = [0.5, 0.1, 3630.78054770101, -2.75, 1e39, -1e39, float(x[100]), float(x[200])]
    constants += [float(np.nextafter(x[300], np.float32(np.inf))) / 2 + float(x[300]) / 2]
    for c in constants:
        test = ex.parse(f"x {op} {c!r}")
        plan = ReadPlan(("x",), (), test)
        got = row_indices(plan, {"x": x}, len(x))
        with np.errstate(invalid="ignore"):
            expected = np.flatnonzero(ex.evaluate(test, {"x": x.astype(np.float64)}))
        assert got is not None
        np.testing.assert_array_equal(got, expected, err_msg=f"x {op} {c!r}")


def _random_columns(n: int, seed: int) -> dict[str, np.ndarray]:
    """Float32 and float64 columns and a flag, for the row tests."""
    rng = np.random.default_rng(seed)
    return {
        "a": rng.normal(0, 1, n).astype(np.float32),
        "b": rng.normal(0, 1, n),
        "c": rng.uniform(0, 10, n).astype(np.float32),
        "f": rng.random(n) < 0.3,
    }


def test_and_or_select_the_same_rows_as_numpy() -> None:
    n = 50_000
    cols = _random_columns(n, seed=3)
    cols["b"][::97] = np.nan
    filters = [
        "(a > 0.1 & b < 0.5) | (c / a >= 3 & f)",
        "f | (a > 0 & (b > 1 | c < 2))",
        "(a > 5 & b > 5) | (c > 100)",  # nothing passes
        "a > -10 | b > 0",  # everything passes
        "a > 0 & b > 0 & c > 5 & f",
        # whole-column masks while most rows pass, then indices: mostly-true tests first, a
        # selective one in the middle, a compound test after them
        "c < 9.9 & f | c >= 0 & a < 5 & a > 2.5 & b < 0",
        "c < 9.9 & ~f & isfinite(b) & (b > 1 | c < 2) & a > -1",
        "c < 9.9 & a > 3.5 & b > 0",  # the mask empties before the last test
        # a first side of | that leaves few rows, on all rows or under a mask, with a second
        # side that leaves many (a mask) or few (indices, merged by a sort)
        "(a > 2 & f) | (c < 5)",
        "(a > 2) | (c < 0.5 & b > 0)",
        "c < 9.9 & ((a > 2) | (c > 9.5))",
        "f & ((a > 1.5) | (b < -1))",
        "(a > 9) | (c > 99)",  # both sides empty
    ]
    for text, extra in itertools.product(filters, ["", " & c > 0.5"]):
        test = ex.parse(text + extra)
        plan = ReadPlan(tuple(cols), (), test)
        got = row_indices(plan, cols, n)
        as64 = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in cols.items()}
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = np.flatnonzero(np.asarray(ex.evaluate(test, as64), dtype=bool))
        assert got is not None
        np.testing.assert_array_equal(got, expected, err_msg=text + extra)


def test_catalog_where_matches_pandas_on_float32_fluxes() -> None:
    rng = np.random.default_rng(11)
    n = 40_000
    df = pd.DataFrame(
        {
            "psFlux_r": rng.lognormal(8, 1.5, n).astype(np.float32),
            "psFluxErr_r": rng.lognormal(2, 0.5, n).astype(np.float32),
            "extendedness": rng.choice([0.0, 1.0], n).astype(np.float32),
        }
    )
    cut = "extendedness < 0.5 & (snr_r >= 300 | mag_r < 21.3)"
    cat = skydask.from_pandas(df, npartitions=3, schema="dc2").where(cut)
    got = cat.select(["psFlux_r"]).compute()["psFlux_r"].to_numpy()
    flux = df["psFlux_r"].to_numpy(np.float64)
    snr = flux / df["psFluxErr_r"].to_numpy(np.float64)
    mag = -2.5 * np.log10(flux) + 31.4
    keep = (df["extendedness"].to_numpy(np.float64) < 0.5) & ((snr >= 300) | (mag < 21.3))
    assert keep.sum() > 100
    np.testing.assert_array_equal(np.sort(got), np.sort(df["psFlux_r"].to_numpy()[keep]))


def test_arrow_threads_setting() -> None:
    assert arrow_threads(1) and not arrow_threads(2)
    with dask.config.set({"skydask.catalog.arrow-threads": True}):
        assert arrow_threads(50)
    with (
        dask.config.set({"skydask.catalog.arrow-threads": "sometimes"}),
        pytest.raises(SpecError, match="arrow-threads"),
    ):
        arrow_threads(3)


@pytest.mark.parametrize(
    "column",
    [
        pa.chunked_array([[True, False, None], [False, True]]),  # a null flag is "not set"
        pa.chunked_array([pa.array([True] * 10 + [False] * 7).slice(3, 9), [True]]),  # offsets
        pa.chunked_array([], pa.bool_()),
        pa.chunked_array([[1.5, None], [2.5]], pa.float32()),
        pa.chunked_array([[1, 2, None], [4]]),
        pa.chunked_array([[1, 2], [3]], pa.int16()),
        pa.chunked_array([], pa.float64()),
    ],
)
def test_columns_convert_as_arrow_does(column: pa.ChunkedArray) -> None:
    """Chunks joined and flags unpacked by hand give Arrow's own conversion."""
    expected = column.fill_null(False) if pa.types.is_boolean(column.type) else column
    want = np.asarray(expected.to_numpy())
    got = _to_numpy(column)
    assert got.dtype == (np.bool_ if pa.types.is_boolean(column.type) else want.dtype)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("row_groups", [None, (1, 2, 5, 6, 7), (3,)])
def test_both_decoders_give_the_same_columns(tmp_path: Any, row_groups: Any) -> None:
    """Arrow's dataset reader and ParquetFile (``lean``, given the parsed footer or not)
    decode the same values, whichever row groups a piece names."""
    import pyarrow.parquet as pq

    from skydask.catalog.reader import decode_row_groups

    rng = np.random.default_rng(5)
    n = 8 * 250
    flux = rng.uniform(0, 1, n).astype(np.float32)
    flux[::37] = np.nan
    table = pa.table({"flux": flux, "flag": rng.uniform(0, 1, n) < 0.3,
                      "id": np.arange(n, dtype=np.int64)})  # fmt: skip
    path = str(tmp_path / "eight.parquet")
    pq.write_table(table, path, row_group_size=250)
    columns = ["id", "flux", "flag"]
    dataset = decode_row_groups(path, row_groups, columns, False)
    lean = decode_row_groups(path, row_groups, columns, False, lean=True)
    parsed = decode_row_groups(
        path, row_groups, columns, False, lean=True, metadata=pq.read_metadata(path)
    )
    rows = n if row_groups is None else 250 * len(row_groups)
    assert dataset.num_rows == lean.num_rows == parsed.num_rows == rows
    for c in columns:
        np.testing.assert_array_equal(_to_numpy(dataset.column(c)), _to_numpy(lean.column(c)))
        np.testing.assert_array_equal(_to_numpy(parsed.column(c)), _to_numpy(lean.column(c)))


def _chunked(values: np.ndarray, cuts: list[int]) -> pa.ChunkedArray:
    """``values`` as an Arrow column in chunks ending at ``cuts``, one of them a slice with an
    offset into a larger array (as a reader can hand them over)."""
    bounds = [0, *cuts, len(values)]
    chunks = [pa.array(values[a:b]) for a, b in itertools.pairwise(bounds)]
    padded = pa.array(np.concatenate([values[:3], values[bounds[1] : bounds[2]]]))
    chunks[1] = padded.slice(3)
    return pa.chunked_array(chunks, type=chunks[0].type)


def test_chunked_columns_select_the_rows_numpy_does() -> None:
    """Row tests and takes on Arrow columns in several chunks (compared and gathered chunk by
    chunk, where Arrow decoded them) give the rows and values of NumPy on whole columns."""
    from skydask.catalog.reader import _ArrowColumns

    n = 30_000
    arrays = _random_columns(n, seed=17)
    arrays["k"] = np.random.default_rng(18).integers(0, 5, n)
    arrays["a"][::101] = np.nan
    cuts = [1_000, 7_000, 7_001, 22_000]
    table = pa.table({k: _chunked(v, cuts) for k, v in arrays.items()})
    # a float column with a missing value is converted whole (no chunk views)
    with_null = pa.chunked_array([[1.5, None], [3.5]], pa.float32())
    filters = [
        "a > 0.1 & c < 5",
        "(a > 0.1 & b < 0.5) | (c / a >= 3 & f)",
        "a > 1.5 & b > 0 & k == 2",
        "c < 9.9 & ((a > 2) | (c > 9.5))",
        "b >= 0.25 & a != 0.5 & c <= 3.3",
        "a == 0.1 | c > 100",  # 0.1 is no float32: nothing equals it
    ]
    outputs = tuple((name, ex.Name(name)) for name in arrays)
    as64 = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in arrays.items()}
    for text in filters:
        test = ex.parse(text)
        plan = ReadPlan(tuple(arrays), outputs, test)
        # one set of columns through the tests (gathers at the rows still in question) and
        # the takes after, at the rows that passed and at every other row, interleaved
        columns = _ArrowColumns(table, {})
        got = row_indices(plan, columns, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = np.flatnonzero(np.asarray(ex.evaluate(test, as64), dtype=bool))
        assert got is not None
        np.testing.assert_array_equal(got, expected, err_msg=text)
        others = np.arange(0, n, 2)
        for name, values in arrays.items():
            for rows in (got, others, got):
                taken = columns.take(name, rows)
                assert taken.dtype == values.dtype
                np.testing.assert_array_equal(taken, values[rows], err_msg=f"{text}: {name}")
    nulls = _ArrowColumns(pa.table({"x": with_null}), {})
    np.testing.assert_array_equal(nulls.take("x", np.array([1, 2])), [np.nan, 3.5])
    assert nulls.compare(ex.parse("x > 1.0")) is None  # type: ignore[arg-type]


def test_arrow_columns_give_their_chunks_as_arrow_decoded_them() -> None:
    """Numeric columns without missing values come as views of Arrow's chunks (one with an
    offset), holding the values of the whole column; others are not chunked."""
    from skydask.catalog.reader import _ArrowColumns

    n = 2_000
    values = {
        "x": np.random.default_rng(5).normal(0, 1, n).astype(np.float32),
        "i": np.arange(n, dtype=np.int64) * 7,
    }
    cuts = [100, 900, 901]
    table = pa.table({k: _chunked(v, cuts) for k, v in values.items()})
    table = table.append_column("flag", pa.chunked_array([np.arange(n) % 3 == 0]))
    table = table.append_column("gap", pa.chunked_array([[1.0, None], [2.0] * (n - 2)]))
    table = table.append_column("igap", pa.chunked_array([[1, None], [2] * (n - 2)]))
    columns = _ArrowColumns(table, {})
    for name, expected in values.items():
        chunks = columns.chunks(name)
        assert chunks is not None
        assert [start for start, _ in chunks] == [0, *cuts]
        assert all(not v.flags.owndata for _, v in chunks)  # views, no copies
        np.testing.assert_array_equal(np.concatenate([v for _, v in chunks]), expected)
        assert chunks[0][1].dtype == expected.dtype
    assert all(columns.chunks(name) is None for name in ("flag", "gap", "igap"))
    columns["gap"]  # once converted, a column is its one array
    gap = columns.chunks("gap")
    assert gap is not None and len(gap) == 1
    np.testing.assert_array_equal(gap[0][1][:3], [1.0, np.nan, 2.0])


def _row_group_file(tmp_path: Any, n: int = 1_000) -> Any:
    """A Parquet file of 8 row groups (more than the reader decodes through ``ParquetFile``,
    which joins them): float32, float64 with a null, int64, a flag."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(9)
    frame = pd.DataFrame(
        {
            "a": rng.normal(0, 1, n).astype(np.float32),
            "b": rng.normal(0, 1, n),
            "k": rng.integers(0, 10, n),
            "f": rng.random(n) < 0.5,
        }
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    b = table.column("b").combine_chunks()
    table = table.set_column(1, "b", pa.array(b.to_numpy(), mask=np.arange(n) == 5))
    path = tmp_path / "groups.parquet"
    pq.write_table(table, path, row_group_size=n // 8)
    return path


def test_read_chunks_equals_read_piece(tmp_path: Any) -> None:
    """A partition read as chunks holds the columns read_piece gives: plain numeric columns
    without missing values in one chunk per row group, the others (a null, a flag, a
    computed quantity, any column of a read whose cut selects rows) as one array; an empty
    read keeps the columns' types."""
    from skydask.catalog.reader import ParquetPiece, read_chunks, read_piece

    path = _row_group_file(tmp_path)
    outputs = (*((c, ex.Name(c)) for c in "abkf"), ("twice", ex.parse("a * 2")))
    plans = {
        "all rows": ReadPlan(tuple("abkf"), outputs),
        "cut": ReadPlan(tuple("abkf"), outputs, ex.parse("a > 0.5")),
        "nothing passes": ReadPlan(tuple("abkf"), outputs, ex.parse("a > 100")),
    }
    pieces = {"whole file": ParquetPiece(str(path)), "no row group": ParquetPiece(str(path), ())}
    for (label, plan), (where, piece) in itertools.product(plans.items(), pieces.items()):
        got = read_chunks(piece, plan, use_threads=False)
        ref = read_piece(piece, plan, use_threads=False)
        assert got.rows == len(ref) and list(got) == list(ref.columns), (label, where)
        for name in ref.columns:
            chunks = got.chunks(name)
            joined = np.concatenate([v for _, v in chunks])
            assert joined.dtype == ref[name].dtype, (label, where, name)
            np.testing.assert_array_equal(joined, ref[name].to_numpy(), err_msg=name)
            np.testing.assert_array_equal(got[name], ref[name].to_numpy(), err_msg=name)
            chunked = label == "all rows" and where == "whole file" and name in ("a", "k")
            assert [s for s, _ in chunks] == (list(range(0, 1_000, 125)) if chunked else [0])
    empty = read_chunks(pieces["whole file"], plans["nothing passes"], use_threads=False)
    assert {c: (len(empty[c]), empty[c].dtype.name) for c in "ak"} == {
        "a": (0, "float32"),
        "k": (0, "int64"),
    }


def test_chunked_columns_join_and_share_chunks() -> None:
    from skydask.catalog.reader import ChunkedColumns

    big = np.arange(10.0)
    part = ChunkedColumns({"x": [(0, big[2:5]), (3, big[7:9])], "y": [(0, big[:5])]}, 5)
    np.testing.assert_array_equal(part["x"], [2.0, 3.0, 4.0, 7.0, 8.0])
    assert part["y"] is part.chunks("y")[0][1]  # one chunk: no copy
    sub = part.subset(["x"])
    assert list(sub) == ["x"] and sub.chunks("x") is part.chunks("x") and sub.rows == 5
