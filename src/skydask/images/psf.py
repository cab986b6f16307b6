"""PSF size from the bright stars of one image: detection, adaptive moments, stellar selection.

* **Candidates**: peaks of the image smoothed by a Gaussian of sigma 1.5 pixels (3 x 3 local
  maxima) whose matched-filter S/N exceeds ``snr_min`` (50 by default: bright, yet unsaturated
  for most exposures), at least ``radius`` pixels from the edge, with no bad pixel and no other
  5-sigma peak within ``radius``.
* **Size**: adaptive second moments with an elliptical Gaussian weight, iterated as in HSM
  (Hirata & Seljak 2003): the weighted moments ``P`` of the star under a weight of covariance
  ``W`` give the Gaussian-equivalent covariance ``C = (P^-1 - W^-1)^-1``, which becomes the next
  ``W``. For a Gaussian star this converges to its covariance exactly. The FWHM is
  ``2.3548 det(C)**(1/4)`` (the determinant radius, as the object generator and the schema's
  ``psf_fwhm`` define it). It is the FWHM of the star *as sampled on the pixels*: about
  ``sqrt(FWHM^2 + 0.46 pixel^2)`` for a Gaussian PSF of FWHM ``FWHM``, and that is the size
  the point-source noise-equivalent area ``4 pi det(C)**(1/2) = 2.266 FWHM^2`` needs.
  A star whose weighted centroid wanders more than 2 pixels from its peak (pulled by a
  neighbour) or whose sigma is below half a pixel (a hot pixel) is dropped.
* **Stars**: galaxies are the PSF convolved with something, so stars are the smallest sources:
  starting from the 20th percentile of the candidates' sizes, keep those within 15 % of the
  reference, and iterate the reference as their median (three times). The estimate is the
  median over the kept stars, or NaN when fewer than ``min_stars`` remain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["PsfEstimate", "adaptive_moments", "estimate_psf", "find_candidates"]

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_SMOOTH = 1.5


@dataclass(frozen=True)
class PsfEstimate:
    """Result of :func:`estimate_psf`: the FWHM (pixels) and the stars it came from."""

    fwhm_pix: float
    n_stars: int
    n_candidates: int
    star_x: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    star_y: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    star_fwhm_pix: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))


def find_candidates(
    data: NDArray[np.float64],
    good: NDArray[np.bool_],
    noise: float,
    *,
    snr_min: float,
    radius: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Bright isolated peaks ``(x, y)`` of sky-subtracted ``data`` (see the module docstring)."""
    filled = np.where(good, data, 0.0)
    smooth = ndimage.gaussian_filter(filled, _SMOOTH, mode="constant")
    # the noise of a Gaussian-smoothed white-noise image is noise / (2 sqrt(pi) sigma)
    snr = smooth / (noise / (2.0 * math.sqrt(math.pi) * _SMOOTH))
    peak = (smooth == ndimage.maximum_filter(smooth, size=3)) & (snr > 5.0)
    py, px = np.nonzero(peak)
    bright = snr[py, px] > snr_min
    ny, nx = data.shape
    inside = (px >= radius) & (px < nx - radius) & (py >= radius) & (py < ny - radius)
    bad_near = ndimage.maximum_filter((~good).astype(np.uint8), size=2 * radius + 1) > 0
    keep = []
    for k in np.flatnonzero(bright & inside):
        if bad_near[py[k], px[k]]:
            continue
        d2 = (px - px[k]) ** 2 + (py - py[k]) ** 2
        if np.count_nonzero(d2 <= radius * radius) > 1:  # another peak too close
            continue
        keep.append(k)
    idx = np.array(keep, dtype=np.int64)
    return px[idx].astype(np.int64), py[idx].astype(np.int64)


def adaptive_moments(
    stamp: NDArray[np.float64], x0: float, y0: float, sigma0: float, max_iter: int = 100
) -> tuple[float, float, NDArray[np.float64]] | None:
    """Centroid and Gaussian-equivalent covariance ``(x, y, C)`` of a source, or None.

    ``stamp`` is sky-subtracted; ``(x0, y0)`` and ``sigma0`` start the iteration.

    Examples
    --------
    >>> yy, xx = np.mgrid[0:41, 0:41]
    >>> g = np.exp(-((xx - 20.3) ** 2 / 9.0 + (yy - 19.8) ** 2 / 4.0) / 2)
    >>> x, y, c = adaptive_moments(g, 20.0, 20.0, 2.0)
    >>> round(x, 6), round(y, 6), (c.round(6) + 0.0).tolist()
    (20.3, 19.8, [[9.0, 0.0], [0.0, 4.0]])
    """
    yy, xx = np.mgrid[0 : stamp.shape[0], 0 : stamp.shape[1]].astype(np.float64)
    w_cov = np.eye(2) * sigma0**2
    xc, yc = float(x0), float(y0)
    change = math.inf
    for _ in range(max_iter):
        inv = np.linalg.inv(w_cov)
        dx, dy = xx - xc, yy - yc
        r2 = inv[0, 0] * dx * dx + 2 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy
        wi = stamp * np.exp(-0.5 * r2)
        s0 = wi.sum()
        if not s0 > 0:
            return None
        mx, my = (wi * dx).sum() / s0, (wi * dy).sum() / s0
        p = (
            np.array(
                [
                    [(wi * (dx - mx) ** 2).sum(), (wi * (dx - mx) * (dy - my)).sum()],
                    [(wi * (dx - mx) * (dy - my)).sum(), (wi * (dy - my) ** 2).sum()],
                ]
            )
            / s0
        )
        try:
            c_inv = np.linalg.inv(p) - inv
            new = np.linalg.inv(c_inv)
        except np.linalg.LinAlgError:
            return None
        if np.linalg.eigvalsh(new).min() <= 0:
            new = 2.0 * p  # outside the Gaussian regime: the plain fixed-point step
        xc, yc = xc + mx, yc + my
        if not (0 <= xc < stamp.shape[1] and 0 <= yc < stamp.shape[0]):
            return None
        change = np.abs(new - w_cov).max() / max(np.trace(new), 1e-12)
        w_cov = new
        if change < 1e-9 and abs(mx) < 1e-7 and abs(my) < 1e-7:
            return float(xc), float(yc), w_cov
    return (float(xc), float(yc), w_cov) if change < 1e-5 else None


def estimate_psf(
    data: NDArray[np.float64],
    good: NDArray[np.bool_],
    noise: float,
    *,
    snr_min: float = 50.0,
    min_stars: int = 3,
    radius: int = 12,
) -> PsfEstimate:
    """FWHM (pixels) of the PSF from the bright stars of sky-subtracted ``data``.

    ``good`` marks usable pixels, ``noise`` is the sky noise per pixel (same units as
    ``data``), ``radius`` the half-size of each star's stamp (about 5 PSF sigmas).
    """
    if not (noise > 0 and math.isfinite(noise)):
        return PsfEstimate(math.nan, 0, 0)
    px, py = find_candidates(data, good, noise, snr_min=snr_min, radius=radius)
    xs, ys, sizes = [], [], []
    for x, y in zip(px.tolist(), py.tolist(), strict=True):
        stamp = data[y - radius : y + radius + 1, x - radius : x + radius + 1]
        result = adaptive_moments(stamp, radius, radius, 2.0)
        if result is None:
            continue
        sx, sy, cov = result
        if math.hypot(sx - radius, sy - radius) > 2.0:  # drifted to a brighter neighbour
            continue
        det = float(np.linalg.det(cov))
        if det <= 0.0625:  # sigma < 0.5 pixel: a hot pixel or a cosmic ray, not a star
            continue
        xs.append(x - radius + sx)
        ys.append(y - radius + sy)
        sizes.append(det**0.25)
    n_cand = len(sizes)
    if not sizes:
        return PsfEstimate(math.nan, 0, 0)
    s = np.array(sizes)
    ref = float(np.percentile(s, 20))
    sel = np.abs(s - ref) <= 0.15 * ref
    for _ in range(3):
        if not sel.any():  # the sizes are spread out: start again from the smallest
            sel = s == s.min()
        ref = float(np.median(s[sel]))
        sel = np.abs(s - ref) <= 0.15 * ref
    n = int(sel.sum())
    fwhm = FWHM_PER_SIGMA * float(np.median(s[sel])) if n >= min_stars else math.nan
    return PsfEstimate(
        fwhm_pix=fwhm,
        n_stars=n,
        n_candidates=n_cand,
        star_x=np.array(xs)[sel],
        star_y=np.array(ys)[sel],
        star_fwhm_pix=FWHM_PER_SIGMA * s[sel],
    )
