"""Draw one synthetic visit: PSF, stars and galaxies, noise, saturation, bad columns, cosmic rays.

Units are electrons (gain 1). The model of :func:`skydask.synth.images.generate_image_stack`:

* PSF: an elliptical Gaussian of FWHM ``fwhm`` and distortion ``(e1, e2)``
  (covariance from :func:`skydask.synth.shapes.gaussian_moments`), or an elliptical Moffat of
  the same FWHM with ``beta`` (4.765, the value Trujillo et al. 2001 derive for Kolmogorov
  turbulence). Gaussian profiles are evaluated at pixel centres with ``1/12`` pixel^2 added to
  the covariance, the second moment of the pixel's box, so a star's pixel values are close to
  the pixel-integrated ones and its measured moments are exactly ``C + I/12``; Moffat profiles
  are evaluated at pixel centres.
* Galaxies: Gaussian profiles of determinant radius ``sigma`` and distortion ``e``; the
  observed galaxy is the Gaussian of covariance ``C_psf + C_gal`` (exact for a Gaussian PSF;
  with a Moffat PSF the Gaussian of the Moffat's FWHM stands in for it, an approximation).
* Each profile is normalised analytically to its flux and drawn on a stamp of radius 6 sigma
  (Gaussian) or 5 FWHM (Moffat), at most 100 pixels; the flux beyond is lost (< 1e-7 of a
  Gaussian, ~1e-3 of a Moffat).
* Noise: Gaussian with variance ``sky_sigma**2 + model`` (sky plus the sources' Poisson noise);
  the variance plane is that expectation, as a pipeline estimates it.
* Saturation at ``saturation`` electrons (sky included): values are clipped and flagged ``SAT``.
* Bad columns (same columns in every visit, as on a detector): ``+50 sky_sigma``, flagged
  ``BAD``. Cosmic rays: straight tracks of 2 to 8 pixels, ``+20..100 sky_sigma`` per pixel,
  flagged ``CR``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from skydask.images.masks import MASK_DTYPE, bit
from skydask.synth.shapes import gaussian_moments

__all__ = ["VisitDraw", "draw_visit", "effective_area", "psf_covariance", "render_psf"]

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_MAX_RADIUS = 100
_PIXEL_VAR = 1.0 / 12.0


@dataclass(frozen=True)
class VisitDraw:
    """The pixels of one visit (``image``, ``variance``, ``mask``) and its drawn artefacts."""

    image: NDArray[np.float32]
    variance: NDArray[np.float32]
    mask: NDArray[np.int32]
    n_saturated: int
    n_cosmic: int


def psf_covariance(fwhm_pix: float, e1: float, e2: float) -> NDArray[np.float64]:
    """2x2 covariance (pixel^2) of a Gaussian PSF of FWHM ``fwhm_pix`` and distortion (e1, e2).

    Examples
    --------
    >>> c = psf_covariance(2.3548200450309493, 0.0, 0.0)
    >>> c.round(6).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    xx, yy, xy = gaussian_moments(
        np.array([fwhm_pix / _FWHM_PER_SIGMA]), np.array([complex(e1, e2)])
    )
    return np.array([[xx[0], xy[0]], [xy[0], yy[0]]], dtype=np.float64)


def _moffat_alpha(fwhm: float, beta: float) -> float:
    return fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


def _profile(
    dx: NDArray[np.float64], dy: NDArray[np.float64], cov: NDArray[np.float64],
    psf: str, beta: float,
) -> NDArray[np.float64]:  # fmt: skip
    """Unit-flux profile at offsets (dx, dy): Gaussian of ``cov`` or Moffat with that shape."""
    det = cov[0, 0] * cov[1, 1] - cov[0, 1] ** 2
    inv = np.array([[cov[1, 1], -cov[0, 1]], [-cov[0, 1], cov[0, 0]]]) / det
    r2 = inv[0, 0] * dx * dx + 2.0 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy
    if psf == "gaussian":
        return np.exp(-0.5 * r2) / (2.0 * math.pi * math.sqrt(det))
    # Moffat with the shape of cov: r2 is in units of sigma^2, rescale to alpha^2
    sigma = det**0.25
    alpha = _moffat_alpha(_FWHM_PER_SIGMA * sigma, beta)
    u = r2 * sigma**2 / alpha**2
    return (beta - 1.0) / (math.pi * alpha**2) * (1.0 + u) ** (-beta)


def _radius(cov: NDArray[np.float64], psf: str) -> int:
    sigma_max = math.sqrt(float(np.linalg.eigvalsh(cov).max()))
    r = 6.0 * sigma_max if psf == "gaussian" else 5.0 * _FWHM_PER_SIGMA * sigma_max
    return min(_MAX_RADIUS, math.ceil(r) + 1)


def render_psf(cov: NDArray[np.float64], psf: str, beta: float, radius: int) -> NDArray[np.float64]:
    """The unit-flux PSF as drawn, centred on the middle pixel of a ``2 radius + 1`` stamp."""
    grid = np.arange(-radius, radius + 1, dtype=np.float64)
    dy, dx = np.meshgrid(grid, grid, indexing="ij")
    cov_eff = cov + _PIXEL_VAR * np.eye(2) if psf == "gaussian" else cov
    return _profile(dx, dy, cov_eff, psf, beta)


def effective_area(cov: NDArray[np.float64], psf: str, beta: float) -> float:
    """Noise-equivalent area ``1 / sum(p**2)`` (pixel^2) of the drawn unit-flux PSF ``p``.

    For the Gaussian this is ``4 pi sqrt(det(C + I/12))`` to high precision.

    Examples
    --------
    >>> c = psf_covariance(4.0, 0.0, 0.0)
    >>> a = effective_area(c, "gaussian", 0.0)
    >>> round(float(a / (4 * math.pi * (c[0, 0] + 1 / 12))), 6)
    1.0
    """
    p = render_psf(cov, psf, beta, _radius(cov, psf) + 10)
    return float(1.0 / np.sum(p * p))


def _add_sources(
    image: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    flux: NDArray[np.float64],
    gal_cov: NDArray[np.float64],
    psf_cov: NDArray[np.float64],
    psf: str,
    beta: float,
) -> None:
    ny, nx = image.shape
    for k in range(len(x)):
        cov = psf_cov + gal_cov[k]
        is_point = not gal_cov[k].any()
        kind = psf if is_point else "gaussian"
        if kind == "gaussian":
            cov = cov + _PIXEL_VAR * np.eye(2)
        r = _radius(cov, kind)
        xc, yc = round(x[k]), round(y[k])
        x0, x1 = max(0, xc - r), min(nx, xc + r + 1)
        y0, y1 = max(0, yc - r), min(ny, yc + r + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        dy, dx = np.meshgrid(np.arange(y0, y1) - y[k], np.arange(x0, x1) - x[k], indexing="ij")
        image[y0:y1, x0:x1] += flux[k] * _profile(dx, dy, cov, kind, beta)


def draw_visit(
    rng: np.random.Generator,
    shape: tuple[int, int],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    flux: NDArray[np.float64],
    gal_cov: NDArray[np.float64],
    psf_cov: NDArray[np.float64],
    *,
    psf: str,
    beta: float,
    sky_sigma: float,
    sky_level: float,
    saturation: float,
    bad_columns: NDArray[np.int64],
    n_cosmic_rays: int,
) -> VisitDraw:
    """Draw one visit (see the module docstring); ``gal_cov`` is ``(n, 2, 2)``, zero for stars.

    ``sky_level`` is added to the image (0 for a background-subtracted image); the noise is
    the same either way.
    """
    model = np.zeros(shape, dtype=np.float64)
    _add_sources(model, x, y, flux, gal_cov, psf_cov, psf, beta)
    variance = sky_sigma**2 + np.maximum(model, 0.0)
    image = model + rng.standard_normal(shape) * np.sqrt(variance) + sky_level
    mask = np.zeros(shape, dtype=MASK_DTYPE)
    # saturation acts on the electrons collected, sky included, whatever is subtracted later
    collected = image - sky_level + sky_sigma**2
    saturated = collected > saturation
    image[saturated] = saturation - sky_sigma**2 + sky_level
    mask[saturated] |= bit("SAT")
    for col in bad_columns:
        image[:, col] += 50.0 * sky_sigma
        mask[:, col] |= bit("BAD")
    ny, nx = shape
    for _ in range(n_cosmic_rays):
        length = int(rng.integers(2, 9))
        angle = rng.uniform(0.0, math.pi)
        x0, y0 = rng.uniform(0, nx), rng.uniform(0, ny)
        t = np.arange(length)
        cx = np.clip(np.round(x0 + t * math.cos(angle)).astype(int), 0, nx - 1)
        cy = np.clip(np.round(y0 + t * math.sin(angle)).astype(int), 0, ny - 1)
        image[cy, cx] += rng.uniform(20.0, 100.0, length) * sky_sigma
        mask[cy, cx] |= bit("CR")
    return VisitDraw(
        image=image.astype(np.float32),
        variance=variance.astype(np.float32),
        mask=mask,
        n_saturated=int(saturated.sum()),
        n_cosmic=n_cosmic_rays,
    )
