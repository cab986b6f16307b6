"""The export: RA/Dec equal to the image WCS's answer, a catalogue skydask opens, the CLI, and
the mask layer that coadds and cut-outs honour."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from astropy.io import fits
from astropy.wcs import WCS

sys.path.insert(0, str(Path(__file__).parent))  # the helpers beside us (not on the pythonpath)

import skydask
import skydask.images as im
from skydask.checker import Database, ImageStore, export_reports, hide_flagged, migrate
from skydask.checker.auth import create_user
from skydask.checker.checks import Mark, next_image, register_images, submit_check
from skydask.checker.cli import add_checker_commands
from skydask.checker.masklayer import flag_mask, flags_by_visit
from skydask.images.masks import bit
from skydask.synth.images import ImageStackInfo

pytest_plugins = ["checker_fixtures"]

# (x, y) pixels marked on the first image: away from the edges, not on integer positions
MARKS = [
    Mark(37.3, 101.8, "satellite"),
    Mark(150.0, 20.0, "cosmic_ray", label="long one"),
    Mark(60.0, 60.0, "bright_defect", false_positive=True),
    Mark(90.0, 90.0, "awesome"),
]


@pytest.fixture(scope="module")
def checked(
    checker_stack_info: ImageStackInfo,
    checker_store: ImageStore,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Database, str, Path]:
    """A SQLite database with one check of the first image (MARKS) and one 'fine'."""
    db = Database(tmp_path_factory.mktemp("export") / "c.db")
    migrate(db)
    register_images(db, checker_store, "dc2-test")
    user = create_user(db, "exporter", "password-123")
    first = next_image(db, user.id, "dc2-test")
    assert first is not None
    submit_check(db, user.id, first.id, "problem", MARKS)
    second = next_image(db, user.id, "dc2-test")
    assert second is not None
    submit_check(db, user.id, second.id, "fine", [])
    out = export_reports(db, tmp_path_factory.mktemp("out") / "reports.parquet")
    return db, first.key, out


def test_export_ra_dec_is_the_wcs_answer(
    checked: tuple[Database, str, Path], checker_stack_info: ImageStackInfo
) -> None:
    _, key, out = checked
    table = pd.read_parquet(out)
    assert len(table) == len(MARKS)
    header = fits.getheader(checker_stack_info.path / f"{key}.fits", "IMAGE")
    wcs = WCS(header)
    for mark, row in zip(MARKS, table.itertuples(), strict=True):
        assert (row.image_id, row.x, row.y, row.problem) == (key, mark.x, mark.y, mark.problem)
        sky = wcs.pixel_to_world(mark.x, mark.y)
        # the WCS's own answer, to floating-point roundoff (1e-9 deg = 4 micro-arcsec)
        assert abs(row.ra - sky.ra.deg) < 1e-9 and abs(row.dec - sky.dec.deg) < 1e-9
    assert table["band"].iloc[0] == fits.getheader(checker_stack_info.path / f"{key}.fits")["BAND"]
    assert table["user"].unique().tolist() == ["exporter"]
    assert table["false_positive"].tolist() == [False, False, True, False]
    assert table["label"].tolist()[1] == "long one" and table["label"].isna().tolist()[0]
    assert str(table["time"].dtype) == "datetime64[us, UTC]"


def test_export_opens_as_a_catalogue(checked: tuple[Database, str, Path]) -> None:
    _, _, out = checked
    cat = skydask.open_catalog(out)
    assert len(cat) == len(MARKS)
    frame = cat.to_dask().compute()
    assert {"ra", "dec", "problem", "x", "y", "image_id"} <= set(frame.columns)
    first = frame.iloc[0]
    near = cat.cone(float(first["ra"]), float(first["dec"]), 0.5 / 3600).to_dask().compute()
    assert near["report_id"].tolist() == [int(first["report_id"])]


def test_cli_export_writes_parquet_and_mask(
    checked: tuple[Database, str, Path], checker_stack_info: ImageStackInfo, tmp_path: Path
) -> None:
    db, key, _ = checked
    parser = argparse.ArgumentParser(prog="skydask")
    add_checker_commands(parser.add_subparsers(dest="command", required=True))
    out, masks = tmp_path / "r.parquet", tmp_path / "mask.nc"
    args = parser.parse_args(
        [
            "checker",
            "export",
            "--db",
            db.url,
            "--out",
            str(out),
            "--images",
            str(checker_stack_info.path),
            "--mask-out",
            str(masks),
        ]
    )
    assert args.func(args) == 0
    assert len(pd.read_parquet(out)) == len(MARKS)
    layer = xr.open_dataset(masks, engine="scipy")["checker_mask"]
    v = list(layer["visit"].values).index(key)
    assert int(layer.values[v, 102, 37]) & bit("STREAK")
    assert layer.values[v].sum() > 0 and layer.values[:v].sum() == 0


def _disc_by_loops(shape: tuple[int, int], x: float, y: float, r: float) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    for j in range(shape[0]):
        for i in range(shape[1]):
            out[j, i] = (i - x) ** 2 + (j - y) ** 2 <= r * r
    return out


def test_mask_layer_flags_exactly_the_regions(
    checked: tuple[Database, str, Path], checker_stack_info: ImageStackInfo
) -> None:
    _, key, out = checked
    stack = im.open_stack(checker_stack_info.path)
    layer = flag_mask(stack, out).compute()
    v = list(stack["visit"].values).index(key)
    # false positive and "awesome!" flag nothing; the others flag a disc (satellite, radius 30)
    # and a disc (cosmic ray, radius 8), each in its class's plane
    flags = flags_by_visit(out)[key]
    assert [f[0] for f in flags] == [bit("STREAK"), bit("CR")]
    streak = (layer.values[v] & bit("STREAK")) != 0
    cr = (layer.values[v] & bit("CR")) != 0
    shape = (int(stack["ny"].values[v]), int(stack["nx"].values[v]))
    assert np.array_equal(streak, _disc_by_loops(shape, 37.3, 101.8, 30))
    assert np.array_equal(cr, _disc_by_loops(shape, 150.0, 20.0, 8))
    assert layer.values[np.arange(layer.sizes["visit"]) != v].sum() == 0


def test_hidden_regions_leave_coadds_and_show_in_cutouts(
    checked: tuple[Database, str, Path], checker_stack_info: ImageStackInfo
) -> None:
    _, key, out = checked
    stack = im.open_stack(checker_stack_info.path)
    flagged = hide_flagged(stack, out)
    v = list(stack["visit"].values).index(key)
    band = str(stack["band"].values[v])
    plain = im.coadd(stack, band=band).compute()
    hidden = im.coadd(flagged, band=band).compute()
    wcs = plain.attrs["wcs"]
    sky = stack["wcs"].values[v].pixel_to_world(37.3, 101.8)
    cx, cy = (round(float(c)) for c in wcs.world_to_pixel(sky))
    assert int(hidden["exposure_count"][cy, cx]) == int(plain["exposure_count"][cy, cx]) - 1
    far = stack["wcs"].values[v].pixel_to_world(150.0, 140.0)
    fx, fy = (round(float(c)) for c in wcs.world_to_pixel(far))
    assert int(hidden["exposure_count"][fy, fx]) == int(plain["exposure_count"][fy, fx])
    stamps = im.cutouts(flagged, sky.ra.deg, sky.dec.deg, 9).compute()
    sv = list(stamps["visit"].values).index(key)
    assert int(stamps["mask"].values[0, sv, 4, 4]) & bit("STREAK")
    others = [i for i in range(stamps.sizes["visit"]) if i != sv]
    assert not (stamps["mask"].values[0, others] & bit("STREAK")).any()


def test_rejected_and_merged_reports_flag_nothing() -> None:
    frame = pd.DataFrame(
        {
            "image_id": ["a", "a", "a"],
            "x": [1.0, 2.0, 3.0],
            "y": [1.0, 2.0, 3.0],
            "problem": ["ghost", "ghost", "ghost"],
            "false_positive": [False, False, False],
            "status": ["rejected", "merged", "confirmed"],
        }
    )
    assert [f[2] for f in flags_by_visit(frame)["a"]] == [3.0]
    with pytest.raises(skydask.errors.SpecError, match="lacks the columns"):
        flags_by_visit(frame.drop(columns="status"))
