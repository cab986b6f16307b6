"""The shear field: power spectrum, rms, E-mode purity, halo profiles."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from skydask.errors import SpecError
from skydask.synth.shear import (
    Halo,
    ShearField,
    ShearModel,
    power_amplitude,
    power_spectrum,
    realised_power_spectrum,
    shear_at,
    shear_field,
    sis_shear,
)
from skydask.synth.sky import gnomonic

FOOTPRINT = (55.0, 65.0, -40.0, -32.0)


@pytest.fixture(scope="module")
def field() -> ShearField:
    return shear_field(FOOTPRINT, 42, ShearModel())


def test_amplitude_integrates_to_the_stated_rms() -> None:
    # numerical integral of the power spectrum: <kappa^2> = int ell C_ell d ell / (2 pi)
    model = ShearModel()
    ell = np.logspace(-3, math.log10(30 * model.ell_cut), 400_001)
    var_kappa = np.trapezoid(ell * power_spectrum(ell, model), ell) / (2 * math.pi)
    assert math.sqrt(var_kappa / 2) == pytest.approx(model.gamma_rms, rel=1e-3)
    assert power_amplitude(model) > 0


def test_grid_shear_rms_is_as_stated(field: ShearField) -> None:
    # the grid lacks modes longer than its side (ell < ~25), ~2 % of the variance, and one
    # realisation has a sample variance of a few %; 6 % covers both
    rms = math.sqrt(0.5 * np.mean(field.gamma1**2 + field.gamma2**2))
    assert rms == pytest.approx(0.02, rel=0.06)
    assert np.std(field.kappa) == pytest.approx(math.sqrt(2) * 0.02, rel=0.06)
    # and over the objects' positions, through the interpolation, halos included
    rng = np.random.default_rng(0)
    ra = rng.uniform(FOOTPRINT[0], FOOTPRINT[1], 20_000)
    dec = np.degrees(np.arcsin(rng.uniform(*np.sin(np.radians(FOOTPRINT[2:])), 20_000)))
    g, _ = shear_at(ra, dec, field)
    assert np.std(g.real) == pytest.approx(0.02, rel=0.15)


def test_measured_power_spectrum(field: ShearField) -> None:
    ny, nx = field.kappa.shape
    d = math.radians(field.pixel_deg)
    k = np.fft.fft2(field.kappa)
    power = np.abs(k) ** 2 * d**2 / (nx * ny)  # the estimator of C_ell on a periodic grid
    lx = 2 * np.pi * np.fft.fftfreq(nx, d)[None, :]
    ly = 2 * np.pi * np.fft.fftfreq(ny, d)[:, None]
    ell = np.hypot(lx, ly)
    for lo, hi in [(300, 600), (600, 1200), (1200, 2400), (2400, 4000)]:
        sel = (ell >= lo) & (ell < hi)
        ratio = power[sel].mean() / power_spectrum(ell[sel], ShearModel()).mean()
        # each bin has > 1000 independent modes: the ratio scatters by < 3 %
        assert ratio == pytest.approx(1.0, rel=0.1), (lo, hi)


def test_kaiser_squires_gives_a_pure_e_mode(field: ShearField) -> None:
    ny, nx = field.kappa.shape
    lx = np.fft.fftfreq(nx)[None, :]
    ly = np.fft.fftfreq(ny)[:, None]
    l2 = lx**2 + ly**2
    l2[0, 0] = 1.0
    g = np.fft.fft2(field.gamma1 + 1j * field.gamma2)
    # invert KS: kappa_E + i kappa_B = conj(D) gamma
    kk = np.fft.ifft2(((lx**2 - ly**2) - 2j * lx * ly) / l2 * g)
    e_mode = kk.real - field.kappa.mean()
    np.testing.assert_allclose(e_mode, field.kappa - field.kappa.mean(), atol=1e-10)
    assert np.abs(kk.imag).max() < 1e-10


def _halo_only(theta_e: float, reduced: bool) -> ShearField:
    model = replace(ShearModel(), reduced_shear=reduced)
    zero = np.zeros((4, 4))
    return ShearField(
        60.0, -36.0, -10.0, -10.0, 10.0, zero, zero, zero, (Halo(60.0, -36.0, theta_e),), model
    )


@pytest.mark.parametrize("theta_arcsec", [60.0, 120.0, 600.0, 3600.0])
def test_sis_tangential_shear(theta_arcsec: float) -> None:
    theta_e = 30.0
    field = _halo_only(theta_e, reduced=False)
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    # points at separation theta in 8 directions, placed exactly in the halo's tangent plane
    t = math.tan(math.radians(theta_arcsec / 3600))
    xi, eta = np.degrees(t * np.cos(angles)), np.degrees(t * np.sin(angles))
    ra, dec = _inverse_gnomonic(xi, eta, 60.0, -36.0)
    g, kappa = shear_at(ra, dec, field)
    # tangential and cross components in the local (east, north) frame
    phi = _position_angle(ra, dec, 60.0, -36.0)
    g_t = -(g * np.exp(-2j * phi)).real
    g_x = -(g * np.exp(-2j * phi)).imag
    expected = theta_e / (2 * theta_arcsec)
    np.testing.assert_allclose(g_t, expected, rtol=1e-6)
    np.testing.assert_allclose(g_x, 0.0, atol=1e-9)
    np.testing.assert_allclose(kappa, expected, rtol=1e-6)
    # reduced shear: g = gamma / (1 - kappa)
    g_red, _ = shear_at(ra, dec, _halo_only(theta_e, reduced=True))
    np.testing.assert_allclose(np.abs(g_red), expected / (1 - expected), rtol=1e-6)


def test_sis_cap() -> None:
    assert sis_shear(np.array([10.0, 50.0, 100.0]), 30.0, 0.3).tolist() == [0.3, 0.3, 0.15]


def _inverse_gnomonic(
    xi: np.ndarray, eta: np.ndarray, ra0: float, dec0: float
) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.radians(xi), np.radians(eta)
    d0 = math.radians(dec0)
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    with np.errstate(invalid="ignore", divide="ignore"):
        dec = np.arcsin(
            np.cos(c) * math.sin(d0) + np.where(rho > 0, y * np.sin(c) * math.cos(d0) / rho, 0)
        )
    ra = ra0 + np.degrees(
        np.arctan2(x * np.sin(c), rho * math.cos(d0) * np.cos(c) - y * math.sin(d0) * np.sin(c))
    )
    xi2, eta2 = gnomonic(ra, np.degrees(dec), ra0, dec0)
    np.testing.assert_allclose(xi2, xi, atol=1e-12)
    np.testing.assert_allclose(eta2, eta, atol=1e-12)
    return ra, np.degrees(dec)


def _position_angle(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> np.ndarray:
    """Direction away from (ra0, dec0) at each point, counter-clockwise from local east.

    Independent of the code under test: 3-D vectors. The great circle from the centre c
    through the point p leaves p along p (p.c) - c; project that on the local east and north.
    """

    def unit(a: np.ndarray, d: np.ndarray) -> np.ndarray:
        a, d = np.radians(a), np.radians(d)
        return np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)], axis=-1)

    p = unit(ra, dec)
    c = unit(np.array(ra0), np.array(dec0))
    t = p * (p @ c)[:, None] - c
    a, d = np.radians(ra), np.radians(dec)
    east = np.stack([-np.sin(a), np.cos(a), np.zeros_like(a)], axis=-1)
    north = np.stack([-np.sin(d) * np.cos(a), -np.sin(d) * np.sin(a), np.cos(d)], axis=-1)
    return np.arctan2((t * north).sum(axis=1), (t * east).sum(axis=1))


# -- a field drawn from a tabulated power spectrum (e.g. pyccl's, for the two-point theory) --


def _table_model() -> ShearModel:
    ell = np.geomspace(10.0, 2.0e4, 300)
    # a smooth, steep spectrum unlike the default power law: 1e-9 (ell/100)^-1.5
    return ShearModel.from_power_spectrum(ell, 1e-9 * (ell / 100.0) ** -1.5)


def test_a_tabulated_power_spectrum_is_drawn() -> None:
    model = _table_model()
    field = shear_field((58.0, 62.0, -36.0, -33.0), 9, model)
    ny, nx = field.kappa.shape
    d = math.radians(field.pixel_deg)
    power = np.abs(np.fft.fft2(field.kappa)) ** 2 * d**2 / (nx * ny)
    ell = np.hypot(
        2 * np.pi * np.fft.fftfreq(nx, d)[None, :], 2 * np.pi * np.fft.fftfreq(ny, d)[:, None]
    )
    for lo, hi in [(300, 600), (600, 1200), (1200, 2400), (2400, 4800)]:
        sel = (ell >= lo) & (ell < hi)
        expected = 1e-9 * (ell[sel] / 100.0) ** -1.5
        # > 1000 modes per bin: a few per cent of scatter
        assert power[sel].mean() / expected.mean() == pytest.approx(1.0, rel=0.1), (lo, hi)
    # log-log interpolation reproduces the table's power law between its points
    assert power_spectrum(np.array([1234.5]), model)[0] == pytest.approx(
        1e-9 * 12.345**-1.5, rel=1e-6
    )
    # and outside the table there is no power
    assert power_spectrum(np.array([5.0, 3.0e4]), model).tolist() == [0.0, 0.0]


def test_the_table_is_recorded_and_the_default_record_unchanged() -> None:
    record = _table_model().to_dict()
    assert record["power_spectrum"].startswith("tabulated")
    assert len(record["power_table"]["ell"]) == 300
    assert "amplitude_A" not in record
    # the power-law record keeps exactly its keys (existing synth.json files still match)
    assert list(ShearModel().to_dict()) == [
        "power_spectrum", "amplitude_A", "gamma_rms", "slope", "ell_cut", "pixel_arcmin",
        "pad_deg", "max_grid", "n_halos", "halo_profile", "theta_e_arcsec_range", "halo_cap",
        "reduced_shear",
    ]  # fmt: skip
    assert hash(_table_model()) == hash(_table_model())  # usable as the field cache's key


@pytest.mark.parametrize(
    "table",
    [((1.0,), (1.0,)), ((10.0, 5.0), (1.0, 1.0)), ((10.0, 20.0), (1.0, -1.0)),
     ((0.0, 20.0), (1.0, 1.0)), ((10.0, 20.0), (1.0,))],
)  # fmt: skip
def test_bad_power_tables(table: tuple) -> None:
    with pytest.raises(SpecError, match="power_table"):
        ShearModel(power_table=table)


def test_realised_power_spectrum() -> None:
    field = shear_field((58.0, 62.0, -36.0, -33.0), 9, ShearModel())
    ell = np.array([10.0, 100.0, 1000.0, 2300.0, 5000.0])
    ratio = realised_power_spectrum(ell, field) / power_spectrum(ell, field.model)
    fundamental = 2 * np.pi / math.radians(min(field.kappa.shape) * field.pixel_deg)
    assert ell[0] < fundamental < ell[1]
    assert ratio[0] == 0.0  # longer than the grid
    assert ratio[1] == pytest.approx(1.0, abs=1e-3)
    # bilinear interpolation of 1 arcmin pixels: sinc^4 per axis, ~7 % at ell = 2300
    assert ratio[3] == pytest.approx(0.93, abs=0.01)
    assert np.all(np.diff(ratio[1:]) < 0)
