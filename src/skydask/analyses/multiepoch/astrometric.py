"""Astrometric repeatability AM1: the rms over visits of the separation of star pairs.

:func:`astrometric_repeatability` follows faro's ``AMxTask``: stars (faro's selection, median
magnitude in [17, 21.5), median S/N >= 50) whose mean positions are 4-6 arcmin apart form
pairs; per pair, the sample rms over their common visits of their separation; AM1 is the
median over pairs, in mas. It runs as one dask graph:

1. group the measurements by object (partition-wise when the layout keeps objects together,
   else a shuffle by objectId: :func:`skydask.catalog.colocation.by_object`);
2. in each partition, summarise the objects, keep the stars, and emit their measurements with
   their mean position;
3. copy each star's measurements to its sky cell and the cells within 6 arcmin
   (:func:`.pairs.assign_cells`), then **shuffle by cell** (rows of one cell meet in one task);
4. in each cell, form the pairs whose smaller-objectId star lives there and compute their rms
   (:func:`.pairs.pair_rms`).

Only the per-pair rms values (one row per pair) and the star summaries are collected.
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

from skydask.analyses.multiepoch.config import AM1_REQUIREMENT_MAS, AstrometricRepeatabilityConfig
from skydask.analyses.multiepoch.output import write_result
from skydask.analyses.multiepoch.pairs import PAIR_COLUMNS, assign_cells, pair_rms
from skydask.analyses.multiepoch.selection import plan_quantities, select_stars, star_summaries
from skydask.analyses.reduction import compute
from skydask.catalog.catalog import Catalog
from skydask.catalog.colocation import by_object, shuffle_method

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["AstrometricRepeatabilityResult", "astrometric_repeatability"]

log = logging.getLogger(__name__)

_STAR_COLUMNS = ["objectId", "band", "n", "mag_median", "snr_median", "ra", "dec"]


def _stars(frame: pd.DataFrame, config: AstrometricRepeatabilityConfig) -> pd.DataFrame:
    summaries = star_summaries(frame)
    return summaries[select_stars(summaries, config, magnitude="mag_median")][_STAR_COLUMNS]


def _star_rows(frame: pd.DataFrame, config: AstrometricRepeatabilityConfig) -> pd.DataFrame:
    """The measurements of the partition's stars, with the star's mean position and mag."""
    stars = _stars(frame, config).rename(columns={"ra": "ra_mean", "dec": "dec_mean"})
    rows = frame[["objectId", "band", "visit", "ra", "dec"]]
    return rows.merge(stars[["objectId", "band", "ra_mean", "dec_mean", "mag_median"]],
                      on=["objectId", "band"], how="inner")  # fmt: skip


@dataclass(frozen=True)
class AstrometricRepeatabilityResult:
    """AM1 per band, the pairs and stars it comes from, and how the reduction ran.

    Attributes
    ----------
    config : AstrometricRepeatabilityConfig
        The parameters used.
    am1 : mapping of str to float
        AM1 per band, in mas (NaN without pairs or with fewer than ``min_stars`` stars).
    pairs : pandas.DataFrame
        One row per pair (columns in ``PAIR_COLUMNS``).
    stars : pandas.DataFrame
        The selected stars: ``objectId``, ``band``, ``n``, ``mag_median``, ``snr_median``,
        mean ``ra``/``dec``.
    reduction : mapping
        ``strategy`` (object grouping), ``pair_cells`` (the shuffle by sky cell), counts.
    """

    config: AstrometricRepeatabilityConfig
    am1: Mapping[str, float]
    pairs: pd.DataFrame
    stars: pd.DataFrame
    reduction: Mapping[str, Any] = field(default_factory=dict)

    @property
    def bands(self) -> list[str]:
        return list(self.am1)

    def table(self) -> pd.DataFrame:
        """One row per band: AM1, pairs, stars, and the LSST requirements (mas)."""
        rows = []
        for band in self.bands:
            pairs = self.pairs[self.pairs["band"] == band]
            rows.append(
                {
                    "band": band,
                    "am1_mas": self.am1[band],
                    "n_pairs": len(pairs),
                    "n_stars": int((self.stars["band"] == band).sum()),
                    "median_separation_arcmin": (
                        float(pairs["separation_arcmin"].median()) if len(pairs) else math.nan
                    ),
                    **{f"am1_{k}_mas": v for k, v in AM1_REQUIREMENT_MAS.items()},
                    "meets_design": bool(self.am1[band] <= AM1_REQUIREMENT_MAS["design"]),
                }
            )
        return pd.DataFrame(rows)

    @property
    def metrics(self) -> dict[str, u.Quantity]:
        """``AM1_<b>`` (mas), ``AM1_npairs_<b>``, ``AM1_nstars_<b>``, flat."""
        out: dict[str, u.Quantity] = {}
        for row in self.table().to_dict(orient="records"):
            b = row["band"]
            out[f"AM1_{b}"] = row["am1_mas"] * u.mas
            out[f"AM1_npairs_{b}"] = row["n_pairs"] * u.dimensionless_unscaled
            out[f"AM1_nstars_{b}"] = row["n_stars"] * u.dimensionless_unscaled
        return out

    def plot(self) -> dict[str, Figure]:
        """Figures (never shown): the distribution of the pairs' rms (faro's histogram), the
        distribution of the pair separations, and the pair rms against magnitude."""
        from matplotlib.figure import Figure

        cfg = self.config
        figures: dict[str, Figure] = {}
        bins = np.linspace(0.0, cfg.histogram_max_mas, cfg.histogram_bins + 1).tolist()
        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        for band in self.bands:
            pairs = self.pairs[self.pairs["band"] == band]
            ax.hist(np.clip(pairs["rms_mas"], 0, cfg.histogram_max_mas), bins=bins,
                    histtype="step", label=f"{band}: AM1 = {self.am1[band]:.2f} mas")  # fmt: skip
        ax.axvline(AM1_REQUIREMENT_MAS["design"], color="k", ls="--", lw=1, label="LSST design")
        ax.set_xlabel(f"rms of the separation over visits [mas] (pairs {cfg.annulus_arcmin:g}' "
                      f"± {cfg.width_arcmin / 2:g}')")  # fmt: skip
        ax.set_ylabel("pairs")
        ax.legend(fontsize=7)
        figures["am1_pair_rms_histogram"] = fig

        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        for band in self.bands:
            pairs = self.pairs[self.pairs["band"] == band]
            ax.hist(pairs["separation_arcmin"], bins=40, histtype="step", label=band)
        ax.set_xlabel("separation of the pair's mean positions [arcmin]")
        ax.set_ylabel("pairs")
        ax.legend(fontsize=7)
        figures["am1_pair_separations"] = fig

        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        for band in self.bands:
            pairs = self.pairs[self.pairs["band"] == band]
            mag = 0.5 * (pairs["mag_1"] + pairs["mag_2"])
            ax.scatter(mag, pairs["rms_mas"], s=3, alpha=0.4, label=band)
        ax.axhline(AM1_REQUIREMENT_MAS["design"], color="k", ls="--", lw=1, label="LSST design")
        ax.set_yscale("log")
        ax.set_xlabel("mean of the pair's median magnitudes")
        ax.set_ylabel("rms of the separation [mas]")
        ax.legend(fontsize=7)
        figures["am1_rms_vs_mag"] = fig
        return figures

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write ``am1_summary.csv``, ``am1_pairs.parquet``, ``am1_metrics.json`` and the
        figures (PNG); returns the files by name."""
        return write_result(
            directory,
            analysis="astrometric_repeatability",
            tables={"am1_summary.csv": self.table(), "am1_pairs.parquet": self.pairs},
            metrics_file="am1_metrics.json",
            metrics=self.metrics,
            config=self.config.to_dict(),
            reduction=self.reduction,
            figures=self.plot(),
        )


def astrometric_repeatability(
    sources: Catalog,
    config: AstrometricRepeatabilityConfig | None = None,
    *,
    progress: bool = False,
    **overrides: Any,
) -> AstrometricRepeatabilityResult:
    """Astrometric repeatability AM1 (mas) of star pairs about 5 arcmin apart, as faro.

    Parameters
    ----------
    sources : Catalog
        Single-visit detections (a Source table: measured positions) with ``objectId``,
        ``band``, ``visit``, ``ra``, ``dec``, PSF magnitude and S/N; ``extendedness``, pixel
        flags and ``detect_isPrimary`` are used when present.
    config : AstrometricRepeatabilityConfig, optional
        Parameters (faro's defaults); keyword arguments override single fields.
    progress : bool
        Show a progress bar.

    Returns
    -------
    AstrometricRepeatabilityResult
        ``.am1`` (per band, mas), ``.pairs``, ``.stars``, ``.table()``, ``.metrics``,
        ``.plot()``, ``.write(dir)``.

    Examples
    --------
    Two stars 5 arcmin apart, each measured in 4 visits with known offsets in Dec:

    >>> import numpy as np, pandas as pd, skydask
    >>> dy = np.array([[0.0, 3.0, -3.0, 6.0], [1.0, 0.0, 2.0, -1.0]]) / 3.6e6   # deg
    >>> rows = pd.DataFrame({"objectId": np.repeat([1, 2], 4), "visit": np.tile(range(4), 2),
    ...     "filter": "r", "ra": 30.0, "dec": np.repeat([0.0, 5 / 60], 4) + dy.ravel(),
    ...     "psFlux": 10 ** (-0.4 * (19.0 - 31.4)), "psFluxErr": 10 ** (-0.4 * (19.0 - 31.4)) / 100,
    ...     "sourceId": range(8)})
    >>> result = astrometric_repeatability(skydask.from_pandas(rows))
    >>> expected = np.std((dy[1] - dy[0]) * 3.6e6, ddof=1)           # mas
    >>> bool(abs(result.am1["r"] - expected) < 1e-6)
    True
    """
    base = config if config is not None else AstrometricRepeatabilityConfig()
    cfg = base.with_overrides(**overrides) if overrides else base
    plan = plan_quantities(sources, cfg, positions=True)
    selected = sources.select(list(plan.quantities))
    if cfg.where is not None:
        selected = selected.where(cfg.where)
    grouped = by_object(selected, locality=cfg.locality)
    frame_meta = make_meta(grouped.frame)
    star_frame = grouped.frame.map_partitions(
        _stars, cfg, meta=_stars(frame_meta, cfg), enforce_metadata=False
    )
    rows = grouped.frame.map_partitions(
        _star_rows, cfg, meta=_star_rows(frame_meta, cfg), enforce_metadata=False
    )
    inner, outer = cfg.annulus_deg
    cells = rows.map_partitions(
        assign_cells, cfg.pair_nside, outer,
        meta=assign_cells(make_meta(rows), cfg.pair_nside, outer), enforce_metadata=False,
    )  # fmt: skip
    cell_strategy = "one partition"
    if cells.npartitions > 1:
        method = shuffle_method()
        cell_strategy = f"shuffle by sky cell ({method}), nside {cfg.pair_nside}"
        # SHUFFLE: each star's measurements (with margin copies) meet in their cell's task
        cells = cells.shuffle(on="cell", shuffle_method=method)
    empty = pair_rms(make_meta(cells), inner, outer)
    pairs_frame = cells.map_partitions(pair_rms, inner, outer, meta=empty, enforce_metadata=False)
    pairs, stars = compute(pairs_frame, star_frame, progress=progress)
    pairs = pairs.sort_values(["band", "objectId_1", "objectId_2"], ignore_index=True)
    stars = stars.sort_values(["band", "objectId"], ignore_index=True)
    bands = list(cfg.bands) if cfg.bands else sorted(stars["band"].dropna().unique())
    am1: dict[str, float] = {}
    for band in bands:
        rms = pairs.loc[pairs["band"] == band, "rms_mas"].to_numpy()
        n_stars = int((stars["band"] == band).sum())
        am1[band] = float(np.median(rms)) if len(rms) and n_stars >= cfg.min_stars else math.nan
    reduction = {
        "strategy": grouped.strategy,
        "pair_cells": cell_strategy,
        "partitions": int(grouped.frame.npartitions),
        "pairs": len(pairs),
        "stars": len(stars),
        "selection": plan.describe(),
    }
    log.info("astrometric_repeatability: %s, %s; AM1 %s mas", grouped.strategy, cell_strategy, am1)
    return AstrometricRepeatabilityResult(
        config=cfg, am1=am1, pairs=pairs[list(PAIR_COLUMNS)], stars=stars, reduction=reduction
    )
