"""Ellipticity algebra: intrinsic shapes, exact shearing, and the HSM distortion.

Conventions (complex numbers ``z = z1 + i z2`` in the local (east, north) frame):

* shear-ellipticity ``eps = (a - b) / (a + b) exp(2i phi)`` (the one that is an unbiased
  shear estimator);
* distortion ``e = (a^2 - b^2) / (a^2 + b^2) exp(2i phi) = 2 eps / (1 + |eps|^2)``, what HSM
  re-Gaussianization reports as ``ext_shapeHSM_HsmShapeRegauss_e1/e2``.

Intrinsic shapes: ``eps_int`` components Gaussian with ``sigma = 0.2`` each, truncated at
``|eps| < 0.9`` (drawn as a truncated Rayleigh modulus and a uniform angle, which is the same
distribution). Shearing is exact (Seitz & Schneider 1997):
``eps = (eps_int + g) / (1 + conj(g) eps_int)``.

The mean distortion of a sheared isotropic population is ``<e> = 2 (1 - e_rms^2) g`` to first
order in ``g`` (Bernstein & Jarvis 2002), with ``e_rms`` the per-component rms of the intrinsic
distortion, computed here by quadrature (:func:`distortion_rms`: 0.3491 for the defaults).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "apply_shear",
    "distortion_from_ellipticity",
    "distortion_rms",
    "draw_intrinsic_ellipticity",
    "gaussian_moments",
]

Complex = NDArray[np.complex128]


def draw_intrinsic_ellipticity(
    rng: np.random.Generator, n: int, sigma: float, eps_max: float
) -> Complex:
    """``n`` intrinsic shear-ellipticities: 2-D Gaussian (sigma per component), ``|eps| < eps_max``.

    Examples
    --------
    >>> eps = draw_intrinsic_ellipticity(np.random.default_rng(1), 100_000, 0.2, 0.9)
    >>> bool(np.abs(eps).max() < 0.9), round(float(np.std(eps.real)), 2)
    (True, 0.2)
    """
    # inverse CDF of the Rayleigh distribution truncated at eps_max
    tail = 1.0 - math.exp(-(eps_max**2) / (2.0 * sigma**2))
    u = rng.random(n)
    modulus = sigma * np.sqrt(-2.0 * np.log1p(-u * tail))
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    return np.asarray(modulus * np.exp(1j * angle), dtype=np.complex128)


def apply_shear(eps_int: Complex, g: Complex | complex) -> Complex:
    """Shear a shear-ellipticity exactly: ``(eps + g) / (1 + conj(g) eps)`` (requires |g| < 1).

    Examples
    --------
    >>> complex(apply_shear(np.array([0j]), 0.05 + 0.01j)[0])
    (0.05+0.01j)
    """
    g = np.asarray(g, dtype=np.complex128)
    return np.asarray((eps_int + g) / (1.0 + np.conj(g) * eps_int), dtype=np.complex128)


def distortion_from_ellipticity(eps: Complex) -> Complex:
    """The distortion ``2 eps / (1 + |eps|^2)`` of a shear-ellipticity.

    Examples
    --------
    >>> complex(distortion_from_ellipticity(np.array([0.5 + 0j]))[0])
    (0.8+0j)
    """
    return np.asarray(2.0 * eps / (1.0 + np.abs(eps) ** 2), dtype=np.complex128)


def distortion_rms(sigma: float, eps_max: float) -> float:
    """Per-component rms of the distortion of the intrinsic ellipticity distribution.

    Computed by quadrature over the truncated Rayleigh modulus (no random numbers), so it is
    exact for the model and independent of the seed.

    Examples
    --------
    >>> round(distortion_rms(0.2, 0.9), 4)
    0.3491
    """
    r = np.linspace(0.0, eps_max, 200_001)
    pdf = r / sigma**2 * np.exp(-(r**2) / (2.0 * sigma**2))
    e2 = (2.0 * r / (1.0 + r**2)) ** 2
    # |e|^2 = e1^2 + e2^2 and both components share it equally for an isotropic population
    return math.sqrt(float(np.trapezoid(e2 * pdf, r) / np.trapezoid(pdf, r)) / 2.0)


def gaussian_moments(
    size: NDArray[np.float64], e: Complex
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Second moments ``(Ixx, Iyy, Ixy)`` of a Gaussian with determinant radius ``size``.

    ``det(I) = size**4`` exactly and ``((Ixx - Iyy), 2 Ixy) / (Ixx + Iyy) = e`` (a distortion).

    Examples
    --------
    >>> xx, yy, xy = gaussian_moments(np.array([2.0]), np.array([0.6 + 0j]))
    >>> det = xx[0] * yy[0] - xy[0] ** 2
    >>> round(float(det), 12), round(float((xx[0] - yy[0]) / (xx[0] + yy[0])), 12)
    (16.0, 0.6)
    """
    half_t = size**2 / np.sqrt(1.0 - np.abs(e) ** 2)
    return half_t * (1.0 + e.real), half_t * (1.0 - e.real), half_t * e.imag
