"""Rendering: orientation, stretches, the mask overlay against the FITS mask, the cache."""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image as PILImage

sys.path.insert(0, str(Path(__file__).parent))  # the helpers beside us (not on the pythonpath)

from skydask.checker import render
from skydask.checker.render import ImageStore, stretch_to_uint8
from skydask.errors import SpecError
from skydask.images.masks import bit
from skydask.synth.images import ImageStackInfo

pytest_plugins = ["checker_fixtures"]


def _decode(png: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(png)))


@pytest.mark.parametrize("stretch", ["asinh", "zscale"])
def test_png_is_the_stretched_fits_image_north_up(
    checker_stack_info: ImageStackInfo, stretch: str
) -> None:
    checker_store = ImageStore.open(checker_stack_info.path)
    key = checker_store.keys()[2]
    pixels = _decode(checker_store.png(key, "image", stretch))
    data = fits.getdata(checker_stack_info.path / f"{key}.fits", "IMAGE")
    assert pixels.shape == data.shape and pixels.dtype == np.uint8
    # row 0 of the PNG is the last FITS row (y upwards)
    assert np.array_equal(pixels, stretch_to_uint8(data, stretch)[::-1])
    # a bad column (+50 sigma, every row) is the brightest column of the PNG
    bad = np.flatnonzero(
        (fits.getdata(checker_stack_info.path / f"{key}.fits", "MASK") & 1).all(axis=0)
    )
    assert bad.size and (pixels[:, bad].mean(axis=0) > np.median(pixels) + 50).all()


def test_asinh_is_astropys_stretch() -> None:
    from astropy.visualization import AsinhStretch, ImageNormalize

    image = np.random.default_rng(1).lognormal(0.0, 1.5, (300, 200)).astype(np.float32)
    image[5, 5] = np.nan
    lo, hi = np.percentile(image[np.isfinite(image)], [1.0, 99.8])
    norm = ImageNormalize(vmin=lo, vmax=hi, stretch=AsinhStretch(0.1), clip=True)
    truth = np.nan_to_num(np.ma.getdata(norm(image.astype(np.float64))), nan=0.0)
    ours = stretch_to_uint8(image, "asinh")
    # the same to the 8-bit rounding (the percentiles come from the same pixels here)
    assert np.abs(ours.astype(int) - np.round(truth * 255).astype(int)).max() <= 1
    assert ours[5, 5] == 0


def test_stretches_differ_and_unknown_ones_fail(checker_store: ImageStore) -> None:
    key = checker_store.keys()[0]
    assert checker_store.png(key, "image", "asinh") != checker_store.png(key, "image", "zscale")
    with pytest.raises(SpecError, match="stretch"):
        checker_store.png(key, "image", "log")
    with pytest.raises(SpecError, match="kind"):
        checker_store.png(key, "variance")


def test_mask_overlay_marks_the_fits_mask(
    checker_stack_info: ImageStackInfo, checker_store: ImageStore
) -> None:
    key = checker_store.keys()[1]
    rgba = _decode(checker_store.png(key, "mask"))[::-1]  # back to FITS row order
    mask = fits.getdata(checker_stack_info.path / f"{key}.fits", "MASK").astype(np.int64)
    shown = (mask & (bit("BAD") | bit("CR") | bit("SAT"))) != 0
    assert shown.any()
    assert (rgba[..., 3][shown] == 150).all()
    assert (rgba[..., 3][mask == 0] == 0).all()
    cr_only = mask == bit("CR")
    if cr_only.any():
        assert (rgba[cr_only][:, :3] == render.MASK_COLOURS["CR"]).all()


def test_cache_renders_once(
    checker_stack_info: ImageStackInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    checker_store = ImageStore.open(checker_stack_info.path, cache_bytes=10 << 20)
    calls = []
    real = render.stretch_to_uint8

    def counting(image: np.ndarray, stretch: str = "asinh") -> np.ndarray:
        calls.append(stretch)
        return real(image, stretch)

    monkeypatch.setattr(render, "stretch_to_uint8", counting)
    key = checker_store.keys()[0]
    out: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: out.append(checker_store.png(key, "image")))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 1 and calls == ["asinh"]
    checker_store.png(key, "image", "zscale")
    assert calls == ["asinh", "zscale"]


def test_cache_keeps_to_its_budget(checker_store: ImageStore) -> None:
    small = render._LRU(max_bytes=100)
    for i in range(5):
        small.get_or_build((str(i),), lambda: b"x" * 40)
    assert small._size <= 100 and list(small._items) == [("3",), ("4",)]


def test_stamp_is_centred_and_clipped(checker_store: ImageStore) -> None:
    key = checker_store.keys()[0]
    assert _decode(checker_store.stamp_png(key, 80.0, 80.0)).shape == (64, 64)
    assert _decode(checker_store.stamp_png(key, 2.0, 3.0)).shape == (35, 34)
    with pytest.raises(SpecError, match="outside"):
        checker_store.stamp_png(key, -100.0, 5.0)
