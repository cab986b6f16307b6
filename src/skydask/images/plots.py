"""Figures: a grid of stamps, a coadd with its exposure count, per-band image quality.

Every function returns a new ``matplotlib.figure.Figure`` (never shown, never pyplot state), so
notebooks and batch runs treat them alike.

Stamps share one asinh stretch: each stamp is calibrated to nJy with its visit's zeropoint
(when known) and has its own median subtracted (a local sky), then one
``ImageNormalize(AsinhStretch)`` from the 1st to the 99.8th percentile over all stamps is used
for all, so brightness compares across visits. Empty stamps (a visit that does not cover the
object) are left blank.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from astropy.time import Time
from astropy.visualization import AsinhStretch, ImageNormalize
from matplotlib.figure import Figure

from skydask.errors import SpecError
from skydask.schema.definitions import AB_ZEROPOINT_NJY

__all__ = ["plot_coadd", "plot_quality", "plot_stamps"]


def _date(mjd: float) -> str:
    return "no date" if not np.isfinite(mjd) else Time(mjd, format="mjd").iso[:10]


def plot_stamps(
    stamps: xr.Dataset, *, max_objects: int = 8, max_visits: int = 12, panel: float = 1.3
) -> Figure:
    """Grid of stamps, objects in rows and visits in columns, labelled with band and date.

    ``stamps`` is the result of :func:`skydask.images.cutouts` (computed or lazy; only the
    panels shown are computed).
    """
    if "stamp" in stamps.dims:
        raise SpecError("plot_stamps needs dense cut-outs (cutouts(..., dense=True))")
    n_obj = min(max_objects, stamps.sizes["object"])
    n_vis = min(max_visits, stamps.sizes["visit"])
    if n_obj == 0 or n_vis == 0:
        raise SpecError("no stamp to plot: the cut-outs have no object or no covering visit")
    sub = stamps.isel(object=slice(0, n_obj), visit=slice(0, n_vis))
    image = np.asarray(sub["image"].values, dtype=np.float64)
    zp = sub["zeropoint"].values.astype(np.float64) if "zeropoint" in sub.coords else None
    if zp is not None and np.isfinite(zp).all():
        image = image * (10.0 ** (0.4 * (AB_ZEROPOINT_NJY - zp)))[None, :, None, None]
        unit = "nJy"
    else:
        unit = "image units"
    with warnings.catch_warnings():  # empty stamps (visits not covering) are all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        image = image - np.nanmedian(image, axis=(2, 3), keepdims=True)
    finite = image[np.isfinite(image)]
    lo, hi = np.percentile(finite, [1.0, 99.8]) if finite.size else (0.0, 1.0)
    norm = ImageNormalize(vmin=lo, vmax=hi if hi > lo else lo + 1.0, stretch=AsinhStretch(0.05))
    fig = Figure(figsize=(panel * n_vis + 0.8, panel * n_obj + 0.8))
    axes = fig.subplots(n_obj, n_vis, squeeze=False)
    bands = sub["band"].values if "band" in sub.coords else [""] * n_vis
    mjds = sub["mjd"].values if "mjd" in sub.coords else [np.nan] * n_vis
    for i in range(n_obj):
        for j in range(n_vis):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if bool(sub["covered"].values[i, j]):
                ax.imshow(image[i, j], origin="lower", cmap="gray_r", norm=norm)
            if i == 0:
                ax.set_title(f"{bands[j]}\n{_date(float(mjds[j]))}", fontsize=7)
            if j == 0:
                ra, dec = float(sub["ra"].values[i]), float(sub["dec"].values[i])
                ax.set_ylabel(f"{ra:.4f}\n{dec:+.4f}", fontsize=6)
    fig.suptitle(f"cut-outs (shared asinh stretch, {unit}, stamp median subtracted)", fontsize=8)
    return fig


def plot_coadd(coadd: xr.Dataset, *, panel: float = 4.5) -> Figure:
    """The coadd (asinh stretch, WCS axes) beside its exposure-count map."""
    wcs = coadd.attrs.get("wcs")
    image = np.asarray(coadd["image"].values, dtype=np.float64)
    count = np.asarray(coadd["exposure_count"].values)
    fig = Figure(figsize=(2 * panel + 1.5, panel))
    kw: dict[str, Any] = {"projection": wcs} if wcs is not None else {}
    ax1 = fig.add_subplot(1, 2, 1, **kw)
    finite = image[np.isfinite(image)]
    lo, hi = np.percentile(finite, [1.0, 99.8]) if finite.size else (0.0, 1.0)
    norm = ImageNormalize(vmin=lo, vmax=hi if hi > lo else lo + 1.0, stretch=AsinhStretch(0.05))
    ax1.imshow(image, origin="lower", cmap="gray_r", norm=norm)
    ax1.set_title(f"coadd {coadd.attrs.get('band', '')} ({coadd.attrs.get('method', '')}), nJy")
    ax2 = fig.add_subplot(1, 2, 2, **kw)
    shown = ax2.imshow(count, origin="lower", cmap="viridis", vmin=0)
    fig.colorbar(shown, ax=ax2, label="exposure count")
    ax2.set_title("visits per pixel")
    for ax in (ax1, ax2):
        if wcs is not None:
            ax.set_xlabel("RA")
            ax.set_ylabel("Dec")
    return fig


def plot_quality(visits: pd.DataFrame, *, panel: float = 3.0) -> Figure:
    """Per-band comparison of the visits: m5, FWHM and sky noise against date.

    ``visits`` is :meth:`skydask.images.ImageQuality.table`. Visits without date are placed
    by their order.
    """
    bands = list(dict.fromkeys(visits["band"].tolist()))
    if not bands:
        raise SpecError("no visit to plot")
    fig = Figure(figsize=(panel * len(bands) + 1.0, 2.2 * 3 + 0.5))
    axes = fig.subplots(3, len(bands), squeeze=False, sharex="col")
    rows = (
        ("m5", "m5 (mag)"),
        ("fwhm", "FWHM (arcsec)"),
        ("sigma_variance", "sky sigma (image units)"),
    )
    for j, band in enumerate(bands):
        sel = visits[visits["band"] == band]
        x = sel["mjd"].to_numpy(dtype=np.float64)
        if not np.isfinite(x).any():
            x = np.arange(len(sel), dtype=np.float64)
        for i, (col, label) in enumerate(rows):
            ax = axes[i, j]
            y = sel[col].to_numpy(dtype=np.float64)
            ax.plot(x, y, "o", ms=4)
            ax.ticklabel_format(axis="y", useOffset=False)
            if col == "m5" and np.isfinite(y).any():
                ax.axhline(float(np.nanmedian(y)), color="0.6", lw=0.8)
                ax.set_title(f"band {band}: median m5 {np.nanmedian(y):.2f}", fontsize=9)
            elif i == 0:
                ax.set_title(f"band {band}", fontsize=9)
            if j == 0:
                ax.set_ylabel(label)
        axes[-1, j].set_xlabel("MJD")
    fig.tight_layout()
    return fig
