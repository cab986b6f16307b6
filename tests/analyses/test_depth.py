"""Depth maps against independent truth: the generator's depth and brute-force numpy.

One synthetic catalogue (400,000 objects on 9 deg^2, 4 tracts, 5 years) serves every test.

Against the generator's truth (nside 512, the truth's own pixels), the "flux_err" map lies
below the true depth in every pixel: the generator inflates each object's flux error by its
source-noise term, ``psFluxErr = sigma_sky sqrt(1 + 0.02 f / f_5sigma)``, so every object's
``m5`` is at or below its pixel's true depth and so is their median. Measured per pixel
(map - truth) with this seed: median bias u -1.1, g -8.1, r -14.7, i -9.9, z -6.1, y -2.1 mmag
(larger where the catalogue holds more objects brighter than the depth), scatter (standard
deviation over pixels with at least 100 objects) 0.1 to 1.1 mmag. The test asserts the sign,
|bias| < 25 mmag and scatter < 3 mmag, and, exactly, that the map equals the per-pixel median
of the depth the measurement model predicts for each object from its true magnitude, size
and PSF (to 1e-6 mag: float32 storage of the truth).

Against brute force, the per-pixel median, count and spread equal a pandas groupby over all
rows whatever the partitioning: the medians and counts exactly (bit for bit), the spreads to
1e-9 mag (pandas and numpy interpolate percentiles with different operation orders).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import healsparse
import hpgeom
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from matplotlib.figure import Figure

import skydask
from skydask.analyses.depthmap import (
    LSST_DESIGN_10YR,
    LSST_DESIGN_SINGLE_VISIT,
    DepthMapConfig,
    DepthMapResult,
    depth_map,
)
from skydask.analyses.depthmap import analysis as depth_analysis
from skydask.analyses.depthmap import pixels as depth_pixels
from skydask.errors import SchemaError, SpecError
from skydask.synth import SynthInfo, generate_object_catalog, read_depth_truth, read_truth

FOOTPRINT = (60.0, 63.0, -36.0, -33.0)
ROWS = 400_000
SEED = 7
BANDS = "ugrizy"
Q_LO, Q_HI = 0.15865525393145707, 0.8413447460685429  # Gaussian mean -/+ 1 sigma
SPREAD_TOL = 1e-9  # mag; percentile interpolation differs from pandas' in operation order


# -- fixtures: one catalogue in several layouts -----------------------------------------------
@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> SynthInfo:
    out = tmp_path_factory.mktemp("depth") / "synth"
    return generate_object_catalog(out, rows=ROWS, seed=SEED, footprint=FOOTPRINT, years=5.0)


@pytest.fixture(scope="module")
def objects(synth: SynthInfo) -> pd.DataFrame:
    """The object files read with pyarrow alone (independent of the catalogue layer)."""
    columns = ["ra", "dec", "extendedness"]
    columns += [f"psFlux_{b}" for b in BANDS] + [f"psFluxErr_{b}" for b in BANDS]
    return pd.concat(
        [pq.read_table(f, columns=columns).to_pandas() for f in synth.files], ignore_index=True
    )


@pytest.fixture(scope="module")
def hats_path(synth: SynthInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same objects as a HATS catalogue written by skydask (order 7, 55 pixel files)."""
    out = tmp_path_factory.mktemp("depth_hats") / "hats"
    quantities = ["ra", "dec", "extendedness"]
    quantities += [f"psFlux_{b}" for b in "gri"] + [f"psFluxErr_{b}" for b in "gri"]
    cat = skydask.open_catalog(synth.path).select(quantities)
    skydask.write_catalog(cat, out, max_rows_per_pixel=40_000)
    return out


def _shuffled(objects: pd.DataFrame) -> pd.DataFrame:
    return objects.sample(frac=1.0, random_state=3).reset_index(drop=True)


def _as_float64(frame: pd.DataFrame, bands: str = BANDS) -> pd.DataFrame:
    out = frame.copy()
    for b in bands:
        out[f"psFluxErr_{b}"] = out[f"psFluxErr_{b}"].astype(np.float64)
    return out


def _patch_partitions(path: Path) -> skydask.Catalog:
    """The per-tract files split into partitions of a few patches (row groups) each: more
    partitions than the merge tree's fan-in, so pixels are also settled between levels."""
    with dask.config.set({"skydask.catalog.max-partition-rows": 8_000}):
        # files split on row groups only when the footers are read, i.e. under a cut
        catalog = skydask.open_catalog(path).where("dec > -90")
    assert catalog.npartitions > 40
    return catalog


LAYOUTS: dict[str, Callable[[SynthInfo, pd.DataFrame, Path], skydask.Catalog]] = {
    "pandas-1": lambda s, o, h: skydask.from_pandas(o, npartitions=1),
    "pandas-3": lambda s, o, h: skydask.from_pandas(o, npartitions=3),
    "pandas-7": lambda s, o, h: skydask.from_pandas(o, npartitions=7),
    "pandas-shuffled-7": lambda s, o, h: skydask.from_pandas(_shuffled(o), npartitions=7),
    "pandas-float64-shuffled-3": lambda s, o, h: skydask.from_pandas(
        _as_float64(_shuffled(o)), npartitions=3
    ),
    "pandas-40": lambda s, o, h: skydask.from_pandas(o, npartitions=40),
    "tracts-on-disk": lambda s, o, h: skydask.open_catalog(s.path),
    "patches-on-disk": lambda s, o, h: _patch_partitions(s.path),
    "hats-on-disk": lambda s, o, h: skydask.open_catalog(h),
}


# -- brute force ---------------------------------------------------------------------------------
def _pixels(objects: pd.DataFrame, nside: int) -> np.ndarray:
    return np.asarray(
        hpgeom.angle_to_pixel(
            nside, objects["ra"].to_numpy(), objects["dec"].to_numpy(), nest=True, lonlat=True
        )
    )


def brute_flux_err(objects: pd.DataFrame, nside: int, band: str, snr: float = 5.0) -> pd.DataFrame:
    """Per pixel: numpy/pandas median, count and half 16-84 range of every object's depth."""
    err = objects[f"psFluxErr_{band}"].to_numpy().astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = -2.5 * np.log10(snr * err) + 31.4
    ok = np.isfinite(depth)
    groups = pd.Series(depth[ok]).groupby(_pixels(objects, nside)[ok])
    return pd.DataFrame(
        {
            "depth": groups.median(),
            "count": groups.size(),
            "spread": (groups.quantile(Q_HI) - groups.quantile(Q_LO)) / 2,
        }
    )


def brute_snr_window(
    objects: pd.DataFrame, nside: int, band: str, snr: float, delta: float
) -> pd.DataFrame:
    """Per pixel: mean, count and standard deviation (ddof 0) of the window's magnitudes."""
    flux = objects[f"psFlux_{band}"].to_numpy().astype(np.float64)
    err = objects[f"psFluxErr_{band}"].to_numpy().astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        window = (err > 0) & (np.abs(flux / err - snr) < delta)
        mag = -2.5 * np.log10(flux) + 31.4
    groups = pd.Series(mag[window]).groupby(_pixels(objects, nside)[window])
    return pd.DataFrame(
        {"depth": groups.mean(), "count": groups.size(), "spread": groups.std(ddof=0)}
    )


def assert_matches(
    result: DepthMapResult, band: str, brute: pd.DataFrame, depth_atol: float = 0.0
) -> None:
    hmap = result.maps[band]
    pix = hmap.valid_pixels
    np.testing.assert_array_equal(pix, brute.index.to_numpy(), err_msg=f"{band}: pixels")
    np.testing.assert_array_equal(
        result.counts[band][pix], brute["count"].to_numpy(), err_msg=f"{band}: counts"
    )
    if depth_atol == 0.0:
        np.testing.assert_array_equal(hmap[pix], brute["depth"].to_numpy(), err_msg=band)
    else:
        np.testing.assert_allclose(hmap[pix], brute["depth"].to_numpy(), rtol=0, atol=depth_atol)
    np.testing.assert_allclose(
        result.spread[band][pix], brute["spread"].to_numpy(), rtol=0, atol=SPREAD_TOL
    )


# -- against the generator's truth ---------------------------------------------------------------
def test_flux_err_map_follows_the_true_depth(synth: SynthInfo) -> None:
    result = depth_map(skydask.open_catalog(synth.path), nside=synth.nside_truth)
    truth = read_depth_truth(synth.path).set_index("pixel")
    objects = read_truth(synth.path)
    for band in BANDS:
        hmap = result.maps[band]
        pix = hmap.valid_pixels
        true_m5 = truth.loc[pix, f"m5_{band}"].to_numpy()
        diff = hmap[pix] - true_m5
        counts = result.counts[band][pix]
        # the source-noise term only inflates errors: no pixel is deeper than its truth
        assert diff.max() < 1e-6, band
        bias = float(np.median(diff))
        scatter = float(np.std(diff[counts >= 100]))
        assert -0.025 < bias < -0.0005, (band, bias)
        assert scatter < 0.003, (band, scatter)

        # the measurement model's depth for each object, from its truth alone
        pixel_m5 = truth.loc[objects["pixel"].to_numpy(), f"m5_{band}"].to_numpy()
        f_true = 10 ** (-0.4 * (objects[f"mag_true_{band}"].to_numpy(np.float64) - 31.4))
        f_5 = 10 ** (-0.4 * (pixel_m5 - 31.4))
        psf_s2 = (objects[f"psf_fwhm_{band}"].to_numpy(np.float64) / 2.355) ** 2
        gal_s2 = objects["size_true"].to_numpy(np.float64) ** 2
        f_psf = f_true * 2 * psf_s2 / (2 * psf_s2 + gal_s2)
        predicted = pixel_m5 - 1.25 * np.log10(1 + 0.02 * f_psf / f_5)
        expected = pd.Series(predicted).groupby(objects["pixel"].to_numpy()).median()
        np.testing.assert_allclose(hmap[pix], expected.loc[pix].to_numpy(), rtol=0, atol=1e-6)


# -- exactness against brute force, whatever the layout ------------------------------------------
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_flux_err_median_is_exact_in_every_layout(
    layout: str, synth: SynthInfo, objects: pd.DataFrame, hats_path: Path
) -> None:
    catalog = LAYOUTS[layout](synth, objects, hats_path)
    # a small carry budget splits the second pass of unordered layouts into several batches
    result = depth_map(catalog, bands="gri", nside=1024, carry_budget=300_000)
    for band in "gri":
        assert_matches(result, band, brute_flux_err(objects, 1024, band))
    reduction = result.reduction
    assert reduction["rows_read"] == ROWS
    if layout == "tracts-on-disk":
        # pixels shared by tracts lie on the tracts' edges: merged exactly in one pass
        assert reduction["passes"] == 1
        assert reduction["values_merged_across_partitions"] > 0
    if layout.startswith("pandas-shuffled") or layout.startswith("pandas-float64"):
        assert reduction["passes"] > 2  # unordered: regathered in batches within the budget
    if layout == "hats-on-disk" and hasattr(skydask.Catalog, "healpix_order"):
        assert reduction["each_pixel_in_one_partition"] is True
        assert reduction["values_merged_across_partitions"] == 0


def test_wrong_locality_assumption_is_caught_and_still_exact(
    synth: SynthInfo, objects: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pixels closed in two partitions become conflicts, regathered in a second pass."""
    monkeypatch.setattr(depth_analysis, "_is_local", lambda catalog, nside: True)
    result = depth_map(skydask.open_catalog(synth.path), bands="r", nside=1024)
    assert result.reduction["passes"] == 2
    assert result.reduction["pixels_gathered_in_second_pass"] > 0
    assert_matches(result, "r", brute_flux_err(objects, 1024, "r"))


def test_merge_in_threads_is_exact(
    synth: SynthInfo, objects: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every merge, however small, works on its bands in threads: the same exact medians."""
    monkeypatch.setattr(depth_pixels, "_PARALLEL_MERGE", 0)
    monkeypatch.setattr(depth_pixels, "_cores", lambda: 2)
    result = depth_map(skydask.open_catalog(synth.path), bands="gri", nside=1024)
    assert result.reduction["values_merged_across_partitions"] > 0
    for band in "gri":
        assert_matches(result, band, brute_flux_err(objects, 1024, band))


def test_ten_sigma_flux_err_depth(synth: SynthInfo, objects: pd.DataFrame) -> None:
    result = depth_map(skydask.open_catalog(synth.path), bands="i", nside=512, snr_threshold=10.0)
    assert_matches(result, "i", brute_flux_err(objects, 512, "i", snr=10.0))


@pytest.mark.parametrize("layout", ["tracts-on-disk", "pandas-shuffled-7"])
@pytest.mark.parametrize(("snr", "delta"), [(5.0, 0.5), (10.0, 1.0)])
def test_snr_window_equals_brute_force(
    layout: str, snr: float, delta: float, synth: SynthInfo, objects: pd.DataFrame, hats_path: Path
) -> None:
    catalog = LAYOUTS[layout](synth, objects, hats_path)
    result = depth_map(
        catalog, bands="gri", nside=512, method="snr_window", snr_threshold=snr, snr_delta=delta
    )
    for band in "gri":
        brute = brute_snr_window(objects, 512, band, snr, delta)
        assert brute["count"].median() >= 10  # the window is populated
        # means of the same numbers, summed in another order
        assert_matches(result, band, brute, depth_atol=1e-10)
    assert result.reduction["passes"] == 1  # decomposable: never a second pass


def test_where_cut_selects_the_objects(synth: SynthInfo, objects: pd.DataFrame) -> None:
    stars = objects[objects["extendedness"] == 0]
    for catalog in (skydask.open_catalog(synth.path), skydask.from_pandas(_shuffled(objects), 5)):
        result = depth_map(catalog, bands="ri", nside=512, where="extendedness == 0")
        for band in "ri":
            assert_matches(result, band, brute_flux_err(stars, 512, band))


# -- empty pixels, areas, mask -------------------------------------------------------------------
def test_empty_pixels_are_absent_not_zero(objects: pd.DataFrame) -> None:
    ra, dec = objects["ra"].to_numpy(), objects["dec"].to_numpy()
    hole = (ra > 61.0) & (ra < 61.6) & (dec > -34.6) & (dec < -34.0)
    holed = objects[~hole]
    result = depth_map(skydask.from_pandas(holed, npartitions=4), bands="i", nside=1024)
    everywhere = set(brute_flux_err(objects, 1024, "i").index)
    present = brute_flux_err(holed, 1024, "i")
    emptied = np.array(sorted(everywhere - set(present.index)))
    assert len(emptied) > 20  # the hole empties whole pixels
    hmap = result.maps["i"]
    assert not np.isin(emptied, hmap.valid_pixels).any()
    np.testing.assert_array_equal(hmap[emptied], hpgeom.UNSEEN)
    np.testing.assert_array_equal(result.counts["i"][emptied], result.counts["i"].sentinel)
    assert np.all(hmap[hmap.valid_pixels] != 0) and np.all(result.counts["i"][hmap.valid_pixels])
    assert not np.isin(emptied, result.mask.valid_pixels).any()

    sparse = depth_map(skydask.from_pandas(holed, 4), bands="i", nside=1024, min_objects=50)
    np.testing.assert_array_equal(
        sparse.maps["i"].valid_pixels, present.index[present["count"] >= 50].to_numpy()
    )


def test_area_above_cut_and_mask(synth: SynthInfo, objects: pd.DataFrame) -> None:
    nside = 1024
    brute = {b: brute_flux_err(objects, nside, b) for b in "ri"}
    cuts = {b: float(brute[b]["depth"].quantile(0.4)) for b in "ri"}  # mid-distribution cuts
    result = depth_map(skydask.open_catalog(synth.path), bands="ri", nside=nside, depth_cuts=cuts)
    area = hpgeom.nside_to_pixel_area(nside, degrees=True)
    table = result.table().set_index("band")
    deep = {}
    for b in "ri":
        deep[b] = brute[b].index[brute[b]["depth"] > cuts[b]].to_numpy()
        assert 0 < len(deep[b]) < len(brute[b])
        assert result.area_above(b, cuts[b]) == pytest.approx(len(deep[b]) * area, rel=1e-12)
        assert table.loc[b, "area_above_cut_deg2"] == pytest.approx(len(deep[b]) * area)
        assert table.loc[b, "area_deg2"] == pytest.approx(len(brute[b]) * area)
    both = np.intersect1d(deep["r"], deep["i"])
    np.testing.assert_array_equal(result.mask.valid_pixels, both)
    assert result.mask.dtype == np.bool_
    assert result.metrics["mask"]["area_deg2"] == pytest.approx(len(both) * area)

    # the default cut, i-band 5-sigma depth > 25.3, keeps every pixel of this 5-year survey
    default = depth_map(skydask.open_catalog(synth.path), bands="ri", nside=nside)
    assert default.config.depth_cuts == {"i": 25.3}
    np.testing.assert_array_equal(default.mask.valid_pixels, brute["i"].index.to_numpy())


def test_table_compares_with_the_design_depths(synth: SynthInfo, objects: pd.DataFrame) -> None:
    result = depth_map(skydask.open_catalog(synth.path), nside=512)
    table = result.table().set_index("band")
    assert list(table.index) == list(BANDS)
    for b in BANDS:
        brute = brute_flux_err(objects, 512, b)
        assert table.loc[b, "depth_median"] == pytest.approx(float(np.median(brute["depth"])))
        assert table.loc[b, "n_objects"] == brute["count"].sum()
        assert table.loc[b, "design_single_visit"] == LSST_DESIGN_SINGLE_VISIT[b]
        assert table.loc[b, "design_10yr"] == LSST_DESIGN_10YR[b]
        assert table.loc[b, "median_minus_10yr"] == pytest.approx(
            table.loc[b, "depth_median"] - LSST_DESIGN_10YR[b]
        )
        # 5 of the 10 years: 1.25 log10(2) = 0.38 mag short of the design, to within the
        # dither pattern's visit counts and the source-noise bias
        assert -0.6 < table.loc[b, "median_minus_10yr"] < -0.2
    assert set(result.metrics["bands"]) == set(BANDS)


# -- plots and files -----------------------------------------------------------------------------
def test_plots_and_files(synth: SynthInfo, tmp_path: Path) -> None:
    result = depth_map(
        skydask.open_catalog(synth.path), bands="ri", nside=512, depth_cuts={"i": 26.4}
    )
    figures = result.plot()
    assert set(figures) == {"depth_r", "depth_i", "depth_histogram", "mask"}
    assert all(isinstance(f, Figure) for f in figures.values())
    assert len(figures["depth_i"].axes) == 2  # the map and its colour bar
    assert "mag" in figures["depth_i"].axes[1].get_ylabel()

    written = result.write(tmp_path / "out")
    for name in ("depth_i.fits", "nobj_i.fits", "spread_i.fits", "depth_r.fits", "mask.fits",
                 "depth_summary.csv", "metrics.json", "depth_i.png", "depth_histogram.png",
                 "mask.png"):  # fmt: skip
        assert written[name].exists() and written[name].stat().st_size > 0, name
    assert written["depth_i.png"].read_bytes()[:4] == b"\x89PNG"

    for kind, maps in (("depth", result.maps), ("nobj", result.counts), ("spread", result.spread)):
        for b in "ri":
            back = healsparse.HealSparseMap.read(str(written[f"{kind}_{b}.fits"]))
            np.testing.assert_array_equal(back.valid_pixels, maps[b].valid_pixels)
            np.testing.assert_array_equal(back[back.valid_pixels], maps[b][maps[b].valid_pixels])
            assert back.nside_sparse == 512 and back.nside_coverage == 32
            assert back.metadata["BAND"] == b
    mask = healsparse.HealSparseMap.read(str(written["mask.fits"]))
    np.testing.assert_array_equal(mask.valid_pixels, result.mask.valid_pixels)

    metrics = json.loads(written["metrics.json"].read_text())
    assert metrics == json.loads(json.dumps(result.metrics))
    table = pd.read_csv(written["depth_summary.csv"])
    assert list(table["band"]) == ["r", "i"]
    np.testing.assert_allclose(table["depth_median"], result.table()["depth_median"])


# -- parameters ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nside": 1000}, "'nside' must be a power of two"),
        ({"nside": 2**15}, "'nside' must be a power of two from 1 to 16384"),
        ({"nside": 16, "nside_coverage": 32}, "'nside_coverage' (32) must not exceed"),
        ({"method": "median"}, "'method' must be one of"),
        ({"bands": "rx"}, "'bands' must list distinct bands"),
        ({"nsid": 512}, "no parameter(s) ['nsid']"),
        ({"depth_cuts": {"z": 25.0}, "bands": "ri"}, "cut in band 'z'"),
        ({"min_objects": 0}, "'min_objects' must be a positive integer"),
        ({"method": "snr_window", "snr_delta": 6.0}, "'snr_delta' (6.0) must be below"),
    ],
)
def test_bad_parameters_are_refused(overrides: dict[str, Any], message: str) -> None:
    catalog = skydask.from_pandas(pd.DataFrame({"ra": [1.0], "dec": [1.0], "psFluxErr_r": [1.0]}))
    with pytest.raises(SpecError) as info:
        depth_map(catalog, **overrides)
    assert message in str(info.value)


def test_missing_quantity_is_named() -> None:
    catalog = skydask.from_pandas(pd.DataFrame({"ra": [1.0], "dec": [1.0], "psFluxErr_r": [1.0]}))
    with pytest.raises(SchemaError, match="psFluxErr_i"):
        depth_map(catalog, bands="ri", depth_cuts={})


def test_config_is_frozen_and_overridable() -> None:
    config = DepthMapConfig(bands="ri", nside=512)
    with pytest.raises(AttributeError):
        config.nside = 64  # type: ignore[misc]
    cuts = {"i": 25.0}
    other = config.with_overrides(depth_cuts=cuts)
    cuts["i"] = 0.0  # the caller's dict does not reach into the frozen config
    assert other.depth_cuts == {"i": 25.0} and config.depth_cuts == {"i": 25.3}
    assert config.with_overrides(bands="r").depth_cuts == {}
    assert hash(config) == hash(DepthMapConfig(bands="ri", nside=512))


def test_second_pass_when_only_some_bands_conflict(objects: pd.DataFrame) -> None:
    """g measured in one partition only (settled in pass 1), r everywhere (regathered)."""
    frame = _shuffled(objects)
    frame.loc[len(frame) // 3 :, "psFluxErr_g"] = np.nan
    result = depth_map(skydask.from_pandas(frame, npartitions=3), bands="gr", nside=1024)
    assert result.reduction["passes"] == 2
    for band in "gr":
        assert_matches(result, band, brute_flux_err(frame, 1024, band))


# -- the partial on the reader's chunks ------------------------------------------------------------
def _small_objects(n: int = 6_000, seed: int = 11) -> pd.DataFrame:
    """A compact patch of objects whose errors include NaN, zero, negative and infinite."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"ra": rng.uniform(60.0, 61.0, n), "dec": rng.uniform(-35.0, -34.0, n)})
    for b in "gr":
        err = rng.lognormal(3, 0.3, n).astype(np.float32)
        err[::53], err[1::61], err[2::67], err[3::71] = np.nan, 0.0, -1.0, np.inf
        frame[f"psFluxErr_{b}"] = err
        frame[f"psFlux_{b}"] = (err * rng.normal(5.0, 1.0, n)).astype(np.float32)
    return frame


def _as_pieces(frame: pd.DataFrame, cuts: list[int]) -> Any:
    """The frame's columns in pieces ending at ``cuts``, each a view with an offset into a
    larger array (as the reader hands over Arrow's chunks)."""
    from skydask.catalog.reader import ChunkedColumns

    bounds = [0, *cuts, len(frame)]
    columns = {}
    for name in frame.columns:
        values = frame[name].to_numpy()
        padded = np.concatenate([values[:5], values])
        columns[name] = [(a, padded[5 + a : 5 + b]) for a, b in itertools.pairwise(bounds)]
    return ChunkedColumns(columns, len(frame))


def _assert_stats(stats: Any, brute: pd.DataFrame, depth_atol: float = 0.0) -> None:
    np.testing.assert_array_equal(stats.pixels, brute.index.to_numpy())
    np.testing.assert_array_equal(stats.counts, brute["count"].to_numpy())
    np.testing.assert_allclose(stats.depth, brute["depth"].to_numpy(), rtol=0, atol=depth_atol)
    np.testing.assert_allclose(stats.spread, brute["spread"].to_numpy(), rtol=0, atol=SPREAD_TOL)


@pytest.mark.parametrize(
    "case", ["unordered", "float64", "no-position", "hats-runs", "hats-missing", "restrict"]
)
def test_partial_on_chunks_equals_brute_force(case: str) -> None:
    """One partition in pieces (rows in any order or in HATS order, runs of a pixel across
    pieces, rows without a position, float64 errors, a second pass's restriction) gives
    numpy's per-pixel median, count and spread of exactly its rows."""
    nside = 256
    objects = _small_objects()
    if case == "float64":
        objects = _as_float64(objects, "gr")
    has_pos = np.ones(len(objects), dtype=bool)
    if case == "no-position":
        objects.loc[::97, "ra"] = np.nan
        has_pos = np.isfinite(objects["ra"].to_numpy())
    if case.startswith("hats"):
        hp29 = hpgeom.angle_to_pixel(2**29, objects["ra"], objects["dec"], nest=True, lonlat=True)
        objects = objects.assign(_healpix_29=hp29).sort_values("_healpix_29", ignore_index=True)
        if case == "hats-missing":
            objects.loc[::89, "_healpix_29"] = -1
            has_pos = objects["_healpix_29"].to_numpy() >= 0
        objects = objects.drop(columns=["ra", "dec"]).assign(ra=objects["ra"], dec=objects["dec"])
    restrict = None
    if case == "restrict":
        pixels = _pixels(objects, nside)
        restrict = np.unique(pixels)[::3]
        has_pos = np.isin(pixels, restrict)
    reducer = depth_pixels.PixelReducer(nside=nside, bands="gr", restrict=restrict)
    columns = objects.drop(columns=["ra", "dec"]) if case.startswith("hats") else objects
    part = _as_pieces(columns, [1_000, 1_001, 4_000])
    state = reducer.partial(part)
    assert state.rows == len(objects) and state.rows_without_position == int((~has_pos).sum())
    stats = reducer.finish(reducer.combine([state, reducer.partial(objects.iloc[:0])]))
    for band in "gr":
        _assert_stats(stats[band], brute_flux_err(objects[has_pos], nside, band))


def test_snr_window_partial_on_chunks_equals_brute_force() -> None:
    objects = _small_objects()
    reducer = depth_pixels.PixelReducer(nside=256, bands="gr", method="snr_window")
    stats = reducer.finish(reducer.partial(_as_pieces(objects, [2_500])))
    for band in "gr":
        brute = brute_snr_window(objects, 256, band, 5.0, 0.5)
        _assert_stats(stats[band], brute, depth_atol=1e-10)
