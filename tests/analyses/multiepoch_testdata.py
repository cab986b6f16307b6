"""Shared data of the multi-epoch tests: a synthetic sky with its Source and ForcedSource
tables (built once per test process), the real HSC files, and brute-force twins.

The synthetic catalogue: 40,000 objects over 58-62 deg RA, -36 to -34 deg Dec (three tracts),
one year of r and i visits (about 110), written twice with the same seed: Source per visit and
ForcedSource per tract (``by_tract``), then Source per tract and ForcedSource per visit
(``by_visit``). Same seed, same rows: only the layout differs.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from skydask.synth import SynthInfo, generate_object_catalog
from skydask.synth.sources import SourceSynthInfo, generate_source_tables

FOOTPRINT = (58.0, 62.0, -36.0, -34.0)
ROWS = 40_000
SEED = 11
YEARS = 1.0
BANDS = "ri"

DATA = Path(__file__).resolve().parents[1] / "data"
HSC_FILES = {b: DATA / f"faro_hsc_matchedCatalogTract_0_{b}.fits.gz" for b in "ri"}
# faro's own recorded PA1 for these files (tests/data/PA1_expected_0_{r,i}.yaml in lsst/faro,
# PA1Task with nMinPhotRepeat = 10), in mmag
FARO_PA1_MMAG = {"r": 7.445174470432661, "i": 5.870064170916189}


@dataclass(frozen=True)
class MultiEpochData:
    catalog: SynthInfo
    by_tract: SourceSynthInfo
    by_visit: SourceSynthInfo


@functools.cache
def multiepoch_data() -> MultiEpochData:
    """The synthetic catalogue and its two layouts (about 5 s, once per process)."""
    root = Path(tempfile.mkdtemp(prefix="skydask-multiepoch-tests-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    catalog = generate_object_catalog(
        root / "cat", rows=ROWS, seed=SEED, footprint=FOOTPRINT, years=YEARS
    )
    by_tract = generate_source_tables(catalog, root / "by_tract", bands=BANDS)
    by_visit = generate_source_tables(
        catalog, root / "by_visit", bands=BANDS, source_layout="tract",
        forced_source_layout="visit",
    )  # fmt: skip
    return MultiEpochData(catalog, by_tract, by_visit)


def read_table(directory: Path) -> pd.DataFrame:
    """Every Parquet file of a table directory, whole, in memory (the brute-force way);
    hive keys (``tract``) are dropped, so both layouts give the same columns."""
    table = ds.dataset(directory, format="parquet", partitioning="hive").to_table()
    frame = table.to_pandas()
    return frame.drop(columns=[c for c in ("tract",) if c in frame])


def brute_light_curve_stats(rows: pd.DataFrame) -> pd.DataFrame:
    """Light-curve statistics by a plain pandas groupby-apply (the twin of the kernel)."""
    rows = rows[np.isfinite(rows["psFlux"]) & (rows["psFluxErr"] > 0) & ~rows["psFlux_flag"]]

    def one(g: pd.DataFrame) -> pd.Series:
        f = g["psFlux"].to_numpy(np.float64)
        w = 1.0 / g["psFluxErr"].to_numpy(np.float64) ** 2
        wmean = np.sum(w * f) / np.sum(w)
        chi2 = float(np.sum(w * (f - wmean) ** 2))
        n = len(f)
        return pd.Series(
            {
                "n_epochs": n,
                "flux_mean": f.mean(),
                "flux_std": f.std(ddof=1) if n > 1 else np.nan,
                "flux_wmean": wmean,
                "flux_wmean_err": 1.0 / np.sqrt(np.sum(w)),
                "chi2": chi2,
                "chi2_dof": chi2 / (n - 1) if n > 1 else np.nan,
                "mjd_min": g["mjd"].min(),
                "mjd_max": g["mjd"].max(),
            }
        )

    out = rows.groupby(["objectId", "filter"], sort=True).apply(one, include_groups=False)
    return out.reset_index().rename(columns={"filter": "band"})


# --- faro's PA1 and AM1 by brute force on collected rows ------------------------------------
#
# Written from faro's code (filterMatches, calcPhotRepeat, calcRmsDistances) with plain pandas
# group-bys and an all-pairs distance matrix: independent of the partitioned implementation.
# ``rows`` has objectId, band, visit, mag, snr, ra, dec (deg), and optionally extendedness,
# the four pixel flags and detect_isPrimary.

PIXEL_FLAGS = ["pixelFlags_saturated", "pixelFlags_cr", "pixelFlags_bad", "pixelFlags_edge"]


def faro_stars(rows: pd.DataFrame, snr_min: float) -> pd.DataFrame:
    """faro's filterMatches: one row per selected (objectId, band) with its statistics."""
    # a median S/N >= snr_min needs a measurement >= snr_min: cheap exact pre-filter
    bright = rows.groupby(["objectId", "band"])["snr"].transform("max") >= snr_min
    rows = rows[bright].sort_values(["objectId", "band"], kind="stable")
    key = rows["objectId"].astype(str) + "/" + rows["band"].astype(str)
    cuts = np.flatnonzero(key.to_numpy()[1:] != key.to_numpy()[:-1]) + 1
    flags = [f for f in PIXEL_FLAGS if f in rows]
    columns = {
        c: np.split(rows[c].to_numpy(), cuts)
        for c in ["objectId", "band", "mag", "snr", "ra", "dec"]
        + [c for c in ("extendedness", "detect_isPrimary") if c in rows]
    }
    flagged = np.split(rows[flags].to_numpy().any(axis=1), cuts) if flags else None
    stars = []
    for k in range(len(columns["mag"])):
        mag, snr = columns["mag"][k].astype(float), columns["snr"][k].astype(float)
        if len(mag) < 2 or not np.isfinite(mag).all():
            continue
        if not np.median(snr[np.isfinite(snr)]) >= snr_min:
            continue
        if "extendedness" in columns and not np.max(columns["extendedness"][k]) < 0.9:
            continue
        if flagged is not None and flagged[k].any():
            continue
        if "detect_isPrimary" in columns and not columns["detect_isPrimary"][k].all():
            continue
        r, d = np.radians(columns["ra"][k]), np.radians(columns["dec"][k])
        v = np.array([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)]).sum(axis=1)
        v /= np.linalg.norm(v)
        stars.append(
            {
                "objectId": columns["objectId"][k][0], "band": columns["band"][k][0],
                "n": len(mag), "rms_mmag": np.nanstd(mag) * 1000, "mag_median": np.median(mag),
                "ra": np.degrees(np.arctan2(v[1], v[0])) % 360, "dec": np.degrees(np.arcsin(v[2])),
            }
        )  # fmt: skip
    return pd.DataFrame(stars)


def faro_pa1(rows: pd.DataFrame, snr_min: float = 200.0) -> dict[str, float]:
    stars = faro_stars(rows, snr_min)
    used = stars[stars["n"] > 2]
    return {str(b): float(np.median(g["rms_mmag"])) for b, g in used.groupby("band")}


def _haversine(r1: np.ndarray, d1: np.ndarray, r2: np.ndarray, d2: np.ndarray) -> np.ndarray:
    r1, d1, r2, d2 = (np.radians(x) for x in (r1, d1, r2, d2))
    a = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(a)))


def faro_am1_pairs(rows: pd.DataFrame, snr_min: float = 50.0) -> pd.DataFrame:
    """Every pair 4-6 arcmin apart of stars with median magnitude in [17, 21.5), and the
    sample rms (ddof 1) of their separation over common visits, in mas."""
    stars = faro_stars(rows, snr_min)
    stars = stars[(stars["mag_median"] >= 17.0) & (stars["mag_median"] < 21.5)]
    out = []
    for band, s in stars.groupby("band"):
        ra, dec, ids = s["ra"].to_numpy(), s["dec"].to_numpy(), s["objectId"].to_numpy()
        dist = _haversine(ra[:, None], dec[:, None], ra[None, :], dec[None, :])
        i, j = np.nonzero(
            (dist >= 4 / 60) & (dist < 6 / 60) & np.triu(np.ones_like(dist), 1).astype(bool)
        )
        pairs = pd.DataFrame({"objectId_1": np.minimum(ids[i], ids[j]),
                              "objectId_2": np.maximum(ids[i], ids[j])})  # fmt: skip
        meas = rows.loc[rows["band"] == band, ["objectId", "visit", "ra", "dec"]]
        m = pairs.merge(meas.rename(columns={"objectId": "objectId_1"}), on="objectId_1")
        m = m.merge(meas.rename(columns={"objectId": "objectId_2"}), on=["objectId_2", "visit"])
        m["d"] = _haversine(m["ra_x"], m["dec_x"], m["ra_y"], m["dec_y"]) * 3.6e6
        rms = m.groupby(["objectId_1", "objectId_2"])["d"].agg(lambda d: np.std(d, ddof=1))
        count = m.groupby(["objectId_1", "objectId_2"])["d"].size()
        rms = rms[count > 1].rename("rms_mas").reset_index()
        out.append(rms.assign(band=band))
    return pd.concat(out, ignore_index=True)
