"""Shared fixtures: small on-disk catalogues with known contents.

``make_dc2_tracts`` writes a DC2-layout directory (one file per "tract", one row group per
"patch", rows of a patch spatially compact), with known fluxes, so tests can compare what the
catalogue layer returns against numpy computations on the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalog_testdata import dc2_frame, write_row_groups


@pytest.fixture
def make_dc2_tracts(tmp_path: Path) -> Callable[..., tuple[Path, pd.DataFrame]]:
    """Write ``ntracts`` files of ``npatch`` row groups over adjacent 1-deg RA strips."""

    def make(
        ntracts: int = 4,
        npatch: int = 4,
        rows_per_patch: int = 500,
        seed: int = 1,
        ra0: float = 50.0,
        dec0: float = -35.0,
    ) -> tuple[Path, pd.DataFrame]:
        rng = np.random.default_rng(seed)
        root = tmp_path / f"dc2_{seed}_{ra0}_{dec0}"
        root.mkdir()
        frames = []
        for t in range(ntracts):
            groups = []
            for p in range(npatch):
                # each patch a compact cell: strip t in RA, band p in Dec
                ra = ((ra0 + t) % 360.0, (ra0 + t) % 360.0 + 1.0)
                dec = (dec0 + p * 0.5, dec0 + (p + 1) * 0.5)
                group = dc2_frame(rows_per_patch, rng, ra, dec)
                group.insert(0, "tract", np.int32(t))
                groups.append(group)
            write_row_groups(root / f"object_tract_{t}.parquet", groups)
            frames.extend(groups)
        return root, pd.concat(frames, ignore_index=True)

    return make
