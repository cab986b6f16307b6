"""open_stack: layouts, coordinates, padding, laziness, masks and metadata tables."""

from __future__ import annotations

import sys
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

sys.path.insert(0, str(Path(__file__).parent))  # the helper beside us (not on the pythonpath)
from images_testdata import tan_wcs, write_plain

import skydask.images as im
from skydask.images import planes
from skydask.images.masks import bit
from skydask.synth.images import ImageStackInfo

# the shared session fixtures small_stack and noise_stack
pytest_plugins = ["images_fixtures"]


def test_synthetic_stack_dims_coords_and_chunks(small_stack: ImageStackInfo) -> None:
    stack = im.open_stack(small_stack.path)
    truth = small_stack.visits()
    assert dict(stack.sizes) == {"visit": 6, "y": 256, "x": 256}
    assert stack.image.chunks == ((1,) * 6, (256,), (256,))
    assert stack.band.values.tolist() == truth["band"].tolist()
    np.testing.assert_allclose(stack.mjd.values, truth["mjd"], atol=1e-6)  # ISO round trip
    np.testing.assert_allclose(stack.zeropoint.values, truth["zeropoint"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(stack.seeing.values, truth["seeing"], rtol=1e-9)
    np.testing.assert_allclose(stack.exptime.values, 30.0)
    np.testing.assert_allclose(stack.pixel_scale.values, 0.2, rtol=1e-6)
    assert (stack.layout.values == "lsst").all()
    # one WCS per visit, not shared: the dithers move the reference pixel
    crpix = np.array([w.wcs.crpix for w in stack.wcs.values])
    assert len({tuple(c) for c in crpix}) == 6
    assert (stack.disk_bytes.values == 256 * 256 * 12).all()


def test_values_equal_the_files_and_slices_are_fused(
    small_stack: ImageStackInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = im.open_stack(small_stack.path)
    f = small_stack.files[2]
    with fits.open(f) as hdul:
        image, mask, var = hdul[1].data, hdul[2].data, hdul[3].data
    np.testing.assert_array_equal(stack.image[2].values, image)
    np.testing.assert_array_equal(stack.variance[2].values, var)
    np.testing.assert_array_equal(stack.mask[2].values, mask)  # canonical planes: identity map
    # a small selection reads only its pixels: dask fuses the slicing into the read
    from skydask.images.stack import _PlaneStack

    keys: list[object] = []
    original = _PlaneStack.__getitem__

    def spy(self: _PlaneStack, key: object) -> np.ndarray:
        keys.append(key)
        return original(self, key)

    monkeypatch.setattr(_PlaneStack, "__getitem__", spy)
    sub = stack.image.isel(visit=2, y=slice(100, 103), x=slice(7, 11))
    np.testing.assert_array_equal(sub.values, image[100:103, 7:11])
    assert len(keys) == 1
    read = [np.arange(n)[k] for n, k in zip((6, 256, 256), keys[0], strict=True)]
    assert np.size(read[0]) == 1 and np.size(read[1]) == 3 and np.size(read[2]) == 4


def test_open_reads_no_pixels(small_stack: ImageStackInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a pixel was read")

    monkeypatch.setattr(planes, "open_plane", refuse)
    monkeypatch.setattr("skydask.images.source.open_plane", refuse)
    stack = im.open_stack(small_stack.path)  # headers only
    assert stack.sizes["visit"] == 6
    with pytest.raises(AssertionError, match="a pixel was read"):
        stack.image[0, 0, 0].compute()


def test_ragged_plain_images_are_padded(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 3.0, (40, 30)).astype("f4")
    b = rng.normal(0.0, 5.0, (25, 50)).astype("f4")
    b[3, 4] = np.nan
    write_plain(tmp_path / "a.fits", a, tan_wcs(10.0, 5.0, a.shape), BAND="r")
    write_plain(tmp_path / "b.fits", b, tan_wcs(10.001, 5.0, b.shape), FILTER="HSC-I",
                MAGZERO=27.0, EXPTIME=60.0, **{"MJD-OBS": 60000.0})  # fmt: skip
    stack = im.open_stack(tmp_path)
    assert dict(stack.sizes) == {"visit": 2, "y": 40, "x": 50}
    # the dated visit sorts first
    assert stack.visit.values.tolist() == ["b", "a"]
    assert stack.band.values.tolist() == ["i", "r"]
    assert stack.ny.values.tolist() == [25, 40] and stack.nx.values.tolist() == [50, 30]
    np.testing.assert_allclose(stack.mjd.values[0], 60000.0 + 30.0 / 86400.0)
    assert stack.zeropoint.values[0] == 27.0 and np.isnan(stack.zeropoint.values[1])
    img = stack.image.values
    mask = stack.mask.values
    np.testing.assert_array_equal(img[1, :, :30], a)
    assert np.isnan(img[1, :, 30:]).all() and (mask[1, :, 30:] == bit("NO_DATA")).all()
    assert np.isnan(img[0, 25:]).all() and (mask[0, 25:] == bit("NO_DATA")).all()
    # a plain image: NO_DATA where not finite, variance a constant from sampled rows
    assert mask[0, 3, 4] == bit("NO_DATA") and mask[0, 3, 5] == 0
    var = stack.variance.values
    assert np.unique(var[1, :, :30]).size == 1
    np.testing.assert_allclose(np.sqrt(var[1, 0, 0]), 3.0, rtol=0.1)
    np.testing.assert_allclose(np.sqrt(var[0, 0, 0]), 5.0, rtol=0.1)


def test_lsst_mask_planes_are_remapped(tmp_path: Path) -> None:
    """A calexp numbering its planes differently: the stack's bits are the canonical ones."""
    shape = (20, 20)
    wcs = tan_wcs(30.0, -10.0, shape).to_header()
    raw = np.zeros(shape, dtype=np.int32)
    raw[1, 1] = 1 << 0  # SAT in this file
    raw[2, 2] = 1 << 3  # BAD in this file
    raw[3, 3] = 1 << 7  # a plane with no canonical name

    def header(**keys: object) -> fits.Header:
        out = wcs.copy()
        out.update(keys)
        return out

    hdus = fits.HDUList([
        fits.PrimaryHDU(header=fits.Header({"FILTER": "r", "FLUXMAG0": 1e11})),
        fits.ImageHDU(np.ones(shape, "f4"), header=header(EXTTYPE="IMAGE")),
        fits.ImageHDU(raw, header=header(EXTTYPE="MASK", MP_SAT=0, MP_BAD=3, MP_FAKE=7)),
        fits.ImageHDU(np.full(shape, 4.0, "f4"), header=header(EXTTYPE="VARIANCE")),
    ])  # fmt: skip
    hdus.writeto(tmp_path / "calexp.fits")
    stack = im.open_stack(tmp_path / "calexp.fits")
    mask = stack.mask[0].values
    assert mask[1, 1] == bit("SAT") and mask[2, 2] == bit("BAD") and mask[3, 3] == bit("OTHER")
    assert (mask == 0).sum() == 400 - 3
    assert stack.zeropoint.values[0] == pytest.approx(27.5)
    assert stack.mask.attrs["flag_meanings"].split()[:3] == ["BAD", "SAT", "INTRP"]


def test_metadata_table_overrides_headers(small_stack: ImageStackInfo) -> None:
    names = [f.name for f in small_stack.files]
    table = pd.DataFrame({"file": names[:2], "zeropoint": [30.0, np.nan], "band": ["z", ""]})
    stack = im.open_stack(small_stack.path, metadata=table)
    truth = small_stack.visits()
    assert stack.zeropoint.values[0] == 30.0
    # NaN and empty entries leave the header's values
    assert stack.zeropoint.values[1] == pytest.approx(truth["zeropoint"][1])
    assert stack.band.values.tolist()[:2] == ["z", truth["band"][1]]


def test_scan_is_one_task_per_batch_of_files(small_stack: ImageStackInfo) -> None:
    """Headers are read through dask when there are many files (here: 6 files, batch 2)."""
    from skydask.images import stack as stack_module

    old = stack_module._SCAN_BATCH
    stack_module._SCAN_BATCH = 2
    try:
        with dask.config.set(scheduler="sync"):
            stack = im.open_stack(small_stack.path)
    finally:
        stack_module._SCAN_BATCH = old
    assert stack.visit.values.tolist() == [f"visit_{k:04d}" for k in range(6)]


def test_tile_compressed_image(tmp_path: Path) -> None:
    """A .fits.fz image (lossless for integers) is read through astropy's section."""
    shape = (40, 50)
    data = np.arange(shape[0] * shape[1], dtype=np.int32).reshape(shape) % 1000
    hdu = fits.CompImageHDU(data, header=tan_wcs(20.0, 10.0, shape).to_header())
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "c.fits.fz")
    stack = im.open_stack(tmp_path)
    np.testing.assert_array_equal(stack.image[0].values, data)
    np.testing.assert_array_equal(stack.image[0, 5:9, 7:30].values, data[5:9, 7:30])
    ra, dec = stack.wcs.values[0].all_pix2world([0.0, 25.0], [0.0, 20.0], 0)
    stamps = im.cutouts(stack, ra, dec, 5).compute()
    np.testing.assert_array_equal(stamps.image.values[1, 0], data[18:23, 23:28])
    assert np.isnan(stamps.image.values[0, 0, :2]).all()  # off the corner
    np.testing.assert_array_equal(stamps.image.values[0, 0, 2:, 2:], data[:3, :3])
    assert int(stamps.bytes_read.sum()) == 0  # decompressed tiles are not counted
