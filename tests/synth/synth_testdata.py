"""Parameters of the shared test catalogue and small helpers (imported by the tests)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# 8 tracts (2 Dec rings x 4 in RA), ~26.5 deg^2: enough tracts for npartitions=7 and enough
# HEALPix pixels (~2200 at nside 512) for per-pixel statistics, yet quick to generate.
FOOTPRINT = (58.0, 66.0, -36.0, -32.0)
ROWS = 100_000
SEED = 3


def read_all(path: Path) -> dict[str, pd.DataFrame]:
    """Every Parquet file of a catalogue directory, by relative path."""
    return {str(f.relative_to(path)): pd.read_parquet(f) for f in sorted(path.rglob("*.parquet"))}
