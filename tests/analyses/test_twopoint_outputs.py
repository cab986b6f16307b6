"""The result: tables, covariance, files (TreeCorr FITS, SACC), figures and theory curves."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sacc
import treecorr

import skydask
from analyses.twopoint_testdata import SHEAR, mock_points, mock_sources
from skydask.analyses.twopoint import TwoPointResult, predict, two_point
from skydask.analyses.twopoint.sacc_io import SACC_TYPES

BINNING = {"min_sep": 2.0, "max_sep": 20.0, "nbins": 4, "npatch": 6, "bin_slop": 0.0}


@pytest.fixture(scope="module")
def result() -> TwoPointResult:
    src = mock_sources(12_000, seed=21)
    cat = skydask.from_pandas(src, npartitions=2)
    return two_point(
        sources={"source_0": cat.where("zbin == 0"), "source_1": cat.where("zbin == 1")},
        lenses=skydask.from_pandas(mock_points(4_000, seed=22, clustered=True)),
        randoms=skydask.from_pandas(mock_points(12_000, seed=23)),
        shear=SHEAR, source_cuts=None, lens_cuts=None, **BINNING,
    )  # fmt: skip


def test_tables(result: TwoPointResult) -> None:
    assert result.statistics == ["shear_shear", "galaxy_shear", "galaxy_galaxy"]
    gg = result.table("shear_shear")
    for col in ("bin1", "bin2", "r_nom", "meanr", "xip", "xim", "sigma_xip", "sigma_xim",
                "npairs", "weight"):  # fmt: skip
        assert col in gg.columns
    assert len(gg) == 3 * 4  # (0,0), (0,1), (1,1) x 4 bins
    # sigma is the jackknife's, the same that TreeCorr reports for the object
    corr = result.corr("shear_shear", "source_0", "source_1")
    sel = gg[(gg.bin1 == "source_0") & (gg.bin2 == "source_1")]
    np.testing.assert_allclose(sel.sigma_xip, np.sqrt(corr.varxip), rtol=1e-10)
    ng = result.table("galaxy_shear")
    np.testing.assert_allclose(ng.gamma_t.to_numpy()[:4],
                               result.corr("galaxy_shear", "lens_0", "source_0").xi)  # fmt: skip
    assert "gamma_t_randoms" in ng.columns
    nn = result.table("galaxy_galaxy")
    assert {"w_theta", "sigma_w_theta", "DD", "DR", "RR"} <= set(nn.columns)
    # Landy-Szalay from the table's own pair counts
    ls = (nn.DD - 2 * nn.DR + nn.RR) / nn.RR
    np.testing.assert_allclose(nn.w_theta, ls, rtol=1e-10)
    with pytest.raises(Exception, match="several statistics"):
        result.table()


def test_data_vector_and_covariance(result: TwoPointResult) -> None:
    dv = result.data_vector()
    assert len(dv) == result.covariance.shape[0] == 3 * 2 * 4 + 2 * 4 + 4
    assert list(dv.quantity.unique()) == ["xip", "xim", "gamma_t", "w_theta"]
    np.testing.assert_allclose(dv.sigma, np.sqrt(np.diag(result.covariance)))
    corr = result.correlation_matrix()
    np.testing.assert_allclose(np.diag(corr), 1.0)
    np.testing.assert_allclose(corr, corr.T)


def test_write_treecorr_fits_sacc_and_metrics(result: TwoPointResult, tmp_path: Path) -> None:
    written = result.write(tmp_path)
    names = set(written)
    assert {"twopoint_data_real.sacc", "twopoint_data_vector.csv", "metrics.json",
            "patch_centers.txt", "correlation_matrix.png", "shear_shear.png"} <= names  # fmt: skip
    try:
        import fitsio  # noqa: F401
    except ImportError:  # TreeCorr's FITS needs fitsio; without it TreeCorr's ASCII files
        fits = tmp_path / "shear_shear_source_0_source_1.dat"
    else:
        fits = tmp_path / "shear_shear_source_0_source_1.fits"
    assert fits.exists()
    back = treecorr.GGCorrelation.from_file(str(fits))
    corr = result.corr("shear_shear", "source_0", "source_1")
    np.testing.assert_allclose(back.xip, corr.xip, rtol=1e-6)
    np.testing.assert_allclose(back.npairs, corr.npairs, rtol=1e-6)

    s = sacc.Sacc.load_fits(str(tmp_path / "twopoint_data_real.sacc"))
    assert set(s.get_data_types()) == set(SACC_TYPES.values())
    np.testing.assert_allclose(s.mean, result.data_vector().value)
    np.testing.assert_allclose(s.covariance.covmat, result.covariance)
    # gamma_t's tracers are (source, lens), SACC's order for galaxy_shearDensity_xi_t
    pairs = s.get_tracer_combinations("galaxy_shearDensity_xi_t")
    assert ("source_0", "lens_0") in pairs
    theta = s.get_tag("theta", "galaxy_shear_xi_plus", ("source_0", "source_0"))
    assert np.all((np.array(theta) > 2.0) & (np.array(theta) < 20.0))

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    cal = metrics["calibrations"]["source_0"]
    assert cal["kind"] == "shear" and cal["flip_g2"] is True
    assert metrics["reduction"]["npatch"] == 6


def test_plots(result: TwoPointResult) -> None:
    figures = result.plot()
    assert set(figures) == {"shear_shear", "galaxy_shear", "galaxy_galaxy", "correlation_matrix"}
    assert len(figures["shear_shear"].axes) >= 3


def _x_labels_overlap(ax: Any, renderer: Any) -> tuple[bool, list[str]]:
    lo, hi = ax.get_xlim()
    shown = [t for t in ax.get_xticklabels(which="both")
             if t.get_text() and t.get_visible() and lo <= t.get_position()[0] <= hi]  # fmt: skip
    boxes = sorted((t.get_window_extent(renderer) for t in shown), key=lambda b: b.x0)
    overlap = any(a.x1 > b.x0 for a, b in itertools.pairwise(boxes))
    return overlap, [t.get_text() for t in shown]


@pytest.mark.parametrize("span", [(2.0, 30.0), (2.0, 20.0), (0.5, 300.0), (1.0, 3.0), (10.0, 60.0)])
def test_theta_tick_labels_do_not_overlap(span: tuple[float, float]) -> None:
    """Panels as wide as the result's (4.4 in): matplotlib's default log labels ("2 x 10^0"
    on every minor tick) overlap at 2-30 arcmin; the theta axis labels 1, 2, 5, 10...
    as plain numbers."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from skydask.analyses.twopoint.plots import _theta_axis

    fig = Figure(figsize=(8.8, 3.4), layout="constrained")
    default, ours = fig.subplots(1, 2)
    theta = np.geomspace(*span, 9)
    for ax in (default, ours):
        ax.errorbar(theta, 1e-4 * np.ones(9), yerr=1e-5, fmt="o")
    default.set_xscale("log")
    _theta_axis(ours, "arcmin")
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    overlap, labels = _x_labels_overlap(ours, renderer)
    assert not overlap and len(labels) >= 2, labels
    if span == (2.0, 30.0):  # what the test guards against
        assert _x_labels_overlap(default, renderer)[0]


def test_theory_overlay_from_pyccl(result: TwoPointResult, tmp_path: Path) -> None:
    z = np.linspace(0.01, 3.0, 200)
    nz = {
        "source_0": (z, np.exp(-(((z - 0.8) / 0.2) ** 2))),
        "source_1": (z, np.exp(-(((z - 1.2) / 0.2) ** 2))),
        "lens_0": (z, np.exp(-(((z - 0.4) / 0.1) ** 2))),
    }
    theory = predict(result, nz, bias=1.5)
    _, xip = theory.get("xip", "source_1", "source_1")  # type: ignore[misc]
    _, xip0 = theory.get("xip", "source_0", "source_0")  # type: ignore[misc]
    assert np.all(xip > 0) and np.all(np.diff(xip) < 0)  # positive, falling with theta
    assert np.all(xip > xip0)  # deeper sources, more lensing
    _, gt = theory.get("gamma_t", "lens_0", "source_1")  # type: ignore[misc]
    assert np.all(gt > 0)
    _, w = theory.get("w_theta", "lens_0", "lens_0")  # type: ignore[misc]
    assert np.all(w > 0)
    assert theory.parameters["Omega_c"] == pytest.approx(0.2201)
    figures = result.plot(theory)
    assert figures["shear_shear"].axes[0].get_lines()  # the theory curve is drawn
    written = result.write(tmp_path, theory=theory, nz=nz)
    s = sacc.Sacc.load_fits(str(written["twopoint_data_real.sacc"]))
    assert s.tracers["source_0"].tracer_type == "NZ"
