"""Light curves and their statistics, out of core, against pandas and the injected signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from multiepoch_testdata import brute_light_curve_stats, multiepoch_data, read_table

import skydask
from skydask.analyses.multiepoch import light_curves
from skydask.analyses.multiepoch.kernels import light_curve_stats
from skydask.catalog.colocation import by_object
from skydask.errors import SchemaError, SpecError
from skydask.synth import read_truth
from skydask.synth.sources import read_variables, read_visits
from skydask.synth.sources_model import SourceModel

STATS = ["n_epochs", "flux_mean", "flux_std", "flux_wmean", "flux_wmean_err", "chi2", "chi2_dof"]


@pytest.fixture(scope="module")
def forced_rows() -> pd.DataFrame:
    return read_table(multiepoch_data().by_tract.forced_source_dir)


@pytest.fixture(scope="module")
def all_stats() -> pd.DataFrame:
    """Statistics of every object from the ForcedSource table partitioned by tract."""
    result = light_curves(skydask.open_catalog(multiepoch_data().by_tract.forced_source_dir))
    assert result.reduction["strategy"] == "partition-wise by tract"
    assert not result.reduction["shuffled"]
    return result.stats


def test_statistics_equal_a_pandas_groupby(
    forced_rows: pd.DataFrame, all_stats: pd.DataFrame
) -> None:
    # every object: counts and means from pandas' own group-by on the collected table
    good = forced_rows[~forced_rows["psFlux_flag"]].astype({"psFlux": np.float64})
    grouped = good.groupby(["objectId", "filter"], sort=True)
    assert all_stats["n_epochs"].tolist() == grouped.size().tolist()
    np.testing.assert_allclose(all_stats["flux_mean"], grouped["psFlux"].mean(), rtol=1e-9)
    # a sample of objects: every statistic from a per-object pandas apply
    rng = np.random.default_rng(1)
    ids = rng.choice(forced_rows["objectId"].unique(), 300, replace=False)
    twin = brute_light_curve_stats(forced_rows[forced_rows["objectId"].isin(ids)])
    mine = all_stats[all_stats["objectId"].isin(ids)].reset_index(drop=True)
    assert mine[["objectId", "band"]].astype(str).equals(twin[["objectId", "band"]].astype(str))
    for column in [*STATS, "mjd_min", "mjd_max"]:
        np.testing.assert_allclose(mine[column], twin[column], rtol=1e-9, err_msg=column)


def test_per_visit_files_are_shuffled_by_object_with_the_same_result(
    all_stats: pd.DataFrame,
) -> None:
    fs = skydask.open_catalog(multiepoch_data().by_visit.forced_source_dir)
    result = light_curves(fs)
    assert result.reduction["strategy"].startswith("shuffle by objectId")
    assert result.reduction["shuffled"]
    pd.testing.assert_frame_equal(
        result.stats[["objectId", "band", "n_epochs"]], all_stats[["objectId", "band", "n_epochs"]]
    )
    for column in STATS[1:]:
        np.testing.assert_allclose(result.stats[column], all_stats[column], rtol=1e-10)


def _true_flux(rows: pd.DataFrame) -> np.ndarray:
    """The noise-free PSF flux of each measurement from the truth tables and the stated model
    (skydask.synth.sources_model): PSF fraction of the host, periodic variation in magnitude,
    transient flux added, zeropoint offset of the visit."""
    model = SourceModel()
    mag = np.where(rows["filter"] == "r", rows["mag_true_r"], rows["mag_true_i"])
    s_p2 = (rows["psf_fwhm"].to_numpy() / 2.355) ** 2
    flux = 10 ** (-0.4 * (mag - 31.4)) * 2 * s_p2 / (2 * s_p2 + rows["size_true"] ** 2)
    t = rows["mjd"].to_numpy()
    periodic = rows["kind"].eq("periodic").fillna(False).to_numpy(dtype=bool)
    phase = 2 * np.pi * (t - model.start_mjd) / rows["period"] + rows["phase"]
    flux = np.where(periodic, flux * 10 ** (-0.4 * rows["amplitude"] * np.sin(phase)), flux)
    transient = rows["kind"].eq("transient").fillna(False).to_numpy(dtype=bool)
    dt = t - rows["t0"].to_numpy()
    shape = np.where(dt < 0, np.exp(dt / model.transient_rise_days), np.exp(-dt / rows["tau"]))
    bump = 10 ** (-0.4 * (rows["peak_mag"] - 31.4)) * shape
    flux = np.where(transient, flux + bump, flux)
    return np.asarray(flux * 10 ** (-0.4 * rows["zp_offset"].to_numpy()))


def test_chi2_matches_the_injected_variability_and_finds_the_variables(
    forced_rows: pd.DataFrame, all_stats: pd.DataFrame
) -> None:
    """With the true flux f of every epoch known, the measured chi^2 about the weighted mean
    is a non-central chi^2 with N - 1 degrees of freedom and non-centrality
    lambda = sum w (f - f_w)^2 (zeropoint offsets and variability): mean N - 1 + lambda,
    variance 2 (N - 1 + 2 lambda). Every object and band must be within 5 sigma of it (bar
    a few in 10^4), and every strongly variable object (lambda > 10 (N - 1)) must be flagged
    as variable."""
    data = multiepoch_data()
    truth = read_truth(data.catalog.path, ["objectId", "mag_true_r", "mag_true_i", "size_true"])
    variables = read_variables(data.by_tract.path)
    visits = read_visits(data.by_tract.path)[["visit", "psf_fwhm", "zp_offset"]]
    rows = forced_rows[~forced_rows["psFlux_flag"]]
    rows = rows.merge(truth, on="objectId").merge(visits, on="visit")
    rows = rows.merge(variables, on="objectId", how="left")
    rows["f"] = _true_flux(rows)
    rows["w"] = 1.0 / rows["psFluxErr"].astype(np.float64) ** 2
    rows["wf"] = rows["w"] * rows["f"]
    grouped = rows.groupby(["objectId", "filter"], sort=True)
    fbar = grouped["wf"].transform("sum") / grouped["w"].transform("sum")
    lam = (rows["w"] * (rows["f"] - fbar) ** 2).groupby([rows["objectId"], rows["filter"]]).sum()
    k = all_stats["n_epochs"].to_numpy() - 1
    lam = lam.to_numpy()
    z = (all_stats["chi2"].to_numpy() - k - lam) / np.sqrt(2 * (k + 2 * lam))
    ok = k > 0
    assert np.mean(np.abs(z[ok]) < 5) > 0.9995
    # faint constant objects: z has mean 0 and unit variance (65,000 of them: to 0.02)
    faint = ok & (lam < 1)
    assert abs(float(np.mean(z[faint]))) < 0.02
    assert abs(float(np.std(z[faint])) - 1.0) < 0.02

    strong = all_stats[ok & (lam > 10 * np.maximum(k, 1))]
    kinds = strong.merge(variables, on="objectId", how="left")["kind"]
    assert {"periodic", "transient"} <= set(kinds.dropna())
    flagged = set(
        map(tuple, all_stats.loc[all_stats["chi2_dof"] > 5.0, ["objectId", "band"]].to_numpy())
    )
    assert set(map(tuple, strong[["objectId", "band"]].to_numpy())) <= flagged


def test_light_curves_of_chosen_objects(forced_rows: pd.DataFrame, tmp_path: Path) -> None:
    data = multiepoch_data()
    variables = read_variables(data.by_tract.path)
    ids = variables["objectId"].iloc[:4].tolist()
    fs = skydask.open_catalog(data.by_visit.forced_source_dir)
    result = light_curves(fs, object_ids=ids)
    assert sorted(result.stats["objectId"].unique()) == sorted(ids)
    assert result.curves is not None
    for oid in ids:
        mine = result.light_curve(oid)
        theirs = forced_rows[(forced_rows["objectId"] == oid) & ~forced_rows["psFlux_flag"]]
        theirs = theirs.sort_values(["filter", "mjd"])
        np.testing.assert_array_equal(mine["visit"], theirs["visit"])
        np.testing.assert_array_equal(mine["psFlux"], theirs["psFlux"])
        assert mine.groupby("band")["mjd"].apply(lambda t: t.is_monotonic_increasing).all()
    r_only = result.light_curve(ids[0], band="r")
    assert set(r_only["band"]) == {"r"}
    nested = result.nested()
    assert len(nested) == len(result.stats)
    first = nested.iloc[0]
    assert len(first["psFlux"]) == result.stats["n_epochs"].iloc[0]
    assert set(result.plot()) == {"chi2_vs_mag", "chi2_histogram", "light_curves"}
    written = result.write(tmp_path)
    assert {"light_curve_stats.parquet", "light_curves.parquet"} <= set(written)
    metrics = result.metrics
    assert metrics["n_objects_r"].value == 4


def test_cuts_bands_and_refusals(all_stats: pd.DataFrame) -> None:
    fs = skydask.open_catalog(multiepoch_data().by_tract.forced_source_dir)
    late = light_curves(fs, where="mjd > 60850", bands="i")
    assert set(late.stats["band"]) == {"i"}
    assert (late.stats["mjd_min"] > 60850).all()
    with pytest.raises(SpecError, match="max_curve_rows"):
        light_curves(fs, with_curves=True, max_curve_rows=1000)
    with pytest.raises(SpecError, match="no light curves"):
        light_curves(fs, bands="r", where="mjd < 60680").light_curve(1)
    objects = skydask.from_pandas(pd.DataFrame({"objectId": [1], "ra": [1.0], "dec": [2.0]}))
    with pytest.raises(SchemaError, match="light_curves needs"):
        light_curves(objects)
    assert len(all_stats) == all_stats[["objectId", "band"]].drop_duplicates().shape[0]


def test_a_tract_partitioned_table_needs_one_task_per_tract() -> None:
    fs = skydask.open_catalog(multiepoch_data().by_tract.forced_source_dir)
    grouped = by_object(fs.select(["objectId", "band", "psFlux", "psFluxErr", "mjd"]))
    stats = grouped.frame.map_partitions(light_curve_stats)
    tasks = len(dict(stats.optimize().__dask_graph__()))
    assert tasks == grouped.frame.npartitions == len(multiepoch_data().catalog.tracts)
