"""Measurement model: what the LSST pipeline would report for objects of known truth.

Numbers (all in :class:`MeasurementModel`, written to ``synth.json``). Fluxes in nJy,
``f = 10**(-0.4 (m - 31.4))``; ``s_p`` is the coadd PSF's determinant radius in the band
(``FWHM / 2.355``) and ``s_g`` the galaxy's Gaussian sigma (0 for stars), both in arcsec.

* Sky noise from the object's pixel depth: ``sigma_sky = 10**(-0.4 (m5 - 31.4)) / 5``.
* PSF flux: a Gaussian galaxy under a Gaussian PSF puts the fraction
  ``2 s_p^2 / (2 s_p^2 + s_g^2)`` of its flux in the PSF-weighted measurement;
  ``psFluxErr = sigma_sky sqrt(1 + 0.02 f_psf / f_5sigma)`` (a small source-noise term,
  Poisson-like since its variance is proportional to the source flux);
  ``psFlux = f_psf + N(0, psFluxErr)``.
* CModel flux: the total flux; ``cModelFluxErr = psFluxErr sqrt(1 + s_g^2 / (2 s_p^2))``,
  ``cModelFlux = f + N(0, cModelFluxErr)`` (drawn independently of the PSF flux noise).
  Negative measured fluxes are kept (their magnitudes are NaN), as in the pipeline.
* ``extendedness = 1.0 if psFlux_i < 0.985 cModelFlux_i else 0.0`` (reference band i).
* Moments (pixel^2, 0.2" pixels): PSF moments per band from the pixel's coadd PSF; the
  reference-band (i) object moments are PSF + galaxy moments (the sheared galaxy's distortion
  and its sigma as determinant radius; stars PSF only), multiplied by a size-noise factor
  ``1 + N(0, 1/snr_i)`` (clipped to +-0.5), where ``snr_i`` is the true cModel S/N in i.
* HSM re-Gaussianization: ``e = e_true + N(0, sigma_e)`` per component with
  ``sigma_e = 0.05 + 3 / snr_i`` (= ``ext_shapeHSM_HsmShapeRegauss_sigma``);
  ``resolution = 1 - T_psf / T_obs`` with ``T = Ixx + Iyy`` (stars scatter around 0). The HSM
  flag is set for ``snr_i < 5`` and at random for 1 % of the rest; flagged shapes are NaN.
* Flags, each independently at random: ``psFlux_flag_<b>`` and ``cModelFlux_flag_<b>`` 1 %,
  ``xy_flag`` 0.5 %, ``I_flag`` 1 %; ``good`` False for 1.5 % (flagged pixels), ``clean``
  additionally False for 1 % (failed deblends) and for every deblended child with
  blendedness > 0.2. A band with no visit at the object's pixel has NaN measurements and its
  flux flags set.
* ``blendedness = min(1, 10**N(-2.5, 0.7))`` for isolated objects (median 0.003) and
  ``min(1, 10**N(-1.3, 0.5))`` for deblended children (``parentObjectId != 0``).
* ``psNdata = round(pi (3 s_p,pix)^2)`` in i (pixels within 3 sigma of the PSF), and
  ``xErr = yErr = sqrt(2) s_obs,pix / max(snr_i, 1)`` (the centroid error of a Gaussian).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from skydask.schema.definitions import BANDS, PIXEL_SCALE_ARCSEC
from skydask.synth.magnitudes import flux_njy
from skydask.synth.shapes import gaussian_moments

__all__ = ["MeasurementModel", "measure"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class MeasurementModel:
    """Parameters of the measurement model (see the module docstring)."""

    reference_band: str = "i"
    source_noise: float = 0.02
    extendedness_ratio: float = 0.985
    sigma_e_floor: float = 0.05
    sigma_e_snr: float = 3.0
    hsm_min_snr: float = 5.0
    hsm_flag_rate: float = 0.01
    flux_flag_rate: float = 0.01
    xy_flag_rate: float = 0.005
    moments_flag_rate: float = 0.01
    bad_pixel_rate: float = 0.015
    deblend_fail_rate: float = 0.01
    child_fraction: float = 0.05
    blendedness_log10: tuple[float, float] = (-2.5, 0.7)
    child_blendedness_log10: tuple[float, float] = (-1.3, 0.5)
    child_unclean_blendedness: float = 0.2

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["blendedness_log10"] = list(self.blendedness_log10)
        out["child_blendedness_log10"] = list(self.child_blendedness_log10)
        out["psFluxErr"] = "sigma_sky sqrt(1 + source_noise f_psf / f_5sigma)"
        out["sigma_e"] = "sigma_e_floor + sigma_e_snr / snr_i"
        return out


def measure(
    rng: np.random.Generator,
    mags: Array,
    sigma_g: Array,
    e_true: NDArray[np.complex128],
    is_child: NDArray[np.bool_],
    m5: Array,
    psf_moments: tuple[Array, Array, Array],
    model: MeasurementModel,
) -> dict[str, NDArray[Any]]:
    """Measured native columns (except identity and position) for ``n`` objects.

    Parameters
    ----------
    rng
        The patch's generator; the draws happen in a fixed order.
    mags
        True magnitudes, shape ``(n, len(BANDS))``.
    sigma_g
        Galaxy Gaussian sigma (arcsec), 0 for stars.
    e_true
        Sheared, noise-free distortion ``e1 + i e2`` (0 for stars).
    is_child
        Deblended children (``parentObjectId != 0``).
    m5
        True 5-sigma depth of each object's pixel, shape ``(len(BANDS), n)``.
    psf_moments
        Coadd PSF ``(xx, yy, xy)`` second moments (arcsec^2), each ``(len(BANDS), n)``.
    model
        The measurement model.

    Returns
    -------
    dict
        Column name to array, float64/bool (the caller casts to the schema's dtypes).
    """
    n, nb = mags.shape
    ref = BANDS.index(model.reference_band)
    cols: dict[str, NDArray[Any]] = {}
    pxx, pyy, pxy = psf_moments
    sp2 = np.sqrt(pxx * pyy - pxy**2)  # determinant radius squared (arcsec^2)
    sg2 = sigma_g**2
    f_true = flux_njy(mags.T)
    f5 = flux_njy(m5)
    covered = np.isfinite(m5) & np.isfinite(sp2)
    with np.errstate(invalid="ignore"):
        f_psf = f_true * 2.0 * sp2 / (2.0 * sp2 + sg2)
        ps_err = f5 / 5.0 * np.sqrt(1.0 + model.source_noise * f_psf / f5)
        cm_err = ps_err * np.sqrt(1.0 + sg2 / (2.0 * sp2))
    noise = rng.standard_normal((2, nb, n))
    ps = f_psf + noise[0] * ps_err
    cm = f_true + noise[1] * cm_err
    flux_flags = rng.random((2, nb, n)) < model.flux_flag_rate
    pix2 = PIXEL_SCALE_ARCSEC**2
    for k, b in enumerate(BANDS):
        cols[f"psFlux_{b}"] = ps[k]
        cols[f"psFluxErr_{b}"] = ps_err[k]
        cols[f"psFlux_flag_{b}"] = flux_flags[0, k] | ~covered[k]
        cols[f"cModelFlux_{b}"] = cm[k]
        cols[f"cModelFluxErr_{b}"] = cm_err[k]
        cols[f"cModelFlux_flag_{b}"] = flux_flags[1, k] | ~covered[k]
        cols[f"IxxPSF_pixel_{b}"] = pxx[k] / pix2
        cols[f"IyyPSF_pixel_{b}"] = pyy[k] / pix2
        cols[f"IxyPSF_pixel_{b}"] = pxy[k] / pix2

    with np.errstate(invalid="ignore"):
        cols["extendedness"] = np.where(
            np.isfinite(ps[ref]) & np.isfinite(cm[ref]),
            (ps[ref] < model.extendedness_ratio * cm[ref]).astype(np.float64),
            np.nan,
        )
        snr = f_true[ref] / cm_err[ref]

    # reference-band moments: Gaussian PSF convolved with a Gaussian galaxy adds moments
    gxx, gyy, gxy = gaussian_moments(np.sqrt(sg2) / PIXEL_SCALE_ARCSEC, e_true)
    size_noise = 1.0 + np.clip(rng.standard_normal(n) / np.maximum(snr, 1.0), -0.5, 0.5)
    psf_xx, psf_yy, psf_xy = pxx[ref] / pix2, pyy[ref] / pix2, pxy[ref] / pix2
    ixx = (psf_xx + gxx) * size_noise
    iyy = (psf_yy + gyy) * size_noise
    ixy = (psf_xy + gxy) * size_noise
    cols.update(
        Ixx_pixel=ixx, Iyy_pixel=iyy, Ixy_pixel=ixy,
        IxxPSF_pixel=psf_xx, IyyPSF_pixel=psf_yy, IxyPSF_pixel=psf_xy,
    )  # fmt: skip

    with np.errstate(invalid="ignore", divide="ignore"):
        sigma_e = model.sigma_e_floor + model.sigma_e_snr / snr
    shape_noise = rng.standard_normal((2, n))
    hsm_flag = (rng.random(n) < model.hsm_flag_rate) | ~(snr >= model.hsm_min_snr)
    resolution = 1.0 - (psf_xx + psf_yy) / (ixx + iyy)
    keep = ~hsm_flag
    cols["ext_shapeHSM_HsmShapeRegauss_e1"] = np.where(
        keep, e_true.real + sigma_e * shape_noise[0], np.nan
    )
    cols["ext_shapeHSM_HsmShapeRegauss_e2"] = np.where(
        keep, e_true.imag + sigma_e * shape_noise[1], np.nan
    )
    cols["ext_shapeHSM_HsmShapeRegauss_resolution"] = np.where(keep, resolution, np.nan)
    cols["ext_shapeHSM_HsmShapeRegauss_sigma"] = np.where(keep, sigma_e, np.nan)
    cols["ext_shapeHSM_HsmShapeRegauss_flag"] = hsm_flag

    s_psf_pix = np.sqrt(np.sqrt(psf_xx * psf_yy - psf_xy**2))
    cols["psNdata"] = np.round(math.pi * (3.0 * s_psf_pix) ** 2)
    s_obs_pix = np.sqrt(0.5 * (ixx + iyy))
    cols["xErr"] = cols["yErr"] = math.sqrt(2.0) * s_obs_pix / np.maximum(snr, 1.0)

    flags = rng.random((4, n))
    cols["xy_flag"] = flags[0] < model.xy_flag_rate
    cols["I_flag"] = (flags[1] < model.moments_flag_rate) | ~covered[ref]
    mu, sd = model.blendedness_log10
    mu_c, sd_c = model.child_blendedness_log10
    z = rng.standard_normal(n)
    blend = np.minimum(1.0, 10.0 ** np.where(is_child, mu_c + sd_c * z, mu + sd * z))
    cols["blendedness"] = blend
    good = flags[2] >= model.bad_pixel_rate
    cols["good"] = good
    cols["clean"] = (
        good
        & (flags[3] >= model.deblend_fail_rate)
        & ~(is_child & (blend > model.child_unclean_blendedness))
    )
    return cols
