"""Catalog.join: the rows of a pandas merge, partition-wise when the layouts allow it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skydask
from skydask.errors import SchemaError

OBJECT_QUANTITIES = ["objectId", "ra", "dec", "extendedness"]
FORCED_QUANTITIES = ["objectId", "visit", "band", "mjd", "psFlux", "psFluxErr"]


def _tables(seed: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Objects in tracts 1-3; forced sources of most of them in tracts 1, 2 and 4 (tract 3's
    objects and some of tract 1's have none; tract 4's have no object), visits 1-6."""
    rng = np.random.default_rng(seed)
    objects = []
    for tract in (1, 2, 3):
        n = 30
        objects.append(
            pd.DataFrame(
                {
                    "objectId": tract * 1000 + np.arange(n),
                    "tract": np.full(n, tract, dtype=np.int32),
                    "ra": 60.0 + tract + rng.uniform(0, 1, n),
                    "dec": rng.uniform(-35, -34, n),
                    "extendedness": rng.integers(0, 2, n).astype(np.float32),
                }
            )
        )
    obj = pd.concat(objects, ignore_index=True)
    rows = []
    for oid, tract in zip(obj["objectId"], obj["tract"], strict=True):
        if tract == 3 or (tract == 1 and oid % 5 == 0):
            continue
        visits = np.sort(rng.choice(np.arange(1, 7), size=rng.integers(1, 5), replace=False))
        rows += [(oid, tract, v) for v in visits]
    rows += [(4000 + i, 4, v) for i in range(5) for v in (2, 3)]
    forced = pd.DataFrame(rows, columns=["objectId", "tract", "visit"])
    forced["filter"] = np.where(forced["visit"] % 2 == 0, "r", "i")
    forced["mjd"] = 60000.0 + forced["visit"]
    forced["psFlux"] = rng.uniform(10, 1000, len(forced)).astype(np.float32)
    forced["psFluxErr"] = np.float32(5.0)
    return obj, forced


def _write(root: Path, obj: pd.DataFrame, forced: pd.DataFrame) -> dict[str, Path]:
    paths = {
        "object": root / "object",
        "fs_tract": root / "fs_tract",
        "fs_visit": root / "fs_visit",
    }
    for p in paths.values():
        p.mkdir(parents=True)
    for tract, part in obj.groupby("tract"):
        part.to_parquet(paths["object"] / f"object_tract_{tract}.parquet", index=False)
    for tract, part in forced.groupby("tract"):
        (paths["fs_tract"] / f"tract={tract}").mkdir()
        part.drop(columns="tract").to_parquet(paths["fs_tract"] / f"tract={tract}" / "fs.parquet")
    for visit, part in forced.groupby("visit"):
        part.drop(columns="tract").to_parquet(
            paths["fs_visit"] / f"forced_source_visit_{visit}.parquet", index=False
        )
    return paths


def _expected(obj: pd.DataFrame, forced: pd.DataFrame, how: str) -> pd.DataFrame:
    right = forced.rename(columns={"filter": "band"})[FORCED_QUANTITIES]
    return obj[OBJECT_QUANTITIES].merge(right, on="objectId", how=how)


def _same_rows(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    keys = ["objectId", "visit"]
    got = got[expected.columns].sort_values(keys, na_position="first", ignore_index=True)
    expected = expected.sort_values(keys, na_position="first", ignore_index=True)
    for column in expected.columns:  # dtypes differ where NaNs enter int columns
        a, b = got[column], expected[column]
        if pd.api.types.is_numeric_dtype(b):
            np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), equal_nan=True)
        else:
            assert a.astype("string").fillna("").tolist() == b.astype("string").fillna("").tolist()


@pytest.fixture
def tables(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Path]]:
    obj, forced = _tables()
    return obj, forced, _write(tmp_path, obj, forced)


@pytest.mark.parametrize("how", ["inner", "left", "right", "outer"])
def test_tract_partitioned_join_is_partition_wise_and_equals_pandas_merge(
    tables: tuple[pd.DataFrame, pd.DataFrame, dict[str, Path]], how: str
) -> None:
    obj, forced, paths = tables
    objects = skydask.open_catalog(paths["object"]).select(OBJECT_QUANTITIES)
    fs = skydask.open_catalog(paths["fs_tract"]).select(FORCED_QUANTITIES)
    joined = objects.join(fs, on="objectId", how=how)
    # one task per tract the join needs: the Object files' tract comes from footer
    # statistics (min == max), the ForcedSource's from its hive directories
    tracts = {"inner": 2, "left": 3, "right": 3, "outer": 4}[how]
    assert joined.npartitions == tracts
    _same_rows(joined.compute(), _expected(obj, forced, how))


@pytest.mark.parametrize("how", ["inner", "left"])
def test_per_visit_files_need_a_shuffle_and_give_the_same_rows(
    tables: tuple[pd.DataFrame, pd.DataFrame, dict[str, Path]], how: str
) -> None:
    obj, forced, paths = tables
    objects = skydask.open_catalog(paths["object"]).select(OBJECT_QUANTITIES)
    fs = skydask.open_catalog(paths["fs_visit"]).select(FORCED_QUANTITIES)
    _same_rows(objects.join(fs, how=how).compute(), _expected(obj, forced, how))
    with pytest.raises(SchemaError, match="partition-wise"):
        objects.join(fs, strategy="partitionwise")
    # forcing the shuffle on co-partitioned tables gives the same rows as well
    tract_fs = skydask.open_catalog(paths["fs_tract"]).select(FORCED_QUANTITIES)
    shuffled = objects.join(tract_fs, how=how, strategy="shuffle").compute()
    _same_rows(shuffled, _expected(obj, forced, how))


def test_in_memory_join_and_join_on_two_keys_by_visit_partitions(
    tables: tuple[pd.DataFrame, pd.DataFrame, dict[str, Path]],
) -> None:
    obj, forced, paths = tables
    objects = skydask.from_pandas(obj, npartitions=2).select(OBJECT_QUANTITIES)
    fs = skydask.from_pandas(forced, npartitions=3).select(FORCED_QUANTITIES)
    _same_rows(objects.join(fs, how="outer").compute(), _expected(obj, forced, "outer"))

    # ForcedSource to itself on (objectId, visit), both in per-visit files: visit is part of
    # the key and constant in every file, so each visit is joined in its own task
    a = skydask.open_catalog(paths["fs_visit"]).select(["objectId", "visit", "psFlux"])
    b = skydask.open_catalog(paths["fs_visit"]).select(["objectId", "visit", "mjd"])
    both = a.join(b, on=["objectId", "visit"])
    assert both.npartitions == forced["visit"].nunique()
    got = both.compute().sort_values(["objectId", "visit"], ignore_index=True)
    expected = forced.sort_values(["objectId", "visit"], ignore_index=True)
    np.testing.assert_allclose(got["psFlux"], expected["psFlux"])
    np.testing.assert_allclose(got["mjd"], expected["mjd"])


def test_join_errors_name_the_parameter_or_quantity(
    tables: tuple[pd.DataFrame, pd.DataFrame, dict[str, Path]],
) -> None:
    _, _, paths = tables
    objects = skydask.open_catalog(paths["object"])
    fs = skydask.open_catalog(paths["fs_tract"])
    with pytest.raises(SchemaError, match="'how'"):
        objects.join(fs, how="cross")
    with pytest.raises(SchemaError, match="'strategy'"):
        objects.join(fs, strategy="broadcast")
    with pytest.raises(SchemaError, match="no quantity 'sourceId'"):
        objects.join(fs, on="sourceId")
