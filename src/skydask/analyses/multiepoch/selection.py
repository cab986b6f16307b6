"""faro's star selection, per object, on partitions that hold whole objects.

:func:`star_summaries` reduces the measurements of each (object, band) to the numbers faro's
``filterMatches`` looks at (count, finite magnitudes, median S/N, extendedness in every visit,
pixel flags, primary flag) and to the repeatability statistics (mean magnitude, rms about it,
median magnitude, mean position); :func:`select_stars` applies a
configuration's cuts to those summaries. Quantities a catalogue lacks (``detect_isPrimary``
in DC2, pixel flags in a ForcedSource table) are not required; :func:`plan_quantities` says
which of the selection's checks the catalogue allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from skydask.analyses.multiepoch.config import _StarSelection
from skydask.analyses.multiepoch.kernels import group_codes, mean_positions
from skydask.catalog.catalog import Catalog
from skydask.errors import SchemaError

__all__ = ["PIXEL_FLAGS", "SelectionPlan", "plan_quantities", "select_stars", "star_summaries"]

PIXEL_FLAGS = ("pixelFlags_saturated", "pixelFlags_cr", "pixelFlags_bad", "pixelFlags_edge")
"""faro's ``doFlags``: saturated, cosmic ray, bad, edge."""

_REQUIRED = ("objectId", "band", "visit", "mag", "snr")


@dataclass(frozen=True)
class SelectionPlan:
    """The quantities to read and the checks the catalogue allows."""

    quantities: tuple[str, ...]
    extendedness: bool
    pixel_flags: tuple[str, ...]
    primary: bool
    positions: bool

    def describe(self) -> dict[str, Any]:
        """JSON-ready record of what the selection could use."""
        return {
            "quantities": list(self.quantities),
            "extendedness": self.extendedness,
            "pixel_flags": list(self.pixel_flags),
            "primary": self.primary,
        }


def plan_quantities(
    catalog: Catalog, config: _StarSelection, *, positions: bool = False
) -> SelectionPlan:
    """The quantities a star selection reads from ``catalog``, and which checks it can apply.

    Raises
    ------
    SchemaError
        If a quantity the metric cannot do without (``objectId``, ``band``, ``visit``,
        ``mag``, ``snr``, and ``ra``/``dec`` for astrometry) is missing.
    """
    available = set(catalog.quantities)
    required = list(_REQUIRED) + (["ra", "dec"] if positions else [])
    missing = [q for q in required if q not in available]
    if missing:
        raise SchemaError(
            f"the source catalogue ({catalog.source_description}, flavour "
            f"{catalog.schema.flavour}) lacks {missing}, which repeatability needs"
        )
    extendedness = config.extendedness_max is not None and "extendedness" in available
    flags = tuple(f for f in PIXEL_FLAGS if f in available) if config.pixel_flags else ()
    primary = config.primary and "detect_isPrimary" in available
    quantities = [*required]
    if extendedness:
        quantities.append("extendedness")
    quantities += list(flags)
    if primary:
        quantities.append("detect_isPrimary")
    return SelectionPlan(tuple(quantities), extendedness, flags, primary, positions)


def star_summaries(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (objectId, band) with what the selection and the metrics need.

    Columns: ``objectId``, ``band``, ``n`` (measurements), ``n_finite`` (finite magnitudes),
    ``snr_median`` (median of the finite S/N values), ``ext_max`` (largest extendedness, NaN
    when any is NaN, as ``numpy.max`` gives), ``flagged`` (a pixel flag in some visit),
    ``primary`` (primary in every visit), ``mag_mean``, ``mag_median``, ``mag_rms`` (ddof 0,
    of the finite magnitudes, in mag), and ``ra``/``dec`` (mean position, deg) when the frame
    has positions.

    Examples
    --------
    >>> rows = pd.DataFrame({"objectId": [7, 7, 7], "band": ["r"] * 3, "visit": [1, 2, 3],
    ...                      "mag": [20.0, 20.01, 19.99], "snr": [300.0, 250.0, 280.0]})
    >>> s = star_summaries(rows)
    >>> s[["n", "snr_median", "mag_mean"]].to_numpy().tolist()
    [[3.0, 280.0, 20.0]]
    >>> round(float(s["mag_rms"].iloc[0]) * 1000, 3)  # rms about the mean, ddof 0, in mmag
    8.165
    """
    codes, keys = group_codes(frame)
    k = len(keys)
    grouped = frame.groupby(codes, sort=True)
    mag = frame["mag"].to_numpy(dtype=np.float64)
    finite = np.isfinite(mag)
    n = np.bincount(codes, minlength=k)
    n_finite = np.bincount(codes, finite, minlength=k)
    safe = np.where(finite, mag, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag_mean = np.bincount(codes, safe, minlength=k) / n_finite
        resid = np.where(finite, mag - mag_mean[codes], 0.0)
        mag_rms = np.sqrt(np.bincount(codes, resid**2, minlength=k) / n_finite)
    out = keys.assign(
        n=n,
        n_finite=n_finite,
        snr_median=grouped["snr"].median().to_numpy(),
        mag_mean=mag_mean,
        mag_median=grouped["mag"].median().to_numpy(),
        mag_rms=mag_rms,
    )
    if "extendedness" in frame:
        ext = frame["extendedness"].to_numpy(dtype=np.float64)
        ext_max = grouped["extendedness"].max().to_numpy(dtype=np.float64)
        any_nan = np.bincount(codes, np.isnan(ext), minlength=k) > 0
        out["ext_max"] = np.where(any_nan, np.nan, ext_max)
    flags = [c for c in frame.columns if c.startswith("pixelFlags_")]
    if flags:
        hit = np.zeros(len(frame), dtype=bool)
        for c in flags:
            hit |= frame[c].to_numpy(dtype=bool)
        out["flagged"] = np.bincount(codes, hit, minlength=k) > 0
    if "detect_isPrimary" in frame:
        not_primary = ~frame["detect_isPrimary"].to_numpy(dtype=bool)
        out["primary"] = np.bincount(codes, not_primary, minlength=k) == 0
    if "ra" in frame and "dec" in frame:
        ra, dec = mean_positions(
            codes, k, frame["ra"].to_numpy(np.float64), frame["dec"].to_numpy(np.float64)
        )
        out["ra"], out["dec"] = ra, dec
    out["objectId"] = out["objectId"].astype(np.int64)
    out["band"] = out["band"].astype("string")
    return out


def select_stars(
    summaries: pd.DataFrame, config: _StarSelection, *, magnitude: str = "mag_mean"
) -> pd.Series:
    """Which summaries are stars by faro's criteria (a boolean Series aligned with them).

    ``magnitude`` names the magnitude the window applies to: faro's AM1 uses the median
    (``"mag_median"``), the window is ``mag_min <= m < mag_max``.
    """
    s = summaries
    ok = (s["n"] >= config.min_measurements) & (s["n_finite"] == s["n"])
    snr = s["snr_median"]
    ok &= (snr >= config.snr_min) & (snr <= config.snr_max)
    if config.extendedness_max is not None and "ext_max" in s:
        ok &= s["ext_max"] < config.extendedness_max  # NaN (some visit unmeasured) fails
    if config.pixel_flags and "flagged" in s:
        ok &= ~s["flagged"]
    if config.primary and "primary" in s:
        ok &= s["primary"]
    if config.mag_min is not None:
        ok &= s[magnitude] >= config.mag_min
    if config.mag_max is not None:
        ok &= s[magnitude] < config.mag_max
    if config.bands is not None:
        ok &= s["band"].isin(list(config.bands))
    return ok.fillna(False).astype(bool)
