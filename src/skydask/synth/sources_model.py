"""Observing and measurement model of the synthetic Source and ForcedSource tables.

Every number is in :class:`SourceModel` (written to ``sources.json``). Fluxes in nJy,
``f = 10**(-0.4 (m - 31.4))``.

Visits (:func:`draw_visits`)
    The dithered pointings of :func:`skydask.synth.survey.draw_pointings` for the catalogue's
    footprint, years and seed (the same pointings that set the object catalogue's depth), one
    visit per pointing, in the chosen bands. Times: uniform over ``years`` from
    ``start_mjd`` (60676.0, 2025-01-01), visits numbered 1, 2, ... in time order. Each visit
    has the pointing's PSF FWHM and a 5-sigma depth
    ``m5 = m5_single,b - 2.5 log10(FWHM / FWHM_zenith,b) + N(0, depth_rms)`` (a
    background-limited point source's flux limit grows with the seeing; ``depth_rms = 0.1``
    mag stands for the sky brightness), and the **per-visit errors of stated size**:
    a photometric zeropoint error ``zp_offset ~ N(0, zeropoint_rms)`` (0.005 mag, the
    0.5 % of the LSST requirement) added to every magnitude of the visit, and an astrometric
    offset of the whole visit ``(shift_ra, shift_dec) ~ N(0, visit_shift_rms)`` per axis
    (20 mas; a common shift, to which relative astrometry is blind).

Measurements of an object in a visit whose field (``fov_radius_deg`` of the survey model) holds it
    * PSF flux: the PSF-weighted fraction ``2 s_p^2 / (2 s_p^2 + s_g^2)`` of the true flux
      (``s_p = FWHM / 2.355``, ``s_g`` the galaxy's size, 0 for stars), varied as below (a
      transient adds its whole flux: it is a point source), times ``10**(-0.4 zp_offset)``;
      ``psFluxErr = 10**(-0.4 zp_offset) f5 / 5 sqrt(1 + source_noise f / f5)`` with the
      visit's ``f5`` (the object catalogue's noise law); ``psFlux = truth + N(0, psFluxErr)``.
      ForcedSource holds every object in the field; Source the rows with
      ``psFlux / psFluxErr >= detection_snr`` (5), with the same flux.
    * Position (Source): the true position plus the visit shift, plus a per-source error
      ``N(0, astrometric_rms)`` per axis (5 mas; atmospheric turbulence and calibration,
      independent between sources at the 5 arcmin scale of AM1), plus centroid noise
      ``N(0, sqrt(2) s_p / snr)`` per axis. ForcedSource rows carry the object's position.
    * Flags: ``psFlux_flag`` at random (0.5 %); ``pixelFlags_saturated`` when the true PSF
      magnitude is brighter than ``m5 - saturation_below_m5`` (8.4 mag: r ~ 16.3);
      ``pixelFlags_cr`` and ``pixelFlags_bad`` at random (0.2 % each); ``pixelFlags_edge``
      beyond ``edge_fraction`` of the field radius (0.995: 1 % of the field, as the few edge
      pixels of LSST CCDs); ``detect_isPrimary`` always True.
    * ``extendedness`` (Source): 1 for galaxies whose PSF-flux fraction is below 0.95
      (``s_g^2 > 0.105 s_p^2``), else 0 -- stars are always point sources.

Variables (:func:`draw_variables`, truth in ``truth/variables.parquet``)
    A fraction ``periodic_fraction`` (2 %) of stars vary as ``m(t) = m0 + A sin(2 pi (t -
    start_mjd) / P + phi)`` in every band, ``A ~ U(0.05, 0.5)`` mag, ``P`` log-uniform in
    0.2-50 days, ``phi ~ U(0, 2 pi)``. A fraction ``transient_fraction`` (0.5 %) of galaxies
    host a transient adding ``f_peak exp((t - t0) / 3 d)`` before ``t0`` and
    ``f_peak exp(-(t - t0) / tau)`` after, ``t0`` uniform over the survey, ``tau ~ U(10, 40)``
    days, peak magnitude ``U(19, 22)`` in every band (a flat spectrum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from skydask.synth.magnitudes import flux_njy
from skydask.synth.survey import SurveyModel, draw_pointings

__all__ = [
    "SourceModel",
    "Visits",
    "draw_variables",
    "draw_visits",
    "variable_flux",
]

_STREAM_VISITS = 0x5EED0101
_STREAM_VARIABLES = 0x5EED0102
# Each of these streams is per tract: [seed, stream, tract]
STREAM_MEASURE = 0x5EED0103

Array = NDArray[np.float64]


@dataclass(frozen=True)
class SourceModel:
    """Parameters of the visit and measurement model (see the module docstring)."""

    start_mjd: float = 60676.0
    depth_rms: float = 0.1
    zeropoint_rms: float = 0.005
    visit_shift_rms_mas: float = 20.0
    astrometric_rms_mas: float = 5.0
    source_noise: float = 0.02
    detection_snr: float = 5.0
    flux_flag_rate: float = 0.005
    saturation_below_m5: float = 8.4
    cr_rate: float = 0.002
    bad_rate: float = 0.002
    edge_fraction: float = 0.995
    extended_psf_fraction: float = 0.95
    periodic_fraction: float = 0.02
    periodic_amplitude: tuple[float, float] = (0.05, 0.5)
    periodic_period_days: tuple[float, float] = (0.2, 50.0)
    transient_fraction: float = 0.005
    transient_peak_mag: tuple[float, float] = (19.0, 22.0)
    transient_rise_days: float = 3.0
    transient_decay_days: tuple[float, float] = (10.0, 40.0)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class Visits:
    """Every visit: id, band, time, pointing centre (deg), PSF FWHM (arcsec), 5-sigma depth,
    and the injected errors (zeropoint offset in mag, shift in mas), in time order."""

    visit: NDArray[np.int64]
    band: NDArray[np.str_]
    mjd: Array
    ra: Array
    dec: Array
    fwhm: Array
    m5: Array
    zp_offset: Array
    shift_ra_mas: Array
    shift_dec_mas: Array

    def __len__(self) -> int:
        return len(self.visit)

    def to_frame(self) -> pd.DataFrame:
        """The truth table ``truth/visits.parquet``."""
        return pd.DataFrame(
            {
                "visit": self.visit,
                "band": pd.array(self.band, dtype="string"),
                "mjd": self.mjd,
                "ra": self.ra,
                "dec": self.dec,
                "psf_fwhm": self.fwhm,
                "m5": self.m5,
                "zp_offset": self.zp_offset,
                "shift_ra_mas": self.shift_ra_mas,
                "shift_dec_mas": self.shift_dec_mas,
            }
        )

    def take(self, index: NDArray[np.int64]) -> Visits:
        return Visits(*(getattr(self, f.name)[index] for f in fields(self)))


def draw_visits(
    footprint: tuple[float, float, float, float],
    years: float,
    seed: int,
    bands: str,
    survey: SurveyModel,
    model: SourceModel,
) -> Visits:
    """The visits of the chosen bands: the catalogue's pointings with times, depths and errors.

    Examples
    --------
    >>> v = draw_visits((60.0, 62.0, -36.0, -34.0), 1.0, 1, "ri", SurveyModel(), SourceModel())
    >>> sorted(set(v.band.tolist())), bool((v.visit == range(1, len(v) + 1)).all())
    (['i', 'r'], True)
    >>> bool(abs(v.zp_offset.std() - 0.005) < 0.002), bool((np.diff(v.mjd) >= 0).all())
    (True, True)
    """
    pointings = [p for p in draw_pointings(footprint, years, seed, survey) if p.band in bands]
    rng = np.random.default_rng([seed, _STREAM_VISITS])
    band = np.concatenate([np.full(len(p.ra), p.band) for p in pointings])
    ra = np.concatenate([p.ra for p in pointings])
    dec = np.concatenate([p.dec for p in pointings])
    fwhm = np.concatenate([p.fwhm for p in pointings])
    n = len(band)
    mjd = model.start_mjd + rng.uniform(0.0, 365.25 * years, n)
    single = np.array([survey.single_visit_m5[b] for b in band])
    zenith = np.array([survey.seeing_fwhm_zenith[b] for b in band])
    m5 = single - 2.5 * np.log10(fwhm / zenith) + rng.normal(0.0, model.depth_rms, n)
    zp = rng.normal(0.0, model.zeropoint_rms, n)
    shift = rng.normal(0.0, model.visit_shift_rms_mas, (2, n))
    order = np.argsort(mjd, kind="stable")
    visits = Visits(
        np.arange(1, n + 1, dtype=np.int64),
        band[order],
        mjd[order],
        ra[order],
        dec[order],
        fwhm[order],
        m5[order],
        zp[order],
        shift[0][order],
        shift[1][order],
    )
    return visits


def draw_variables(
    object_id: NDArray[np.int64],
    is_star: NDArray[np.bool_],
    seed: int,
    tract: int,
    years: float,
    model: SourceModel,
) -> pd.DataFrame:
    """The variable objects of one tract and their light-curve parameters (the truth table).

    Columns: ``objectId``, ``kind`` (``"periodic"`` or ``"transient"``), ``amplitude`` (mag),
    ``period`` (d), ``phase`` (rad), ``t0`` (MJD), ``tau`` (d), ``peak_mag``; NaN where a
    parameter does not apply.
    """
    rng = np.random.default_rng([seed, _STREAM_VARIABLES, tract])
    n = len(object_id)
    u = rng.random(n)
    periodic = is_star & (u < model.periodic_fraction)
    transient = ~is_star & (u < model.transient_fraction)
    k_p, k_t = int(periodic.sum()), int(transient.sum())
    lo, hi = model.periodic_period_days
    period = np.exp(rng.uniform(math.log(lo), math.log(hi), k_p))
    amplitude = rng.uniform(*model.periodic_amplitude, k_p)
    phase = rng.uniform(0.0, 2.0 * math.pi, k_p)
    t0 = model.start_mjd + rng.uniform(0.0, 365.25 * years, k_t)
    tau = rng.uniform(*model.transient_decay_days, k_t)
    peak = rng.uniform(*model.transient_peak_mag, k_t)
    nan_p, nan_t = np.full(k_p, np.nan), np.full(k_t, np.nan)
    frame = pd.DataFrame(
        {
            "objectId": np.concatenate([object_id[periodic], object_id[transient]]),
            "kind": pd.array(["periodic"] * k_p + ["transient"] * k_t, dtype="string"),
            "amplitude": np.concatenate([amplitude, nan_t]),
            "period": np.concatenate([period, nan_t]),
            "phase": np.concatenate([phase, nan_t]),
            "t0": np.concatenate([nan_p, t0]),
            "tau": np.concatenate([nan_p, tau]),
            "peak_mag": np.concatenate([nan_p, peak]),
        }
    )
    return frame.sort_values("objectId", ignore_index=True)


def variable_flux(
    base_flux: Array, mjd: Array, row_variables: pd.DataFrame, model: SourceModel
) -> Array:
    """True flux at ``mjd`` of rows whose object may vary.

    ``row_variables`` has one row per measurement, aligned with ``base_flux`` and ``mjd``,
    with the variable parameters of its object (NaN ``kind`` for constant objects).

    Examples
    --------
    >>> rows = pd.DataFrame({"kind": ["periodic", None], "amplitude": [0.5, np.nan],
    ...                      "period": [4.0, np.nan], "phase": [0.0, np.nan],
    ...                      "t0": [np.nan, np.nan], "tau": [np.nan, np.nan],
    ...                      "peak_mag": [np.nan, np.nan]})
    >>> m = SourceModel()
    >>> f = variable_flux(np.array([100.0, 100.0]), np.array([m.start_mjd + 1.0] * 2), rows, m)
    >>> f.round(3).tolist()  # a quarter period: m0 + A, so f0 * 10**(-0.2)
    [63.096, 100.0]
    """
    flux = np.array(base_flux, dtype=np.float64, copy=True)
    kind = row_variables["kind"].astype("string")
    periodic = kind.eq("periodic").fillna(False).to_numpy(dtype=bool)
    if periodic.any():
        arg = (
            2.0
            * math.pi
            * (mjd[periodic] - model.start_mjd)
            / row_variables["period"].to_numpy()[periodic]
            + row_variables["phase"].to_numpy()[periodic]
        )
        delta_mag = row_variables["amplitude"].to_numpy()[periodic] * np.sin(arg)
        flux[periodic] *= 10.0 ** (-0.4 * delta_mag)
    transient = kind.eq("transient").fillna(False).to_numpy(dtype=bool)
    if transient.any():
        dt = mjd[transient] - row_variables["t0"].to_numpy()[transient]
        tau = row_variables["tau"].to_numpy()[transient]
        shape = np.where(dt < 0, np.exp(dt / model.transient_rise_days), np.exp(-dt / tau))
        flux[transient] += flux_njy(row_variables["peak_mag"].to_numpy()[transient]) * shape
    return flux
