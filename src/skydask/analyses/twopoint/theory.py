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

A synthetic catalogue whose measurement meets theory: draw its field from pyccl's C_ell with
:func:`shear_model` (DC2's cosmology, the SRD's year-10 sources :func:`source_nz`; ``n_halos=0``
leaves the Gaussian field alone), generate, measure, and compare with the C_ell the objects
actually see, :func:`skydask.synth.shear.realised_power_spectrum` (no modes longer than the
periodic grid, i.e. the footprint plus 2 degrees on every side, and the interpolation's pixel
window), transformed by :func:`xi_from_cl` or, for plots, :func:`xi_curves`::

    model = shear_model(n_halos=0)
    generate_object_catalog(out, rows=2_000_000, seed=42, footprint=(60, 62, -36, -34),
                            years=1.0, shear=model)
    result = shear_shear(skydask.open_catalog(out), min_sep=2.0, max_sep=30.0, nbins=6)
    ell = np.asarray(model.power_table[0])
    seen = realised_power_spectrum(ell, shear_field((60, 62, -36, -34), 42, model))
    result.plot(theory=xi_curves(result, ell, seen))

On 4 deg^2 the grid's missing modes lower xi+ by ~20 % at 10 arcmin and ~40 % at 25 arcmin
against :func:`predict`'s full-sky curve. ``skydask synth --shear-from-theory --no-halos`` makes
such a catalogue from the command line. The source density matters more than the area: shape
noise (~0.2 per component) hides xi+ ~ 1e-5 unless there are ~15 sources per arcmin^2 or more.
With DESC's source cuts the shapes' xi comes out ~15 % above the field's (the resolution cut
favours galaxies elongated along the shear, a selection that ``R = 1 - e_rms^2`` does not
calibrate), within the jackknife errors of a few deg^2 (test_twopoint_theory_synth.py).
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
    from skydask.synth.shear import ShearModel

__all__ = [
    "DC2_COSMOLOGY",
    "TheoryCurves",
    "cosmology",
    "predict",
    "shear_cl",
    "shear_model",
    "source_nz",
    "xi_curves",
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


def source_nz(
    z0: float = 0.11, alpha: float = 0.68, z_max: float = 3.5, n: int = 351
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A Smail source redshift distribution ``n(z) ~ z^2 exp(-(z / z0)^alpha)`` on
    ``[0, z_max]``, normalised to unit integral; the defaults are the LSST DESC Science
    Requirements Document's year-10 sources (mean z ~ 1.0).

    Examples
    --------
    >>> z, n = source_nz()
    >>> round(float(np.trapezoid(n, z)), 6), round(float(np.trapezoid(z * n, z)), 2)
    (1.0, 1.01)
    """
    z = np.linspace(0.0, z_max, n)
    nz = z**2 * np.exp(-((z / z0) ** alpha))
    return z, nz / np.trapezoid(nz, z)


def shear_model(
    nz: tuple[Any, Any] | None = None,
    *,
    cosmo: Any = None,
    ell: Sequence[float] | NDArray[np.float64] | None = None,
    **model: Any,
) -> ShearModel:
    """A synthetic-catalogue shear model whose Gaussian field has pyccl's shear ``C_ell``.

    Parameters
    ----------
    nz : (z, n(z)), optional
        The sources' redshift distribution; default :func:`source_nz` (LSST SRD year 10).
    cosmo : pyccl.Cosmology, optional
        Default: :func:`cosmology` (DC2).
    ell : array, optional
        Multipoles of the table (log-log interpolated, zero outside); default 200 log-spaced
        from 2 to 30,000, beyond the modes of any grid the generator makes at 1 arcmin pixels.
    **model
        Other :class:`skydask.synth.shear.ShearModel` fields, e.g. ``n_halos=0`` for the
        Gaussian field alone.

    Returns
    -------
    ShearModel
        For ``skydask.synth.generate_object_catalog(..., shear=...)``.

    Examples
    --------
    >>> m = shear_model(n_halos=0)
    >>> m.n_halos, len(m.power_table[0]), f"{m.power_table[1][0]:.1e}"
    (0, 200, '1.5e-08')
    """
    from skydask.synth.shear import ShearModel

    ell_table = np.geomspace(2.0, 3.0e4, 200) if ell is None else np.asarray(ell, dtype=float)
    cl = shear_cl(ell_table, source_nz() if nz is None else nz, cosmo)
    return ShearModel.from_power_spectrum(ell_table, cl, **model)


def xi_from_cl(
    ell: NDArray[np.float64],
    cl: NDArray[np.float64],
    theta_arcmin: NDArray[np.float64],
    kind: str = "GG+",
    cosmo: Any = None,
) -> NDArray[np.float64]:
    """The correlation function of a tabulated power spectrum (pyccl's FFTLog transform).

    ``kind``: ``"GG+"`` (xi+), ``"GG-"`` (xi-), ``"NG"`` (gamma_t), ``"NN"`` (w). ``cl`` may
    be zero over a range (such as the modes a synthetic grid lacks,
    :func:`skydask.synth.shear.realised_power_spectrum`); zeros after its last positive value
    are dropped, since the transform extrapolates the table's ends as power laws.

    Examples
    --------
    A Gaussian ``C_ell = exp(-ell^2 s^2 / 2)`` has ``xi+ = exp(-theta^2 / 2 s^2) / (2 pi s^2)``:

    >>> s = np.radians(5.0 / 60.0)  # 5 arcmin
    >>> ell = np.geomspace(1.0, 1.0e4, 1000)
    >>> xi = xi_from_cl(ell, np.exp(-((ell * s) ** 2) / 2), np.array([5.0]))
    >>> round(float(xi[0] * 2 * np.pi * s**2 / np.exp(-0.5)), 3)
    1.0
    """
    ccl = _ccl()
    cosmo = cosmo if cosmo is not None else cosmology()
    ell = np.asarray(ell, dtype=np.float64)
    cl = np.asarray(cl, dtype=np.float64)
    positive = np.flatnonzero(cl > 0)
    if ell.ndim != 1 or ell.shape != cl.shape or len(positive) < 2:
        raise SpecError("xi_from_cl needs ell and C_ell of the same length, with >= 2 C_ell > 0")
    end = positive[-1] + 1
    theta_deg = np.asarray(theta_arcmin, dtype=np.float64) / 60.0
    return np.asarray(
        ccl.correlation(cosmo, ell=ell[:end], C_ell=cl[:end], theta=theta_deg, type=kind)
    )


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


def _theta_grid(
    result: TwoPointResult, theta: NDArray[np.float64] | None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Separations in the result's units (default 100 log-spaced over its range), and in
    arcmin."""
    from skydask.analyses.twopoint.result import arcmin_factor

    cfg = result.config
    grid = (
        np.geomspace(cfg.min_sep, cfg.max_sep, 100)
        if theta is None
        else np.asarray(theta, dtype=np.float64)
    )
    return grid, grid * arcmin_factor(cfg.sep_units)


def xi_curves(
    result: TwoPointResult,
    ell: Sequence[float] | NDArray[np.float64],
    cl: Sequence[float] | NDArray[np.float64],
    *,
    theta: NDArray[np.float64] | None = None,
    description: str = "tabulated C_ell, FFTLog Hankel transform",
) -> TheoryCurves:
    """xi+ and xi- of one tabulated shear power spectrum for every shear-shear measurement of
    ``result`` (for :meth:`TwoPointResult.plot`'s ``theory``).

    Use it for the band-limited spectrum of a synthetic catalogue's field
    (:func:`skydask.synth.shear.realised_power_spectrum`), which :func:`predict`, from the
    full-sky Limber ``C_ell``, does not know about.

    Parameters
    ----------
    result : TwoPointResult
        Says which bin pairs, and the separation units.
    ell, cl : array
        The power spectrum (see :func:`xi_from_cl`).
    theta : array, optional
        Separations in the result's units; default 100 log-spaced from min_sep to max_sep.
    description : str
        Recorded in the curves.
    """

    cfg = result.config
    grid, theta_arcmin = _theta_grid(result, theta)
    ell_a, cl_a = np.asarray(ell, dtype=np.float64), np.asarray(cl, dtype=np.float64)
    curves: dict[tuple[str, str, str], NDArray[np.float64]] = {}
    for r in result.requests:
        if r.statistic == "shear_shear":
            for q in ("xip", "xim"):
                curves[(q, r.bin1, r.bin2)] = xi_from_cl(ell_a, cl_a, theta_arcmin, _TYPES[q])
    if not curves:
        raise SpecError("xi_curves: the result has no shear-shear measurement")
    return TheoryCurves(grid, cfg.sep_units, MappingProxyType(curves), description)


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

    ccl = _ccl()
    cosmo = cosmo if cosmo is not None else cosmology()
    cfg = result.config
    grid, theta_arcmin = _theta_grid(result, theta)
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
