"""Row-group pruning: the one-test-per-file shortcut keeps exactly what testing each row group
keeps, and in unordered files it tests once per file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import skydask
from skydask.schema import expressions as ex

CUTS = [
    "x > 0.7",
    "x < 0.05 | x > 0.97",
    "y > 0.5 & x < 0.2",
    "~(x < 0.9)",
    "log10(x) < -1.5",
    "y / x > 40",
    "where(flag, x, y) > 0.99",
    "flag & x > 0.6",
    "x > 2",
    "abs(y - 0.5) < 0.01",
]


def _write(path: Path, sorted_x: bool, seed: int, groups: int = 8, rows: int = 400) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, groups * rows)
    if sorted_x:
        x.sort()
    frame = pd.DataFrame(
        {
            "x": x,
            "y": rng.uniform(0, 1, len(x)),
            "flag": rng.uniform(0, 1, len(x)) < 0.5,
            "ra": rng.uniform(50, 51, len(x)),
            "dec": rng.uniform(-30, -29, len(x)),
        }
    )
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=rows)


def _one_by_one(path: Path, cut: str) -> list[int]:
    """The row groups whose own statistics may satisfy the cut (the reference)."""
    meta = pq.read_metadata(path)
    names = [meta.schema.column(j).path for j in range(meta.num_columns)]
    expr = ex.parse(cut)
    kept = []
    for i in range(meta.num_row_groups):
        bounds = {}
        for j, name in enumerate(names):
            stats = meta.row_group(i).column(j).statistics
            if stats is not None and stats.has_min_max:
                bounds[name] = (float(stats.min), float(stats.max))
        if ex.may_be_true(expr, bounds):
            kept.append(i)
    return kept


def _kept(root: Path, cut: str) -> dict[str, list[int]]:
    cat = skydask.open_catalog(root).where(cut)
    out: dict[str, list[int]] = {}
    for piece in cat._planned_pieces():
        groups = piece.row_groups
        every = range(pq.read_metadata(piece.path).num_row_groups)
        out.setdefault(Path(piece.path).name, []).extend(every if groups is None else groups)
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pruning")
    _write(root / "a_sorted.parquet", sorted_x=True, seed=1)
    _write(root / "b_unordered.parquet", sorted_x=False, seed=2)
    return root


@pytest.mark.parametrize("cut", CUTS)
def test_kept_row_groups_equal_one_by_one_tests(files: Path, cut: str) -> None:
    kept = _kept(files, cut)
    for name in ("a_sorted.parquet", "b_unordered.parquet"):
        assert kept.get(name, []) == _one_by_one(files / name, cut), name


def test_unordered_file_is_tested_once(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = _one_by_one(files / "a_sorted.parquet", "x > 0.7")
    calls: list[Any] = []
    real = ex.may_be_true

    def counting(expr: ex.Expr, bounds: Any) -> bool:
        calls.append(bounds)
        return real(expr, bounds)

    monkeypatch.setattr(ex, "may_be_true", counting)
    kept = _kept(files, "x > 0.7")
    assert kept["a_sorted.parquet"] == reference
    assert 0 < len(reference) < 8
    assert kept["b_unordered.parquet"] == list(range(8))
    # the sorted file's row groups share no box (tested one by one, 8 tests); the unordered
    # file's common box passes (one test)
    assert len(calls) == 8 + 1
