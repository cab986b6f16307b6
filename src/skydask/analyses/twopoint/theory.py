"""Theory curves from DESC's Core Cosmology Library (``pyccl``, the optional ``theory`` extra).

:func:`predict` gives, for every measurement of a result, the expected xi+/xi-, gamma_t or
w(theta) from a cosmology and the bins' redshift distributions: Limber angular power spectra
of weak-lensing and number-count tracers (linear bias), Hankel-transformed by pyccl (FFTLog).
The default cosmology is DC2's (Omega_c 0.2201, Omega_b 0.0448, h 0.71, sigma8 0.8,
n_s 0.963) with the Eisenstein & Hu transfer function and halofit, so no Boltzmann code
(CAMB) is needed.

:func:`shear_cl` gives a shear power spectrum to draw the synthetic generator's Gaussian field
from (``skydask.synth.shear.ShearModel(power_table=...)``), and :func:`xi_from_cl` the xi+/xi-
of any tabulated C_ell, so that a measurement on synthetic data meets its input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from skydask.errors import SpecError

if TYPE_CHECKING:
    from skydask.analyses.twopoint.result import TwoPointResult

__all__ = [
    "DC2_COSMOLOGY",
    "TheoryCurves",
    "cosmology",
    "predict",
    "shear_cl",
    "xi_from_cl",
]

DC2_COSMOLOGY: Mapping[str, float] = MappingProxyType(
    {"Omega_c": 0.2201, "Omega_b": 0.0448, "h": 0.71, "sigma8": 0.8, "n_s": 0.963}
)
"""The cosmology of DESC's DC2 simulations (the defaults of :func:`cosmology`)."""

_ELL = np.unique(np.geomspace(2.0, 1.0e5, 600).round()).astype(np.float64)
_TYPES = {"xip": "GG+", "xim": "GG-", "gamma_t": "NG", "w_theta": "NN"}


def _ccl() -> Any:
    try:
        import pyccl
    except ImportError as exc:  # an optional dependency: say how to get it
        raise ImportError(
            "theory curves need pyccl (DESC's Core Cosmology Library): pip install "
            "'skydask[theory]'"
        ) from exc
    return pyccl


def cosmology(**parameters: Any) -> Any:
    """A ``pyccl.Cosmology``: DC2's parameters, Eisenstein & Hu transfer function, halofit.

    Any ``pyccl.Cosmology`` argument overrides the defaults.

    Examples
    --------
    >>> round(float(cosmology().sigma8()), 3)
    0.8
    """
    ccl = _ccl()
    args: dict[str, Any] = {**DC2_COSMOLOGY, "transfer_function": "eisenstein_hu",
                            "matter_power_spectrum": "halofit"}  # fmt: skip
    args.update(parameters)
    return ccl.Cosmology(**args)


def _dndz(nz: tuple[Any, Any], name: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    z, n = (np.asarray(a, dtype=np.float64) for a in nz)
    if z.ndim != 1 or z.shape != n.shape or len(z) < 2 or not np.all(np.diff(z) > 0):
        raise SpecError(f"n(z) of bin {name!r} must be two 1-d arrays (z increasing, n(z)) of "
                        "the same length")  # fmt: skip
    if not np.any(n > 0):
        raise SpecError(f"n(z) of bin {name!r} is zero everywhere")
    return z, n


def shear_cl(
    ell: Sequence[float] | NDArray[np.float64],
    nz: tuple[Any, Any],
    cosmo: Any = None,
) -> NDArray[np.float64]:
    """Shear (E-mode) angular power spectrum of sources with redshift distribution ``nz``.

    Examples
    --------
    >>> z = np.linspace(0.01, 2.5, 200)
    >>> cl = shear_cl([100.0, 1000.0], (z, z**2 * np.exp(-z / 0.3)))
    >>> bool(cl[0] > cl[1] > 0)
    True
    """
    ccl = _ccl()
    cosmo = cosmo if cosmo is not None else cosmology()
    tracer = ccl.WeakLensingTracer(cosmo, dndz=_dndz(nz, "sources"))
    return np.asarray(ccl.angular_cl(cosmo, tracer, tracer, np.asarray(ell, dtype=float)))


def xi_from_cl(
    ell: NDArray[np.float64],
    cl: NDArray[np.float64],
    theta_arcmin: NDArray[np.float64],
    kind: str = "GG+",
    cosmo: Any = None,
) -> NDArray[np.float64]:
    """The correlation function of a tabulated power spectrum (pyccl's FFTLog transform).

    ``kind``: ``"GG+"`` (xi+), ``"GG-"`` (xi-), ``"NG"`` (gamma_t), ``"NN"`` (w).
    """
    ccl = _ccl()
    cosmo = cosmo if cosmo is not None else cosmology()
    theta_deg = np.asarray(theta_arcmin, dtype=np.float64) / 60.0
    return np.asarray(
        ccl.correlation(cosmo, ell=np.asarray(ell, dtype=float),
                        C_ell=np.asarray(cl, dtype=float), theta=theta_deg, type=kind)
    )  # fmt: skip


@dataclass(frozen=True)
class TheoryCurves:
    """Theory values on a grid of separations, per (quantity, bin1, bin2).

    ``theta`` is in ``units`` (those of the result it was made for).
    """

    theta: NDArray[np.float64]
    units: str
    curves: Mapping[tuple[str, str, str], NDArray[np.float64]]
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def get(
        self, quantity: str, bin1: str, bin2: str
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
        """``(theta, values)`` of one curve, or None."""
        values = self.curves.get((quantity, bin1, bin2))
        return None if values is None else (self.theta, values)

    def at(self, quantity: str, bin1: str, bin2: str, theta: NDArray[np.float64]
           ) -> NDArray[np.float64]:  # fmt: skip
        """A curve interpolated (log-log in theta) at other separations, in ``units``."""
        values = self.curves[(quantity, bin1, bin2)]
        return np.interp(np.log(theta), np.log(self.theta), values)


def predict(
    result: TwoPointResult,
    nz: Mapping[str, tuple[Any, Any]],
    *,
    cosmo: Any = None,
    bias: Mapping[str, float] | float = 1.0,
    theta: NDArray[np.float64] | None = None,
) -> TheoryCurves:
    """Theory curves for every measurement of ``result``.

    Parameters
    ----------
    result : TwoPointResult
        Says which statistics between which bins, and the separation units.
    nz : mapping
        Bin name to ``(z, n(z))`` for every bin of the result.
    cosmo : pyccl.Cosmology, optional
        Default: :func:`cosmology` (DC2).
    bias : float or mapping
        Linear galaxy bias of the lens bins (one number for all, or per bin name).
    theta : array, optional
        Separations in the result's units; default 100 log-spaced from min_sep to max_sep.
    """
    from skydask.analyses.twopoint.result import arcmin_factor

    ccl = _ccl()
    cosmo = cosmo if cosmo is not None else cosmology()
    cfg = result.config
    grid = (
        np.geomspace(cfg.min_sep, cfg.max_sep, 100)
        if theta is None
        else np.asarray(theta, dtype=np.float64)
    )
    theta_arcmin = grid * arcmin_factor(cfg.sep_units)
    missing = sorted({b for r in result.requests for b in (r.bin1, r.bin2)} - set(nz))
    if missing:
        raise SpecError(f"theory needs n(z) for bin(s) {missing}")
    tracers: dict[tuple[str, str], Any] = {}

    def tracer(name: str, kind: str) -> Any:
        if (name, kind) not in tracers:
            dndz = _dndz(nz[name], name)
            if kind == "shear":
                tracers[(name, kind)] = ccl.WeakLensingTracer(cosmo, dndz=dndz)
            else:
                b = bias if isinstance(bias, int | float) else bias[name]
                tracers[(name, kind)] = ccl.NumberCountsTracer(
                    cosmo, dndz=dndz, bias=(dndz[0], np.full_like(dndz[0], float(b))),
                    has_rsd=False,
                )  # fmt: skip
        return tracers[(name, kind)]

    curves: dict[tuple[str, str, str], NDArray[np.float64]] = {}
    for r in result.requests:
        if r.statistic == "shear_shear":
            cl = ccl.angular_cl(cosmo, tracer(r.bin1, "shear"), tracer(r.bin2, "shear"), _ELL)
            for q in ("xip", "xim"):
                curves[(q, r.bin1, r.bin2)] = xi_from_cl(_ELL, cl, theta_arcmin, _TYPES[q], cosmo)
        elif r.statistic == "galaxy_shear":
            cl = ccl.angular_cl(cosmo, tracer(r.bin1, "density"), tracer(r.bin2, "shear"), _ELL)
            curves[("gamma_t", r.bin1, r.bin2)] = xi_from_cl(_ELL, cl, theta_arcmin, "NG", cosmo)
        else:
            cl = ccl.angular_cl(cosmo, tracer(r.bin1, "density"), tracer(r.bin2, "density"), _ELL)
            curves[("w_theta", r.bin1, r.bin2)] = xi_from_cl(_ELL, cl, theta_arcmin, "NN", cosmo)
    params = {k: float(cosmo[k]) for k in DC2_COSMOLOGY}
    return TheoryCurves(
        grid, cfg.sep_units, MappingProxyType(curves),
        "pyccl: Limber C_ell, linear bias, FFTLog Hankel transform", MappingProxyType(params),
    )  # fmt: skip
