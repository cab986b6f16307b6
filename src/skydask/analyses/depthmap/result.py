"""The result of :func:`depth_map`: maps, a summary table, metrics, figures and files."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hpgeom
import numpy as np
import pandas as pd
from astropy import units as u

from skydask.analyses.depthmap.config import DepthMapConfig
from skydask.analyses.depthmap.pixels import Q_HI, Q_LO

if TYPE_CHECKING:
    from healsparse import HealSparseMap
    from matplotlib.figure import Figure

__all__ = ["DepthMapResult", "metric_names"]

log = logging.getLogger(__name__)

_TABLE_COLUMNS = {
    "band": "band",
    "n_pixels": "pixels in the map (with at least min_objects objects)",
    "area_deg2": "area of those pixels",
    "n_objects": "objects used, summed over the pixels",
    "objects_per_pixel": "median number of objects used per pixel",
    "depth_median": "median over pixels of the pixel depth (area-weighted median), mag",
    "depth_sigma68": "half the 15.87-84.13 percentile range of the pixel depths, mag",
    "spread_median": "median over pixels of the within-pixel spread, mag",
    "depth_cut": "depth a pixel must exceed for the mask (NaN: no cut in this band), mag",
    "area_above_cut_deg2": "area of the pixels deeper than depth_cut",
    "design_single_visit": "LSST design single-visit depth at this S/N, mag",
    "design_10yr": "LSST design 10-year coadd depth at this S/N, mag",
    "median_minus_10yr": "depth_median - design_10yr, mag",
}


# Units of the per-band summary columns that become scalar metrics ("" for counts).
_COLUMN_UNITS = {
    "n_pixels": "", "area_deg2": "deg2", "n_objects": "", "objects_per_pixel": "",
    "depth_median": "mag", "depth_sigma68": "mag", "spread_median": "mag", "depth_cut": "mag",
    "area_above_cut_deg2": "deg2", "design_single_visit": "mag", "design_10yr": "mag",
    "median_minus_10yr": "mag",
}  # fmt: skip


def metric_names(bands: str = "ugrizy") -> frozenset[str]:
    """Names of :attr:`DepthMapResult.scalar_metrics` for these bands (any subset is made).

    >>> sorted(metric_names("i"))[:3]
    ['i_area_above_cut_deg2', 'i_area_deg2', 'i_depth_cut']
    """
    names = {"mask_area_deg2"}
    for band in bands:
        names |= {f"{band}_{column}" for column in _COLUMN_UNITS}
    return frozenset(names)


def _values(hmap: HealSparseMap) -> np.ndarray:
    return np.asarray(hmap[hmap.valid_pixels])


@dataclass(frozen=True)
class DepthMapResult:
    """Depth maps per band, with the objects used and their spread, and a depth mask.

    Attributes
    ----------
    config : DepthMapConfig
        The parameters used.
    maps : dict of str to healsparse.HealSparseMap
        Per band, the depth (float64, mag) of each pixel with objects (NESTED, nside
        ``config.nside``); empty pixels are not valid pixels (UNSEEN), never zero.
    counts : dict of str to healsparse.HealSparseMap
        Per band, the number of objects used in each pixel (int32).
    spread : dict of str to healsparse.HealSparseMap
        Per band, the within-pixel spread (mag): half the 15.87-84.13 percentile range of the
        objects' depths (``"flux_err"``), or their standard deviation (``"snr_window"``).
    mask : healsparse.HealSparseMap
        Boolean map of the pixels deeper than every cut of ``config.depth_cuts`` (with no cut:
        the pixels mapped in every band).
    reduction : dict
        How the reduction went: ``partitions``, ``rows_read``, ``rows_without_position``,
        ``each_pixel_in_one_partition`` (the HATS route: only final statistics leave the
        workers), ``values_merged_across_partitions`` (flux errors of edge pixels sent up
        the merge tree), ``pixels_gathered_in_second_pass`` and ``passes``.
    """

    config: DepthMapConfig
    maps: Mapping[str, HealSparseMap]
    counts: Mapping[str, HealSparseMap]
    spread: Mapping[str, HealSparseMap]
    mask: HealSparseMap
    reduction: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pixel_area_deg2(self) -> float:
        """Area of one map pixel (deg^2)."""
        return float(hpgeom.nside_to_pixel_area(self.config.nside, degrees=True))

    def area_above(self, band: str, depth: float) -> float:
        """Area (deg^2) of the pixels of ``band`` whose depth exceeds ``depth``."""
        return int(np.count_nonzero(_values(self.maps[band]) > depth)) * self.pixel_area_deg2

    # -- numbers ------------------------------------------------------------------------------
    def table(self) -> pd.DataFrame:
        """One row per band: coverage, depth statistics, area above the cut, design depths.

        The columns are described in ``DepthMapResult.table_columns``.
        """
        rows = []
        area = self.pixel_area_deg2
        for band in self.config.bands:
            depth = _values(self.maps[band])
            counts = _values(self.counts[band])
            spread = _values(self.spread[band])
            cut = self.config.depth_cuts.get(band, math.nan)
            has = len(depth) > 0
            p_lo, p_hi = (
                np.percentile(depth, [100 * Q_LO, 100 * Q_HI]) if has else (math.nan, math.nan)
            )
            design_10 = self.config.design_depth(band, "10yr")
            median = float(np.median(depth)) if has else math.nan
            rows.append(
                {
                    "band": band,
                    "n_pixels": len(depth),
                    "area_deg2": len(depth) * area,
                    "n_objects": int(counts.sum()),
                    "objects_per_pixel": float(np.median(counts)) if has else math.nan,
                    "depth_median": median,
                    "depth_sigma68": float(p_hi - p_lo) / 2,
                    "spread_median": float(np.median(spread)) if has else math.nan,
                    "depth_cut": cut,
                    "area_above_cut_deg2": (
                        self.area_above(band, cut) if math.isfinite(cut) else math.nan
                    ),
                    "design_single_visit": self.config.design_depth(band, "single"),
                    "design_10yr": design_10,
                    "median_minus_10yr": median - design_10,
                }
            )
        return pd.DataFrame(rows, columns=list(_TABLE_COLUMNS))

    table_columns = _TABLE_COLUMNS
    """What each column of :meth:`table` holds."""

    @property
    def mask_area_deg2(self) -> float:
        """Area of the mask (deg^2)."""
        return int(self.mask.n_valid) * self.pixel_area_deg2

    @property
    def scalar_metrics(self) -> dict[str, u.Quantity]:
        """Every scalar of the summary as ``<band>_<column>`` (and ``mask_area_deg2``), an
        astropy Quantity each: what validation thresholds are set on."""
        out: dict[str, u.Quantity] = {}
        for row in self.table().to_dict(orient="records"):
            band = row.pop("band")
            for column, unit in _COLUMN_UNITS.items():
                out[f"{band}_{column}"] = float(row[column]) * u.Unit(unit)
        out["mask_area_deg2"] = self.mask_area_deg2 * u.deg**2
        return out

    @property
    def metrics(self) -> dict[str, Any]:
        """JSON-ready summary: parameters, per-band table, mask area, reduction record."""
        table = self.table()
        bands = {}
        for row in table.to_dict(orient="records"):
            band = row.pop("band")
            bands[band] = {k: _json_number(v) for k, v in row.items()}
        return {
            "analysis": "depth_map",
            "config": self.config.to_dict(),
            "pixel_area_deg2": self.pixel_area_deg2,
            "bands": bands,
            "mask": {
                "cuts": dict(self.config.depth_cuts),
                "n_pixels": int(self.mask.n_valid),
                "area_deg2": self.mask_area_deg2,
            },
            "reduction": dict(self.reduction),
        }

    # -- figures ------------------------------------------------------------------------------
    def plot(self) -> dict[str, Figure]:
        """Figures (never shown): one sky map per band, the depth histograms, the mask.

        Maps use skyproj's McBryde projection zoomed on the footprint, with a colour bar in
        magnitudes. Figures are built without pyplot, so nothing global changes and nothing
        is displayed; save them with ``fig.savefig`` or through :meth:`write`.
        """
        label = f"{self.config.depth_label} [mag]"
        figures: dict[str, Figure] = {}
        for band in self.config.bands:
            title = (
                f"{band}-band {self.config.depth_label} ({self.config.method}, "
                f"nside {self.config.nside})"
            )
            figures[f"depth_{band}"] = _sky_figure(self.maps[band], title, label, "viridis")
        figures["depth_histogram"] = self._histogram_figure()
        cuts = ", ".join(f"{b} > {c:g}" for b, c in self.config.depth_cuts.items()) or "none"
        figures["mask"] = _sky_figure(
            self.mask,
            f"mask: {self.config.depth_label} {cuts}; {self.mask_area_deg2:.2f} deg²",
            None,
            "Blues",
        )
        return figures

    def _histogram_figure(self) -> Figure:
        from matplotlib.figure import Figure

        bands = self.config.bands
        ncol = min(3, len(bands))
        nrow = math.ceil(len(bands) / ncol)
        fig = Figure(figsize=(4.2 * ncol, 3.3 * nrow), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
        for ax, band in zip(axes, bands, strict=False):
            depth = _values(self.maps[band])
            if len(depth):
                ax.hist(depth, bins=50, color="tab:blue", alpha=0.8)
                ax.axvline(float(np.median(depth)), color="k", lw=1.5, label="median")
            design = self.config.design_depth(band, "10yr")
            ax.axvline(design, color="tab:red", ls="--", lw=1.2, label="LSST 10-yr design")
            cut = self.config.depth_cuts.get(band)
            if cut is not None:
                ax.axvline(cut, color="tab:orange", ls=":", lw=1.5, label=f"cut {cut:g}")
            ax.set_title(f"{band} band")
            ax.set_xlabel(f"{self.config.depth_label} [mag]")
            ax.set_ylabel("pixels")
            ax.legend(fontsize=7, loc="upper left")
        for ax in axes[len(bands) :]:
            ax.set_visible(False)
        fig.suptitle(f"Pixel depths ({self.config.method}, nside {self.config.nside})")
        return fig

    # -- files --------------------------------------------------------------------------------
    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write maps (FITS, healsparse), the table (CSV), metrics (JSON) and figures (PNG).

        Files: ``depth_<b>.fits``, ``nobj_<b>.fits``, ``spread_<b>.fits``, ``mask.fits``,
        ``depth_summary.csv``, ``metrics.json`` and ``<figure>.png`` for each figure of
        :meth:`plot`. Existing files of these names are replaced.

        Returns
        -------
        dict of str to pathlib.Path
            Every file written, by name without extension.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        for band in self.config.bands:
            for kind, maps in (
                ("depth", self.maps),
                ("nobj", self.counts),
                ("spread", self.spread),
            ):
                path = out / f"{kind}_{band}.fits"
                maps[band].write(str(path), clobber=True)
                written[path.name] = path
        path = out / "mask.fits"
        self.mask.write(str(path), clobber=True)
        written[path.name] = path

        path = out / "depth_summary.csv"
        self.table().to_csv(path, index=False)
        written[path.name] = path
        path = out / "metrics.json"
        path.write_text(json.dumps(self.metrics, indent=2, allow_nan=False) + "\n")
        written[path.name] = path
        for name, fig in self.plot().items():
            path = out / f"{name}.png"
            fig.savefig(path, dpi=110)
            written[path.name] = path
        log.info("depth_map: wrote %d files to %s", len(written), out)
        return written


def _json_number(value: Any) -> Any:
    """NaN is not JSON: it becomes null; numpy scalars become Python numbers."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _sky_figure(hmap: HealSparseMap, title: str, label: str | None, cmap: str) -> Figure:
    """One healsparse map in skyproj's McBryde projection, zoomed on its valid pixels."""
    import skyproj
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 6.0))
    ax = fig.add_subplot(1, 1, 1)
    valid = hmap.valid_pixels
    if not len(valid):
        ax.text(0.5, 0.5, "no pixels", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title(title)
        return fig
    ra, _ = hpgeom.pixel_to_angle(hmap.nside_sparse, valid, nest=True, lonlat=True)
    # centre the projection on the footprint (circular mean), so it never straddles the edge
    rad = np.radians(ra)
    lon_0 = float(np.degrees(np.arctan2(np.sin(rad).mean(), np.cos(rad).mean())))
    sky = skyproj.McBrydeSkyproj(ax=ax, lon_0=lon_0)
    if hmap.dtype == np.bool_:
        shown = hmap.astype(np.float64)  # skyproj colours numbers; the mask is one colour
        sky.draw_hspmap(shown, cmap=cmap, vmin=0.0, vmax=1.25)
    else:
        sky.draw_hspmap(hmap, cmap=cmap)
        if label is not None:
            sky.draw_colorbar(label=label)
    fig.suptitle(title)
    return fig
