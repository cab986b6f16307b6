"""The true shear field: a Gaussian random convergence field plus singular isothermal halos.

Numbers (all in :class:`ShearModel`, written to ``synth.json``):

* Convergence power spectrum (flat sky): ``C_ell = A ell**-1.2 exp(-(ell / 3000)**2)``. ``A``
  is fixed analytically so that the continuous-sky shear rms is ``gamma_rms = 0.02`` per
  component: ``<kappa^2> = 2 gamma_rms^2 = A / (2 pi) * int ell**-0.2 exp(-(ell/ell_cut)^2)
  d ell = A ell_cut**0.8 Gamma(0.4) / (4 pi)`` (see :func:`power_amplitude`). The grid misses
  the modes longer than its side (ell < ~30), about 2 % of the variance.
  Alternatively a tabulated ``C_ell`` (``ShearModel.power_table``, e.g. the shear power
  spectrum of a cosmology from pyccl, :meth:`ShearModel.from_power_spectrum`, or
  ``skydask.analyses.twopoint.theory.shear_model``, whose module docstring shows how to make a
  catalogue whose measured xi+/xi- meets that theory): log-log interpolation inside the table,
  zero outside it; then ``gamma_rms``, ``slope`` and ``ell_cut`` are unused and ``synth.json``
  records the table instead.
* Grid: gnomonic projection about the footprint centre, 1 arcmin pixels, padded by 2 deg
  beyond the projected footprint on every side (the FFT field is periodic; the padding keeps
  the footprint from seeing its own wrapped edge). A grid side is capped at 4096 pixels (the
  pixel grows if needed, with a logged warning).
* Realisation: white noise from ``seed`` alone (stream ``[seed, 0x5EED0002]``) filtered by
  ``sqrt(C_ell) / pixel``, shear by Kaiser & Squires (1993) in Fourier space:
  ``gamma = (ell1^2 - ell2^2 + 2i ell1 ell2) / ell^2 * kappa`` (``ell = 0`` set to zero).
* Halos: 5 singular isothermal spheres at positions uniform on the sphere in the footprint
  (stream ``[seed, 0x5EED0003]``), Einstein radius ``theta_E`` uniform in [20, 40] arcsec;
  ``gamma_t = kappa = theta_E / (2 theta)``, both capped at 0.3 (inside ``theta_E / 0.6``).
* At an object: bilinear interpolation of the grid's kappa and gamma (rotated from the grid
  frame into the object's local (east, north) frame) plus the halos' tangential shears (the
  direction to each halo by spherical trigonometry, exact at any separation); the shear
  galaxies feel is the **reduced shear** ``g = gamma / (1 - kappa)`` with kappa the sum of the
  grid and halo convergences.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from skydask.errors import SpecError
from skydask.synth.sky import gnomonic, north_angle_in_plane, position_angle, validate_footprint

__all__ = [
    "Halo",
    "ShearField",
    "ShearModel",
    "draw_halos",
    "power_amplitude",
    "power_spectrum",
    "realised_power_spectrum",
    "shear_at",
    "shear_field",
    "sis_shear",
]

log = logging.getLogger(__name__)

_STREAM_SHEAR = 0x5EED0002
_STREAM_HALOS = 0x5EED0003


@dataclass(frozen=True)
class ShearModel:
    """Parameters of the shear field (see the module docstring)."""

    gamma_rms: float = 0.02
    slope: float = -1.2
    ell_cut: float = 3000.0
    pixel_arcmin: float = 1.0
    pad_deg: float = 2.0
    max_grid: int = 4096
    n_halos: int = 5
    theta_e_arcsec_min: float = 20.0
    theta_e_arcsec_max: float = 40.0
    halo_cap: float = 0.3
    reduced_shear: bool = True
    # (ell, C_ell) of a tabulated convergence power spectrum, replacing the power law
    power_table: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    def __post_init__(self) -> None:
        if self.power_table is None:
            return
        try:
            ell, cl = (np.asarray(a, dtype=np.float64) for a in self.power_table)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"ShearModel.power_table must be two sequences (ell, C_ell): {exc}") \
                from exc  # fmt: skip
        if not (
            ell.ndim == 1 and ell.shape == cl.shape and len(ell) >= 2
            and np.all(np.isfinite(ell)) and np.all(np.isfinite(cl))
            and ell[0] > 0 and np.all(np.diff(ell) > 0) and np.all(cl > 0)
        ):  # fmt: skip
            raise SpecError(
                "ShearModel.power_table must be (ell, C_ell): two 1-d sequences of the same "
                "length >= 2, ell > 0 increasing, C_ell > 0 and finite"
            )
        # normalised to tuples of floats, so the model stays hashable (it keys a cache)
        object.__setattr__(
            self, "power_table", (tuple(float(v) for v in ell), tuple(float(v) for v in cl))
        )

    @classmethod
    def from_power_spectrum(cls, ell: Any, c_ell: Any, **kwargs: Any) -> ShearModel:
        """A model whose Gaussian field has the convergence power spectrum ``c_ell`` at ``ell``
        (log-log interpolated; zero outside ``ell``'s range); other fields as ``kwargs``.

        Examples
        --------
        >>> ell = np.geomspace(10, 1e4, 50)
        >>> m = ShearModel.from_power_spectrum(ell, 1e-9 * (ell / 100) ** -1.5)
        >>> [f"{c:.3e}" for c in power_spectrum(np.array([100.0, 1e5]), m)]
        ['1.000e-09', '0.000e+00']
        """
        table = (tuple(float(v) for v in np.ravel(ell)), tuple(float(v) for v in np.ravel(c_ell)))
        return cls(power_table=table, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        if self.power_table is not None:
            return {
                "power_spectrum": "tabulated C_ell, log-log interpolation, zero outside",
                "power_table": {"ell": list(self.power_table[0]),
                                "C_ell": list(self.power_table[1])},
                **self._common_dict(),
            }  # fmt: skip
        return {
            "power_spectrum": "C_ell = A ell**slope exp(-(ell/ell_cut)**2)",
            "amplitude_A": power_amplitude(self),
            "gamma_rms": self.gamma_rms,
            "slope": self.slope,
            "ell_cut": self.ell_cut,
            **self._common_dict(),
        }

    def _common_dict(self) -> dict[str, Any]:
        return {
            "pixel_arcmin": self.pixel_arcmin,
            "pad_deg": self.pad_deg,
            "max_grid": self.max_grid,
            "n_halos": self.n_halos,
            "halo_profile": "SIS: gamma_t = kappa = theta_E / (2 theta), capped",
            "theta_e_arcsec_range": [self.theta_e_arcsec_min, self.theta_e_arcsec_max],
            "halo_cap": self.halo_cap,
            "reduced_shear": self.reduced_shear,
        }


def power_amplitude(model: ShearModel) -> float:
    """Amplitude ``A`` giving a continuous-sky shear rms of ``model.gamma_rms`` per component.

    Examples
    --------
    >>> f"{power_amplitude(ShearModel()):.4e}"
    '7.4922e-06'
    """
    p = 2.0 + model.slope  # int_0^inf ell^(1+slope) exp(-(ell/lc)^2) = lc^p Gamma(p/2) / 2
    integral = model.ell_cut**p * math.gamma(p / 2.0) / 2.0
    var_kappa = 2.0 * model.gamma_rms**2
    return 2.0 * math.pi * var_kappa / integral


def power_spectrum(ell: NDArray[np.float64], model: ShearModel) -> NDArray[np.float64]:
    """The convergence power spectrum ``C_ell`` (zero at ``ell = 0``): the power law, or the
    model's table when it has one."""
    ell = np.asarray(ell, dtype=np.float64)
    out = np.zeros_like(ell)
    pos = ell > 0
    if model.power_table is not None:
        table_ell = np.asarray(model.power_table[0])
        table_cl = np.asarray(model.power_table[1])
        inside = pos & (ell >= table_ell[0]) & (ell <= table_ell[-1])
        out[inside] = np.exp(np.interp(np.log(ell[inside]), np.log(table_ell), np.log(table_cl)))
        return out
    out[pos] = (
        power_amplitude(model)
        * ell[pos] ** model.slope
        * np.exp(-((ell[pos] / model.ell_cut) ** 2))
    )
    return out


@dataclass(frozen=True)
class Halo:
    """A singular isothermal sphere lens: centre (deg) and Einstein radius (arcsec)."""

    ra: float
    dec: float
    theta_e_arcsec: float

    def to_dict(self) -> dict[str, float]:
        return {"ra": self.ra, "dec": self.dec, "theta_e_arcsec": self.theta_e_arcsec}


def sis_shear(
    theta_arcsec: NDArray[np.float64], theta_e_arcsec: float, cap: float
) -> NDArray[np.float64]:
    """Tangential shear (= convergence) of a singular isothermal sphere, capped at ``cap``.

    Examples
    --------
    >>> sis_shear(np.array([60.0, 30.0, 1.0]), 30.0, 0.3).tolist()
    [0.25, 0.3, 0.3]
    """
    with np.errstate(divide="ignore"):
        gt = theta_e_arcsec / (2.0 * np.asarray(theta_arcsec, dtype=np.float64))
    return np.minimum(gt, cap)


def draw_halos(
    footprint: tuple[float, float, float, float], seed: int, model: ShearModel
) -> list[Halo]:
    """The halos, uniform on the sphere in the footprint, from ``seed`` alone."""
    ra_min, ra_max, dec_min, dec_max = footprint
    rng = np.random.default_rng([seed, _STREAM_HALOS])
    n = model.n_halos
    ra = rng.uniform(ra_min, ra_max, n)
    s = rng.uniform(math.sin(math.radians(dec_min)), math.sin(math.radians(dec_max)), n)
    theta_e = rng.uniform(model.theta_e_arcsec_min, model.theta_e_arcsec_max, n)
    return [
        Halo(float(a), float(math.degrees(math.asin(b))), float(t))
        for a, b, t in zip(ra, s, theta_e, strict=True)
    ]


@dataclass(frozen=True)
class ShearField:
    """A realisation: grid (rows along eta, columns along xi) and halos."""

    ra0: float
    dec0: float
    xi0: float
    eta0: float
    pixel_deg: float
    kappa: NDArray[np.float64]
    gamma1: NDArray[np.float64]
    gamma2: NDArray[np.float64]
    halos: tuple[Halo, ...]
    model: ShearModel

    def summary(self) -> dict[str, Any]:
        """What ``synth.json`` records of the realisation."""
        return {
            "projection_centre": [self.ra0, self.dec0],
            "grid_shape": list(self.kappa.shape),
            "grid_pixel_arcmin": self.pixel_deg * 60.0,
            "grid_gamma_rms_realised": float(
                np.sqrt(0.5 * np.mean(self.gamma1**2 + self.gamma2**2))
            ),
            "halos": [h.to_dict() for h in self.halos],
        }


def _grid_extent(
    footprint: tuple[float, float, float, float],
) -> tuple[float, float, float, float, float, float]:
    ra_min, ra_max, dec_min, dec_max = footprint
    ra0 = 0.5 * (ra_min + ra_max)
    dec0 = 0.5 * (dec_min + dec_max)
    t = np.linspace(0.0, 1.0, 65)
    ra_e = np.concatenate(
        [ra_min + t * (ra_max - ra_min)] * 2 + [np.full_like(t, ra_min), np.full_like(t, ra_max)]
    )
    dec_e = np.concatenate(
        [np.full_like(t, dec_min), np.full_like(t, dec_max)]
        + [dec_min + t * (dec_max - dec_min)] * 2
    )
    xi, eta = gnomonic(ra_e, dec_e, ra0, dec0)
    return ra0, dec0, float(xi.min()), float(xi.max()), float(eta.min()), float(eta.max())


_lock = threading.Lock()


def shear_field(
    footprint: tuple[float, float, float, float], seed: int, model: ShearModel
) -> ShearField:
    """The shear field of a footprint and seed, cached per process.

    Every task regenerates it identically from ``seed`` alone; the cache (a few entries, locked
    so that concurrent threads compute it once) makes that a one-off cost per process.

    Examples
    --------
    >>> f = shear_field((60.0, 61.0, -35.0, -34.0), 3, ShearModel())
    >>> f.kappa.shape == f.gamma1.shape, len(f.halos)
    (True, 5)
    """
    with _lock:
        return _shear_field(validate_footprint(footprint), int(seed), model)


@functools.lru_cache(maxsize=4)
def _shear_field(
    footprint: tuple[float, float, float, float], seed: int, model: ShearModel
) -> ShearField:
    ra0, dec0, xi_lo, xi_hi, eta_lo, eta_hi = _grid_extent(footprint)
    pad = model.pad_deg
    pixel = model.pixel_arcmin / 60.0
    span = max(xi_hi - xi_lo, eta_hi - eta_lo) + 2 * pad
    if span / pixel > model.max_grid:
        new_pixel = span / model.max_grid
        log.warning(
            "shear grid of %.1f deg at %.2f arcmin would exceed %d pixels; using %.2f arcmin",
            span, model.pixel_arcmin, model.max_grid, new_pixel * 60.0,
        )  # fmt: skip
        pixel = new_pixel
    # odd sizes: an even FFT grid has a Nyquist mode that is its own partner, where the
    # spin-2 filter 2 l1 l2 / l^2 cannot be Hermitian and gamma2 would not be real
    nx = 2 * math.ceil((xi_hi - xi_lo + 2 * pad) / pixel / 2) + 1
    ny = 2 * math.ceil((eta_hi - eta_lo + 2 * pad) / pixel / 2) + 1
    rng = np.random.default_rng([seed, _STREAM_SHEAR])
    white = rng.standard_normal((ny, nx))
    d_rad = math.radians(pixel)
    lx = 2.0 * np.pi * np.fft.fftfreq(nx, d=d_rad)[None, :]
    ly = 2.0 * np.pi * np.fft.fftfreq(ny, d=d_rad)[:, None]
    ell2 = lx**2 + ly**2
    # unnormalised FFT of unit white noise has <|W|^2> = N; the filter sqrt(C_ell) / pixel then
    # gives a real-space variance of (1 / (N pixel^2)) sum C_ell = int d^2ell/(2pi)^2 C_ell
    kappa_k = np.fft.fft2(white) * np.sqrt(power_spectrum(np.sqrt(ell2), model)) / d_rad
    with np.errstate(invalid="ignore", divide="ignore"):
        d1 = np.where(ell2 > 0, (lx**2 - ly**2) / ell2, 0.0)
        d2 = np.where(ell2 > 0, 2.0 * lx * ly / ell2, 0.0)
    kappa = np.fft.ifft2(kappa_k).real
    gamma1 = np.fft.ifft2(d1 * kappa_k).real
    gamma2 = np.fft.ifft2(d2 * kappa_k).real
    halos = tuple(draw_halos(footprint, seed, model))
    return ShearField(
        ra0, dec0, xi_lo - pad, eta_lo - pad, pixel, kappa, gamma1, gamma2, halos, model
    )


def realised_power_spectrum(ell: NDArray[np.float64], field: ShearField) -> NDArray[np.float64]:
    """The power spectrum of the Gaussian field as the objects see it (halos aside).

    The model's ``C_ell`` times the window of the bilinear interpolation from the grid,
    ``<sinc^4(ell_x p / 2) sinc^4(ell_y p / 2)>`` over directions (``p`` the pixel,
    ``sinc x = sin x / x``; about 7 % less power at ell = 2300 for 1 arcmin pixels), and zero
    below the grid's fundamental mode ``2 pi / side`` (the shorter side): the periodic grid has
    no longer modes. This, not the bare ``C_ell``, is what a measurement on a synthetic
    catalogue should match; at large separations the missing long modes lower xi+ markedly.

    Examples
    --------
    >>> f = shear_field((60.0, 61.0, -35.0, -34.0), 3, ShearModel())
    >>> ell = np.array([10.0, 500.0])
    >>> realised_power_spectrum(ell, f)[0], bool(
    ...     0.99 < realised_power_spectrum(ell, f)[1] / power_spectrum(ell, f.model)[1] < 1)
    (np.float64(0.0), True)
    """
    ell = np.asarray(ell, dtype=np.float64)
    half = math.radians(field.pixel_deg) / 2
    phi = np.linspace(0.0, np.pi / 2, 181)
    ax = np.outer(ell, np.cos(phi)) * half / np.pi
    ay = np.outer(ell, np.sin(phi)) * half / np.pi
    window = np.mean(np.sinc(ax) ** 4 * np.sinc(ay) ** 4, axis=1)
    fundamental = 2 * np.pi / math.radians(min(field.kappa.shape) * field.pixel_deg)
    return np.where(ell >= fundamental, power_spectrum(ell, field.model) * window, 0.0)


def _bilinear(
    grid: NDArray[np.float64], fx: NDArray[np.float64], fy: NDArray[np.float64]
) -> NDArray[np.float64]:
    ny, nx = grid.shape
    fx = np.clip(fx, 0.0, nx - 1.000001)
    fy = np.clip(fy, 0.0, ny - 1.000001)
    ix = fx.astype(np.int64)
    iy = fy.astype(np.int64)
    tx = fx - ix
    ty = fy - iy
    return np.asarray(
        (1 - ty) * ((1 - tx) * grid[iy, ix] + tx * grid[iy, ix + 1])
        + ty * ((1 - tx) * grid[iy + 1, ix] + tx * grid[iy + 1, ix + 1]),
        dtype=np.float64,
    )


def _separation_arcsec(
    ra: NDArray[np.float64], dec: NDArray[np.float64], ra0: float, dec0: float
) -> NDArray[np.float64]:
    # haversine: accurate at the small separations where the SIS shear matters
    d = np.radians(dec)
    d0 = math.radians(dec0)
    h = np.sin((d - d0) / 2) ** 2 + np.cos(d) * math.cos(d0) * np.sin(np.radians(ra - ra0) / 2) ** 2
    return np.asarray(
        np.degrees(2.0 * np.arcsin(np.sqrt(np.minimum(h, 1.0)))) * 3600.0, dtype=np.float64
    )


def shear_at(
    ra: NDArray[np.float64], dec: NDArray[np.float64], field: ShearField
) -> tuple[NDArray[np.complex128], NDArray[np.float64]]:
    """Shear ``g = g1 + i g2`` (local east/north frame) and convergence kappa at positions.

    ``g`` is the reduced shear ``gamma / (1 - kappa)`` when ``field.model.reduced_shear``.

    Examples
    --------
    >>> f = shear_field((60.0, 61.0, -35.0, -34.0), 3, ShearModel())
    >>> h = f.halos[0]
    >>> g, kappa = shear_at(np.array([h.ra]), np.array([h.dec + 0.5]), f)
    >>> g.shape, kappa.shape
    ((1,), (1,))
    """
    model = field.model
    xi, eta = gnomonic(ra, dec, field.ra0, field.dec0)
    fx = (xi - field.xi0) / field.pixel_deg
    fy = (eta - field.eta0) / field.pixel_deg
    kappa = _bilinear(field.kappa, fx, fy)
    gamma = _bilinear(field.gamma1, fx, fy) + 1j * _bilinear(field.gamma2, fx, fy)
    gamma = gamma * np.exp(-2j * north_angle_in_plane(xi, eta, field.dec0))
    for halo in field.halos:
        gt = sis_shear(
            _separation_arcsec(ra, dec, halo.ra, halo.dec), halo.theta_e_arcsec, model.halo_cap
        )
        # tangential: gamma = -gamma_t exp(2i phi), phi the direction away from the halo
        phi = position_angle(ra, dec, halo.ra, halo.dec)
        gamma = gamma - gt * np.exp(2j * phi)
        kappa = kappa + gt
    g = gamma / (1.0 - kappa) if model.reduced_shear else gamma
    return np.asarray(g, dtype=np.complex128), kappa
