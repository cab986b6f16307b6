"""Bad input: clear errors that name the file and say what was expected."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helper beside us (not on the pythonpath)
from images_testdata import DECAM_DIR, tan_wcs, write_plain

import skydask.images as im
from skydask.errors import CatalogReadError, SkydaskError, SpecError
from skydask.synth.images import ImageStackInfo

# the shared session fixtures small_stack and noise_stack
pytest_plugins = ["images_fixtures"]


def test_fits_without_wcs(tmp_path: Path) -> None:
    path = write_plain(tmp_path / "nowcs.fits", np.zeros((10, 10), "f4"), None, BAND="r")
    with pytest.raises(CatalogReadError, match=r"nowcs\.fits HDU 0 has no celestial WCS"):
        im.open_stack(path)
    # the whole stack fails, naming the culprit among good files
    write_plain(tmp_path / "good.fits", np.zeros((10, 10), "f4"), tan_wcs(1.0, 1.0, (10, 10)))
    with pytest.raises(CatalogReadError, match=r"nowcs\.fits.*expected CTYPE1/CTYPE2"):
        im.open_stack(tmp_path)


def test_truncated_file(small_stack: ImageStackInfo, tmp_path: Path) -> None:
    src = small_stack.files[0]
    cut = tmp_path / "cut.fits"
    data = src.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # the variance HDU is gone, the mask half there
    with pytest.raises(CatalogReadError, match=r"cut\.fits is truncated"):
        im.open_stack(cut)
    # truncated between opening and reading: the read says so
    whole = tmp_path / "whole.fits"
    shutil.copy(src, whole)
    stack = im.open_stack(whole)
    os.truncate(whole, 20_000)
    with pytest.raises(CatalogReadError, match=r"whole\.fits is truncated: HDU 1 needs"):
        stack.image.compute()


def test_not_fits_missing_and_empty(tmp_path: Path) -> None:
    (tmp_path / "notes.fits").write_text("not a FITS file\n" * 200)
    with pytest.raises(CatalogReadError, match=r"cannot read .*notes\.fits as FITS"):
        im.open_stack(tmp_path / "notes.fits")
    with pytest.raises(CatalogReadError, match=r"image file .*absent\.fits does not exist"):
        im.open_stack(tmp_path / "absent.fits")
    with pytest.raises(CatalogReadError, match="no image files match"):
        im.open_stack(str(tmp_path / "*.fz"))


def test_decam_image_without_its_weight_file(tmp_path: Path) -> None:
    name = "c4d_140818_232043_ooi_z_ls9.N12.fits"
    shutil.copy(DECAM_DIR / name, tmp_path / name)
    shutil.copy(
        DECAM_DIR / name.replace("_ooi_", "_ood_"), tmp_path / name.replace("_ooi_", "_ood_")
    )
    with pytest.raises(
        CatalogReadError, match=r"its weight file .*_oow_z_ls9\.N12\.fits is missing"
    ):
        im.open_stack(tmp_path)


def test_layout_mismatch_and_bad_layout(tmp_path: Path) -> None:
    path = write_plain(tmp_path / "p.fits", np.zeros((10, 10), "f4"), tan_wcs(1.0, 1.0, (10, 10)))
    with pytest.raises(CatalogReadError, match=r"p\.fits: expected an LSST Exposure"):
        im.open_stack(path, layout="lsst")
    with pytest.raises(SpecError, match="parameter 'layout'"):
        im.open_stack(path, layout="hsc")
    with pytest.raises(SpecError, match="parameter 'sort'"):
        im.open_stack(path, sort="band")


def test_errors_are_skydask_errors() -> None:
    assert issubclass(CatalogReadError, SkydaskError) and issubclass(CatalogReadError, OSError)
    assert issubclass(SpecError, ValueError)
