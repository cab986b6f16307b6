"""``skydask demo``: make a synthetic DC2-like catalogue, summarise it on a cluster, plot it.

Everything is computed in one pass over the catalogue: each partition returns small partial
histograms (depths, magnitudes, colours, sky positions), which are summed. Nothing but those
histograms ever leaves the workers.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from skydask.analyses.reduction import tree_reduce
from skydask.catalog.catalog import Catalog
from skydask.schema.definitions import BANDS

__all__ = ["DemoSummary", "default_catalog_dir", "summarise", "write_plots"]

log = logging.getLogger(__name__)

MAG_BINS = np.arange(14.0, 32.0 + 1e-9, 0.01)
COLOUR_BINS = (np.arange(-0.5, 2.0 + 1e-9, 0.02), np.arange(-0.5, 2.5 + 1e-9, 0.02))
SKY_BIN_DEG = 0.1


def default_catalog_dir(rows: int, seed: int) -> Path:
    """Where the demo caches its synthetic catalogue, one directory per (rows, seed)."""
    return Path("~/.cache/skydask").expanduser() / f"synth-r{rows}-s{seed}"


@dataclass(frozen=True)
class DemoSummary:
    """What the demo prints: object counts, area, and per band the median depth."""

    objects: int
    stars: int
    galaxies: int
    area_deg2: float
    median_depth: dict[str, float]
    counts_to_median_depth: dict[str, int]

    def text(self) -> str:
        lines = [
            f"objects:   {self.objects:,}",
            f"stars:     {self.stars:,}  (extendedness < 0.5)",
            f"galaxies:  {self.galaxies:,}",
            f"sky area:  {self.area_deg2:,.1f} deg2",
            "band  median 5-sigma depth   objects brighter than it",
        ]
        for b in self.median_depth:
            lines.append(
                f"  {b}   {self.median_depth[b]:8.2f}"
                f"             {self.counts_to_median_depth[b]:,}"
            )
        return "\n".join(lines)


def _partial(
    frame: pd.DataFrame, ra_edges: npt.NDArray[np.float64], dec_edges: npt.NDArray[np.float64]
) -> dict[str, Any]:
    """Histograms of one partition (the decomposable half of the summary)."""
    star = frame["extendedness"].to_numpy() < 0.5
    out: dict[str, Any] = {"n": len(frame), "stars": int(star.sum())}
    for b in BANDS:
        out[f"m5_{b}"] = np.histogram(frame[f"m5_{b}"], MAG_BINS)[0]
        out[f"mag_{b}"] = np.histogram(frame[f"mag_{b}"], MAG_BINS)[0]
    bright_star = star & (frame["snr_r"].to_numpy() > 20)
    out["colour"] = np.histogram2d(
        frame["g-r"].to_numpy()[bright_star], frame["r-i"].to_numpy()[bright_star], COLOUR_BINS
    )[0]
    out["sky"] = np.histogram2d(frame["ra"], frame["dec"], (ra_edges, dec_edges))[0]
    return out


def _combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    total = dict(parts[0])
    for part in parts[1:]:
        for key, value in part.items():
            total[key] = total[key] + value
    return total


def _median_from_histogram(counts: npt.NDArray[np.int64]) -> float:
    cumulative = np.cumsum(counts)
    if cumulative[-1] == 0:
        return float("nan")
    i = int(np.searchsorted(cumulative, cumulative[-1] / 2))
    return float(MAG_BINS[i] + (MAG_BINS[1] - MAG_BINS[0]) / 2)


def summarise(catalog: Catalog) -> tuple[DemoSummary, dict[str, Any]]:
    """One pass over the catalogue: the summary and the summed histograms (for the plots)."""
    quantities = ["ra", "dec", "extendedness", "snr_r", "g-r", "r-i"]
    quantities += [f"m5_{b}" for b in BANDS] + [f"mag_{b}" for b in BANDS]
    area = catalog.sky_area_deg2() or float("nan")
    box = catalog.sky_box()
    if box is not None:
        ra_edges = np.arange(math.floor(box[0]), math.ceil(box[1]) + 1e-9, SKY_BIN_DEG)
        dec_edges = np.arange(math.floor(box[2]), math.ceil(box[3]) + 1e-9, SKY_BIN_DEG)
    else:
        ra_edges, dec_edges = np.arange(0, 360.1, 1.0), np.arange(-90, 90.1, 1.0)
    ddf = catalog.select(quantities).to_dask()
    hist: dict[str, Any] = tree_reduce(
        ddf,
        functools.partial(_partial, ra_edges=ra_edges, dec_edges=dec_edges),
        _combine,
        progress=True,
    )
    median = {b: _median_from_histogram(hist[f"m5_{b}"]) for b in BANDS}
    counts = {}
    for b in BANDS:
        upto = int(np.searchsorted(MAG_BINS, median[b])) if math.isfinite(median[b]) else 0
        counts[b] = int(hist[f"mag_{b}"][:upto].sum())
    summary = DemoSummary(
        objects=int(hist["n"]),
        stars=int(hist["stars"]),
        galaxies=int(hist["n"] - hist["stars"]),
        area_deg2=float(area),
        median_depth=median,
        counts_to_median_depth=counts,
    )
    hist["ra_edges"], hist["dec_edges"] = ra_edges, dec_edges
    return summary, hist


def write_plots(hist: dict[str, Any], out: Path) -> list[Path]:
    """The colour-colour density of stars and the sky density of all objects, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    from skydask.data import covey_locus

    written = []
    fig, ax = plt.subplots(figsize=(6, 5.5))
    counts = np.ma.masked_equal(hist["colour"].T, 0)
    mesh = ax.pcolormesh(COLOUR_BINS[0], COLOUR_BINS[1], counts, norm=LogNorm(), cmap="viridis")
    locus = covey_locus()
    ax.plot(
        locus["g-r"], locus["r-i"], color="tab:red", lw=1.5, label="Covey et al. 2007 median locus"
    )
    ax.set_xlabel("g - r [mag]")
    ax.set_ylabel("r - i [mag]")
    ax.set_title("Point sources with S/N(r) > 20")
    ax.legend(loc="upper left")
    fig.colorbar(mesh, ax=ax, label="stars per bin")
    path = out / "colour_colour.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(7, 5))
    ra_edges, dec_edges = hist["ra_edges"], hist["dec_edges"]
    dec_mid = np.radians(0.5 * (dec_edges[1:] + dec_edges[:-1]))
    cell_area = SKY_BIN_DEG * SKY_BIN_DEG * np.cos(dec_mid)  # deg^2 of each cell
    density = np.ma.masked_equal(hist["sky"], 0) / cell_area[None, :] / 3600.0
    mesh = ax.pcolormesh(ra_edges, dec_edges, density.T, cmap="magma")
    ax.invert_xaxis()  # east to the left, as on the sky
    ax.set_xlabel("RA [deg]")
    ax.set_ylabel("Dec [deg]")
    ax.set_aspect(1.0 / np.cos(np.median(dec_mid)))
    ax.set_title("Object density")
    fig.colorbar(mesh, ax=ax, label="objects per arcmin$^2$")
    path = out / "sky_density.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    written.append(path)
    return written


def write_summary(summary: DemoSummary, out: Path) -> Path:
    path = out / "summary.json"
    path.write_text(json.dumps(asdict(summary), indent=2))
    return path
