"""Figures: stamp grid with band and date labels, coadd with exposure count."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).parent))  # the helper beside us (not on the pythonpath)
from images_testdata import DECAM_CCDS, DECAM_IMAGES

import skydask.images as im
from skydask.errors import SpecError
from skydask.synth.images import ImageStackInfo

# the shared session fixtures small_stack and noise_stack
pytest_plugins = ["images_fixtures"]


def test_stamp_grid_of_the_decam_galaxy(tmp_path: Path) -> None:
    stack = im.open_stack(DECAM_IMAGES, metadata=DECAM_CCDS)
    stamps = im.cutouts(stack, 244.77973, 12.07235, 21)
    fig = im.plot_stamps(stamps)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 8  # one object, eight visits
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "z\n2014-08-18" and titles[-1] == "g\n2018-09-08"
    assert "nJy" in fig.texts[0].get_text()  # calibrated: one stretch for all visits
    images = [ax.images[0] for ax in fig.axes]
    assert len({(im_.norm.vmin, im_.norm.vmax) for im_ in images}) == 1
    fig.savefig(tmp_path / "stamps.png")


def test_stamp_grid_leaves_uncovered_panels_empty(small_stack: ImageStackInfo) -> None:
    stack = im.open_stack(small_stack.path)
    ra, dec = stack.wcs.values[0].all_pix2world([20.0, 128.0], [20.0, 128.0], 0)
    stamps = im.cutouts(stack, np.append(ra, 10.0), np.append(dec, 10.0), 15)
    fig = im.plot_stamps(stamps, max_visits=4)
    axes = np.array(fig.axes).reshape(3, 4)
    assert all(len(ax.images) == 1 for ax in axes[1])
    assert all(len(ax.images) == 0 for ax in axes[2])  # the object no visit covers
    with pytest.raises(SpecError, match="no stamp to plot"):
        im.plot_stamps(im.cutouts(stack, 10.0, 10.0, 15))


def test_coadd_figure(small_stack: ImageStackInfo, tmp_path: Path) -> None:
    stack = im.open_stack(small_stack.path)
    coadd = im.coadd(stack, band="i").compute()
    fig = im.plot_coadd(coadd)
    assert isinstance(fig, Figure)
    labels = [ax.get_title() for ax in fig.axes]
    assert labels[:2] == ["coadd i (ivw), nJy", "visits per pixel"]
    assert fig.axes[-1].get_ylabel() == "exposure count"  # the colour bar
    fig.savefig(tmp_path / "coadd.png")
