"""Fixtures: one small synthetic catalogue shared by the tests of skydask.synth."""

from __future__ import annotations

import pandas as pd
import pytest
from synth_testdata import FOOTPRINT, ROWS, SEED

from skydask.synth import SynthInfo, generate_object_catalog, read_depth_truth, read_truth


@pytest.fixture(scope="session")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> SynthInfo:
    out = tmp_path_factory.mktemp("synth") / "cat"
    return generate_object_catalog(out, rows=ROWS, seed=SEED, footprint=FOOTPRINT, npartitions=7)


@pytest.fixture(scope="session")
def objects(catalog: SynthInfo) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(f) for f in catalog.files], ignore_index=True)


@pytest.fixture(scope="session")
def truth(catalog: SynthInfo) -> pd.DataFrame:
    return read_truth(catalog.path)


@pytest.fixture(scope="session")
def depth_truth(catalog: SynthInfo) -> pd.DataFrame:
    return read_depth_truth(catalog.path)
