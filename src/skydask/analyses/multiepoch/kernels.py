"""Per-partition kernels: statistics of the objects whose rows a partition holds whole.

Each function takes a pandas partition in which every (object, band) group is complete (see
:func:`skydask.catalog.colocation.by_object`) and returns one row per group. They are
vectorised (one sort or hash of the keys, then ``numpy.bincount`` sums), and exact: every
statistic is the one a ``pandas`` groupby of the collected rows gives, which the tests check.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "GROUP_KEYS",
    "LIGHT_CURVE_STATS",
    "group_codes",
    "light_curve_stats",
    "mean_positions",
]

GROUP_KEYS = ["objectId", "band"]

LIGHT_CURVE_STATS = {
    "n_epochs": "number of measurements used (finite flux, positive error, not flagged)",
    "flux_mean": "mean PSF flux (nJy)",
    "flux_std": "standard deviation of the PSF fluxes, ddof 1 (nJy)",
    "flux_wmean": "inverse-variance weighted mean PSF flux (nJy)",
    "flux_wmean_err": "uncertainty of the weighted mean, 1 / sqrt(sum of weights) (nJy)",
    "chi2": "chi^2 of the fluxes about the weighted mean",
    "chi2_dof": "chi2 / (n_epochs - 1); about 1 for a constant source with right errors",
    "mag_wmean": "AB magnitude of the weighted mean flux",
    "mjd_min": "first epoch (MJD)",
    "mjd_max": "last epoch (MJD)",
}


def group_codes(frame: pd.DataFrame) -> tuple[npt.NDArray[np.int64], pd.DataFrame]:
    """Group number of each row by (objectId, band), and the groups' keys in sorted order."""
    grouped = frame.groupby(GROUP_KEYS, sort=True, observed=True)
    codes: npt.NDArray[np.int64] = np.asarray(grouped.ngroup(), dtype=np.int64)
    keys = grouped.size().index.to_frame(index=False)
    return codes, keys


def _empty_stats(with_mjd: bool) -> pd.DataFrame:
    columns: dict[str, object] = {
        "objectId": np.zeros(0, dtype=np.int64),
        "band": pd.array([], dtype="string"),
    }
    for name in LIGHT_CURVE_STATS:
        if name.startswith("mjd") and not with_mjd:
            continue
        columns[name] = np.zeros(0, dtype=np.int64 if name == "n_epochs" else np.float64)
    return pd.DataFrame(columns)


def light_curve_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (objectId, band): epochs, mean and weighted-mean flux, chi^2 about the mean.

    ``frame`` has ``objectId``, ``band``, ``psFlux``, ``psFluxErr`` and optionally ``mjd``
    and ``psFlux_flag``; rows with a non-finite flux, a non-positive error, or the flag set
    are left out. chi^2 is computed about the weighted mean in two passes (no cancellation
    for bright objects).

    Examples
    --------
    >>> rows = pd.DataFrame({"objectId": [1, 1, 1, 2], "band": ["r"] * 4,
    ...                      "psFlux": [10.0, 12.0, 14.0, 5.0], "psFluxErr": [1.0, 1.0, 2.0, 1.0]})
    >>> stats = light_curve_stats(rows)
    >>> columns = ["objectId", "n_epochs", "flux_mean", "flux_wmean", "chi2"]
    >>> stats[columns].round(3).to_numpy().tolist()
    [[1.0, 3.0, 12.0, 11.333, 4.0], [2.0, 1.0, 5.0, 5.0, 0.0]]
    """
    with_mjd = "mjd" in frame
    flux = frame["psFlux"].to_numpy(dtype=np.float64)
    err = frame["psFluxErr"].to_numpy(dtype=np.float64)
    good = np.isfinite(flux) & np.isfinite(err) & (err > 0)
    if "psFlux_flag" in frame:
        good &= ~frame["psFlux_flag"].to_numpy(dtype=bool)
    if not good.all():
        frame, flux, err = frame[good], flux[good], err[good]
    if len(frame) == 0:
        return _empty_stats(with_mjd)
    codes, keys = group_codes(frame)
    k = len(keys)
    n = np.bincount(codes, minlength=k).astype(np.int64)
    w = 1.0 / err**2
    sw = np.bincount(codes, w, minlength=k)
    wmean = np.bincount(codes, w * flux, minlength=k) / sw
    mean = np.bincount(codes, flux, minlength=k) / n
    chi2 = np.bincount(codes, w * (flux - wmean[codes]) ** 2, minlength=k)
    ss = np.bincount(codes, (flux - mean[codes]) ** 2, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        std = np.where(n > 1, np.sqrt(ss / (n - 1)), np.nan)
        chi2_dof = np.where(n > 1, chi2 / (n - 1), np.nan)
        mag = -2.5 * np.log10(wmean) + 31.4
    out = keys.assign(
        n_epochs=n,
        flux_mean=mean,
        flux_std=std,
        flux_wmean=wmean,
        flux_wmean_err=1.0 / np.sqrt(sw),
        chi2=chi2,
        chi2_dof=chi2_dof,
        mag_wmean=mag,
    )
    if with_mjd:
        mjd = frame["mjd"].to_numpy(dtype=np.float64)
        lo = np.full(k, np.inf)
        hi = np.full(k, -np.inf)
        np.minimum.at(lo, codes, mjd)
        np.maximum.at(hi, codes, mjd)
        out["mjd_min"], out["mjd_max"] = lo, hi
    out["band"] = out["band"].astype("string")
    out["objectId"] = out["objectId"].astype(np.int64)
    return out


def mean_positions(
    codes: npt.NDArray[np.int64], k: int, ra: npt.NDArray[np.float64], dec: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Mean position (deg) of each group: the normalised mean of the unit vectors, as
    ``lsst.geom.averageSpherePoint`` (and so faro) computes it.

    Examples
    --------
    >>> ra, dec = mean_positions(np.array([0, 0]), 1, np.array([359.0, 1.0]), np.array([0.0, 0.0]))
    >>> round(float(ra[0]), 6) % 360.0, round(float(dec[0]), 6)
    (0.0, 0.0)
    """
    r, d = np.radians(ra), np.radians(dec)
    x = np.bincount(codes, np.cos(d) * np.cos(r), minlength=k)
    y = np.bincount(codes, np.cos(d) * np.sin(r), minlength=k)
    z = np.bincount(codes, np.sin(d), minlength=k)
    norm = np.sqrt(x**2 + y**2 + z**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_ra = np.degrees(np.arctan2(y, x)) % 360.0
        mean_dec = np.degrees(np.arcsin(np.clip(z / norm, -1.0, 1.0)))
    return mean_ra, mean_dec
