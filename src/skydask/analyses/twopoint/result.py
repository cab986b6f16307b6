"""The result of the two-point analyses: TreeCorr objects, tables, covariance, figures, files.

A :class:`TwoPointResult` holds one or more measurements (a statistic between two bins), the
TreeCorr objects behind them (finalized, with the random-point terms applied), the joint
jackknife covariance of all of them (TreeCorr's ``estimate_multi_cov``), the patch centres
(reuse them to measure another sample on the same patches) and the record of how the shapes
were calibrated. Separations are in ``config.sep_units`` (arcmin by default).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from skydask.analyses.twopoint.config import TwoPointConfig
from skydask.analyses.twopoint.measure import Request
from skydask.analyses.twopoint.samples import Calibration
from skydask.errors import SpecError

if TYPE_CHECKING:
    import sacc
    from matplotlib.figure import Figure

    from skydask.analyses.twopoint.theory import TheoryCurves

__all__ = ["DATA_VECTOR_COLUMNS", "TwoPointResult"]

log = logging.getLogger(__name__)

DATA_VECTOR_COLUMNS = {
    "quantity": "xip, xim (shear_shear), gamma_t (galaxy_shear), w_theta (galaxy_galaxy)",
    "bin1": "first bin (the lens bin for gamma_t)",
    "bin2": "second bin (the source bin for gamma_t)",
    "bin": "separation bin index",
    "r_nom": "nominal bin centre, in config.sep_units",
    "meanr": "mean separation of the pairs in the bin, in config.sep_units",
    "meanlogr": "mean log separation of the pairs in the bin (log of config.sep_units)",
    "value": "the measured correlation",
    "sigma": "its jackknife uncertainty (square root of the covariance diagonal)",
    "npairs": "number of pairs (for w_theta: data-data pairs)",
    "weight": "total weight of the pairs",
}
"""What each column of :meth:`TwoPointResult.data_vector` holds; its rows are in the order of
the covariance's rows."""

_QUANTITIES = {"shear_shear": ("xip", "xim"), "galaxy_shear": ("gamma_t",),
               "galaxy_galaxy": ("w_theta",)}  # fmt: skip
_UNITS_TO_ARCMIN = {"arcmin": 1.0, "arcsec": 1.0 / 60.0, "deg": 60.0, "degrees": 60.0,
                    "rad": 180.0 * 60.0 / math.pi, "radians": 180.0 * 60.0 / math.pi}  # fmt: skip


def _values(statistic: str, corr: Any) -> dict[str, NDArray[np.float64]]:
    if statistic == "shear_shear":
        return {"xip": corr.xip, "xim": corr.xim}
    if statistic == "galaxy_shear":
        return {"gamma_t": corr.xi}
    return {"w_theta": corr.xi}


@dataclass(frozen=True)
class TwoPointResult:
    """Measured two-point functions with their joint jackknife covariance.

    Attributes
    ----------
    config : TwoPointConfig
        The parameters used.
    requests : tuple of Request
        The measurements, in data-vector order: statistic, bin1, bin2.
    correlations : mapping of Request to TreeCorr correlation
        ``GGCorrelation`` (shear_shear), ``NGCorrelation`` (galaxy_shear, with the randoms'
        signal subtracted when randoms were given), ``NNCorrelation`` (galaxy_galaxy, after
        ``calculateXi`` with the random terms). Each keeps its per-patch-pair ``results``, so
        ``estimate_cov`` and ``treecorr.estimate_multi_cov`` work on them.
    randoms_correlations : mapping of Request to dict
        The random-point correlations: ``rg`` (galaxy_shear), ``rr``, ``dr``, ``rd``
        (galaxy_galaxy).
    covariance : ndarray
        Joint jackknife covariance of the data vector (:meth:`data_vector`).
    patch_centers : ndarray
        TreeCorr's patch centres, shape ``(npatch, 3)``; pass them as ``patch_centers=`` to
        measure on the same patches.
    calibrations : mapping of str to Calibration
        Per source bin: the shape-to-shear conversion applied and the e_rms used.
    samples : mapping of str to dict
        Per bin: role, selection, rows selected and used, total weight, empty patches.
    reduction : dict
        How the computation went: patches, pair tasks, pairs skipped, cache, seconds.
    """

    config: TwoPointConfig
    requests: tuple[Request, ...]
    correlations: Mapping[Request, Any]
    randoms_correlations: Mapping[Request, Mapping[str, Any]]
    covariance: NDArray[np.float64]
    patch_centers: NDArray[np.float64]
    calibrations: Mapping[str, Calibration]
    samples: Mapping[str, Mapping[str, Any]]
    reduction: Mapping[str, Any] = field(default_factory=dict)

    # -- access ---------------------------------------------------------------------------
    @property
    def statistics(self) -> list[str]:
        """The statistics measured, in order of first appearance."""
        return list(dict.fromkeys(r.statistic for r in self.requests))

    def request(self, statistic: str | None = None, bin1: str | None = None,
                bin2: str | None = None) -> Request:  # fmt: skip
        """The one measurement matching the arguments (those left out match anything)."""
        found = [
            r for r in self.requests
            if (statistic is None or r.statistic == statistic)
            and (bin1 is None or r.bin1 == bin1) and (bin2 is None or r.bin2 == bin2)
        ]  # fmt: skip
        if len(found) != 1:
            raise SpecError(
                f"{len(found)} measurements match statistic={statistic!r}, bin1={bin1!r}, "
                f"bin2={bin2!r}; this result has "
                f"{[(r.statistic, r.bin1, r.bin2) for r in self.requests]}"
            )
        return found[0]

    def corr(self, statistic: str | None = None, bin1: str | None = None,
             bin2: str | None = None) -> Any:  # fmt: skip
        """The TreeCorr object of one measurement (arguments may be left out if unambiguous)."""
        return self.correlations[self.request(statistic, bin1, bin2)]

    @property
    def sep_units(self) -> str:
        return self.config.sep_units

    # -- numbers ----------------------------------------------------------------------------
    def _offsets(self) -> list[tuple[Request, str, int]]:
        out, start = [], 0
        for r in self.requests:
            for q in _QUANTITIES[r.statistic]:
                out.append((r, q, start))
                start += self.config.nbins
        return out

    @property
    def sigma(self) -> NDArray[np.float64]:
        """Jackknife uncertainty of each data-vector element."""
        return np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))

    def correlation_matrix(self) -> NDArray[np.float64]:
        """The covariance normalised by its diagonal."""
        s = self.sigma
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self.covariance / np.outer(s, s)
        return np.asarray(out, dtype=np.float64)

    def data_vector(self) -> pd.DataFrame:
        """Long table, one row per data-vector element, in covariance order (see
        :data:`DATA_VECTOR_COLUMNS`)."""
        sigma = self.sigma
        rows = []
        for r, q, start in self._offsets():
            corr = self.correlations[r]
            values = _values(r.statistic, corr)[q]
            for k in range(self.config.nbins):
                rows.append({
                    "quantity": q, "bin1": r.bin1, "bin2": r.bin2, "bin": k,
                    "r_nom": float(corr.rnom[k]), "meanr": float(corr.meanr[k]),
                    "meanlogr": float(corr.meanlogr[k]), "value": float(values[k]),
                    "sigma": float(sigma[start + k]), "npairs": float(corr.npairs[k]),
                    "weight": float(corr.weight[k]),
                })  # fmt: skip
        return pd.DataFrame(rows, columns=list(DATA_VECTOR_COLUMNS))

    def table(self, statistic: str | None = None) -> pd.DataFrame:
        """One row per separation bin and bin pair of one statistic.

        ``shear_shear``: ``r_nom, meanr, meanlogr, xip, xim, xip_im, xim_im, sigma_xip,
        sigma_xim, npairs, weight``. ``galaxy_shear``: ``gamma_t, gamma_x, sigma_gamma_t``
        (gamma_x has the same uncertainty), plus ``gamma_t_randoms`` when randoms were
        subtracted. ``galaxy_galaxy``: ``w_theta, sigma_w_theta`` and the pair counts ``DD``,
        ``DR``, ``RD``, ``RR`` (the random ones scaled by the ratio of total pairs, as TreeCorr
        writes them). Each with ``bin1``, ``bin2`` first. ``statistic`` may be left out when
        the result has only one.
        """
        stats = self.statistics
        if statistic is None:
            if len(stats) != 1:
                raise SpecError(f"this result has several statistics {stats}: name one")
            statistic = stats[0]
        if statistic not in stats:
            raise SpecError(f"this result has no {statistic!r}; it has {stats}")
        sigma = self.sigma
        offsets = {(r, q): start for r, q, start in self._offsets()}
        frames = []
        for r in self.requests:
            if r.statistic != statistic:
                continue
            corr = self.correlations[r]
            cols: dict[str, Any] = {
                "bin1": r.bin1, "bin2": r.bin2, "r_nom": corr.rnom, "meanr": corr.meanr,
                "meanlogr": corr.meanlogr,
            }  # fmt: skip
            n = self.config.nbins
            if statistic == "shear_shear":
                sp, sm = offsets[(r, "xip")], offsets[(r, "xim")]
                cols.update(xip=corr.xip, xim=corr.xim, xip_im=corr.xip_im, xim_im=corr.xim_im,
                            sigma_xip=sigma[sp : sp + n], sigma_xim=sigma[sm : sm + n])  # fmt: skip
            elif statistic == "galaxy_shear":
                s0 = offsets[(r, "gamma_t")]
                cols.update(gamma_t=corr.xi, gamma_x=corr.xi_im, sigma_gamma_t=sigma[s0 : s0 + n])
                rg = self.randoms_correlations.get(r, {}).get("rg")
                if rg is not None:
                    cols["gamma_t_randoms"] = rg.xi
            else:
                s0 = offsets[(r, "w_theta")]
                cols.update(w_theta=corr.xi, sigma_w_theta=sigma[s0 : s0 + n], DD=corr.weight)
                ran = self.randoms_correlations.get(r, {})
                for name in ("dr", "rd", "rr"):
                    c = ran.get(name)
                    if c is not None:
                        cols[name.upper()] = c.weight * (corr.tot / c.tot)
            cols.update(npairs=corr.npairs, weight=corr.weight)
            frames.append(pd.DataFrame(cols))
        return pd.concat(frames, ignore_index=True)

    @property
    def scalar_metrics(self) -> dict[str, float]:
        """The scalars validation thresholds are set on: per sample the rows used
        (``<sample>_rows_used``) and the shape noise the calibration used (``<sample>_e_rms``,
        for shear samples)."""
        out: dict[str, float] = {}
        for name, sample in self.samples.items():
            out[f"{name}_rows_used"] = float(sample.get("rows_used", math.nan))
        for name, cal in self.calibrations.items():
            e_rms = cal.to_dict().get("e_rms")
            if e_rms is not None:
                out[f"{name}_e_rms"] = float(e_rms)
        return out

    @property
    def metrics(self) -> dict[str, Any]:
        """JSON-ready record: parameters, measurements, calibrations, samples, reduction."""
        return _jsonable({
            "analysis": "two_point",
            "config": self.config.to_dict(),
            "measurements": [
                {"statistic": r.statistic, "bin1": r.bin1, "bin2": r.bin2} for r in self.requests
            ],
            "calibrations": {k: c.to_dict() for k, c in self.calibrations.items()},
            "samples": {k: dict(v) for k, v in self.samples.items()},
            "reduction": dict(self.reduction),
        })  # fmt: skip

    # -- figures and files ------------------------------------------------------------------
    def plot(self, theory: TheoryCurves | None = None) -> dict[str, Figure]:
        """Figures (never shown): ``theta * xi`` per statistic with jackknife errors (and the
        theory curves if given), and the correlation matrix of the covariance."""
        from skydask.analyses.twopoint.plots import correlation_figure, statistic_figure

        figures = {f"{s}": statistic_figure(self, s, theory) for s in self.statistics}
        figures["correlation_matrix"] = correlation_figure(self)
        return figures

    def to_sacc(self, nz: Mapping[str, tuple[Any, Any]] | None = None) -> sacc.Sacc:
        """The data vector and covariance in DESC's SACC format (TXPipe's conventions).

        ``nz`` maps bin names to ``(z, n(z))``, written as NZ tracers; bins without one get a
        ``Misc`` tracer.
        """
        from skydask.analyses.twopoint.sacc_io import to_sacc

        return to_sacc(self, nz)

    def write(
        self,
        directory: str | Path,
        theory: TheoryCurves | None = None,
        nz: Mapping[str, tuple[Any, Any]] | None = None,
    ) -> dict[str, Path]:
        """Write every file of the result; return them by name.

        Files: ``<statistic>_<bin1>_<bin2>.fits`` for each measurement, through TreeCorr's own
        ``write`` (random-point terms and covariance included; TreeCorr's ASCII format,
        ``.dat``, if ``fitsio`` is not installed), ``twopoint_data_real.sacc`` (SACC, FITS
        based), ``twopoint_data_vector.csv``, ``patch_centers.txt``, ``metrics.json`` and a PNG
        per figure of :meth:`plot`. Existing files of these names are replaced.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        try:
            import fitsio  # noqa: F401

            ext = "fits"
        except ImportError:
            ext = "dat"
            log.warning("fitsio is not installed: writing TreeCorr's ASCII files instead of FITS")
        for r in self.requests:
            path = out / f"{r.statistic}_{r.bin1}_{r.bin2}.{ext}"
            corr = self.correlations[r]
            extra = self.randoms_correlations.get(r, {})
            if r.statistic == "galaxy_shear":
                corr.write(str(path), rg=extra.get("rg"), write_cov=True)
            elif r.statistic == "galaxy_galaxy":
                corr.write(str(path), rr=extra.get("rr"), dr=extra.get("dr"), rd=extra.get("rd"),
                           write_cov=True)  # fmt: skip
            else:
                corr.write(str(path), write_cov=True)
            written[path.name] = path
        path = out / "twopoint_data_real.sacc"
        self.to_sacc(nz).save_fits(str(path), overwrite=True)
        written[path.name] = path
        path = out / "twopoint_data_vector.csv"
        self.data_vector().to_csv(path, index=False)
        written[path.name] = path
        path = out / "patch_centers.txt"
        np.savetxt(path, self.patch_centers, header="TreeCorr patch centres (unit vectors x y z)")
        written[path.name] = path
        path = out / "metrics.json"
        path.write_text(json.dumps(self.metrics, indent=2, allow_nan=False) + "\n")
        written[path.name] = path
        for name, fig in self.plot(theory).items():
            path = out / f"{name}.png"
            fig.savefig(path, dpi=110)
            written[path.name] = path
        log.info("two_point: wrote %d files to %s", len(written), out)
        return written


def _jsonable(value: Any) -> Any:
    """NaN becomes null, numpy scalars and arrays Python numbers and lists."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def arcmin_factor(sep_units: str) -> float:
    """Multiply a separation in ``sep_units`` by this to get arcmin."""
    try:
        return _UNITS_TO_ARCMIN[sep_units]
    except KeyError:
        raise SpecError(f"unknown sep_units {sep_units!r}; expected one of "
                        f"{sorted(_UNITS_TO_ARCMIN)}") from None  # fmt: skip
