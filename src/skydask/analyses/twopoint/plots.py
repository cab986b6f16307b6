"""Figures of a two-point result: ``theta * xi`` with jackknife errors, the correlation matrix.

Figures are built without pyplot (nothing global changes, nothing is shown); the caller saves
or displays them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from skydask.analyses.twopoint.result import TwoPointResult
    from skydask.analyses.twopoint.theory import TheoryCurves

__all__ = ["correlation_figure", "statistic_figure"]

_LABELS = {
    "xip": r"$\theta\,\xi_+$",
    "xim": r"$\theta\,\xi_-$",
    "gamma_t": r"$\theta\,\gamma_t$",
    "w_theta": r"$\theta\,w(\theta)$",
}
_COLOURS = {"xip": "tab:blue", "xim": "tab:orange", "gamma_t": "tab:green", "w_theta": "tab:red"}


def statistic_figure(
    result: TwoPointResult, statistic: str, theory: TheoryCurves | None = None
) -> Figure:
    """One panel per bin pair of ``statistic``: ``theta * value`` against theta (log axis),
    jackknife error bars, theory curves (if given) as lines."""
    from matplotlib.figure import Figure

    table = result.data_vector()
    pairs = list(dict.fromkeys(
        (r.bin1, r.bin2) for r in result.requests if r.statistic == statistic
    ))  # fmt: skip
    ncol = min(3, len(pairs))
    nrow = math.ceil(len(pairs) / ncol)
    fig = Figure(figsize=(4.4 * ncol, 3.4 * nrow), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
    units = result.sep_units
    for ax, (b1, b2) in zip(axes, pairs, strict=False):
        sel = table[(table.bin1 == b1) & (table.bin2 == b2)]
        for quantity, rows in sel.groupby("quantity", sort=False):
            theta = rows.meanr.to_numpy()
            ax.errorbar(
                theta, theta * rows.value.to_numpy(), yerr=theta * rows.sigma.to_numpy(),
                fmt="o", ms=4, capsize=2, color=_COLOURS.get(str(quantity)),
                label=_LABELS.get(str(quantity), str(quantity)),
            )  # fmt: skip
            if theory is not None:
                curve = theory.get(str(quantity), b1, b2)
                if curve is not None:
                    t, v = curve
                    ax.plot(t, t * v, "-", lw=1.2, color=_COLOURS.get(str(quantity)),
                            label=f"{_LABELS.get(str(quantity), quantity)} theory")  # fmt: skip
        ax.axhline(0.0, color="0.6", lw=0.8)
        _theta_axis(ax, units)
        ax.set_ylabel(rf"$\theta\,\times$ value [{units}]")
        ax.set_title(f"{b1} × {b2}", fontsize=10)
        ax.legend(fontsize=7)
    for ax in axes[len(pairs) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"{statistic.replace('_', '-')}: jackknife errors ({result.reduction.get('npatch', '?')} "
        "patches)"
    )
    return fig


def _theta_axis(ax: Axes, units: str) -> None:
    """A log theta axis labelled 1, 2, 5, 10, 20... as plain numbers.

    Matplotlib's default labels every minor tick with ``2 x 10^0``-style labels when the
    range is under a decade or two, which overlap at the figure's width (2-30 arcmin);
    the y axis gets a common power of ten instead of ``0.0001100``-long labels.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.set_xlabel(rf"$\theta$ [{units}]")


def correlation_figure(result: TwoPointResult) -> Figure:
    """The covariance as a correlation matrix, with the blocks of the data vector marked."""
    from matplotlib.figure import Figure

    corr = result.correlation_matrix()
    fig = Figure(figsize=(6.0, 5.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1, origin="upper")
    fig.colorbar(image, ax=ax, label="correlation")
    n = result.config.nbins
    table = result.data_vector()
    blocks = len(table) // n
    for k in range(1, blocks):
        ax.axhline(k * n - 0.5, color="k", lw=0.5)
        ax.axvline(k * n - 0.5, color="k", lw=0.5)
    labels = [f"{q} {a}×{b}" for q, a, b in table[["quantity", "bin1", "bin2"]].to_numpy()[::n]]
    ticks = [k * n + (n - 1) / 2 for k in range(blocks)]
    if blocks <= 24:
        ax.set_xticks(ticks, labels, rotation=90, fontsize=6)
        ax.set_yticks(ticks, labels, fontsize=6)
    ax.set_title("jackknife correlation matrix")
    return fig
