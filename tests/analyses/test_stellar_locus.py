"""Tests of skydask.analyses.stellar_locus against independent truths.

* Brute force: the distributed result on a small catalogue (several partitions; threaded,
  synchronous and process schedulers) equals a direct numpy implementation of the same recipe
  on the collected rows (its own selection, SVD line fit, np.percentile / np.median).
* Synthetic truth: the w and y widths of a skydask.synth catalogue equal the injected locus
  width combined with what the test computes independently for the locus curvature (from the
  Covey table) and the photometric noise (measured minus true magnitudes).
* Real data: SDSS DR14 spectroscopic stars against Covey et al. (2007); the w width of real HSC
  stars against Rubin's normal range.
* Errors, plots and files.
"""

from __future__ import annotations

import importlib
import json
import math
import multiprocessing
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

import skydask
from skydask.analyses.stellar_locus import (
    StellarLocusConfig,
    StellarLocusResult,
    TooFewStarsError,
    stellar_locus,
)
from skydask.data import covey_locus
from skydask.errors import SpecError, UnknownQuantityError
from skydask.synth import generate_object_catalog, read_synth_params, read_truth

DATA = Path(__file__).resolve().parents[1] / "data"
SIGMA_MAD = 1.0 / statistics.NormalDist().inv_cdf(0.75)  # Gaussian sigma per unit MAD
LSST_R = {"u": 4.81, "g": 3.64, "r": 2.70, "i": 2.06, "z": 1.58, "y": 1.31}

# Rubin analysis_tools' boxes (x_min, x_max, y_min, y_max), colours and S/N band, restated here
FITS = {
    "w": ("g-r", "r-i", (0.28, 1.0, 0.02, 0.48), "r"),
    "x": ("g-r", "r-i", (1.05, 1.55, 0.78, 1.62), "r"),
    "y": ("r-i", "i-z", (0.82, 2.01, 0.37, 0.90), "i"),
}
# Ivezic et al. (2004): value coefficients and constant, parallel-colour coefficients, range
SDSS = {
    "s": ({"u": -0.249, "g": 0.794, "r": -0.555}, 0.234,
          {"u": 0.910, "g": -0.495, "r": -0.415}, -1.280, (-0.2, 0.8), "r"),
    "w": ({"g": -0.227, "r": 0.792, "i": -0.567}, 0.050,
          {"g": 0.928, "r": -0.556, "i": -0.372}, -0.425, (-0.2, 0.6), "r"),
    "x": ({"g": 0.707, "r": -0.707}, -0.988, {"r": 1.0, "i": -1.0}, 0.0, (0.8, 1.6), "r"),
    "y": ({"r": -0.270, "i": 0.800, "z": -0.534}, 0.054,
          {"r": 0.895, "i": -0.448, "z": -0.447}, -0.600, (0.1, 1.2), "i"),
}  # fmt: skip
LOCUS = {"u-g": "ugir", "g-r": "gir", "r-i": "gir", "i-z": "girz"}  # bands each locus colour needs


# -- the brute-force twin ------------------------------------------------------------------
def mags_of(df: pd.DataFrame, bands: str = "ugriz") -> dict[str, np.ndarray]:
    with np.errstate(all="ignore"):
        return {
            b: -2.5 * np.log10(df[f"psFlux_{b}"].to_numpy(dtype=np.float64)) + 31.4 for b in bands
        }


def star_cut(df: pd.DataFrame, snr_band: str, bands: str, snr_min=300.0, mag_max=22.5):
    """The star selection, written directly (magnitudes, not the fluxes the pushdown uses)."""
    mags = mags_of(df)
    keep = (df["extendedness"].to_numpy() < 0.5) & df["clean"].to_numpy()
    flux = df[f"psFlux_{snr_band}"].to_numpy(np.float64)
    with np.errstate(all="ignore"):
        keep &= flux / df[f"psFluxErr_{snr_band}"].to_numpy(np.float64) >= snr_min
        keep &= mags[snr_band] < mag_max
    for b in set(bands) | {snr_band}:
        keep &= np.isfinite(mags[b]) & ~df[f"psFlux_flag_{b}"].to_numpy()
    return keep


def dereddened(df: pd.DataFrame) -> dict[str, np.ndarray]:
    mags = mags_of(df)
    ebv = df["ebv"].to_numpy(np.float64) if "ebv" in df else 0.0
    return {b: m - LSST_R[b] * ebv for b, m in mags.items()}


def svd_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Orthogonal-distance line through points: first right-singular vector of the centred."""
    mx, my = x.mean(), y.mean()
    _, _, vt = np.linalg.svd(np.column_stack([x - mx, y - my]), full_matrices=False)
    slope = vt[0, 1] / vt[0, 0]
    return float(slope), float(my - slope * mx)


def perp(x, y, m, b):
    return (y - m * x - b) / math.hypot(1.0, m) * 1e3


def sigma_mad(v: np.ndarray) -> float:
    return SIGMA_MAD * float(np.median(np.abs(v - np.median(v))))


def brute_fit(x, y, box, clips=(3.5, 5.0)):
    x_min, x_max, y_min, y_max = box
    keep = (x > x_min) & (x < x_max) & (y > y_min) & (y < y_max)
    m, b = svd_line(x[keep], y[keep])
    for n in clips:
        if abs(m) > 1:
            ends = np.array([[(y_min - b) / m, y_min], [(y_max - b) / m, y_max]])
        else:
            ends = np.array([[x_min, m * x_min + b], [x_max, m * x_max + b]])
        along = (x + m * y) / math.hypot(1, m)
        t_ends = (ends[:, 0] + m * ends[:, 1]) / math.hypot(1, m)
        strip = (along > t_ends.min()) & (along < t_ends.max())
        d = perp(x, y, m, b)
        q25, q75 = np.percentile(d[strip], [25, 75])
        keep = strip & (np.abs(d) <= n * 0.74 * (q75 - q25))
        m, b = svd_line(x[keep], y[keep])
    d = perp(x[keep], y[keep], m, b)
    return {"slope": m, "intercept": b, "n": int(keep.sum()), "median": float(np.median(d)),
            "sigmaMAD": sigma_mad(d)}  # fmt: skip


def covey_edges_twin() -> np.ndarray:
    c = covey_locus()["g-i"].to_numpy()
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


def brute_force(df: pd.DataFrame) -> dict[str, object]:
    m = dereddened(df)
    out: dict[str, object] = {}
    for name, (cx, cy, box, snr) in FITS.items():
        bands = cx.replace("-", "") + cy.replace("-", "")
        keep = star_cut(df, snr, bands)
        x = (m[cx[0]] - m[cx[2]])[keep]
        y = (m[cy[0]] - m[cy[2]])[keep]
        out[f"fit:{name}"] = brute_fit(x, y, box)
    for name, (coeffs, const, pcoeffs, pconst, (lo, hi), snr) in SDSS.items():
        keep = star_cut(df, snr, "".join(coeffs) + "".join(pcoeffs))
        parallel = sum(c * m[b] for b, c in pcoeffs.items()) + pconst
        value = (sum(c * m[b] for b, c in coeffs.items()) + const) * 1e3
        v = value[keep & (parallel > lo) & (parallel < hi)]
        out[f"pc:{name}"] = (len(v), float(np.median(v)), sigma_mad(v))
    edges = covey_edges_twin()
    for colour, bands in LOCUS.items():
        keep = star_cut(df, "r", bands)
        gi = (m["g"] - m["i"])[keep]
        value = (m[colour[0]] - m[colour[2]])[keep]
        group = np.digitize(gi, edges) - 1
        out[f"locus:{colour}"] = [
            float(np.median(value[group == k])) if np.any(group == k) else math.nan
            for k in range(len(edges) - 1)
        ]
    return out


# -- fixtures --------------------------------------------------------------------------------
NEEDED = ["ra", "dec", "extendedness", "clean"] + [
    f"{q}_{b}" for q in ("psFlux", "psFluxErr", "psFlux_flag") for b in "ugriz"
]


@pytest.fixture(scope="module")
def synth_small(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """A 60,000-object synthetic catalogue in memory (needed columns), with a random E(B-V)."""
    out = tmp_path_factory.mktemp("locus") / "small"
    info = generate_object_catalog(out, rows=60_000, seed=11, footprint=(60.0, 61.0, -35.0, -34.0))
    df = pd.concat([pd.read_parquet(f, columns=NEEDED) for f in info.files], ignore_index=True)
    df["ebv"] = np.random.default_rng(5).uniform(0.0, 0.1, len(df))
    return df


@pytest.fixture(scope="module")
def synth_300k(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("locus") / "synth300k"
    return generate_object_catalog(out, rows=300_000, seed=3, footprint=(60.0, 62.0, -36.0, -34.0))


@pytest.fixture(scope="module")
def synth_300k_result(synth_300k) -> StellarLocusResult:
    return stellar_locus(skydask.open_catalog(synth_300k.path))


def _compare(result: StellarLocusResult, truth: dict[str, object]) -> None:
    for name in FITS:
        want = truth[f"fit:{name}"]
        got = result.fits[name]
        assert got.n_stars == want["n"], name
        assert got.slope == pytest.approx(want["slope"], rel=1e-10), name
        assert got.intercept == pytest.approx(want["intercept"], rel=1e-10, abs=1e-12), name
        # exact quantiles: equal to numpy's to rounding (distances of ~1e2 mmag)
        assert got.median_mmag == pytest.approx(want["median"], abs=1e-8), name
        assert got.sigma_mad_mmag == pytest.approx(want["sigmaMAD"], abs=1e-8), name
    for name in SDSS:
        n, median, sigma = truth[f"pc:{name}"]
        got = result.principal_colours[name]
        assert (got.n_stars, got.median_mmag, got.sigma_mad_mmag) == pytest.approx(
            (n, median, sigma), abs=1e-9
        ), name
    table = result.locus_table()
    for colour in LOCUS:
        np.testing.assert_allclose(
            table[colour].to_numpy(), truth[f"locus:{colour}"], rtol=0, atol=1e-12
        )


# -- brute force -----------------------------------------------------------------------------
def test_brute_force_threads_and_sync(synth_small: pd.DataFrame) -> None:
    truth = brute_force(synth_small)
    assert truth["fit:w"]["n"] > 300 and truth["fit:x"]["n"] > 300 and truth["fit:y"]["n"] > 300
    cat5 = skydask.from_pandas(synth_small, npartitions=5)
    with dask.config.set(scheduler="threads"):
        threaded = stellar_locus(cat5)
    assert "ebv" in threaded.plan["extinction"]  # the E(B-V) column was used
    _compare(threaded, truth)
    with dask.config.set(scheduler="sync"):
        one_by_one = stellar_locus(skydask.from_pandas(synth_small, npartitions=3))
    _compare(one_by_one, truth)
    # the plot histograms are the same counts numpy gives on the collected colours
    m = dereddened(synth_small)
    keep = star_cut(synth_small, "r", "gri")
    density = threaded.density["r-i_vs_g-r"]
    want, _, _ = np.histogram2d(
        (m["g"] - m["r"])[keep], (m["r"] - m["i"])[keep], [density.x_edges, density.y_edges]
    )
    assert np.abs(density.counts - want).sum() <= 2  # at most a value on an edge, rounded apart
    assert threaded.counts == one_by_one.counts


def test_brute_force_processes(synth_small: pd.DataFrame) -> None:
    truth = brute_force(synth_small)
    context = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(2, mp_context=context) as pool,
        dask.config.set(scheduler="processes", pool=pool),
    ):
        result = stellar_locus(skydask.from_pandas(synth_small, npartitions=4))
    _compare(result, truth)


def test_no_persist_gives_the_same_numbers(synth_small: pd.DataFrame) -> None:
    cat = skydask.from_pandas(synth_small, npartitions=4)
    kept = stellar_locus(cat)
    reread = stellar_locus(cat, persist=False)
    # the kept stars are coalesced into fewer partitions, so sums add in another order
    assert kept.metrics.keys() == reread.metrics.keys()
    for name, value in kept.metrics.items():
        assert value.value == pytest.approx(reread.metrics[name].value, rel=1e-10, abs=1e-9), name


def test_refits_and_deviations_without_bounded_ranges_take_their_own_passes(
    synth_small: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A refit rides on the quartiles' gather pass, and a median absolute deviation on the
    median's, only when the histogram bounds them; with the statistics in the open-ended end
    bins they take passes of their own, with the same numbers."""
    cat = skydask.from_pandas(synth_small, npartitions=4)
    caplog.set_level("INFO", logger="skydask.analyses.stellar_locus")
    bounded = stellar_locus(cat)
    module = importlib.import_module("skydask.analyses.stellar_locus")
    monkeypatch.setattr(module, "_MMAG_HALF_RANGE", 2.0)  # quartiles beyond +-2 mmag
    unbounded = stellar_locus(cat)
    passes = [r.getMessage() for r in caplog.records if "passes over the kept" in r.getMessage()]
    # bounded: two clip steps (quartiles and refit) and the medians (with their deviations)
    # in two passes each; unbounded: every refit and every deviation in passes of their own
    assert passes == [
        "stellar_locus: 6 passes over the kept stars (0 deviations needed passes of their own)",
        "stellar_locus: 10 passes over the kept stars (7 deviations needed passes of their own)",
    ]
    assert bounded.metrics.keys() == unbounded.metrics.keys()
    for name, value in bounded.metrics.items():
        want = unbounded.metrics[name].value
        assert value.value == pytest.approx(want, rel=1e-10, abs=1e-9), name
    for name, fit in bounded.fits.items():
        assert [s.n_used for s in fit.steps] == [s.n_used for s in unbounded.fits[name].steps]


def test_extinction_from_ebv_or_a_columns(synth_small: pd.DataFrame) -> None:
    """Reddening the fluxes by R_b E(B-V) and declaring E(B-V) gives back the same result."""
    base = synth_small.drop(columns="ebv")
    rng = np.random.default_rng(8)
    ebv = rng.uniform(0.0, 0.3, len(base))
    reddened = base.copy()
    for b in "ugriz":
        dim = 10 ** (-0.4 * LSST_R[b] * ebv)  # fluxes and errors alike: S/N unchanged
        reddened[f"psFlux_{b}"] = base[f"psFlux_{b}"].to_numpy(np.float64) * dim
        reddened[f"psFluxErr_{b}"] = base[f"psFluxErr_{b}"].to_numpy(np.float64) * dim
    cfg = StellarLocusConfig(mag_max=None)  # the magnitude limit is on observed magnitudes
    plain = stellar_locus(skydask.from_pandas(base, npartitions=3), cfg)
    with_ebv = stellar_locus(skydask.from_pandas(reddened.assign(ebv=ebv), npartitions=3), cfg)
    with_a = stellar_locus(
        skydask.from_pandas(
            reddened.assign(**{f"A_{b}": LSST_R[b] * ebv for b in "ugriz"}), npartitions=3
        ),
        cfg,
    )
    ignored = stellar_locus(
        skydask.from_pandas(reddened.assign(ebv=ebv), npartitions=3), cfg, extinction="none"
    )
    assert with_a.plan["extinction"] == "A_<band> quantities"
    for res in (with_ebv, with_a):
        for name, fit in plain.fits.items():
            assert res.fits[name].n_stars == fit.n_stars
            assert res.fits[name].slope == pytest.approx(fit.slope, rel=1e-9)
            assert res.fits[name].sigma_mad_mmag == pytest.approx(fit.sigma_mad_mmag, abs=1e-6)
    # without the correction the stars move along the reddening vector, by 0-0.3 E(B-V): w is
    # nearly insensitive to that by construction, but the fitted slope is not
    assert abs(ignored.fits["w"].slope - plain.fits["w"].slope) > 0.02
    # coefficients of one's own: twice R_b with half E(B-V) is the same correction
    twice = {b: 2 * r for b, r in LSST_R.items()}
    halved = stellar_locus(
        skydask.from_pandas(reddened.assign(ebv=ebv / 2), npartitions=3),
        cfg,
        extinction_coeffs=twice,
    )
    assert halved.fits["w"].slope == pytest.approx(plain.fits["w"].slope, rel=1e-9)


def test_per_band_extendedness_is_used_when_present(synth_small: pd.DataFrame) -> None:
    df = synth_small.copy()
    for b in "ugriz":
        df[f"{b}_extendedness"] = df["extendedness"]
    result = stellar_locus(skydask.from_pandas(df, npartitions=2))
    text = " ".join(result.plan["selections"].values())
    assert "g_extendedness < 0.5" in text and "extendedness" not in result.plan["pushdown"]
    plain = stellar_locus(skydask.from_pandas(synth_small, npartitions=2))
    assert result.fits["w"].n_stars == plain.fits["w"].n_stars


def test_the_cut_is_pushed_down_to_parquet_statistics(tmp_path: Path) -> None:
    """Row groups whose statistics exclude every star (all faint, all extended) are not read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2)

    def group(n: int, r_mag: tuple[float, float], extendedness: float) -> pd.DataFrame:
        gr = rng.uniform(0.3, 0.95, n)
        ri = 0.4 * gr - 0.05 + rng.normal(0, 0.02, n)
        r = rng.uniform(*r_mag, n)
        frame = pd.DataFrame({"ra": rng.uniform(0, 1, n), "dec": rng.uniform(0, 1, n)})
        for b, m in {"g": r + gr, "r": r, "i": r - ri}.items():
            frame[f"psFlux_{b}"] = 10 ** (-0.4 * (m - 31.4))
            frame[f"psFluxErr_{b}"] = frame[f"psFlux_{b}"] / 1000.0
        frame["extendedness"] = extendedness
        return frame

    groups = [group(200, (17, 21), 0.0), group(200, (23, 25), 0.0), group(200, (17, 21), 1.0)]
    path = tmp_path / "object_tract_1.parquet"
    table = pa.Table.from_pandas(groups[0], preserve_index=False)
    with pq.ParquetWriter(path, table.schema) as writer:
        for g in groups:
            writer.write_table(pa.Table.from_pandas(g, preserve_index=False, schema=table.schema))
    cat = skydask.open_catalog(path)
    result = stellar_locus(cat, StellarLocusConfig.for_bands("gri", fits=("w",)))
    assert result.plan["pushdown"] == (
        "extendedness < 0.5 & snr_r >= 300.0 & psFlux_r > " + repr(10 ** (-0.4 * (22.5 - 31.4)))
    )
    assert cat.where(result.plan["pushdown"]).prune_stats.row_groups_kept == 1
    keep = star_cut_without_flags(groups[0])
    assert result.counts["sel0"] == int(keep.sum()) == 200


def star_cut_without_flags(df: pd.DataFrame) -> np.ndarray:
    mags = mags_of(df, "gri")
    snr = df["psFlux_r"] / df["psFluxErr_r"]
    return np.asarray((df["extendedness"] < 0.5) & (snr >= 300) & (mags["r"] < 22.5))


# -- synthetic truth -----------------------------------------------------------------------
def _covey_gi_sample(rng: np.random.Generator, n: int) -> np.ndarray:
    """g-i as skydask.synth draws it: Covey bins weighted by N, uniform within a bin."""
    table = covey_locus()
    edges = covey_edges_twin()
    p = table["N"].to_numpy(float) / table["N"].sum()
    k = rng.choice(len(p), size=n, p=p)
    return rng.uniform(edges[k], edges[k + 1])


def in_final_region(fit, x: np.ndarray, y: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The points of a fit's last step: between the perpendiculars through the box ends of the
    previous step's line, and within the last clip of it (``d``: distances from that line)."""
    _, _, (x_min, x_max, y_min, y_max), _ = FITS[fit.fit.name]
    before, last = fit.steps[-2], fit.steps[-1]
    m, b = before.slope, before.intercept
    if abs(m) > 1:
        ends = np.array([[(y_min - b) / m, y_min], [(y_max - b) / m, y_max]])
    else:
        ends = np.array([[x_min, m * x_min + b], [x_max, m * x_max + b]])
    along = (x + m * y) / math.hypot(1, m)
    t_ends = (ends[:, 0] + m * ends[:, 1]) / math.hypot(1, m)
    return (along > t_ends.min()) & (along < t_ends.max()) & (np.abs(d) <= last.clip_mmag)


def expected_width(fit, locus_width: float, noise_mmag: float) -> float:
    """sigmaMAD of the perpendicular distances expected for the synthetic stars a fit uses: the
    noise-free Covey locus (curved), plus the injected scatter (per colour, hence isotropic in
    the plane), plus photometric noise (perpendicular), by Monte Carlo."""
    rng = np.random.default_rng(0)
    cx, cy, _, _ = FITS[fit.fit.name]
    table = covey_locus()
    gi = _covey_gi_sample(rng, 2_000_000)
    x = np.interp(gi, table["g-i"], table[cx]) + rng.normal(0, locus_width, len(gi))
    y = np.interp(gi, table["g-i"], table[cy]) + rng.normal(0, locus_width, len(gi))
    noise = rng.normal(0, noise_mmag, len(gi))
    before = fit.steps[-2]
    keep = in_final_region(fit, x, y, perp(x, y, before.slope, before.intercept) + noise)
    return sigma_mad((perp(x, y, fit.slope, fit.intercept) + noise)[keep])


def test_synthetic_widths_recover_the_injected_width(synth_300k, synth_300k_result) -> None:
    """w and y: measured sigmaMAD = expectation from the injected width, curvature and noise.

    The synthetic stars get 20 mmag of scatter in each adjacent colour (``locus_width``), so
    20 mmag perpendicular to a straight locus in any plane of two adjacent colours. Two things
    widen it: the Covey locus bends inside the strips (a Monte Carlo on the Covey table gives
    20.1 for w, 20.5 for y, 23.1 for the strongly bent x), and photometric noise at S/N >= 300
    (1.9 and 1.7 mmag perpendicular here, from measured minus true magnitudes) adds in
    quadrature. Expected for this catalogue: w 20.2 (measured 20.1, 3,521 stars), y 20.6
    (measured 21.0, 3,767 stars), x 23.2 (measured 23.3). Tolerance: 3 standard errors of a
    sigmaMAD of N Gaussian values, 3 * 1.166 * sigma / sqrt(N), 1.2 mmag for N ~ 3,500.
    """
    params = read_synth_params(synth_300k.path)
    width_mmag = params["parameters"]["stars"]["locus_width"] * 1e3
    assert width_mmag == 20.0
    result = synth_300k_result
    truth = read_truth(
        synth_300k.path,
        columns=["objectId", "is_star", "mag_true_g", "mag_true_r", "mag_true_i", "mag_true_z"],
    )
    objects = pd.concat(
        [pd.read_parquet(f, columns=[*NEEDED, "objectId"]) for f in synth_300k.files],
        ignore_index=True,
    ).merge(truth, on="objectId")
    measured = mags_of(objects)
    for name in ("w", "y"):
        fit = result.fits[name]
        cx, cy, _, snr = FITS[name]
        keep = star_cut(objects, snr, cx.replace("-", "") + cy.replace("-", ""))
        keep &= objects["is_star"].to_numpy()
        x = (measured[cx[0]] - measured[cx[2]])[keep]
        y = (measured[cy[0]] - measured[cy[2]])[keep]
        true = {b: objects[f"mag_true_{b}"].to_numpy()[keep] for b in "griz"}
        noise = perp(x - (true[cx[0]] - true[cx[2]]), y - (true[cy[0]] - true[cy[2]]), fit.slope, 0)
        before = fit.steps[-2]
        used = in_final_region(fit, x, y, perp(x, y, before.slope, before.intercept))
        assert used.sum() == fit.n_stars  # the same stars as the analysis
        noise_mmag = sigma_mad(noise[used])
        assert 0.5 < noise_mmag < 4.0  # S/N >= 300: a few mmag per colour at most
        expected = expected_width(fit, width_mmag / 1e3, noise_mmag)
        tolerance = 3 * 1.166 * expected / math.sqrt(fit.n_stars)
        assert abs(fit.sigma_mad_mmag - expected) < tolerance, (name, fit.sigma_mad_mmag, expected)
        assert abs(fit.sigma_mad_mmag - width_mmag) < 1.5  # and so near the injected width
        assert abs(fit.median_mmag) < 1.0
    # x: the red locus bends inside its box (12 mmag rms), so its width exceeds 20 mmag
    x_fit = result.fits["x"]
    expected_x = expected_width(x_fit, width_mmag / 1e3, 2.0)
    assert (
        abs(x_fit.sigma_mad_mmag - expected_x)
        < 3 * 1.166 * expected_x / math.sqrt(x_fit.n_stars) + 0.5
    )


def test_synthetic_median_locus_is_covey(synth_300k_result) -> None:
    table = synth_300k_result.locus_table()
    for colour in LOCUS:
        rows = table[table[f"n_{colour}"] >= 10]
        assert len(rows) > 100
        # the synthetic stars are drawn on Covey's locus: every bin within Covey's spread
        assert (rows[f"delta_{colour}"].abs() <= rows[f"covey_e_{colour}"]).all(), colour
        assert abs(rows[f"delta_{colour}"].median()) < 0.005, colour


def test_synthetic_verdicts(synth_300k_result) -> None:
    verdicts = synth_300k_result.verdicts()
    assert set(verdicts) == {f"{f}_{m}" for f in "wxy" for m in ("sigmaMAD", "median")}
    for key in ("w_sigmaMAD", "w_median", "y_sigmaMAD", "y_median", "x_median"):
        assert verdicts[key].passed, verdicts[key]
    # the synthetic red locus is narrower than Rubin's real-data range for x (25-80 mmag)
    assert not verdicts["x_sigmaMAD"].passed
    assert verdicts["x_sigmaMAD"].low == 25.0 and verdicts["x_sigmaMAD"].high == 80.0
    assert "FAIL" in str(verdicts["x_sigmaMAD"])
    custom = synth_300k_result.verdicts({"x_sigmaMAD": (15.0, 80.0)})
    assert list(custom) == ["x_sigmaMAD"] and custom["x_sigmaMAD"].passed


# -- real data -----------------------------------------------------------------------------
def _catalog_from_mags(mags: dict[str, np.ndarray], ra, dec) -> skydask.Catalog:
    """A catalogue from magnitudes only: fluxes in nJy, all point sources, no flux errors."""
    frame = pd.DataFrame({"ra": ra, "dec": dec, "extendedness": np.zeros(len(ra))})
    for b, m in mags.items():
        frame[f"psFlux_{b}"] = 10 ** (-0.4 * (np.asarray(m, dtype=np.float64) - 31.4))
    return skydask.from_pandas(frame, npartitions=3)


def test_sdss_dr14_median_locus_matches_covey() -> None:
    """SDSS DR14 spectroscopic stars against Covey et al. (2007), 0.3 < g-i < 3.

    Bins with >= 10 stars (g-i 0.3 to 1.3; few SDSS spectroscopic stars are redder). g-r, r-i
    and i-z: every such bin within 2 of Covey's spreads, at least 90 % within one. u-g is bluer
    than Covey's by ~0.13 mag (SDSS spectroscopic targets favour metal-poor halo stars, whose u
    band is brighter; reddening, not corrected here, would push the other way): within 2.5
    spreads in every bin.
    """
    sdss = pd.read_csv(DATA / "sdss_dr14_skyserver_10k.csv")
    stars = sdss[sdss["class"] == "STAR"]
    assert len(stars) == 4152
    cat = _catalog_from_mags({b: stars[b] for b in "ugriz"}, stars["ra"], stars["dec"])
    result = stellar_locus(cat, snr_min=None, fits=("w",))
    table = result.locus_table()
    rows = table[(table["g-i"] > 0.3) & (table["g-i"] < 3.0)]
    for colour in ("u-g", "g-r", "r-i", "i-z"):
        good = rows[rows[f"n_{colour}"] >= 10]
        assert len(good) >= 45, colour
        ratio = (good[f"delta_{colour}"].abs() / good[f"covey_e_{colour}"]).to_numpy()
        if colour == "u-g":
            assert ratio.max() <= 2.5
            assert -0.2 < good[f"delta_{colour}"].median() < -0.05
        else:
            assert ratio.max() <= 2.0, (colour, ratio.max())
            assert np.mean(ratio <= 1.0) >= 0.9, (colour, np.mean(ratio <= 1.0))
    # SDSS stars also give a w width in Rubin's normal range
    assert 10.0 <= result.fits["w"].sigma_mad_mmag <= 25.0


def test_hsc_w_width_in_rubin_range() -> None:
    """209 real HSC stars (faro test data): w sigmaMAD in Rubin's normal range, 10-25 mmag.

    With mag_r < 22.5, 61 stars remain in the w fit (the default min_stars, 7, suffices);
    the width is 20.9 mmag.
    """
    table = Table.read(DATA / "faro_hsc_tract9813_patches55to72_gri_filtered.fits.gz")
    assert len(table) == 209
    mags = {b: np.asarray(table[f"base_PsfFlux_mag_{b}"]) for b in "gri"}
    cat = _catalog_from_mags(
        mags,
        np.degrees(np.asarray(table["coord_ra_r"])),
        np.degrees(np.asarray(table["coord_dec_r"])),
    )
    cfg = StellarLocusConfig.for_bands("gri", fits=("w",), snr_min=None)
    result = stellar_locus(cat, cfg)
    w = result.fits["w"]
    assert w.n_stars == 61
    assert 10.0 <= w.sigma_mad_mmag <= 25.0
    assert result.verdicts()["w_sigmaMAD"].passed
    assert w.sigma_mad_mmag == pytest.approx(20.9, abs=0.1)


# -- errors --------------------------------------------------------------------------------
def _tiny_catalog(n_in_box: int) -> skydask.Catalog:
    gr = np.linspace(0.4, 0.9, n_in_box)
    ri = 0.4 * gr - 0.05 + np.tile([0.01, -0.01], n_in_box)[:n_in_box]
    return _catalog_from_mags({"g": 20 + gr, "r": np.full(n_in_box, 20.0), "i": 20 - ri},
                              np.zeros(n_in_box), np.zeros(n_in_box))  # fmt: skip


def test_too_few_stars_names_the_fit_and_count() -> None:
    cfg = StellarLocusConfig.for_bands("gri", fits=("w",), snr_min=None)
    with pytest.raises(
        TooFewStarsError, match=r"fit 'w' \(r-i vs g-r\): only 5 stars in the fit box"
    ):
        stellar_locus(_tiny_catalog(5), cfg)
    assert stellar_locus(_tiny_catalog(12), cfg).fits["w"].n_stars >= 7
    with pytest.raises(TooFewStarsError, match="need at least min_stars=20"):
        stellar_locus(_tiny_catalog(12), cfg, min_stars=20)


def test_unknown_quantities_in_config(monkeypatch, synth_small) -> None:
    def no_reading(*args, **kwargs):
        raise AssertionError("data was read")

    cat = skydask.from_pandas(synth_small.drop(columns=["psFlux_u"]), npartitions=2)
    monkeypatch.setattr("skydask.catalog.reader.read_piece", no_reading)
    monkeypatch.setattr("skydask.catalog.catalog.read_piece", no_reading)
    with pytest.raises(UnknownQuantityError, match=r"principal_colours\['s'\].*mag_u"):
        stellar_locus(cat)
    with pytest.raises(UnknownQuantityError, match="mag_q"):
        stellar_locus(cat, StellarLocusConfig.for_bands("griz", locus_colours=("g-q",)))
    with pytest.raises(UnknownQuantityError, match="A_g"):
        stellar_locus(cat, StellarLocusConfig.for_bands("griz", extinction="A"))
    with pytest.raises(UnknownQuantityError, match="blendedness_r"):
        stellar_locus(cat, StellarLocusConfig.for_bands("griz", where="blendedness_r < 0.1"))
    with pytest.raises(SpecError, match="unknown stellar_locus parameter"):
        stellar_locus(cat, snr_mni=10)
    with pytest.raises(SpecError, match="fits"):
        StellarLocusConfig(fits=("q",))
    with pytest.raises(SpecError, match="min_stars"):
        StellarLocusConfig(min_stars=1)


# -- plots and files -------------------------------------------------------------------------
def test_plots_and_files(synth_300k_result, tmp_path: Path) -> None:
    result = synth_300k_result
    figures = result.plot()
    assert set(figures) == {
        "colour_colour_r-i_vs_g-r", "colour_colour_i-z_vs_r-i", "colour_colour_g-r_vs_u-g",
        "median_locus",
    }  # fmt: skip
    ax, colourbar = figures["colour_colour_r-i_vs_g-r"].axes
    assert ax.get_xlabel() == "g-r [mag]" and ax.get_ylabel() == "r-i [mag]"
    assert "stars per" in colourbar.get_ylabel()
    assert "w: sigmaMAD" in ax.get_title() and "x: sigmaMAD" in ax.get_title()
    labels = [line.get_label() for line in ax.get_lines()]
    assert "Covey et al. 2007 median locus" in labels
    assert len(figures["median_locus"].axes) == 4

    written = result.write(tmp_path / "out")
    names = {p.name for p in written}
    for stem in ("stellar_locus_metrics", "stellar_locus_fits", "median_locus"):
        assert {f"{stem}.csv", f"{stem}.fits"} <= names
    assert {f"{k}.png" for k in figures} <= names
    assert all(p.exists() and p.stat().st_size > 0 for p in written)
    back = StellarLocusResult.read_metrics(tmp_path / "out")
    assert back.keys() == result.metrics.keys()
    for key, q in result.metrics.items():
        assert back[key].unit == q.unit
        assert back[key].value == pytest.approx(q.value, nan_ok=True)
    record = json.loads((tmp_path / "out" / "stellar_locus_metrics.json").read_text())
    assert record["verdicts"]["w_sigmaMAD"]["passed"] is True
    assert record["metrics"]["w_sigmaMAD"]["unit"] == "mmag"
    table = Table.read(tmp_path / "out" / "median_locus.fits")
    assert "covey_e_g_r" in table.colnames and len(table) == len(covey_locus())
    metrics = result.table()
    assert list(metrics.colnames) == ["metric", "value", "unit"]
    assert "w_sigmaMAD" in list(metrics["metric"])


def test_a_strip_remembered_for_the_next_pass_gives_what_a_fresh_one_does() -> None:
    """The strip of a fit's line is kept on the star arrays for the passes after: a task on
    arrays that remember it, on fresh arrays and on a new line give the same numbers, and the
    memory is not sent with the arrays."""
    import pickle

    from skydask.analyses.locus.config import RUBIN_FITS
    from skydask.analyses.locus.fitting import ClipSumsTask, Line, PerpValues, Region
    from skydask.analyses.locus.stars import StarArrays, pair_key

    w = RUBIN_FITS["w"]
    rng = np.random.default_rng(4)
    x = rng.uniform(0.2, 1.1, 5_000)
    y = 0.4 * x - 0.05 + rng.normal(0, 0.03, x.size)
    arrays = {"counts": {"sel0": x.size}, "pairs": {pair_key(w.x, w.y, "sel0"): (x, y)},
              "values": {}, "groups": {}}  # fmt: skip
    first, second = Line(0.42, -0.06), Line(0.40, -0.05)
    kept = StarArrays(**arrays)
    for line in (first, second, first):
        fresh = StarArrays(**arrays)
        tasks = [PerpValues(w, "sel0", Region("strip", line), line),
                 PerpValues(w, "sel0", Region("clip", line, 60.0), line)]  # fmt: skip
        for task in tasks:
            got, want = task.values(kept)[1], task.values(fresh)[1]
            np.testing.assert_array_equal(got, want)
            assert got.size > 1_000
        clip = ClipSumsTask("c", w, "sel0", line, 40.0, 80.0)
        ((inner, *_),) = clip.partial(kept)["c"]
        ((expected, *_),) = clip.partial(StarArrays(**arrays))["c"]
        np.testing.assert_array_equal(inner, expected)
        # brute force: the strip between the perpendiculars through the box ends
        (x1, y1), (x2, y2) = line.ends(w)
        t = line.along(x, y)
        ends = sorted(float(v) for v in line.along(np.array([x1, x2]), np.array([y1, y2])))
        assert tasks[0].values(kept)[1].size == np.count_nonzero((t > ends[0]) & (t < ends[1]))
    assert kept.memo and not pickle.loads(pickle.dumps(kept)).memo


@pytest.mark.parametrize(
    "edges",
    [
        None,  # Covey's g-i bins
        (0.1, 0.2, 0.3),
        (-1.0, -0.999, 0.5, 0.5000001, 3.0, 10.0),  # very unequal widths
    ],
)
def test_bin_index_equals_searchsorted(edges: tuple[float, ...] | None) -> None:
    """The g-i binning's lookup against ``np.searchsorted``: values on, just below and just
    above every edge, random values, and NaN and infinities (-1, as outside the edges)."""
    from skydask.analyses.locus.selection import covey_edges
    from skydask.analyses.locus.stars import bin_index

    e = np.asarray(covey_edges() if edges is None else edges, dtype=np.float64)
    rng = np.random.default_rng(4)
    values = np.concatenate(
        [
            e,
            np.nextafter(e, -np.inf),
            np.nextafter(e, np.inf),
            rng.uniform(e[0] - 1, e[-1] + 1, 20_000),
            [np.nan, np.inf, -np.inf],
        ]
    )
    inside = (values >= e[0]) & (values < e[-1])
    expected = np.where(inside, np.searchsorted(e, values, side="right") - 1, -1)
    got = bin_index(values, tuple(e))
    assert got.dtype == np.int16
    assert np.array_equal(got, expected)


def test_compiled_strip_equals_the_line_formulas() -> None:
    """A fit's strip (points between the perpendiculars through the box ends, and their
    distances) from the compiled pass equals Line.along and perpendicular_mmag's, bit for
    bit, including points exactly at the strip's ends."""
    from skydask.analyses.locus.config import RUBIN_FITS
    from skydask.analyses.locus.fitting import Line, Region
    from skydask.analyses.locus.stars import StarArrays

    rng = np.random.default_rng(9)
    for fit, line in ((RUBIN_FITS["w"], Line(0.39, -0.013)), (RUBIN_FITS["x"], Line(14.7, -19.7))):
        x = rng.uniform(fit.x_min - 0.3, fit.x_max + 0.3, 50_000)
        y = line.slope * x + line.intercept + rng.normal(0, 0.05, len(x))
        (x1, y1), (x2, y2) = line.ends(fit)
        x, y = np.r_[x, x1, x2], np.r_[y, y1, y2]  # on the ends: outside (strict)
        stars = StarArrays({"c": len(x)}, {f"{fit.x}|{fit.y}@c": (x, y)}, {}, {})
        got_x, got_y, got_d = Region("strip", line).select(stars, fit, "c")
        t1, t2 = line.along(np.array([x1, x2]), np.array([y1, y2]))
        t = line.along(x, y)
        inside = (t > min(t1, t2)) & (t < max(t1, t2))
        assert not inside[-2:].any() and 1000 < inside.sum() < len(x)
        assert np.array_equal(got_x, x[inside]) and np.array_equal(got_y, y[inside])
        assert np.array_equal(got_d, line.perpendicular_mmag(x[inside], y[inside]))


@pytest.mark.parametrize("extinction", [False, True])
def test_star_arrays_equal_numpy(synth_small: pd.DataFrame, extinction: bool) -> None:
    """The compiled star arrays (colour pairs, principal colours, locus colours with their
    g-i bins) equal the same formulas written in numpy, bit for bit, on a partition with
    non-finite magnitudes."""
    from skydask.analyses.locus.config import StellarLocusConfig, colour_bands
    from skydask.analyses.locus.selection import build_plan
    from skydask.analyses.locus.stars import bin_index, locus_key, pair_key, star_arrays
    from skydask.schema import expressions as ex

    config = StellarLocusConfig(extinction="ebv" if extinction else "none")
    cat = skydask.from_pandas(synth_small, npartitions=1)
    plan = build_plan(cat, config)
    frame = cat.select(list(plan.quantities)).where(plan.pushdown or "True").compute()
    frame = frame.reset_index(drop=True)
    frame.loc[::50, "mag_g"] = np.nan  # some stars without a colour
    stars = star_arrays(frame, plan, config.ebv_quantity)

    columns = {str(c): frame[c].to_numpy() for c in frame.columns}
    mags = {}
    for b in plan.bands:
        mag = columns[f"mag_{b}"].astype(np.float64)
        kind, source = plan.extinction[b]
        if kind == "A":
            mag = mag - columns[str(source)]
        elif kind == "ebv":
            mag = mag - float(source) * columns[config.ebv_quantity]
        mags[b] = mag
    cuts = {}
    for sel in plan.selections:
        mask = np.ones(len(frame), dtype=bool)
        for _, test in sel.tests:
            mask &= np.asarray(ex.evaluate(test, columns), dtype=bool)
        cuts[sel.key] = np.flatnonzero(mask)

    def colour(name: str, cut: str) -> np.ndarray:
        a, b = colour_bands(name)
        return mags[a][cuts[cut]] - mags[b][cuts[cut]]

    for x, y, cut in plan.pairs:
        cx, cy = colour(x, cut), colour(y, cut)
        ok = np.isfinite(cx) & np.isfinite(cy)
        got = stars.pairs[pair_key(x, y, cut)]
        assert np.array_equal(got[0], cx[ok]) and np.array_equal(got[1], cy[ok])
    with np.errstate(invalid="ignore"):
        for pc, cut in plan.principal:
            parallel, mmag = np.zeros(len(cuts[cut])), np.zeros(len(cuts[cut]))
            for b, c in pc.range_coeffs:
                parallel += c * mags[b][cuts[cut]]
            parallel += pc.range_const
            for b, c in pc.coeffs:
                mmag += c * mags[b][cuts[cut]]
            mmag += pc.const
            mmag *= 1e3
            ok = (parallel > pc.range_min) & (parallel < pc.range_max) & np.isfinite(mmag)
            assert np.array_equal(stars.values[pc.name], mmag[ok])
    group = bin_index(mags["g"] - mags["i"], plan.gi_edges)
    for name, cut in plan.locus:
        value, g = colour(name, cut), group[cuts[cut]]
        ok = (g >= 0) & np.isfinite(value)
        got_group, got_value = stars.groups[locus_key(name, cut)]
        assert np.array_equal(got_group, g[ok]) and np.array_equal(got_value, value[ok])
    assert sum(len(v) for v in stars.values.values()) > 1000
