"""Observing model: dithered LSST pointings and the true depth and PSF on HEALPix pixels.

Numbers (all in :class:`SurveyModel`, written to ``synth.json``):

* Field of view: a circle of radius ``fov_radius_deg = 1.75`` deg.
* Visits: LSST 10-year design numbers per band u 56, g 80, r 184, i 184, z 160, y 160, scaled
  by ``years / 10``.
* Pointings: per band, centres uniform on the sphere over the footprint box expanded by
  1.75 deg in Dec and by ``asin(sin 1.75 deg / cos dec*)`` in RA (``dec*`` the footprint edge
  nearest a pole), so every footprint point sees the same expected visit count. The number of
  pointings is ``round(N_visits * A_box / A_fov)``, so the mean visit count over the footprint
  matches ``N_visits``.
* Visit counts per HEALPix NESTED pixel at ``nside_truth`` (512 by default, 6.9 arcmin pixels)
  on every pixel whose centre is within one pixel radius of the footprint (all pixels that
  can hold an object): a pointing covers the pixels whose centres are inside its circle
  (``hpgeom.query_circle(..., inclusive=False)``).
* Depth: true 5-sigma point-source depth ``m5 = m_single + 1.25 log10(N_visits)`` with the LSST
  design single-visit depths u 23.9, g 25.0, r 24.7, i 24.0, z 23.3, y 22.1. Pixels with no
  visit have ``m5 = NaN``.
* Seeing: each visit has a Gaussian PSF of FWHM
  ``FWHM_zenith,b * X**0.6 * exp(N(0, 0.15))``, with the delivered zenith FWHM
  ``0.80" (lambda_b / 622 nm)**-0.2``: u 0.889, g 0.843, r 0.800, i 0.770, z 0.748, y 0.732",
  and the airmass ``X = 1 / cos(dec - latitude)`` of the pointing centre at transit from
  Cerro Pachon (latitude -30.24 deg) as the smooth part. Each visit PSF also has an ellipticity
  (distortion) drawn per component from N(0, 0.05).
* Coadd PSF per pixel: the second-moment matrix of an equal-weight coadd of Gaussian visit PSFs
  is the mean of the visit moment matrices, so the pixel's PSF moments are that mean; its FWHM
  is ``2.355 det(M)**(1/4)`` (the determinant radius, the same formula as the schema's derived
  ``psf_fwhm_<b>``) and its distortion ``((Mxx - Myy), 2 Mxy) / (Mxx + Myy)``.

Objects take the values of the pixel they fall in, so the truth is exactly piecewise constant
on pixels. The pointings are drawn from ``seed`` alone (stream ``[seed, 0x5EED0001, band + 1]``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import hpgeom
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from skydask.errors import SkydaskError
from skydask.schema.definitions import BANDS
from skydask.synth.shapes import gaussian_moments

__all__ = ["DepthTruth", "Pointings", "SurveyModel", "compute_depth_truth", "draw_pointings"]

_STREAM_SURVEY = 0x5EED0001
# Pointings are processed in chunks so that a large footprint does not hold every visit's
# pixel list at once.
_CHUNK = 512


def _per_band(values: dict[str, float]) -> dict[str, float]:
    return {b: values[b] for b in BANDS}


@dataclass(frozen=True)
class SurveyModel:
    """Parameters of the observing model (see the module docstring for their meaning)."""

    single_visit_m5: dict[str, float] = field(
        default_factory=lambda: _per_band(
            {"u": 23.9, "g": 25.0, "r": 24.7, "i": 24.0, "z": 23.3, "y": 22.1}
        )
    )
    visits_10yr: dict[str, float] = field(
        default_factory=lambda: _per_band(
            {"u": 56, "g": 80, "r": 184, "i": 184, "z": 160, "y": 160}
        )
    )
    seeing_fwhm_zenith: dict[str, float] = field(
        default_factory=lambda: _per_band(
            {"u": 0.889, "g": 0.843, "r": 0.800, "i": 0.770, "z": 0.748, "y": 0.732}
        )
    )
    fov_radius_deg: float = 1.75
    seeing_ln_scatter: float = 0.15
    airmass_exponent: float = 0.6
    site_latitude_deg: float = -30.24
    visit_psf_e_rms: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        return {
            "single_visit_m5": dict(self.single_visit_m5),
            "visits_10yr": dict(self.visits_10yr),
            "seeing_fwhm_zenith_arcsec": dict(self.seeing_fwhm_zenith),
            "fov_radius_deg": self.fov_radius_deg,
            "seeing_ln_scatter": self.seeing_ln_scatter,
            "airmass_exponent": self.airmass_exponent,
            "site_latitude_deg": self.site_latitude_deg,
            "visit_psf_e_rms": self.visit_psf_e_rms,
        }


@dataclass(frozen=True)
class Pointings:
    """The visits of one band: centres (deg), PSF FWHM (arcsec) and PSF distortion."""

    band: str
    ra: NDArray[np.float64]
    dec: NDArray[np.float64]
    fwhm: NDArray[np.float64]
    e1: NDArray[np.float64]
    e2: NDArray[np.float64]


def _expanded_box(
    footprint: tuple[float, float, float, float], radius: float
) -> tuple[float, float, float, float]:
    ra_min, ra_max, dec_min, dec_max = footprint
    dec_star = max(abs(dec_min), abs(dec_max))
    ratio = math.sin(math.radians(radius)) / math.cos(math.radians(dec_star))
    if ratio >= 1.0 or ra_max - ra_min + 2 * math.degrees(math.asin(ratio)) >= 360.0:
        ra_lo, ra_hi = 0.0, 360.0  # a cap reaches round the pole: take every RA
    else:
        pad = math.degrees(math.asin(ratio))
        ra_lo, ra_hi = ra_min - pad, ra_max + pad
    return ra_lo, ra_hi, max(-90.0, dec_min - radius), min(90.0, dec_max + radius)


def draw_pointings(
    footprint: tuple[float, float, float, float], years: float, seed: int, model: SurveyModel
) -> list[Pointings]:
    """Draw the dithered pointings of every band from ``seed`` alone.

    Examples
    --------
    >>> p = draw_pointings((60.0, 62.0, -36.0, -34.0), 1.0, 1, SurveyModel())
    >>> [x.band for x in p] == list(BANDS)
    True
    >>> bool(p[2].fwhm.min() > 0.3) and bool(p[2].fwhm.max() < 2.0)
    True
    """
    ra_lo, ra_hi, dec_lo, dec_hi = _expanded_box(footprint, model.fov_radius_deg)
    s_lo, s_hi = math.sin(math.radians(dec_lo)), math.sin(math.radians(dec_hi))
    box_area = math.radians(ra_hi - ra_lo) * (s_hi - s_lo)
    fov_area = 2.0 * math.pi * (1.0 - math.cos(math.radians(model.fov_radius_deg)))
    out = []
    for k, band in enumerate(BANDS):
        rng = np.random.default_rng([seed, _STREAM_SURVEY, k + 1])
        n_visits = model.visits_10yr[band] * years / 10.0
        n = round(n_visits * box_area / fov_area)
        ra = np.mod(rng.uniform(ra_lo, ra_hi, n), 360.0)
        dec = np.degrees(np.arcsin(rng.uniform(s_lo, s_hi, n)))
        airmass = 1.0 / np.cos(np.radians(dec - model.site_latitude_deg))
        fwhm = (
            model.seeing_fwhm_zenith[band]
            * airmass**model.airmass_exponent
            * np.exp(rng.normal(0.0, model.seeing_ln_scatter, n))
        )
        e1 = rng.normal(0.0, model.visit_psf_e_rms, n)
        e2 = rng.normal(0.0, model.visit_psf_e_rms, n)
        out.append(Pointings(band, ra, dec, fwhm, e1, e2))
    return out


@dataclass(frozen=True)
class DepthTruth:
    """True depth and coadd PSF per HEALPix NESTED pixel (arrays are ``(band, pixel)``).

    ``psf_xx``, ``psf_yy``, ``psf_xy`` are the coadd PSF second moments in arcsec^2.
    """

    nside: int
    pixels: NDArray[np.int64]
    nvisits: NDArray[np.int32]
    m5: NDArray[np.float64]
    psf_xx: NDArray[np.float64]
    psf_yy: NDArray[np.float64]
    psf_xy: NDArray[np.float64]

    @property
    def psf_fwhm(self) -> NDArray[np.float64]:
        """Coadd PSF FWHM (arcsec) from the determinant radius of its moments."""
        det = self.psf_xx * self.psf_yy - self.psf_xy**2
        return np.asarray(2.355 * det**0.25, dtype=np.float64)

    def index(self, ra: NDArray[np.float64], dec: NDArray[np.float64]) -> NDArray[np.int64]:
        """Index into ``pixels`` of the pixel containing each position."""
        pix = hpgeom.angle_to_pixel(self.nside, ra, dec, nest=True)
        idx = np.searchsorted(self.pixels, pix)
        idx = np.minimum(idx, len(self.pixels) - 1)
        if len(pix) and not np.array_equal(self.pixels[idx], pix):
            raise SkydaskError(
                f"depth truth at nside {self.nside} does not cover every object position; "
                "expected every footprint pixel to be present"
            )
        return np.asarray(idx, dtype=np.int64)

    def to_frame(self) -> pd.DataFrame:
        """The per-pixel truth table written to ``truth/depth_truth.parquet``."""
        ra, dec = hpgeom.pixel_to_angle(self.nside, self.pixels, nest=True)
        cols: dict[str, Any] = {"pixel": self.pixels, "ra": ra, "dec": dec}
        fwhm = self.psf_fwhm
        tr = self.psf_xx + self.psf_yy
        for k, b in enumerate(BANDS):
            cols[f"nvisits_{b}"] = self.nvisits[k]
            cols[f"m5_{b}"] = self.m5[k]
            cols[f"psf_fwhm_{b}"] = fwhm[k]
            cols[f"psf_e1_{b}"] = (self.psf_xx[k] - self.psf_yy[k]) / tr[k]
            cols[f"psf_e2_{b}"] = 2.0 * self.psf_xy[k] / tr[k]
        return pd.DataFrame(cols)


def footprint_pixels(footprint: tuple[float, float, float, float], nside: int) -> NDArray[np.int64]:
    """Sorted NESTED pixels whose centres lie within one pixel radius of the footprint box.

    Every pixel that overlaps the footprint has its centre within ``max_pixel_radius`` of a
    footprint point, so this exact centre test is a guaranteed superset (hpgeom's
    ``inclusive=True`` overlap test is approximate and could miss a pixel that only grazes a
    corner). The truth therefore also lists a thin ring of pixels just outside the footprint.
    """
    radius = float(hpgeom.max_pixel_radius(nside))
    ra_lo, ra_hi, dec_lo, dec_hi = _expanded_box(footprint, radius)
    if ra_hi - ra_lo >= 360.0:
        ra_lo, ra_hi = 0.0, 360.0
    else:  # hpgeom wraps through RA = 0 when a0 > a1
        ra_lo, ra_hi = ra_lo % 360.0, ra_hi % 360.0 if ra_hi > 360.0 else ra_hi
    pix = hpgeom.query_box(nside, ra_lo, ra_hi, dec_lo, dec_hi, inclusive=False, nest=True)
    return np.unique(np.asarray(pix, dtype=np.int64))


def compute_depth_truth(
    footprint: tuple[float, float, float, float],
    years: float,
    seed: int,
    nside: int,
    model: SurveyModel,
    pointings: list[Pointings] | None = None,
) -> DepthTruth:
    """Visit counts, depth and coadd PSF on every footprint pixel.

    Examples
    --------
    >>> fp = (60.0, 62.0, -36.0, -34.0)
    >>> truth = compute_depth_truth(fp, 5.0, 1, 64, SurveyModel())
    >>> r = list(BANDS).index("r")
    >>> 70 < float(np.mean(truth.nvisits[r])) < 115   # 184 visits in 10 years, 5 years here
    True
    >>> bool(np.allclose(truth.m5[r], 24.7 + 1.25 * np.log10(truth.nvisits[r])))
    True
    """
    if pointings is None:
        pointings = draw_pointings(footprint, years, seed, model)
    pixels = footprint_pixels(footprint, nside)
    nb, npix = len(BANDS), len(pixels)
    nvisits = np.zeros((nb, npix), dtype=np.int32)
    sums = np.zeros((3, nb, npix), dtype=np.float64)
    for k, p in enumerate(pointings):
        xx, yy, xy = gaussian_moments(p.fwhm / 2.355, p.e1 + 1j * p.e2)
        for start in range(0, len(p.ra), _CHUNK):
            sl = slice(start, start + _CHUNK)
            hits = [
                hpgeom.query_circle(nside, a, d, model.fov_radius_deg, inclusive=False, nest=True)
                for a, d in zip(p.ra[sl], p.dec[sl], strict=True)
            ]
            counts = np.array([len(h) for h in hits], dtype=np.int64)
            if counts.sum() == 0:
                continue
            pix = np.concatenate(hits)
            visit = np.repeat(np.arange(start, start + len(hits)), counts)
            idx = np.minimum(np.searchsorted(pixels, pix), npix - 1)
            inside = pixels[idx] == pix  # drop the parts of the caps off the footprint
            idx, visit = idx[inside], visit[inside]
            nvisits[k] += np.bincount(idx, minlength=npix).astype(np.int32)
            for j, w in enumerate((xx, yy, xy)):
                sums[j, k] += np.bincount(idx, weights=w[visit], minlength=npix)
    with np.errstate(divide="ignore", invalid="ignore"):
        covered = nvisits > 0
        mean = np.where(covered, sums / np.maximum(nvisits, 1), np.nan)
        m5_single = np.array([model.single_visit_m5[b] for b in BANDS])[:, None]
        m5 = np.where(covered, m5_single + 1.25 * np.log10(np.maximum(nvisits, 1)), np.nan)
    return DepthTruth(nside, pixels, nvisits, m5, mean[0], mean[1], mean[2])


def pointings_frame(pointings: list[Pointings]) -> pd.DataFrame:
    """All visits as one table (band, ra, dec, fwhm, e1, e2) for ``truth/pointings.parquet``."""
    return pd.concat(
        [
            pd.DataFrame(
                {"band": p.band, "ra": p.ra, "dec": p.dec, "psf_fwhm": p.fwhm,
                 "psf_e1": p.e1, "psf_e2": p.e2}
            )
            for p in pointings
        ],
        ignore_index=True,
    )  # fmt: skip
