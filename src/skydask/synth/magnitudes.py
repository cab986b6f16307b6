"""Magnitude helpers shared by the populations: number-count draws, colours, fluxes.

Fluxes are in nJy with the schema's AB zero point: ``f = 10**(-0.4 (m - 31.4))``.
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray

from skydask.schema.definitions import AB_ZEROPOINT_NJY, BANDS

__all__ = ["adjacent_colours", "flux_njy", "magnitudes_from_colours", "power_law_magnitudes"]


def adjacent_colours() -> list[tuple[str, str]]:
    """The colours of adjacent bands in band order.

    Examples
    --------
    >>> adjacent_colours()[:2]
    [('u', 'g'), ('g', 'r')]
    """
    return list(itertools.pairwise(BANDS))


def magnitudes_from_colours(
    anchor_band: str, anchor_mag: NDArray[np.float64], colours: dict[str, NDArray[np.float64]]
) -> NDArray[np.float64]:
    """Magnitudes ``(n, len(BANDS))`` from one band's magnitude and the adjacent colours.

    ``colours`` maps ``"b1-b2"`` (adjacent bands) to arrays.

    Examples
    --------
    >>> cols = {f"{a}-{b}": np.array([0.1]) for a, b in adjacent_colours()}
    >>> magnitudes_from_colours("r", np.array([20.0]), cols).round(2).tolist()
    [[20.2, 20.1, 20.0, 19.9, 19.8, 19.7]]
    """
    k0 = BANDS.index(anchor_band)
    out = np.empty((len(anchor_mag), len(BANDS)), dtype=np.float64)
    out[:, k0] = anchor_mag
    for k in range(k0 - 1, -1, -1):  # bluer bands: m_b1 = m_b2 + (b1 - b2)
        out[:, k] = out[:, k + 1] + colours[f"{BANDS[k]}-{BANDS[k + 1]}"]
    for k in range(k0 + 1, len(BANDS)):  # redder bands: m_b2 = m_b1 - (b1 - b2)
        out[:, k] = out[:, k - 1] - colours[f"{BANDS[k - 1]}-{BANDS[k]}"]
    return out


def power_law_magnitudes(
    rng: np.random.Generator, bright: float, faint: NDArray[np.float64], slope: float
) -> NDArray[np.float64]:
    """Inverse-CDF draws from ``dN/dm ~ 10**(slope m)`` on ``[bright, faint]`` (per object).

    Examples
    --------
    >>> m = power_law_magnitudes(np.random.default_rng(0), 18.0, np.full(10_000, 25.0), 0.35)
    >>> bool(m.min() >= 18.0) and bool(m.max() <= 25.0)
    True
    >>> round(float(np.mean(m > 24.0)), 2)  # 1 - 10**-0.35 of them in the last magnitude
    0.55
    """
    u = rng.random(len(faint))
    lo = 10.0 ** (slope * bright)
    hi = 10.0 ** (slope * np.maximum(faint, bright))
    return np.asarray(np.log10(lo + u * (hi - lo)) / slope, dtype=np.float64)


def flux_njy(mag: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """AB magnitude to flux in nJy.

    Examples
    --------
    >>> float(flux_njy(31.4))
    1.0
    """
    return np.asarray(10.0 ** (-0.4 * (np.asarray(mag, dtype=np.float64) - AB_ZEROPOINT_NJY)))
