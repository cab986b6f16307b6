"""generate_image_stack: determinism, cache, atomic writing, layout, truth, catalogue input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

import skydask.images as im
from skydask.errors import SpecError
from skydask.images.masks import MASK_PLANES, bit
from skydask.synth import SynthInfo
from skydask.synth import images as synth_images
from skydask.synth.images import generate_image_stack, read_image_stack_info

SMALL = {"nvisits": 3, "size": 96, "seed": 7, "bands": "ri"}


def _pixels(path: Path) -> list[np.ndarray]:
    with fits.open(path) as hdul:
        return [np.array(h.data) for h in hdul[1:4]]


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    a = generate_image_stack(tmp_path / "a", **SMALL)
    b = generate_image_stack(tmp_path / "b", **SMALL)
    c = generate_image_stack(tmp_path / "c", **{**SMALL, "seed": 8})
    for fa, fb in zip(a.files, b.files, strict=True):
        for pa, pb in zip(_pixels(fa), _pixels(fb), strict=True):
            np.testing.assert_array_equal(pa, pb)
    pd.testing.assert_frame_equal(a.visits(), b.visits())
    pd.testing.assert_frame_equal(a.sources(), b.sources())
    assert not np.array_equal(_pixels(a.files[0])[0], _pixels(c.files[0])[0])


def test_cache_other_parameters_and_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "s"
    first = generate_image_stack(out, **SMALL)
    stamp = first.files[0].stat().st_mtime_ns
    again = generate_image_stack(out, **SMALL)
    assert again.files == first.files and again.files[0].stat().st_mtime_ns == stamp
    with pytest.raises(SpecError, match=r"other parameters \(nvisits: 3 -> 2"):
        generate_image_stack(out, **{**SMALL, "nvisits": 2})
    redone = generate_image_stack(out, **{**SMALL, "nvisits": 2}, overwrite=True)
    assert len(redone.files) == 2 and read_image_stack_info(out).parameters["nvisits"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temporary left


def test_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = synth_images._write_visit

    def fail_on_second(tmp: Path, cfg: object, plan: object, *args: object) -> object:
        if getattr(plan, "index", 0) == 1:
            raise RuntimeError("disk full")
        return original(tmp, cfg, plan, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(synth_images, "_write_visit", fail_on_second)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_image_stack(tmp_path / "s", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_lsst_layout_headers_and_truth(tmp_path: Path) -> None:
    info = generate_image_stack(tmp_path / "s", **SMALL)
    truth = info.visits()
    assert truth["band"].tolist() == ["r", "i", "r"]
    with fits.open(info.files[1]) as hdul:
        assert [h.header.get("EXTTYPE") for h in hdul[1:4]] == ["IMAGE", "MASK", "VARIANCE"]
        primary, mask_header = hdul[0].header, hdul[2].header
        assert primary["BAND"] == "i" and primary["EXPTIME"] == 30.0
        assert primary["TIME-MID"].endswith("Z")
        zp = 2.5 * math.log10(primary["FLUXMAG0"])
        assert (
            zp
            == pytest.approx(truth["zeropoint"][1])
            == pytest.approx(28.17 + 2.5 * math.log10(30))
        )
        assert primary["SEEING"] == pytest.approx(truth["seeing"][1])
        assert {k[3:]: v for k, v in mask_header.items() if k.startswith("MP_")} == {
            name: k for k, name in enumerate(MASK_PLANES)
        }
    # the depth is what the sky noise gives through the drawn PSF's noise-equivalent area
    m5 = truth.zeropoint - 2.5 * np.log10(5 * truth.sky_sigma * np.sqrt(truth.nea_pix))
    np.testing.assert_allclose(m5, truth.m5, rtol=0, atol=1e-9)
    # Gaussian PSF: NEA = 4 pi sigma_eff^2, sigma_eff^2 = sigma^2 + 1/12 pixel^2 (round PSF)
    sigma_eff = truth.fwhm_eff / 0.2 / 2.3548
    np.testing.assert_allclose(truth.nea_pix, 4 * np.pi * sigma_eff**2, rtol=0.01)
    # seeing near LSST's delivered zenith values at this field's airmass
    assert truth.seeing.between(0.5, 1.5).all()
    stack = im.open_stack(info.path)
    assert (stack.layout.values == "lsst").all()


def test_mask_artefacts(tmp_path: Path) -> None:
    info = generate_image_stack(tmp_path / "s", **{**SMALL, "n_bad_columns": 3,
                                                   "n_cosmic_rays": 6})  # fmt: skip
    columns = []
    for f in info.files:
        image, mask, variance = _pixels(f)
        bad = np.flatnonzero(((mask & bit("BAD")) != 0).all(axis=0))
        columns.append(bad.tolist())
        assert len(bad) == 3
        assert ((mask & bit("CR")) != 0).sum() >= 6
        sat = (mask & bit("SAT")) != 0
        if sat.any():
            assert np.allclose(image[sat] + 0, image[sat].max())
        assert (variance > 0).all()
    assert columns[0] == columns[1] == columns[2]  # detector columns: the same in every visit


def test_stack_of_the_object_catalogue(
    catalog: SynthInfo, objects: pd.DataFrame, truth: pd.DataFrame, tmp_path: Path
) -> None:
    """Draw the object generator's catalogue: its stars land where the WCS puts them."""
    table = objects[["objectId", "ra", "dec"]].merge(truth, on="objectId")
    # centred on a bright (unsaturated) star of the catalogue
    star = table[table.is_star & table.mag_true_r.between(17.0, 18.0)].iloc[0]
    centre = (float(star.ra), float(star.dec))
    info = generate_image_stack(
        tmp_path / "s", nvisits=2, size=160, seed=1, bands="r", catalog=table, center=centre,
        n_cosmic_rays=0, n_bad_columns=0,
    )  # fmt: skip
    sources = info.sources()
    assert len(sources) > 0
    assert set(sources.id) <= set(table.objectId)
    drawn = table.set_index("objectId").loc[sources.id]
    np.testing.assert_allclose(sources.mag_r, drawn.mag_true_r)
    assert (sources.is_star.to_numpy() == drawn.is_star.to_numpy()).all()
    # that star is drawn where each visit's WCS puts it (first moments, 13 x 13 box)
    stack = im.open_stack(info.path)
    for v in range(2):
        x, y = stack.wcs.values[v].all_world2pix(star.ra, star.dec, 0)
        image = stack.image[v].values.astype(float)
        xi, yi = round(float(x)), round(float(y))
        box = image[yi - 6 : yi + 7, xi - 6 : xi + 7]
        yy, xx = np.mgrid[-6:7, -6:7]
        assert xi + (box * xx).sum() / box.sum() == pytest.approx(float(x), abs=0.1)
        assert yi + (box * yy).sum() / box.sum() == pytest.approx(float(y), abs=0.1)


def test_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="parameter 'nvisits'"):
        generate_image_stack(tmp_path / "s", nvisits=0)
    with pytest.raises(SpecError, match="parameter 'psf'"):
        generate_image_stack(tmp_path / "s", psf="airy")
    with pytest.raises(SpecError, match="unknown parameters"):
        generate_image_stack(tmp_path / "s", colour="red")
    with pytest.raises(SpecError, match="needs a magnitude column 'mag_g'"):
        generate_image_stack(tmp_path / "s", bands="g",
                             catalog=pd.DataFrame({"ra": [60.0], "dec": [-35.0]}))  # fmt: skip
    assert not (tmp_path / "s").exists()
