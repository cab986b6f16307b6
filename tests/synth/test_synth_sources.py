"""skydask.synth Source and ForcedSource tables: visits, fields, noise, offsets, layouts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from multiepoch_testdata import BANDS, FOOTPRINT, SEED, YEARS, multiepoch_data, read_table

import skydask
from skydask.errors import SpecError
from skydask.synth import read_truth
from skydask.synth.magnitudes import flux_njy
from skydask.synth.sources import generate_source_tables, read_variables, read_visits
from skydask.synth.sources_model import SourceModel
from skydask.synth.survey import SurveyModel, draw_pointings

MODEL = SourceModel()
SURVEY = SurveyModel()


@pytest.fixture(scope="module")
def visits() -> pd.DataFrame:
    return read_visits(multiepoch_data().by_tract.path)


@pytest.fixture(scope="module")
def forced() -> pd.DataFrame:
    return read_table(multiepoch_data().by_tract.forced_source_dir)


@pytest.fixture(scope="module")
def objects() -> pd.DataFrame:
    data = multiepoch_data()
    pos = pd.concat([pd.read_parquet(f, columns=["objectId", "ra", "dec"])
                     for f in data.catalog.files], ignore_index=True)  # fmt: skip
    return pos.merge(read_truth(data.catalog.path), on="objectId")


def test_visits_are_the_pointings_of_the_object_catalogue(visits: pd.DataFrame) -> None:
    pointings = {p.band: p for p in draw_pointings(FOOTPRINT, YEARS, SEED, SURVEY)}
    for band in BANDS:
        mine = visits[visits["band"] == band].sort_values("ra")
        theirs = pointings[band]
        order = np.argsort(theirs.ra)
        np.testing.assert_array_equal(mine["ra"], theirs.ra[order])
        np.testing.assert_array_equal(mine["psf_fwhm"], theirs.fwhm[order])
        # depth: the single-visit design depth, worse with seeing, plus 0.1 mag of sky
        model = SURVEY.single_visit_m5[band] - 2.5 * np.log10(
            mine["psf_fwhm"] / SURVEY.seeing_fwhm_zenith[band]
        )
        assert abs(float(np.std(mine["m5"] - model)) - MODEL.depth_rms) < 0.03
    assert visits["visit"].tolist() == list(range(1, len(visits) + 1))
    assert visits["mjd"].is_monotonic_increasing
    assert MODEL.start_mjd <= visits["mjd"].min() and visits["mjd"].max() < MODEL.start_mjd + 366
    # 144 draws of N(0, 5 mmag): the sample rms is within 3 sigma (6 %) of 5 mmag
    assert abs(float(visits["zp_offset"].std()) - 0.005) < 3 * 0.005 / np.sqrt(2 * len(visits))


def test_forced_sources_hold_every_object_in_every_field(
    visits: pd.DataFrame, forced: pd.DataFrame, objects: pd.DataFrame
) -> None:
    for visit in visits["visit"].iloc[[0, 40, 100]]:
        v = visits[visits["visit"] == visit].iloc[0]
        r1, d1 = np.radians(v["ra"]), np.radians(v["dec"])
        r2, d2 = np.radians(objects["ra"]), np.radians(objects["dec"])
        cos = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(r2 - r1)
        inside = set(objects["objectId"][cos >= np.cos(np.radians(SURVEY.fov_radius_deg))])
        assert set(forced.loc[forced["visit"] == visit, "objectId"]) == inside


def test_fluxes_carry_the_stated_noise_and_zeropoint_offsets(
    visits: pd.DataFrame, forced: pd.DataFrame, objects: pd.DataFrame
) -> None:
    variables = set(read_variables(multiepoch_data().by_tract.path)["objectId"])
    stars = objects[objects["is_star"] & ~objects["objectId"].isin(variables)]
    rows = forced.merge(stars, on="objectId").merge(
        visits[["visit", "m5", "zp_offset"]], on="visit"
    )
    true_mag = np.where(rows["filter"] == "r", rows["mag_true_r"], rows["mag_true_i"])
    calib = 10 ** (-0.4 * rows["zp_offset"].to_numpy())
    f_true = flux_njy(true_mag) * calib
    f5 = flux_njy(rows["m5"].to_numpy())
    err = f5 / 5 * np.sqrt(1 + MODEL.source_noise * flux_njy(true_mag) / f5) * calib
    np.testing.assert_allclose(rows["psFluxErr"], err, rtol=1e-6)  # stored as float32
    pull = (rows["psFlux"] - f_true) / rows["psFluxErr"]
    # 10^5 Gaussian pulls: mean within 0.02, rms within 2 % of 1
    assert len(pull) > 50_000
    assert abs(float(pull.mean())) < 0.02
    assert abs(float(pull.std()) - 1.0) < 0.02


def test_sources_are_the_detections_with_offsets_of_stated_size(
    visits: pd.DataFrame, forced: pd.DataFrame
) -> None:
    data = multiepoch_data()
    source = read_table(data.by_tract.source_dir)
    detected = forced[forced["psFlux"] / forced["psFluxErr"] >= MODEL.detection_snr]
    assert len(source) == len(detected) == data.by_tract.source_rows
    np.testing.assert_array_equal(np.right_shift(source["sourceId"], 45), source["visit"])
    # bright stars: centroid noise below 1 mas, so the offsets from the forced (true)
    # positions are the visit's shift plus 5 mas per axis
    both = source.merge(forced[["objectId", "visit", "ra", "dec"]], on=["objectId", "visit"],
                        suffixes=("", "_true"))  # fmt: skip
    bright = both[(both["psFlux"] / both["psFluxErr"] > 1000) & (both["extendedness"] == 0)]
    dy = (bright["dec"] - bright["dec_true"]) * 3.6e6
    per_visit = dy.groupby(bright["visit"]).mean()
    count = dy.groupby(bright["visit"]).size()
    shifts = visits.set_index("visit").loc[per_visit.index, "shift_dec_mas"]
    # the mean of n offsets is the shift to within 5 mas / sqrt(n): all within 4.5 sigma
    assert (np.abs(per_visit - shifts) < 4.5 * MODEL.astrometric_rms_mas / np.sqrt(count)).all()
    residual = dy - bright["visit"].map(per_visit)
    assert abs(float(residual.std()) - MODEL.astrometric_rms_mas) < 0.3


def test_both_layouts_hold_the_same_rows() -> None:
    data = multiepoch_data()
    for kind in ("forced_source_dir", "source_dir"):
        a = read_table(getattr(data.by_tract, kind)).drop(columns="tract", errors="ignore")
        b = read_table(getattr(data.by_visit, kind)).drop(columns="tract", errors="ignore")
        keys = ["objectId", "visit"]
        pd.testing.assert_frame_equal(
            a.sort_values(keys, ignore_index=True), b.sort_values(keys, ignore_index=True)
        )
    fs = skydask.open_catalog(data.by_visit.forced_source_dir)
    assert fs.schema.flavour == "dc2_forced_source"
    # one file per visit that saw an object (pointings of the expanded box may see none)
    assert fs.npartitions == read_table(data.by_tract.forced_source_dir)["visit"].nunique()


def test_variables_are_drawn_as_stated_and_regeneration_is_cached() -> None:
    data = multiepoch_data()
    variables = read_variables(data.by_tract.path)
    truth = read_truth(data.catalog.path, columns=["objectId", "is_star"])
    kinds = variables.merge(truth, on="objectId")
    assert (kinds.loc[kinds["kind"] == "periodic", "is_star"]).all()
    assert not kinds.loc[kinds["kind"] == "transient", "is_star"].any()
    n_stars = int(truth["is_star"].sum())
    periodic = int((variables["kind"] == "periodic").sum())
    assert abs(periodic - 0.02 * n_stars) < 4 * np.sqrt(0.02 * n_stars)
    assert variables["period"].dropna().between(0.2, 50).all()

    stamp = data.by_tract.params_path.stat().st_mtime_ns
    again = generate_source_tables(data.catalog, data.by_tract.path, bands=BANDS)
    assert again == data.by_tract
    assert data.by_tract.params_path.stat().st_mtime_ns == stamp
    with pytest.raises(SpecError, match="bands"):
        generate_source_tables(data.catalog, data.by_tract.path, bands="g")
    with pytest.raises(SpecError, match="'source_layout'"):
        generate_source_tables(data.catalog, data.by_tract.path, source_layout="detector")
