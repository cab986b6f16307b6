"""Small DC2-flavoured tables with known contents, for the catalogue tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

BANDS = "ugrizy"


def dc2_frame(
    n: int, rng: np.random.Generator, ra: tuple[float, float], dec: tuple[float, float]
) -> pd.DataFrame:
    """A DC2-flavoured table with the columns the catalogue tests need."""
    frame = pd.DataFrame(
        {
            "objectId": rng.integers(0, 2**62, n),
            "ra": rng.uniform(*ra, n),
            "dec": np.degrees(
                np.arcsin(rng.uniform(np.sin(np.radians(dec[0])), np.sin(np.radians(dec[1])), n))
            ),
            "extendedness": (rng.random(n) < 0.7).astype(np.float32),
            "clean": rng.random(n) < 0.9,
            "blendedness": rng.exponential(0.05, n).astype(np.float32),
        }
    )
    for b in BANDS:
        flux = (10 ** (-0.4 * (rng.uniform(18, 27, n) - 31.4))).astype(np.float32)
        err = (flux * rng.uniform(0.005, 0.3, n)).astype(np.float32)
        frame[f"psFlux_{b}"] = flux
        frame[f"psFluxErr_{b}"] = err
        frame[f"cModelFlux_{b}"] = (flux * rng.uniform(1.0, 1.5, n)).astype(np.float32)
        frame[f"cModelFluxErr_{b}"] = (err * 1.2).astype(np.float32)
    return frame


def write_row_groups(path: Path, groups: list[pd.DataFrame]) -> None:
    table = pa.Table.from_pandas(groups[0], preserve_index=False)
    with pq.ParquetWriter(path, table.schema) as writer:
        for group in groups:
            writer.write_table(
                pa.Table.from_pandas(group, preserve_index=False, schema=table.schema)
            )
