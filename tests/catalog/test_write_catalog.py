"""write_catalog through the Catalog API: round trip, HATS reading, pixel pruning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pytest

import skydask
from skydask.catalog.regions import angular_separation_deg


@pytest.fixture(autouse=True)
def _sync_scheduler() -> Any:
    with dask.config.set(scheduler="sync"):
        yield


def test_round_trip_keeps_every_row_and_value(make_dc2_tracts: Any, tmp_path: Path) -> None:
    root, truth = make_dc2_tracts(ntracts=3, npatch=4, rows_per_patch=700)
    info = skydask.write_catalog(
        skydask.open_catalog(root), tmp_path / "hats", max_rows_per_pixel=2000
    )
    assert info.nrows == len(truth)
    back = skydask.open_catalog(tmp_path / "hats")
    assert back.schema.flavour == "dc2"
    assert back.npartitions == info.npixels > 1
    assert len(back) == len(truth)
    got = (
        back.compute().drop(columns=["_healpix_29"]).sort_values("objectId").reset_index(drop=True)
    )
    expected = truth.sort_values("objectId").reset_index(drop=True)
    pd.testing.assert_frame_equal(got[expected.columns], expected)


def test_hats_cone_prunes_by_pixel_and_row_group(make_dc2_tracts: Any, tmp_path: Path) -> None:
    root, truth = make_dc2_tracts(ntracts=4, npatch=4, rows_per_patch=1000)
    skydask.write_catalog(
        skydask.open_catalog(root), tmp_path / "hats", max_rows_per_pixel=1500, row_group_rows=200
    )
    cat = skydask.open_catalog(tmp_path / "hats").cone(51.5, -34.0, 0.25)
    out = cat.select(["objectId"]).compute()
    expected = truth.objectId[angular_separation_deg(truth.ra, truth.dec, 51.5, -34.0) <= 0.25]
    assert sorted(out.objectId) == sorted(expected)
    stats = cat.prune_stats
    assert stats.files_kept < stats.files_total
    assert stats.rows_kept < 0.25 * len(truth)


def test_hats_healpix_region_uses_the_index_column(make_dc2_tracts: Any, tmp_path: Path) -> None:
    import hpgeom

    root, truth = make_dc2_tracts(ntracts=2)
    skydask.write_catalog(skydask.open_catalog(root), tmp_path / "hats", max_rows_per_pixel=1000)
    pix = hpgeom.angle_to_pixel(2**9, truth.ra.to_numpy(), truth.dec.to_numpy())
    chosen = sorted(set(pix[::500].tolist()))
    cat = skydask.open_catalog(tmp_path / "hats").healpix(9, chosen)
    out = cat.select(["objectId"]).compute()
    assert sorted(out.objectId) == sorted(truth.objectId[np.isin(pix, chosen)])
    assert cat.prune_stats.row_groups_kept < cat.prune_stats.row_groups_total


def test_write_applies_selection_and_cuts(make_dc2_tracts: Any, tmp_path: Path) -> None:
    root, truth = make_dc2_tracts(ntracts=2)
    cat = skydask.open_catalog(root).select(["objectId", "ra", "dec", "mag_r"]).where("mag_r < 22")
    skydask.write_catalog(cat, tmp_path / "bright")
    back = skydask.open_catalog(tmp_path / "bright").compute()
    mag_r = -2.5 * np.log10(truth.psFlux_r.astype(float)) + 31.4
    assert len(back) == int((mag_r < 22).sum())
    assert set(back.columns) == {"objectId", "ra", "dec", "mag_r", "_healpix_29"}


def test_healpix_order_is_known_only_for_hats(make_dc2_tracts: Any, tmp_path: Path) -> None:
    root, _ = make_dc2_tracts(ntracts=2)
    assert skydask.open_catalog(root).healpix_order is None
    info = skydask.write_catalog(
        skydask.open_catalog(root), tmp_path / "hats", max_rows_per_pixel=1000
    )
    assert skydask.open_catalog(tmp_path / "hats").healpix_order == info.order


def test_healpix_order_is_none_when_a_pixel_file_is_split(
    make_dc2_tracts: Any, tmp_path: Path
) -> None:
    root, _ = make_dc2_tracts(ntracts=2)
    skydask.write_catalog(skydask.open_catalog(root), tmp_path / "hats", row_group_rows=500)
    with dask.config.set({"skydask.catalog.max-partition-rows": 1000}):
        cat = skydask.open_catalog(tmp_path / "hats").where("mag_r > 0")
        assert cat.npartitions > cat.prune_stats.files_kept
        assert cat.healpix_order is None
