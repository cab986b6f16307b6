"""Photometric repeatability PA1 of single-visit measurements, as faro defines it.

:func:`photometric_repeatability` reads the measurements a star selection needs from a Source
(or ForcedSource) catalogue, groups them by object without collecting the table
(:func:`skydask.catalog.colocation.by_object`: partition-wise when the layout keeps objects
together, else a shuffle by objectId), reduces every (object, band) to a summary in the
partition that holds it (:func:`.selection.star_summaries`), and collects only those
summaries: one row per object and band. PA1, the median over stars of the rms of their
magnitudes about their mean, then comes from the stars' rows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np
import pandas as pd
from dask.dataframe.utils import make_meta

from skydask.analyses.multiepoch.config import PA1_REQUIREMENT_MMAG, PhotometricRepeatabilityConfig
from skydask.analyses.multiepoch.output import write_result
from skydask.analyses.multiepoch.selection import (
    plan_quantities,
    select_stars,
    star_summaries,
)
from skydask.analyses.reduction import compute
from skydask.catalog.catalog import Catalog
from skydask.catalog.colocation import by_object

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PhotometricRepeatabilityResult", "photometric_repeatability"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhotometricRepeatabilityResult:
    """PA1 per band, the stars it comes from, and how the reduction ran.

    Attributes
    ----------
    config : PhotometricRepeatabilityConfig
        The parameters used.
    pa1 : mapping of str to float
        PA1 per band, in mmag (NaN when fewer than ``config.min_stars`` stars qualify).
    stars : pandas.DataFrame
        The selected stars, one row per (objectId, band): ``n`` measurements, ``mag_mean``,
        ``rms_mmag``, ``snr_median`` and ``used`` (counted in PA1).
    reduction : mapping
        ``strategy`` (how objects were grouped), ``objects`` (object-band summaries),
        ``selection`` (which checks the catalogue allowed).
    """

    config: PhotometricRepeatabilityConfig
    pa1: Mapping[str, float]
    stars: pd.DataFrame
    reduction: Mapping[str, Any] = field(default_factory=dict)

    @property
    def bands(self) -> list[str]:
        return list(self.pa1)

    def table(self) -> pd.DataFrame:
        """One row per band: PA1, stars used, and the LSST requirements (mmag)."""
        rows = []
        for band in self.bands:
            used = self.stars[(self.stars["band"] == band) & self.stars["used"]]
            rows.append(
                {
                    "band": band,
                    "pa1_mmag": self.pa1[band],
                    "n_stars": len(used),
                    "median_mag": float(used["mag_mean"].median()) if len(used) else math.nan,
                    **{f"pa1_{k}_mmag": v for k, v in PA1_REQUIREMENT_MMAG.items()},
                    "meets_design": bool(self.pa1[band] <= PA1_REQUIREMENT_MMAG["design"]),
                }
            )
        return pd.DataFrame(rows)

    @property
    def metrics(self) -> dict[str, u.Quantity]:
        """``PA1_<b>`` (mmag) and ``PA1_nstars_<b>``, flat."""
        out: dict[str, u.Quantity] = {}
        for row in self.table().to_dict(orient="records"):
            b = row["band"]
            out[f"PA1_{b}"] = row["pa1_mmag"] * u.mmag
            out[f"PA1_nstars_{b}"] = row["n_stars"] * u.dimensionless_unscaled
        return out

    def plot(self) -> dict[str, Figure]:
        """Figures (never shown): rms against magnitude per band, and the rms distribution."""
        from matplotlib.figure import Figure

        figures: dict[str, Figure] = {}
        fig = Figure(figsize=(6.4, 4.6), layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        for band in self.bands:
            s = self.stars[(self.stars["band"] == band) & self.stars["used"]]
            points = ax.scatter(s["mag_mean"], s["rms_mmag"], s=6, alpha=0.6, label=band)
            if math.isfinite(self.pa1[band]):
                ax.axhline(self.pa1[band], lw=1, color=points.get_facecolor()[0],
                           label=f"PA1 {band} = {self.pa1[band]:.2f} mmag")  # fmt: skip
        ax.axhline(PA1_REQUIREMENT_MMAG["design"], color="k", ls="--", lw=1, label="LSST design")
        ax.set_yscale("log")
        ax.set_xlabel("mean PSF magnitude")
        ax.set_ylabel("rms about the mean [mmag]")
        ax.set_title("Photometric repeatability of bright stars")
        ax.legend(fontsize=7)
        figures["pa1_rms_vs_mag"] = fig

        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        for band in self.bands:
            s = self.stars[(self.stars["band"] == band) & self.stars["used"]]
            if len(s):
                ax.hist(s["rms_mmag"], bins=40, histtype="step", label=band)
        ax.axvline(PA1_REQUIREMENT_MMAG["design"], color="k", ls="--", lw=1, label="design")
        ax.set_xlabel("rms about the mean [mmag]")
        ax.set_ylabel("stars")
        ax.legend(fontsize=7)
        figures["pa1_rms_histogram"] = fig
        return figures

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write ``pa1_summary.csv``, ``pa1_stars.parquet``, ``pa1_metrics.json`` and the
        figures (PNG); returns the files by name."""
        return write_result(
            directory,
            analysis="photometric_repeatability",
            tables={"pa1_summary.csv": self.table(), "pa1_stars.parquet": self.stars},
            metrics_file="pa1_metrics.json",
            metrics=self.metrics,
            config=self.config.to_dict(),
            reduction=self.reduction,
            figures=self.plot(),
        )


def photometric_repeatability(
    sources: Catalog,
    config: PhotometricRepeatabilityConfig | None = None,
    *,
    progress: bool = False,
    **overrides: Any,
) -> PhotometricRepeatabilityResult:
    """Photometric repeatability PA1 (mmag) of bright unresolved stars, as Rubin's faro.

    Parameters
    ----------
    sources : Catalog
        Single-visit measurements (a Source or ForcedSource table) with ``objectId``,
        ``band``, ``visit`` and the PSF magnitude and S/N; ``extendedness``, pixel flags and
        ``detect_isPrimary`` are used when present.
    config : PhotometricRepeatabilityConfig, optional
        Parameters (faro's defaults); keyword arguments override single fields.
    progress : bool
        Show a progress bar.

    Returns
    -------
    PhotometricRepeatabilityResult
        ``.pa1`` (per band, mmag), ``.stars``, ``.table()``, ``.metrics``,
        ``.plot()``, ``.write(dir)``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, skydask
    >>> rng = np.random.default_rng(0)
    >>> n_stars, n_visits = 60, 5
    >>> offsets = rng.normal(0.0, 0.004, n_visits)          # 4 mmag per-visit zeropoints
    >>> rows = pd.DataFrame({
    ...     "objectId": np.repeat(np.arange(n_stars), n_visits),
    ...     "visit": np.tile(np.arange(n_visits), n_stars), "filter": "r",
    ...     "psFlux": 10 ** (-0.4 * (18.0 + np.tile(offsets, n_stars) - 31.4)),
    ...     "psFluxErr": 10 ** (-0.4 * (18.0 - 31.4)) / 1000.0})  # S/N 1000
    >>> result = photometric_repeatability(skydask.from_pandas(rows))
    >>> expected = 1000 * offsets.std()                      # every star sees the same visits
    >>> bool(abs(result.pa1["r"] - expected) < 1e-6)
    True
    """
    base = config if config is not None else PhotometricRepeatabilityConfig()
    cfg = base.with_overrides(**overrides) if overrides else base
    plan = plan_quantities(sources, cfg)
    selected = sources.select(list(plan.quantities))
    if cfg.where is not None:
        selected = selected.where(cfg.where)
    grouped = by_object(selected, locality=cfg.locality)
    meta = star_summaries(make_meta(grouped.frame))
    summaries_frame = grouped.frame.map_partitions(
        star_summaries, meta=meta, enforce_metadata=False
    )
    (summaries,) = compute(summaries_frame, progress=progress)
    summaries = summaries.reset_index(drop=True)
    is_star = select_stars(summaries, cfg)
    stars = summaries[is_star].copy()
    stars["rms_mmag"] = stars["mag_rms"] * 1000.0
    stars["used"] = stars["n"] >= cfg.pa1_min_measurements
    bands = list(cfg.bands) if cfg.bands else sorted(summaries["band"].dropna().unique())
    pa1: dict[str, float] = {}
    for band in bands:
        used = stars[(stars["band"] == band) & stars["used"]]
        enough = len(used) >= cfg.min_stars
        pa1[band] = float(np.median(used["rms_mmag"])) if enough else math.nan
        if not enough:
            log.warning(
                "PA1 in %s: %d stars with >= %d measurements, fewer than min_stars = %d",
                band, len(used), cfg.pa1_min_measurements, cfg.min_stars,
            )  # fmt: skip
    columns = ["objectId", "band", "n", "mag_mean", "rms_mmag", "snr_median", "used"]
    reduction = {
        "strategy": grouped.strategy,
        "partitions": int(grouped.frame.npartitions),
        "objects": len(summaries),
        "selection": plan.describe(),
    }
    log.info("photometric_repeatability: %s; PA1 %s mmag", grouped.strategy, pa1)
    return PhotometricRepeatabilityResult(
        config=cfg,
        pa1=pa1,
        stars=stars[columns].reset_index(drop=True),
        reduction=reduction,
    )
