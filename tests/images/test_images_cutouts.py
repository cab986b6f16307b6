"""cutouts: against array slicing and astropy's Cutout2D, graph shape, bytes read, coverage."""

from __future__ import annotations

import sys
from pathlib import Path

import dask
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS

sys.path.insert(0, str(Path(__file__).parent))  # the helper beside us (not on the pythonpath)
from images_testdata import tan_wcs, write_plain

import skydask.images as im
from skydask.errors import SpecError
from skydask.images.masks import bit
from skydask.synth.images import ImageStackInfo

# the shared session fixtures small_stack and noise_stack
pytest_plugins = ["images_fixtures"]


def _files(info: ImageStackInfo) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, WCS]]:
    out = {}
    for f in info.files:
        with fits.open(f) as hdul:
            out[f.stem] = (hdul[1].data, hdul[3].data, hdul[2].data, WCS(hdul[1].header))
    return out


def test_integer_pixel_positions_equal_array_slicing(small_stack: ImageStackInfo) -> None:
    """Positions on pixel centres of visit 0: stamps are plain slices ``[y - h : y + h + 1]``."""
    stack = im.open_stack(small_stack.path)
    files = _files(small_stack)
    image0, _, _, wcs0 = files["visit_0000"]
    rng = np.random.default_rng(3)
    px = rng.integers(20, 236, 12)
    py = rng.integers(20, 236, 12)
    ra, dec = wcs0.all_pix2world(px, py, 0)
    for from_files in (True, False):
        stamps = im.cutouts(stack, ra, dec, 11, from_files=from_files).compute()
        v0 = list(stamps.visit.values).index("visit_0000")
        for k in range(12):
            np.testing.assert_array_equal(
                stamps.image.values[k, v0], image0[py[k] - 5 : py[k] + 6, px[k] - 5 : px[k] + 6]
            )
            assert stamps.x_origin.values[k, v0] == px[k] - 5
            assert stamps.y_origin.values[k, v0] == py[k] - 5


def test_stamps_equal_cutout2d_in_every_visit(small_stack: ImageStackInfo) -> None:
    """Brute-force twin: Cutout2D (mode partial, NaN fill) of each plane, positions anywhere,
    including stamps hanging over the edge, even sizes and rectangular stamps."""
    stack = im.open_stack(small_stack.path)
    files = _files(small_stack)
    rng = np.random.default_rng(7)
    w0 = files["visit_0000"][3]
    px = np.concatenate([rng.uniform(-0.4, 255.4, 30), [0.0, 255.3, 2.0]])
    py = np.concatenate([rng.uniform(-0.4, 255.4, 30), [0.2, 254.9, 253.0]])
    ra, dec = w0.all_pix2world(px, py, 0)
    for size in (9, (8, 13)):
        stamps = im.cutouts(stack, ra, dec, size).compute()
        assert stamps.partial.values.any()
        for v, name in enumerate(stamps.visit.values):
            image, var, mask, wcs = files[str(name)]
            for k in range(len(ra)):
                if not stamps.covered.values[k, v]:
                    assert np.isnan(stamps.image.values[k, v]).all()
                    continue
                pos = SkyCoord(ra[k], dec[k], unit="deg")
                ref = Cutout2D(image, pos, size, wcs=wcs, mode="partial", fill_value=np.nan)
                np.testing.assert_array_equal(stamps.image.values[k, v], ref.data)
                ref_v = Cutout2D(var, pos, size, wcs=wcs, mode="partial", fill_value=np.nan)
                np.testing.assert_array_equal(stamps.variance.values[k, v], ref_v.data)
                ref_m = Cutout2D(mask.astype(float), pos, size, wcs=wcs, mode="partial",
                                 fill_value=bit("NO_DATA"))  # fmt: skip
                np.testing.assert_array_equal(stamps.mask.values[k, v], ref_m.data)
                spans = [sl.stop - sl.start for sl in ref.slices_cutout]
                whole = spans == list(ref.shape)
                assert bool(stamps.partial.values[k, v]) == (not whole)
                # the stamp WCS is Cutout2D's
                sw = im.stamp_wcs(stamps, k, v)
                grid = np.array([[0.0, 0.0], [3.0, 5.0], [7.0, 2.0]])
                np.testing.assert_allclose(
                    sw.all_pix2world(grid, 0), ref.wcs.all_pix2world(grid, 0), rtol=0, atol=1e-11
                )


def test_one_task_per_visit_reading_each_file_once(
    small_stack: ImageStackInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = im.open_stack(small_stack.path)
    w0 = stack.wcs.values[0]
    rng = np.random.default_rng(1)
    ra, dec = w0.all_pix2world(rng.uniform(30, 220, 200), rng.uniform(30, 220, 200), 0)
    stamps = im.cutouts(stack, ra, dec, 15)
    graph = dict(stamps.__dask_graph__())
    reads = [k for k in graph if "skydask-stamps" in str(k)]
    assert len(reads) == 6  # one per visit, for 200 positions
    assert len(graph) == 6 * 5  # per visit: the read, then one getitem per plane and bytes
    opened: list[str] = []
    from skydask.images.source import VisitSource

    original = VisitSource.open

    def spy(self: VisitSource, planes: tuple[str, ...] = ("image", "variance", "mask")) -> object:
        opened.append(self.image.path)
        return original(self, planes)

    monkeypatch.setattr(VisitSource, "open", spy)
    with dask.config.set(scheduler="threads"):
        done = stamps.compute()
    assert sorted(opened) == sorted(str(f) for f in small_stack.files)
    # 200 stamps of 15 rows, ~1.4 KB of each 1 KB row: most of the pages, fewer than all
    total = int(stack.disk_bytes.sum())
    assert 0 < int(done.bytes_read.sum()) <= total


def test_few_stamps_read_few_bytes(small_stack: ImageStackInfo) -> None:
    stack = im.open_stack(small_stack.path)
    ra, dec = stack.wcs.values[0].all_pix2world([128.0], [128.0], 0)
    done = im.cutouts(stack, ra, dec, 9).compute()
    # 9 rows of each of 3 planes: 9 x 3 pages (a 256-pixel row is 1 KB) ~ 9 % of the file
    per_visit = done.bytes_read.values
    assert np.all(per_visit <= 3 * 10 * 4096)
    assert per_visit.sum() < 0.15 * stack.disk_bytes.sum()


def test_positions_covered_by_no_visit(small_stack: ImageStackInfo) -> None:
    stack = im.open_stack(small_stack.path)
    w0 = stack.wcs.values[0]
    ra_in, dec_in = w0.all_pix2world([100.0], [100.0], 0)
    stamps = im.cutouts(stack, [float(ra_in[0]), 200.0], [float(dec_in[0]), 40.0], 7)
    assert stamps.n_visits.values.tolist() == [6, 0]
    assert "object 1 at (ra, dec) = (200.000000, 40.000000) deg" in stamps.attrs["uncovered"]
    assert "covered by none of the 6 visits" in stamps.attrs["uncovered"]
    assert np.isnan(stamps.image.values[1]).all()
    # nothing covered at all: an empty result that says why
    empty = im.cutouts(stack, 200.0, 40.0, 7)
    assert empty.sizes["visit"] == 0 and empty.image.shape == (1, 0, 7, 7)
    assert "covered by none of the 6 visits" in empty.attrs["uncovered"]
    with pytest.raises(SpecError, match="does not cover"):
        im.stamp_wcs(stamps, 1, 0)


def test_angular_size_and_bad_arguments(tmp_path: Path) -> None:
    shape = (30, 30)
    path = write_plain(tmp_path / "p.fits", np.zeros(shape, "f4"), tan_wcs(50.0, 0.0, shape))
    stack = im.open_stack(path)
    from astropy import units as u

    stamps = im.cutouts(stack, 50.0 * u.deg, 0.0 * u.deg, 2.0 * u.arcsec)
    assert stamps.image.shape == (1, 1, 10, 10)
    with pytest.raises(SpecError, match="'ra' and 'dec'"):
        im.cutouts(stack, [50.0, 50.1], [0.0], 5)
    with pytest.raises(SpecError, match="'ra' and 'dec' must be finite"):
        im.cutouts(stack, 50.0, 95.0, 5)
    with pytest.raises(SpecError, match="'size'"):
        im.cutouts(stack, 50.0, 0.0, 0)


def test_compact_stamps_equal_the_dense_ones(small_stack: ImageStackInfo) -> None:
    stack = im.open_stack(small_stack.path)
    rng = np.random.default_rng(5)
    ra, dec = stack.wcs.values[0].all_pix2world(
        rng.uniform(-40, 290, 50), rng.uniform(-40, 290, 50), 0
    )
    dense = im.cutouts(stack, ra, dec, 9).compute()
    compact = im.cutouts(stack, ra, dec, 9, dense=False)
    assert len(dict(compact.__dask_graph__())) == 5 * dense.sizes["visit"]
    compact = compact.compute()
    assert compact.sizes["stamp"] == int(dense.covered.sum())
    assert compact.visit_read.values.tolist() == dense.visit.values.tolist()
    np.testing.assert_array_equal(compact.bytes_read.values, dense.bytes_read.values)
    names = list(dense.visit.values)
    for k in range(compact.sizes["stamp"]):
        o, v = int(compact.object[k]), names.index(str(compact.visit.values[k]))
        assert dense.covered.values[o, v]
        for p in ("image", "variance", "mask"):
            np.testing.assert_array_equal(compact[p].values[k], dense[p].values[o, v])
        assert compact.band.values[k] == dense.band.values[v]
        assert compact.partial.values[k] == dense.partial.values[o, v]
        assert (
            im.stamp_wcs(compact, k).wcs.crpix.tolist()
            == im.stamp_wcs(dense, o, v).wcs.crpix.tolist()
        )
