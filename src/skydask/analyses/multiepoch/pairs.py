"""Pairs of stars at a given separation, formed cell by cell on the sky, and their rms.

AM1 compares every pair of stars whose mean positions are 4-6 arcmin apart. Pairs are local
on the sky, so the work is split into HEALPix cells (``pair_nside``, 1.8 deg by default) with a
margin: a star's measurements go to its own cell and to every cell within the annulus's outer
radius of it (:func:`assign_cells`). A pair is formed in the cell of its star with the smaller
objectId (its *home* cell), where the other star's rows are present by construction, so every
pair is counted exactly once (:func:`pair_rms`). Between those two steps the rows are shuffled
by cell (a shuffle, named as such in :func:`astrometric_repeatability`).
"""

from __future__ import annotations

import hpgeom
import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["PAIR_COLUMNS", "assign_cells", "find_pairs", "haversine_deg", "pair_rms"]

PAIR_COLUMNS = {
    "band": "band",
    "objectId_1": "first star (the smaller objectId)",
    "objectId_2": "second star",
    "separation_arcmin": "separation of the mean positions (arcmin)",
    "n_visits": "visits in which both stars were measured",
    "rms_mas": "sample rms (ddof 1) over those visits of the separation (mas)",
    "mag_1": "median magnitude of the first star",
    "mag_2": "median magnitude of the second star",
}


def haversine_deg(
    ra1: npt.ArrayLike, dec1: npt.ArrayLike, ra2: npt.ArrayLike, dec2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Angular distance (deg) by the haversine formula, accurate at small separations.

    Examples
    --------
    >>> round(float(haversine_deg(10.0, 0.0, 10.0, 1.0 / 3600)) * 3600, 9)
    1.0
    """
    r1, d1, r2, d2 = (np.radians(np.asarray(x, dtype=np.float64)) for x in (ra1, dec1, ra2, dec2))
    a = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.asarray(np.degrees(2.0 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))))


def assign_cells(rows: pd.DataFrame, nside: int, radius_deg: float) -> pd.DataFrame:
    """Copies of each star's rows for its home cell and every cell within ``radius_deg``.

    ``rows`` has per-measurement ``objectId``, ``band`` and the star's mean position
    ``ra_mean``, ``dec_mean``; the result adds ``cell`` (the copy's cell) and ``home`` (the
    star's own cell), NESTED at ``nside``.
    """
    stars = rows.drop_duplicates(["objectId", "band"])[["objectId", "band", "ra_mean", "dec_mean"]]
    if len(stars) == 0:
        return rows.assign(cell=np.zeros(0, np.int64), home=np.zeros(0, np.int64))
    ra = stars["ra_mean"].to_numpy()
    dec = stars["dec_mean"].to_numpy()
    home = hpgeom.angle_to_pixel(nside, ra, dec, nest=True).astype(np.int64)
    cells = [
        hpgeom.query_circle(nside, a, d, radius_deg, inclusive=True, nest=True)
        for a, d in zip(ra, dec, strict=True)
    ]
    counts = np.array([len(c) for c in cells])
    table = pd.DataFrame(
        {
            "objectId": np.repeat(stars["objectId"].to_numpy(), counts),
            "band": np.repeat(stars["band"].to_numpy(), counts),
            "cell": np.concatenate(cells).astype(np.int64),
            "home": np.repeat(home, counts),
        }
    )
    return rows.merge(table, on=["objectId", "band"], how="inner")


def find_pairs(
    ra: npt.NDArray[np.float64],
    dec: npt.NDArray[np.float64],
    inner_deg: float,
    outer_deg: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Index pairs ``i < j`` with ``inner <= separation < outer`` (deg), and the separations.

    A sweep in declination: each star is compared with the stars within ``outer`` of it in
    Dec only, so the cost grows with the number of neighbours, not the square of the stars.

    Examples
    --------
    >>> ra = np.array([10.0, 10.0, 10.0]); dec = np.array([0.0, 5 / 60, 0.5])
    >>> i, j, sep = find_pairs(ra, dec, 4 / 60, 6 / 60)
    >>> i.tolist(), j.tolist(), [round(float(s) * 60, 6) for s in sep]
    ([0], [1], [5.0])
    """
    order = np.argsort(dec, kind="stable")
    d_sorted = dec[order]
    lo = np.searchsorted(d_sorted, d_sorted - outer_deg, side="left")
    hi = np.searchsorted(d_sorted, d_sorted + outer_deg, side="right")
    first, second = [], []
    for a in range(len(order)):
        # candidates later in the sweep only, so each unordered pair is seen once
        b = np.arange(max(a + 1, lo[a]), hi[a])
        if len(b):
            first.append(np.full(len(b), a))
            second.append(b)
    if not first:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    a_idx = order[np.concatenate(first)]
    b_idx = order[np.concatenate(second)]
    sep = haversine_deg(ra[a_idx], dec[a_idx], ra[b_idx], dec[b_idx])
    keep = (sep >= inner_deg) & (sep < outer_deg)
    i = np.minimum(a_idx, b_idx)[keep]
    j = np.maximum(a_idx, b_idx)[keep]
    return i.astype(np.int64), j.astype(np.int64), sep[keep]


def _empty_pairs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "band": pd.array([], dtype="string"),
            "objectId_1": np.zeros(0, np.int64),
            "objectId_2": np.zeros(0, np.int64),
            "separation_arcmin": np.zeros(0),
            "n_visits": np.zeros(0, np.int64),
            "rms_mas": np.zeros(0),
            "mag_1": np.zeros(0),
            "mag_2": np.zeros(0),
        }
    )


def pair_rms(rows: pd.DataFrame, inner_deg: float, outer_deg: float) -> pd.DataFrame:
    """Every pair whose home cell this partition holds: separation and rms over visits.

    ``rows``: per measurement ``objectId``, ``band``, ``visit``, ``ra``, ``dec``, the star's
    ``ra_mean``, ``dec_mean``, ``mag_median``, and ``cell``/``home`` from
    :func:`assign_cells`. Pairs need two visits in common (``ddof = 1``).
    """
    if len(rows) == 0:
        return _empty_pairs()
    out = []
    for (band, cell), part in rows.groupby(["band", "cell"], sort=True, observed=True):
        stars = part.drop_duplicates("objectId")
        i, j, sep = find_pairs(
            stars["ra_mean"].to_numpy(), stars["dec_mean"].to_numpy(), inner_deg, outer_deg
        )
        if len(i) == 0:
            continue
        ids = stars["objectId"].to_numpy()
        home = stars["home"].to_numpy()
        mag = stars["mag_median"].to_numpy()
        a = np.where(ids[i] < ids[j], i, j)
        b = np.where(ids[i] < ids[j], j, i)
        mine = home[a] == cell  # formed in the home cell of the smaller objectId only
        a, b, sep = a[mine], b[mine], sep[mine]
        if len(a) == 0:
            continue
        pairs = pd.DataFrame(
            {
                "pair": np.arange(len(a)),
                "objectId_1": ids[a],
                "objectId_2": ids[b],
                "separation_arcmin": sep * 60.0,
                "mag_1": mag[a],
                "mag_2": mag[b],
            }
        )
        meas = part[["objectId", "visit", "ra", "dec"]]
        both = pairs[["pair", "objectId_1", "objectId_2"]].merge(
            meas.rename(columns={"objectId": "objectId_1", "ra": "ra_1", "dec": "dec_1"}),
            on="objectId_1",
        )
        both = both.merge(
            meas.rename(columns={"objectId": "objectId_2", "ra": "ra_2", "dec": "dec_2"}),
            on=["objectId_2", "visit"],
        )
        dist = haversine_deg(both["ra_1"], both["dec_1"], both["ra_2"], both["dec_2"]) * 3.6e6
        finite = np.isfinite(dist)
        code = both["pair"].to_numpy()[finite]
        dist = dist[finite]
        k = len(pairs)
        n = np.bincount(code, minlength=k)
        mean = np.bincount(code, dist, minlength=k) / np.maximum(n, 1)
        ss = np.bincount(code, (dist - mean[code]) ** 2, minlength=k)
        with np.errstate(divide="ignore", invalid="ignore"):
            rms = np.where(n > 1, np.sqrt(ss / (n - 1)), np.nan)
        pairs = pairs.assign(n_visits=n, rms_mas=rms, band=str(band))
        out.append(pairs[pairs["n_visits"] > 1])
    if not out:
        return _empty_pairs()
    result = pd.concat(out, ignore_index=True)[list(PAIR_COLUMNS)]
    result["band"] = result["band"].astype("string")
    return result
