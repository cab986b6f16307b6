"""The result of the stellar-locus analysis: numbers, tables, verdicts, figures, files."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np
import numpy.typing as npt
import pandas as pd
from astropy.table import Table

from skydask.analyses.locus.config import (
    ColourPlane,
    LocusFit,
    PrincipalColour,
    StellarLocusConfig,
)
from skydask.analyses.locus.fitting import Line, Region
from skydask.data import covey_locus

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "Density",
    "FitStep",
    "LocusFitResult",
    "PrincipalColourResult",
    "StellarLocusResult",
    "Verdict",
    "metric_names",
]

METRICS_FILE = "stellar_locus_metrics.json"


@dataclass(frozen=True)
class FitStep:
    """One step of a fit: the points it used and the line it found.

    The first step (``clip_sigma`` None) fits the box; each later one keeps the points between
    the perpendiculars through the ends of the previous line (``n_strip``), whose perpendicular
    distances have quartiles ``q25``, ``q75`` (mmag), clips them at
    ``clip_sigma * 0.74 * IQR = clip_mmag`` and refits ``n_used`` points.
    """

    clip_sigma: float | None
    n_strip: int | None
    q25_mmag: float | None
    q75_mmag: float | None
    clip_mmag: float | None
    n_used: int
    slope: float
    intercept: float


@dataclass(frozen=True)
class LocusFitResult:
    """A fitted principal colour: the final line and the perpendicular distances to it."""

    fit: LocusFit
    slope: float
    intercept: float
    n_stars: int
    median_mmag: float
    sigma_mad_mmag: float
    steps: tuple[FitStep, ...]
    region: Region

    @property
    def line(self) -> Line:
        return Line(self.slope, self.intercept)

    def summary(self) -> str:
        return (
            f"{self.fit.name}: sigmaMAD {self.sigma_mad_mmag:.1f} mmag, median "
            f"{self.median_mmag:+.1f} mmag, {self.n_stars:,} stars"
        )


@dataclass(frozen=True)
class PrincipalColourResult:
    """An SDSS principal colour with fixed coefficients: median and sigmaMAD (mmag)."""

    colour: PrincipalColour
    n_stars: int
    median_mmag: float
    sigma_mad_mmag: float


@dataclass(frozen=True)
class Density:
    """Star counts on a grid of one colour-colour plane (``counts[ix, iy]``)."""

    plane: ColourPlane
    x_edges: npt.NDArray[np.float64]
    y_edges: npt.NDArray[np.float64]
    counts: npt.NDArray[np.int64]


@dataclass(frozen=True)
class Verdict:
    """One metric against its threshold ``low <= value <= high``."""

    metric: str
    value: float
    unit: str
    low: float
    high: float
    passed: bool

    def __str__(self) -> str:
        word = "pass" if self.passed else "FAIL"
        return (
            f"{self.metric} = {self.value:.2f} {self.unit} "
            f"(normal range {self.low:g}..{self.high:g}): {word}"
        )


def metric_names(config: StellarLocusConfig | None = None) -> frozenset[str]:
    """Names of :attr:`StellarLocusResult.metrics` for a configuration (default: Rubin's).

    >>> sorted(metric_names())[:3]
    ['locus_g-r_frac_within_spread', 'locus_g-r_median_offset', 'locus_g-r_nbins']
    """
    config = config or StellarLocusConfig()
    names: set[str] = set()
    for fit in config.fits:
        names |= {f"{fit.name}_{m}" for m in ("sigmaMAD", "median", "nstars", "slope", "intercept")}
    for pc in config.principal_colours:
        names |= {f"sdss_{pc.name}_{m}" for m in ("sigmaMAD", "median", "nstars")}
    for c in config.locus_colours:
        names |= {f"locus_{c}_{m}" for m in ("nbins", "frac_within_spread", "median_offset")}
    return frozenset(names)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class StellarLocusResult:
    """What :func:`~skydask.analyses.stellar_locus.stellar_locus` measured.

    Attributes
    ----------
    config
        The parameters used.
    fits
        Fitted principal colours by name (``"w"``, ``"x"``, ``"y"``).
    principal_colours
        SDSS principal colours with fixed coefficients by name (``"s"``, ``"w"``, ...).
    locus
        The median locus of the data in Covey's g-i bins, with Covey's values beside it
        (see :meth:`locus_table`).
    density
        Star counts per colour-colour plane, for the plots.
    counts
        Stars passing each cut (``plan["selections"]`` gives the cuts).
    plan
        The pushdown where-string, the per-piece cuts, the extinction correction used.
    """

    config: StellarLocusConfig
    fits: dict[str, LocusFitResult]
    principal_colours: dict[str, PrincipalColourResult]
    locus: pd.DataFrame
    density: dict[str, Density]
    counts: dict[str, int]
    plan: dict[str, Any] = field(default_factory=dict)

    # -- numbers ----------------------------------------------------------------------------
    @property
    def metrics(self) -> dict[str, u.Quantity]:
        """Every scalar result, by name, as an astropy Quantity (counts are dimensionless)."""
        one = u.dimensionless_unscaled
        out: dict[str, u.Quantity] = {}
        for name, fit in self.fits.items():
            out[f"{name}_sigmaMAD"] = fit.sigma_mad_mmag * u.mmag
            out[f"{name}_median"] = fit.median_mmag * u.mmag
            out[f"{name}_nstars"] = fit.n_stars * one
            out[f"{name}_slope"] = fit.slope * one
            out[f"{name}_intercept"] = fit.intercept * u.mag
        for name, pc in self.principal_colours.items():
            out[f"sdss_{name}_sigmaMAD"] = pc.sigma_mad_mmag * u.mmag
            out[f"sdss_{name}_median"] = pc.median_mmag * u.mmag
            out[f"sdss_{name}_nstars"] = pc.n_stars * one
        for c in self.config.locus_colours:
            compared = self._compared_bins(c)
            delta = compared[f"delta_{c}"].to_numpy()
            spread = compared[f"covey_e_{c}"].to_numpy()
            out[f"locus_{c}_nbins"] = len(compared) * one
            frac = float(np.mean(np.abs(delta) <= spread)) if len(compared) else math.nan
            out[f"locus_{c}_frac_within_spread"] = frac * one
            offset = float(np.median(delta)) * 1e3 if len(compared) else math.nan
            out[f"locus_{c}_median_offset"] = offset * u.mmag
        return out

    @property
    def scalar_metrics(self) -> dict[str, u.Quantity]:
        """The same as :attr:`metrics` (already flat scalars; the protocol every result
        follows for validation runs)."""
        return self.metrics

    def _compared_bins(self, colour: str) -> pd.DataFrame:
        t = self.locus
        return t[t[f"n_{colour}"] >= self.config.locus_min_stars]

    def verdicts(
        self, thresholds: dict[str, tuple[float, float]] | None = None
    ) -> dict[str, Verdict]:
        """Pass/fail of each measured metric that has a threshold (default: the config's).

        A metric that is NaN fails; a threshold whose metric was not measured (a fit not run)
        is left out.
        """
        limits = self.config.thresholds if thresholds is None else thresholds
        metrics = self.metrics
        out = {}
        for name, (low, high) in limits.items():
            if name not in metrics:
                continue
            q = metrics[name]
            value = float(q.value)
            passed = math.isfinite(value) and low <= value <= high
            out[name] = Verdict(name, value, q.unit.to_string(), low, high, passed)
        return out

    @property
    def passed(self) -> bool:
        """Whether every verdict passed."""
        return all(v.passed for v in self.verdicts().values())

    # -- tables -----------------------------------------------------------------------------
    def table(self) -> Table:
        """The metrics as an astropy Table: ``metric``, ``value``, ``unit``."""
        rows = [(k, float(q.value), q.unit.to_string()) for k, q in self.metrics.items()]
        return Table(rows=rows or None, names=("metric", "value", "unit"), dtype=(str, float, str))

    def fit_table(self) -> pd.DataFrame:
        """One row per fitted principal colour: line, stars, median and sigmaMAD, box."""
        rows = []
        for name, f in self.fits.items():
            rows.append(
                {
                    "fit": name,
                    "x": f.fit.x,
                    "y": f.fit.y,
                    "slope": f.slope,
                    "intercept": f.intercept,
                    "n_stars": f.n_stars,
                    "median_mmag": f.median_mmag,
                    "sigmaMAD_mmag": f.sigma_mad_mmag,
                    "x_min": f.fit.x_min,
                    "x_max": f.fit.x_max,
                    "y_min": f.fit.y_min,
                    "y_max": f.fit.y_max,
                }
            )
        return pd.DataFrame(rows)

    def locus_table(self) -> pd.DataFrame:
        """The data's median locus beside Covey's, one row per Covey g-i bin.

        Columns: ``g-i`` (Covey's bin centre), ``gi_min``, ``gi_max`` (the bin), ``covey_N``, and
        per colour ``c``: ``n_c`` (stars), ``c`` (median, mag), ``covey_c``, ``covey_e_c``
        (Covey's median and 1-sigma spread) and ``delta_c`` (data - Covey).
        """
        return self.locus.copy()

    # -- files ------------------------------------------------------------------------------
    def metrics_record(self) -> dict[str, Any]:
        """The JSON record :meth:`write` saves (NaN written as null)."""
        return {
            "analysis": "stellar_locus",
            "metrics": {
                k: {"value": _finite_or_none(float(q.value)), "unit": q.unit.to_string()}
                for k, q in self.metrics.items()
            },
            "verdicts": {
                k: {
                    "value": _finite_or_none(v.value),
                    "unit": v.unit,
                    "low": v.low,
                    "high": v.high,
                    "passed": v.passed,
                }
                for k, v in self.verdicts().items()
            },
            "fits": {
                name: {
                    "steps": [
                        {
                            k: _finite_or_none(v) if isinstance(v, float) else v
                            for k, v in step.__dict__.items()
                        }
                        for step in f.steps
                    ]
                }
                for name, f in self.fits.items()
            },
            "counts": self.counts,
            "selection": self.plan,
            "config": self.config.to_dict(),
        }

    @staticmethod
    def read_metrics(path: str | Path) -> dict[str, u.Quantity]:
        """The metrics from a file written by :meth:`write` (a directory or the JSON file)."""
        p = Path(path)
        if p.is_dir():
            p = p / METRICS_FILE
        record = json.loads(p.read_text())
        return {
            k: (math.nan if m["value"] is None else m["value"]) * u.Unit(m["unit"])
            for k, m in record["metrics"].items()
        }

    def write(self, directory: str | Path) -> list[Path]:
        """Write the tables (CSV and FITS), the figures (PNG) and the metrics JSON.

        Returns the paths written. FITS column names have ``-`` replaced by ``_``.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        tables = {
            "stellar_locus_metrics": self.table(),
            "stellar_locus_fits": Table.from_pandas(self.fit_table()),
            "median_locus": Table.from_pandas(self.locus_table()),
        }
        for stem, table in tables.items():
            table.write(out / f"{stem}.csv", format="ascii.csv", overwrite=True)
            fits_table = table.copy(copy_data=False)
            for name in fits_table.colnames:
                if "-" in name:
                    fits_table.rename_column(name, name.replace("-", "_"))
            fits_table.write(out / f"{stem}.fits", overwrite=True)
            written += [out / f"{stem}.csv", out / f"{stem}.fits"]
        for key, fig in self.plot().items():
            path = out / f"{key}.png"
            fig.savefig(path, dpi=110, bbox_inches="tight")
            written.append(path)
        path = out / METRICS_FILE
        path.write_text(json.dumps(self.metrics_record(), indent=2, default=_json_default))
        written.append(path)
        return written

    # -- figures ----------------------------------------------------------------------------
    def plot(self) -> dict[str, Figure]:
        """The figures, by name: one colour-colour density per plane and the median locus.

        Colour-colour figures show the star density (from the histograms accumulated over the
        partitions), Covey et al.'s median locus, and each fit of the plane (its final line
        between the perpendiculars through the box ends, and its box). Figures are returned,
        never shown.
        """
        figures: dict[str, Figure] = {}
        for key, density in self.density.items():
            figures[f"colour_colour_{key}"] = self._plot_plane(density)
        if self.config.locus_colours:
            figures["median_locus"] = self._plot_locus()
        return figures

    def _plot_plane(self, density: Density) -> Figure:
        from matplotlib.colors import LogNorm
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle

        plane = density.plane
        fig = Figure(figsize=(6.4, 5.8))
        ax = fig.add_subplot()
        counts = np.ma.masked_equal(density.counts.T, 0)
        if counts.count():
            mesh = ax.pcolormesh(
                density.x_edges,
                density.y_edges,
                counts,
                norm=LogNorm(vmin=1),
                cmap="viridis",
                rasterized=True,
            )
            step = density.x_edges[1] - density.x_edges[0]
            fig.colorbar(mesh, ax=ax, label=f"stars per {step:g} x {step:g} mag cell")
        covey = covey_locus()
        ax.plot(
            covey[plane.x],
            covey[plane.y],
            color="tab:red",
            lw=1.3,
            label="Covey et al. 2007 median locus",
        )
        lines = []
        for name, f in self.fits.items():
            if (f.fit.x, f.fit.y) != (plane.x, plane.y):
                continue
            (x1, y1), (x2, y2) = f.line.ends(f.fit)
            ax.plot([x1, x2], [y1, y2], color="black", lw=2.0)
            ax.annotate(name, (x2, y2), xytext=(4, 4), textcoords="offset points")
            ax.add_patch(
                Rectangle(
                    (f.fit.x_min, f.fit.y_min),
                    f.fit.x_max - f.fit.x_min,
                    f.fit.y_max - f.fit.y_min,
                    fill=False,
                    ls="--",
                    color="0.3",
                    lw=0.8,
                )
            )
            lines.append(f.summary())
        if lines:
            ax.plot([], [], color="black", lw=2.0, label="fitted lines (fit boxes dashed)")
        ax.set_xlabel(f"{plane.x} [mag]")
        ax.set_ylabel(f"{plane.y} [mag]")
        ax.set_xlim(density.x_edges[0], density.x_edges[-1])
        ax.set_ylim(density.y_edges[0], density.y_edges[-1])
        ax.legend(loc="upper left", fontsize=8)
        n = int(density.counts.sum())
        title = f"{plane.y} vs {plane.x}: {n:,} stars (S/N cut in {plane.snr_band})"
        ax.set_title("\n".join([title, *lines]), fontsize=9)
        # the SDSS principal colours measured from this plane's bands, in a corner
        notes = [
            f"SDSS {name} (fixed coeff.): median {pc.median_mmag:+.1f}, sigmaMAD "
            f"{pc.sigma_mad_mmag:.1f} mmag, {pc.n_stars:,} stars"
            for name, pc in self.principal_colours.items()
            if set(pc.colour.bands) <= set(plane.bands) and pc.colour.snr_band == plane.snr_band
        ]
        if notes:
            ax.text(
                0.98,
                0.02,
                "\n".join(notes),
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=7,
                bbox={"facecolor": "white", "alpha": 0.8},
            )
        return fig

    def _plot_locus(self) -> Figure:
        from matplotlib.figure import Figure

        colours = self.config.locus_colours
        ncol = 2 if len(colours) > 1 else 1
        nrow = math.ceil(len(colours) / ncol)
        fig = Figure(figsize=(5.0 * ncol, 3.6 * nrow), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
        t = self.locus
        metrics = self.metrics
        for ax, c in zip(axes, colours, strict=False):
            ax.fill_between(
                t["g-i"],
                t[f"covey_{c}"] - t[f"covey_e_{c}"],
                t[f"covey_{c}"] + t[f"covey_e_{c}"],
                color="tab:red",
                alpha=0.2,
                label="Covey et al. 2007 ±1σ spread",
            )
            ax.plot(t["g-i"], t[f"covey_{c}"], color="tab:red", lw=1.2, label="Covey median")
            good = t[f"n_{c}"] >= self.config.locus_min_stars
            ax.plot(
                t["g-i"][good],
                t[c][good],
                "o",
                ms=3,
                color="black",
                label=f"data median (≥{self.config.locus_min_stars} stars)",
            )
            few = (t[f"n_{c}"] > 0) & ~good
            if few.any():
                ax.plot(
                    t["g-i"][few],
                    t[c][few],
                    "o",
                    ms=3,
                    mfc="none",
                    color="0.5",
                    label="data median (fewer stars)",
                )
            frac = float(metrics[f"locus_{c}_frac_within_spread"].value)
            nbins = int(metrics[f"locus_{c}_nbins"].value)
            ax.set_title(f"{c}: {frac:.0%} of {nbins} bins within Covey's spread", fontsize=9)
            ax.set_xlabel("g - i [mag]")
            ax.set_ylabel(f"median {c} [mag]")
            ax.legend(fontsize=7)
        for ax in axes[len(colours) :]:
            ax.set_visible(False)
        fig.suptitle("Median stellar locus against Covey et al. (2007)")
        return fig


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return _finite_or_none(float(value))
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
