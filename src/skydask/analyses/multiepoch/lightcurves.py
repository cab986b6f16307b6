"""Per-object light curves and variability statistics from a ForcedSource (or Source) table.

:func:`light_curves` groups the measurements by object without loading the table
(:func:`skydask.catalog.colocation.by_object`):

* a table partitioned by tract or patch (DP1's ForcedSource, skydask.synth's by default) is
  read one tract per task, and each task holds its objects whole: no row moves;
* a table in per-visit files (DC2) spreads every object over many files, so its rows are
  **shuffled by objectId** first (dask's p2p shuffle on a cluster, its task shuffle otherwise);

then computes, in the task that holds them, each (object, band)'s statistics
(:func:`.kernels.light_curve_stats`: epochs, mean and weighted-mean flux, chi^2 about the
weighted mean) and, for the objects asked for, their measurements. Only those leave the
workers: one row per object and band, plus the light curves requested.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np
import numpy.typing as npt
import pandas as pd
from dask.dataframe.utils import make_meta

from skydask.analyses.multiepoch.config import LightCurveConfig
from skydask.analyses.multiepoch.kernels import LIGHT_CURVE_STATS, light_curve_stats
from skydask.analyses.multiepoch.output import write_result
from skydask.analyses.reduction import compute
from skydask.catalog.catalog import Catalog
from skydask.catalog.colocation import by_object
from skydask.errors import SchemaError, SpecError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["LightCurveResult", "light_curves"]

log = logging.getLogger(__name__)

_CURVE_ORDER = ["objectId", "band", "mjd", "visit"]


def _keep(
    frame: pd.DataFrame, ids: npt.NDArray[np.int64] | None, bands: str | None
) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    if ids is not None:
        mask &= np.isin(frame["objectId"].to_numpy(), ids)
    if bands is not None:
        mask &= frame["band"].isin(list(bands)).to_numpy(dtype=bool)
    return frame if mask.all() else frame[mask]


def _partition_stats(
    frame: pd.DataFrame, ids: npt.NDArray[np.int64] | None, bands: str | None
) -> pd.DataFrame:
    return light_curve_stats(_keep(frame, ids, bands))


def _partition_curves(
    frame: pd.DataFrame, ids: npt.NDArray[np.int64] | None, bands: str | None, exclude: bool
) -> pd.DataFrame:
    rows = _keep(frame, ids, bands)
    if exclude and "psFlux_flag" in rows:
        rows = rows[~rows["psFlux_flag"].to_numpy(dtype=bool)]
    order = [c for c in _CURVE_ORDER if c in rows]
    return rows.sort_values(order, kind="stable")


def _as_array(values: pd.Series) -> npt.NDArray[Any]:
    return values.to_numpy()


@dataclass(frozen=True)
class LightCurveResult:
    """Variability statistics per (object, band), and light curves when asked for.

    Attributes
    ----------
    config : LightCurveConfig
        The parameters used.
    stats : pandas.DataFrame
        One row per (objectId, band), columns described in ``LightCurveResult.stats_columns``.
    curves : pandas.DataFrame or None
        The measurements of the objects asked for (``object_ids``), grouped: sorted by
        objectId, band and time, indexed by (objectId, band). None when not collected.
    reduction : mapping
        ``strategy`` (partition-wise or a shuffle by objectId), ``partitions``, counts.
    """

    config: LightCurveConfig
    stats: pd.DataFrame
    curves: pd.DataFrame | None = None
    reduction: Mapping[str, Any] = field(default_factory=dict)

    stats_columns = LIGHT_CURVE_STATS
    """What each statistic is."""

    def table(self) -> pd.DataFrame:
        """The statistics (one row per object and band)."""
        return self.stats

    def light_curve(self, object_id: int, band: str | None = None) -> pd.DataFrame:
        """The measurements of one object (optionally one band), in time order."""
        if self.curves is None:
            raise SpecError(
                "no light curves were collected: pass object_ids (or with_curves=True) to "
                "light_curves()"
            )
        try:
            rows = self.curves.loc[int(object_id)]
        except KeyError:
            raise SpecError(f"object {object_id} has no collected light curve") from None
        if band is not None:
            rows = rows[rows.index == band]
        return rows.reset_index()

    def nested(self) -> pd.DataFrame:
        """The light curves as a nested table: one row per (objectId, band) with arrays
        ``mjd`` (when known), ``psFlux``, ``psFluxErr``, ``visit``."""
        if self.curves is None:
            raise SpecError("no light curves were collected: pass object_ids to light_curves()")
        columns = [c for c in ("visit", "mjd", "psFlux", "psFluxErr") if c in self.curves]
        grouped = self.curves.groupby(level=["objectId", "band"], sort=True, observed=True)
        return pd.DataFrame({c: grouped[c].agg(_as_array) for c in columns})

    def variables(self, chi2_dof: float | None = None) -> pd.DataFrame:
        """Statistics of the (object, band)s whose reduced chi^2 exceeds ``chi2_dof``
        (default ``config.variable_chi2_dof``), most variable first."""
        limit = self.config.variable_chi2_dof if chi2_dof is None else chi2_dof
        out = self.stats[self.stats["chi2_dof"] > limit]
        return out.sort_values("chi2_dof", ascending=False, ignore_index=True)

    @property
    def metrics(self) -> dict[str, u.Quantity]:
        """Per band: objects, median epochs, median reduced chi^2, fraction above the
        variability threshold; flat names such as ``n_objects_r``."""
        one = u.dimensionless_unscaled
        out: dict[str, u.Quantity] = {}
        for band, s in self.stats.groupby("band", sort=True, observed=True):
            multi = s[s["n_epochs"] > 1]
            out[f"n_objects_{band}"] = len(s) * one
            out[f"median_epochs_{band}"] = float(s["n_epochs"].median()) * one
            chi = multi["chi2_dof"]
            out[f"median_chi2_dof_{band}"] = (
                float(chi.median()) * one if len(chi) else math.nan * one
            )
            frac = float((chi > self.config.variable_chi2_dof).mean()) if len(chi) else math.nan
            out[f"variable_fraction_{band}"] = frac * one
        return out

    def plot(self, object_ids: Sequence[int] | None = None, n: int = 6) -> dict[str, Figure]:
        """Figures (never shown): reduced chi^2 against magnitude, its distribution, and the
        light curves of ``object_ids`` (default: the ``n`` most variable collected ones)."""
        from matplotlib.figure import Figure

        figures: dict[str, Figure] = {}
        fig = Figure(figsize=(6.4, 4.4), layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        for band, s in self.stats.groupby("band", sort=True, observed=True):
            ax.scatter(s["mag_wmean"], s["chi2_dof"], s=2, alpha=0.3, label=str(band))
        ax.axhline(self.config.variable_chi2_dof, color="k", ls="--", lw=1, label="threshold")
        ax.set_yscale("log")
        ax.set_xlabel("magnitude of the weighted mean flux")
        ax.set_ylabel("chi² / (N - 1) about the weighted mean")
        ax.legend(fontsize=7, markerscale=4)
        figures["chi2_vs_mag"] = fig

        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        chi = self.stats["chi2_dof"].to_numpy()
        chi = chi[np.isfinite(chi) & (chi > 0)]
        if len(chi):
            ax.hist(np.log10(chi), bins=60, color="tab:blue", alpha=0.8)
        ax.set_xlabel("log10 chi² / (N - 1)")
        ax.set_ylabel("objects x bands")
        figures["chi2_histogram"] = fig

        if self.curves is not None and len(self.curves):
            if object_ids is None:
                collected = self.curves.index.get_level_values("objectId").unique()
                ranked = self.stats[self.stats["objectId"].isin(collected)]
                ranked = ranked.sort_values("chi2_dof", ascending=False)
                object_ids = list(dict.fromkeys(ranked["objectId"].tolist()))[:n]
            ncol = min(3, max(1, len(object_ids)))
            nrow = max(1, math.ceil(len(object_ids) / ncol))
            fig = Figure(figsize=(4.2 * ncol, 3.0 * nrow), layout="constrained")
            axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
            x = "mjd" if "mjd" in self.curves else "visit"
            for ax, oid in zip(axes, object_ids, strict=False):
                rows = self.light_curve(oid)
                for band, b_rows in rows.groupby("band", sort=True, observed=True):
                    ax.errorbar(b_rows[x], b_rows["psFlux"], b_rows["psFluxErr"], fmt="o", ms=2,
                                lw=0.6, label=str(band))  # fmt: skip
                ax.set_title(f"object {oid}", fontsize=8)
                ax.set_xlabel(x)
                ax.set_ylabel("psFlux [nJy]")
                ax.legend(fontsize=6)
            for ax in axes[len(object_ids) :]:
                ax.set_visible(False)
            figures["light_curves"] = fig
        return figures

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write ``light_curve_stats.parquet``, ``light_curves.parquet`` (if collected),
        ``light_curve_metrics.json`` and the figures (PNG); returns the files by name."""
        tables = {"light_curve_stats.parquet": self.stats}
        if self.curves is not None:
            tables["light_curves.parquet"] = self.curves.reset_index()
        return write_result(
            directory,
            analysis="light_curves",
            tables=tables,
            metrics_file="light_curve_metrics.json",
            metrics=self.metrics,
            config=self.config.to_dict(),
            reduction=self.reduction,
            figures=self.plot(),
        )


def _object_ids(object_ids: Sequence[int] | npt.ArrayLike | None) -> npt.NDArray[np.int64] | None:
    if object_ids is None:
        return None
    ids = np.unique(np.asarray(object_ids, dtype=np.int64).ravel())
    if len(ids) == 0:
        raise SpecError("parameter 'object_ids' is empty; pass None for every object")
    return ids


def light_curves(
    forced_sources: Catalog,
    object_ids: Sequence[int] | npt.ArrayLike | None = None,
    config: LightCurveConfig | None = None,
    *,
    with_curves: bool | None = None,
    progress: bool = False,
    **overrides: Any,
) -> LightCurveResult:
    """Per-object light curves and variability statistics, computed out of core.

    Parameters
    ----------
    forced_sources : Catalog
        A ForcedSource (or Source) table with ``objectId``, ``band``, ``psFlux``,
        ``psFluxErr``, and ideally ``mjd`` and ``visit``.
    object_ids : sequence of int, optional
        Only these objects; their light curves are collected. Their id range is also a cut
        on ``objectId`` that prunes row groups by footer statistics.
    config : LightCurveConfig, optional
        Parameters; keyword arguments (``where``, ``bands``, ``locality``...) override them.
    with_curves : bool, optional
        Collect the measurements too (default: when ``object_ids`` is given). Refused beyond
        ``config.max_curve_rows`` rows.
    progress : bool
        Show a progress bar.

    Returns
    -------
    LightCurveResult
        ``.stats`` (one row per object and band), ``.curves``, ``.light_curve(id)``,
        ``.nested()``, ``.variables()``, ``.metrics``, ``.plot()``, ``.write(dir)``.

    Examples
    --------
    >>> import pandas as pd, skydask
    >>> fs = skydask.from_pandas(pd.DataFrame({
    ...     "objectId": [1, 1, 1, 2, 2, 2], "visit": [1, 2, 3, 1, 2, 3], "filter": "r",
    ...     "mjd": [60001.0, 60002.0, 60003.0] * 2,
    ...     "psFlux": [100.0, 101.0, 99.0, 50.0, 80.0, 20.0], "psFluxErr": 1.0}), npartitions=2)
    >>> result = light_curves(fs, object_ids=[2])
    >>> result.stats[["objectId", "n_epochs", "flux_mean", "chi2_dof"]].to_numpy().tolist()
    [[2.0, 3.0, 50.0, 900.0]]
    >>> result.light_curve(2)["psFlux"].tolist()
    [50.0, 80.0, 20.0]
    """
    base = config if config is not None else LightCurveConfig()
    cfg = base.with_overrides(**overrides) if overrides else base
    ids = _object_ids(object_ids)
    collect = ids is not None if with_curves is None else bool(with_curves)
    required = ["objectId", "band", "psFlux", "psFluxErr"]
    missing = [q for q in required if q not in forced_sources.quantities]
    if missing:
        raise SchemaError(
            f"light_curves needs {missing} from {forced_sources.source_description} (flavour "
            f"{forced_sources.schema.flavour})"
        )
    optional = ["visit", "mjd"] + (["psFlux_flag"] if cfg.exclude_flagged else [])
    quantities = required + [q for q in optional if q in forced_sources.quantities]
    selected = forced_sources.select(quantities)
    if cfg.where is not None:
        selected = selected.where(cfg.where)
    if ids is not None:
        # the id range prunes files and row groups by their footer statistics; the exact
        # membership test runs in each task
        selected = selected.where(f"objectId >= {int(ids[0])} & objectId <= {int(ids[-1])}")
    if collect and ids is None and cfg.where is None and len(selected) > cfg.max_curve_rows:
        # len() of an uncut catalogue comes from the footers: refuse before reading anything
        raise SpecError(
            f"collecting the light curves of all {len(selected):,} measurements exceeds "
            f"max_curve_rows = {cfg.max_curve_rows:,}; pass object_ids or where"
        )
    grouped = by_object(selected, locality=cfg.locality)
    frame_meta = make_meta(grouped.frame)
    stats_frame = grouped.frame.map_partitions(
        _partition_stats, ids, cfg.bands,
        meta=_partition_stats(frame_meta, ids, cfg.bands), enforce_metadata=False,
    )  # fmt: skip
    wanted: list[Any] = [stats_frame]
    if collect:
        curves_frame = grouped.frame.map_partitions(
            _partition_curves, ids, cfg.bands, cfg.exclude_flagged,
            meta=_partition_curves(frame_meta, ids, cfg.bands, cfg.exclude_flagged),
            enforce_metadata=False,
        )  # fmt: skip
        wanted.append(curves_frame)
    computed = compute(*wanted, progress=progress)
    stats = computed[0].sort_values(["objectId", "band"], ignore_index=True)
    curves = None
    if collect:
        rows = computed[1]
        if len(rows) > cfg.max_curve_rows:
            raise SpecError(
                f"{len(rows):,} measurements exceed max_curve_rows = {cfg.max_curve_rows:,}; "
                "select objects with object_ids or where, or raise max_curve_rows"
            )
        order = [c for c in _CURVE_ORDER if c in rows]
        curves = rows.sort_values(order, kind="stable").set_index(["objectId", "band"])
    reduction = {
        "strategy": grouped.strategy,
        "shuffled": grouped.shuffled,
        "partitions": int(grouped.frame.npartitions),
        "objects": int(stats["objectId"].nunique()),
        "measurements": int(stats["n_epochs"].sum()),
    }
    log.info(
        "light_curves: %s over %d partitions, %d objects",
        grouped.strategy, reduction["partitions"], reduction["objects"],
    )  # fmt: skip
    return LightCurveResult(config=cfg, stats=stats, curves=curves, reduction=reduction)
