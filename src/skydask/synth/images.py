"""Synthetic image stacks with known truth, in the LSST Exposure layout ``skydask.images`` reads.

:func:`generate_image_stack` writes ``nvisits`` calexp-like FITS files (image, mask and variance
HDUs, TAN WCS, header keys ``BAND``, ``FILTER``, ``EXPTIME``, ``FLUXMAG0``, ``TIME-MID``,
``SEEING``) into a directory, atomically, with the truth beside them: ``truth_visits.parquet``
(per visit: band, date, zeropoint, seeing, sky noise, m5, dither...), ``truth_sources.parquet``
(the sources drawn) and ``stack.json`` (every parameter). The same parameters and seed give the
same files; an existing directory with the same parameters is returned as is.

Numbers (per visit ``k``, band ``bands[k % len(bands)]``):

* Sources: stars and galaxies of the object generator (:func:`.stars.draw_star_magnitudes`,
  :func:`.galaxies.draw_galaxies`: Covey-locus star colours, power-law counts to the
  single-visit depth + 0.5 (stars, r) or + 1 (galaxies, i), Gaussian galaxy sizes and
  ellipticities), ``stars_per_arcmin2`` and ``galaxies_per_arcmin2`` of them, uniform over the
  box that the dithered visits cover (:func:`.sky.uniform_in_box`); or the rows of ``catalog``
  (columns ``ra``, ``dec``, ``mag_<b>`` or ``mag_true_<b>``, optionally ``is_star``,
  ``size_true`` (Gaussian sigma, arcsec), ``e1_true``, ``e2_true`` (distortion)).
* Seeing: the object generator's model (:class:`.survey.SurveyModel`): FWHM
  ``FWHM_zenith,b X**0.6 exp(N(0, 0.15))``, airmass ``X`` that of the field at transit from
  Cerro Pachon times ``U(1, 1.2)``; PSF distortion per component ``N(0, 0.05)``.
* Zeropoint (electrons, gain 1): ``ZP_1S[b] + 2.5 log10(exptime)``, with ``ZP_1S`` the LSST
  instrumental zeropoints for 1 e-/s (approximately those of Rubin's SMTN-002: u 26.52,
  g 28.51, r 28.36, i 28.17, z 27.78, y 26.82).
* Depth: target ``m5 = m5_single,b - 2.5 log10(FWHM / FWHM_zenith,b)
  + 1.25 log10(exptime / 30) + N(0, 0.1)`` (LSST design single-visit depth, worse in worse
  seeing, a sky-brightness scatter), and the sky noise that gives it exactly:
  ``sky_sigma = 10**(-0.4 (m5 - zp)) / (5 sqrt(NEA))`` with ``NEA = 1 / sum(p**2)`` of the drawn
  unit PSF ``p`` (:func:`.images_render.effective_area`). ``sky_sigma=`` fixes the noise instead
  (then m5 follows from it). The truth ``m5`` is therefore the 5-sigma point-source depth of a
  PSF-weighted flux on sky-limited noise.
* WCS: TAN about ``center``, ``pixel_scale`` arcsec, north up, east left; each visit dithered by
  ``U(-dither_arcsec, dither_arcsec)`` per axis (a shift of the reference pixel, the tangent
  point staying at ``center``), rounded to whole pixels with ``integer_dithers``.
* Date: ``mjd`` uniform over 61000-61365, sorted by visit.
* Pixels: :func:`.images_render.draw_visit` (PSF, noise, saturation at 100,000 e-, bad columns,
  cosmic rays); ``background_subtracted=False`` adds a sky pedestal of ``sky_sigma**2``
  electrons (the sky's Poisson variance).
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS
from numpy.typing import NDArray

from skydask.errors import CatalogReadError, SpecError
from skydask.images.masks import MASK_PLANES
from skydask.schema.definitions import BANDS, PIXEL_SCALE_ARCSEC
from skydask.synth.config import diff_parameters
from skydask.synth.galaxies import GalaxyModel, draw_galaxies
from skydask.synth.generate import _discard, _replace
from skydask.synth.images_render import (
    draw_visit,
    effective_area,
    psf_covariance,
)
from skydask.synth.shapes import distortion_from_ellipticity, gaussian_moments
from skydask.synth.sky import Patch, uniform_in_box
from skydask.synth.stars import StarModel, draw_star_magnitudes
from skydask.synth.survey import SurveyModel

__all__ = [
    "ZP_1S",
    "ImageStackConfig",
    "ImageStackInfo",
    "generate_image_stack",
    "read_image_stack_info",
]

log = logging.getLogger(__name__)

FORMAT = "skydask.synth.image_stack"
GENERATOR_VERSION = 1
PARAMS_FILE = "stack.json"
VISITS_FILE = "truth_visits.parquet"
SOURCES_FILE = "truth_sources.parquet"
#: LSST instrumental zeropoints, AB mag of 1 electron per second (approximately SMTN-002).
ZP_1S = {"u": 26.52, "g": 28.51, "r": 28.36, "i": 28.17, "z": 27.78, "y": 26.82}
_STREAM = 0x1AA6E000
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class ImageStackConfig:
    """Every parameter of a synthetic image stack (see the module docstring)."""

    nvisits: int = 6
    size: tuple[int, int] = (256, 256)
    seed: int = 0
    bands: str = "gri"
    center: tuple[float, float] = (60.0, -35.0)
    pixel_scale: float = PIXEL_SCALE_ARCSEC
    dither_arcsec: float = 4.0
    integer_dithers: bool = False
    psf: str = "gaussian"
    moffat_beta: float = 4.765
    exptime: float = 30.0
    stars_per_arcmin2: float = 40.0
    galaxies_per_arcmin2: float = 80.0
    sky_sigma: float | None = None
    m5_scatter: float = 0.1
    saturation: float = 1.0e5
    n_bad_columns: int = 2
    n_cosmic_rays: int = 5
    background_subtracted: bool = True
    survey: SurveyModel = field(default_factory=SurveyModel)

    def validate(self) -> None:
        """Raise :class:`SpecError` naming the first bad parameter."""
        checks = [
            ("nvisits", isinstance(self.nvisits, int) and self.nvisits >= 1, "an integer >= 1"),
            ("size", all(isinstance(n, int) and n >= 8 for n in self.size), "integers >= 8"),
            ("seed", isinstance(self.seed, int) and self.seed >= 0, "an integer >= 0"),
            ("bands", bool(self.bands) and set(self.bands) <= set(BANDS), f"letters of {BANDS}"),
            ("psf", self.psf in ("gaussian", "moffat"), "'gaussian' or 'moffat'"),
            ("pixel_scale", self.pixel_scale > 0, "> 0"),
            ("exptime", self.exptime > 0, "> 0"),
            ("dither_arcsec", self.dither_arcsec >= 0, ">= 0"),
            ("moffat_beta", self.moffat_beta > 1.5, "> 1.5"),
            ("sky_sigma", self.sky_sigma is None or self.sky_sigma > 0, "None or > 0"),
            ("stars_per_arcmin2", self.stars_per_arcmin2 >= 0, ">= 0"),
            ("galaxies_per_arcmin2", self.galaxies_per_arcmin2 >= 0, ">= 0"),
            ("n_bad_columns", self.n_bad_columns >= 0, ">= 0"),
            ("n_cosmic_rays", self.n_cosmic_rays >= 0, ">= 0"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise SpecError(
                    f"parameter {name!r} must be {expected}; got {getattr(self, name)!r}"
                )
        if not (-90.0 < self.center[1] < 90.0):
            raise SpecError(f"parameter 'center' must have -90 < dec < 90; got {self.center!r}")

    def parameters(self) -> dict[str, Any]:
        """The JSON-ready record of every number that determines the files."""
        record = asdict(self)
        record["survey"] = self.survey.to_dict()
        record["zp_1s"] = {b: ZP_1S[b] for b in self.bands}
        record["generator_version"] = GENERATOR_VERSION
        normalised: dict[str, Any] = json.loads(json.dumps(record))
        return normalised


@dataclass(frozen=True)
class ImageStackInfo:
    """Where a synthetic stack is: its directory, visit files and truth tables."""

    path: Path
    files: tuple[Path, ...]
    parameters: dict[str, Any]

    @property
    def visits_path(self) -> Path:
        return self.path / VISITS_FILE

    @property
    def sources_path(self) -> Path:
        return self.path / SOURCES_FILE

    def visits(self) -> pd.DataFrame:
        """Per-visit truth: ``visit``, ``file``, ``band``, ``mjd``, ``exptime``, ``zeropoint``,
        ``seeing`` (PSF FWHM, arcsec), ``fwhm_eff`` (FWHM of the PSF as drawn on the pixels,
        arcsec), ``psf_e1``, ``psf_e2``, ``sky_sigma``, ``sky_level`` (e-), ``nea_pix`` (pixel^2),
        ``m5``, ``dither_x``, ``dither_y`` (pixels), ``n_saturated``, ``n_cosmic``."""
        return pd.read_parquet(self.visits_path)

    def sources(self) -> pd.DataFrame:
        """The sources: ``id``, ``ra``, ``dec``, ``is_star``, ``mag_<b>`` (every band),
        ``size`` (Gaussian sigma, arcsec; 0 for stars), ``e1``, ``e2`` (distortion, east/north)."""
        return pd.read_parquet(self.sources_path)


def read_image_stack_info(path: str | os.PathLike[str]) -> ImageStackInfo:
    """The :class:`ImageStackInfo` of an existing synthetic stack directory.

    Raises
    ------
    CatalogReadError
        If ``stack.json`` is missing or unreadable.
    """
    root = Path(path)
    try:
        record = json.loads((root / PARAMS_FILE).read_text())
    except FileNotFoundError:
        raise CatalogReadError(
            f"{root / PARAMS_FILE} not found: not a synthetic image stack"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogReadError(f"{root / PARAMS_FILE} could not be read: {exc}") from exc
    files = tuple(root / f for f in record["files"])
    return ImageStackInfo(root, files, record["parameters"])


# --- planning: everything random except the pixel noise, on the client ----------------------


@dataclass(frozen=True)
class _VisitPlan:
    index: int
    name: str
    band: str
    mjd: float
    zeropoint: float
    fwhm: float
    e1: float
    e2: float
    nea: float
    sky_sigma: float
    m5: float
    dither: tuple[float, float]


def _field_box(cfg: ImageStackConfig) -> Patch:
    ny, nx = cfg.size
    half_x = (nx / 2 + 10) * cfg.pixel_scale + cfg.dither_arcsec
    half_y = (ny / 2 + 10) * cfg.pixel_scale + cfg.dither_arcsec
    ra0, dec0 = cfg.center
    dra = half_x / 3600.0 / math.cos(math.radians(dec0))
    return Patch(0, 0, 0, 0, ra0 - dra, ra0 + dra, dec0 - half_y / 3600.0, dec0 + half_y / 3600.0)


def _draw_sources(cfg: ImageStackConfig) -> pd.DataFrame:
    rng = np.random.default_rng([cfg.seed, _STREAM, 0])
    box = _field_box(cfg)
    area = (box.dec_max - box.dec_min) * 60.0 * (box.ra_max - box.ra_min) * 60.0
    area *= math.cos(math.radians(cfg.center[1]))
    n_star = int(rng.poisson(cfg.stars_per_arcmin2 * area))
    n_gal = int(rng.poisson(cfg.galaxies_per_arcmin2 * area))
    m5 = cfg.survey.single_visit_m5
    star_mags, _ = draw_star_magnitudes(rng, np.full(n_star, m5["r"]), StarModel())
    gals = draw_galaxies(rng, np.full(n_gal, m5["i"]), GalaxyModel())
    ra, dec = uniform_in_box(rng, n_star + n_gal, box)
    e = np.concatenate([np.zeros(n_star, complex), distortion_from_ellipticity(gals.eps_int)])
    frame = pd.DataFrame(
        {
            "id": np.arange(n_star + n_gal, dtype=np.int64),
            "ra": ra,
            "dec": dec,
            "is_star": np.arange(n_star + n_gal) < n_star,
        }
    )
    mags = np.concatenate([star_mags, gals.mags]) if n_star + n_gal else np.zeros((0, len(BANDS)))
    for k, b in enumerate(BANDS):
        frame[f"mag_{b}"] = mags[:, k]
    frame["size"] = np.concatenate([np.zeros(n_star), gals.sigma_arcsec])
    frame["e1"], frame["e2"] = e.real, e.imag
    return frame


def _catalog_sources(catalog: pd.DataFrame, cfg: ImageStackConfig) -> pd.DataFrame:
    if not {"ra", "dec"} <= set(catalog.columns):
        raise SpecError("parameter 'catalog' must have columns 'ra' and 'dec' (degrees)")
    box = _field_box(cfg)
    inside = catalog["ra"].between(box.ra_min, box.ra_max) & catalog["dec"].between(
        box.dec_min, box.dec_max
    )
    cat = catalog[inside].reset_index(drop=True)
    n = len(cat)
    out = pd.DataFrame(
        {
            "id": cat["objectId"].to_numpy() if "objectId" in cat else np.arange(n),
            "ra": cat["ra"].to_numpy(dtype=np.float64),
            "dec": cat["dec"].to_numpy(dtype=np.float64),
            "is_star": cat["is_star"].to_numpy(dtype=bool) if "is_star" in cat else True,
        }
    )
    for b in BANDS:
        for col in (f"mag_{b}", f"mag_true_{b}"):
            if col in cat:
                out[f"mag_{b}"] = cat[col].to_numpy(dtype=np.float64)
                break
        else:
            if b in cfg.bands:
                raise SpecError(
                    f"parameter 'catalog' needs a magnitude column 'mag_{b}' or 'mag_true_{b}' "
                    f"for band {b!r}"
                )
            out[f"mag_{b}"] = np.nan
    size = cat["size_true"].to_numpy(dtype=np.float64) if "size_true" in cat else np.zeros(n)
    out["size"] = np.where(out["is_star"], 0.0, size)
    for c in ("e1", "e2"):
        out[c] = cat[f"{c}_true"].to_numpy(dtype=np.float64) if f"{c}_true" in cat else 0.0
    return out


def _plan_visits(cfg: ImageStackConfig) -> list[_VisitPlan]:
    survey = cfg.survey
    mjds = np.sort(np.random.default_rng([cfg.seed, _STREAM, 1]).uniform(61000, 61365, cfg.nvisits))
    transit = 1.0 / math.cos(math.radians(cfg.center[1] - survey.site_latitude_deg))
    plans = []
    for k in range(cfg.nvisits):
        rng = np.random.default_rng([cfg.seed, _STREAM, 2, k])
        band = cfg.bands[k % len(cfg.bands)]
        airmass = transit * rng.uniform(1.0, 1.2)
        fwhm = (
            survey.seeing_fwhm_zenith[band]
            * airmass**survey.airmass_exponent
            * math.exp(rng.normal(0.0, survey.seeing_ln_scatter))
        )
        e1, e2 = rng.normal(0.0, survey.visit_psf_e_rms, 2)
        zp = ZP_1S[band] + 2.5 * math.log10(cfg.exptime)
        cov = psf_covariance(fwhm / cfg.pixel_scale, e1, e2)
        nea = effective_area(cov, cfg.psf, cfg.moffat_beta)
        if cfg.sky_sigma is None:
            m5 = (
                survey.single_visit_m5[band]
                - 2.5 * math.log10(fwhm / survey.seeing_fwhm_zenith[band])
                + 1.25 * math.log10(cfg.exptime / 30.0)
                + rng.normal(0.0, cfg.m5_scatter)
            )
            sky_sigma = 10.0 ** (-0.4 * (m5 - zp)) / (5.0 * math.sqrt(nea))
        else:
            sky_sigma = float(cfg.sky_sigma)
            m5 = zp - 2.5 * math.log10(5.0 * sky_sigma * math.sqrt(nea))
        d = rng.uniform(-cfg.dither_arcsec, cfg.dither_arcsec, 2) / cfg.pixel_scale
        if cfg.integer_dithers:
            d = np.round(d)
        plans.append(
            _VisitPlan(k, f"visit_{k:04d}", band, float(mjds[k]), zp, fwhm, float(e1), float(e2),
                       nea, sky_sigma, float(m5), (float(d[0]), float(d[1])))
        )  # fmt: skip
    return plans


def _visit_wcs(cfg: ImageStackConfig, plan: _VisitPlan) -> WCS:
    ny, nx = cfg.size
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = list(cfg.center)
    wcs.wcs.crpix = [(nx + 1) / 2.0 + plan.dither[0], (ny + 1) / 2.0 + plan.dither[1]]
    scale = cfg.pixel_scale / 3600.0
    wcs.wcs.cd = [[-scale, 0.0], [0.0, scale]]
    wcs.wcs.radesys = "ICRS"
    return wcs


# --- one task per visit: draw and write ----------------------------------------------------


def _write_visit(
    tmp: Path, cfg: ImageStackConfig, plan: _VisitPlan, sources: pd.DataFrame,
    bad_columns: NDArray[np.int64],
) -> dict[str, Any]:  # fmt: skip
    wcs = _visit_wcs(cfg, plan)
    x, y = wcs.all_world2pix(sources["ra"].to_numpy(), sources["dec"].to_numpy(), 0)
    mag = sources[f"mag_{plan.band}"].to_numpy(dtype=np.float64)
    flux = np.where(np.isfinite(mag), 10.0 ** (-0.4 * (mag - plan.zeropoint)), 0.0)
    size_pix = sources["size"].to_numpy(dtype=np.float64) / cfg.pixel_scale
    # the pixel frame is (west, north): a distortion's e2 changes sign
    e = sources["e1"].to_numpy() - 1j * sources["e2"].to_numpy()
    xx, yy, xy = gaussian_moments(size_pix, e)
    gal_cov = np.stack([np.stack([xx, xy], -1), np.stack([xy, yy], -1)], -2)
    psf_cov = psf_covariance(plan.fwhm / cfg.pixel_scale, plan.e1, plan.e2)
    sky_level = 0.0 if cfg.background_subtracted else plan.sky_sigma**2
    draw = draw_visit(
        np.random.default_rng([cfg.seed, _STREAM, 3, plan.index]),
        cfg.size, x, y, flux, gal_cov, psf_cov,
        psf=cfg.psf, beta=cfg.moffat_beta, sky_sigma=plan.sky_sigma, sky_level=sky_level,
        saturation=cfg.saturation, bad_columns=bad_columns, n_cosmic_rays=cfg.n_cosmic_rays,
    )  # fmt: skip
    primary = fits.Header()
    primary["ORIGIN"] = ("skydask.synth", "synthetic image stack")
    primary["VISIT"] = plan.index
    primary["BAND"] = plan.band
    primary["FILTER"] = plan.band
    primary["EXPTIME"] = (cfg.exptime, "[s]")
    primary["FLUXMAG0"] = (10.0 ** (0.4 * plan.zeropoint), "electrons of a 0-mag source")
    primary["TIME-MID"] = (Time(plan.mjd, format="mjd", scale="utc").isot + "Z", "UTC")
    primary["SEEING"] = (plan.fwhm, "[arcsec] PSF FWHM (truth)")
    whdr = wcs.to_header()
    hdus: list[Any] = [fits.PrimaryHDU(header=primary)]
    for kind, data in (("IMAGE", draw.image), ("MASK", draw.mask), ("VARIANCE", draw.variance)):
        hdr = whdr.copy()
        hdr["EXTTYPE"] = kind
        hdr["EXTNAME"] = kind
        if kind == "MASK":
            for k, name in enumerate(MASK_PLANES):
                hdr[f"HIERARCH MP_{name}"] = k
        else:
            hdr["BUNIT"] = "electron" if kind == "IMAGE" else "electron2"
        hdus.append(fits.ImageHDU(data, header=hdr))
    fits.HDUList(hdus).writeto(tmp / f"{plan.name}.fits")
    pix_scale = cfg.pixel_scale
    if cfg.psf == "gaussian":
        cov_eff = psf_cov + np.eye(2) / 12.0
        fwhm_eff = _FWHM_PER_SIGMA * float(np.linalg.det(cov_eff)) ** 0.25 * pix_scale
    else:
        fwhm_eff = plan.fwhm
    return {
        "visit": plan.name, "file": f"{plan.name}.fits", "band": plan.band, "mjd": plan.mjd,
        "exptime": cfg.exptime, "zeropoint": plan.zeropoint, "seeing": plan.fwhm,
        "fwhm_eff": fwhm_eff, "psf_e1": plan.e1, "psf_e2": plan.e2,
        "sky_sigma": plan.sky_sigma, "sky_level": sky_level, "nea_pix": plan.nea, "m5": plan.m5,
        "dither_x": plan.dither[0], "dither_y": plan.dither[1],
        "n_saturated": draw.n_saturated, "n_cosmic": draw.n_cosmic,
    }  # fmt: skip


def _cached(out: Path, params: dict[str, Any], overwrite: bool) -> ImageStackInfo | None:
    if not out.exists():
        return None
    try:
        info = read_image_stack_info(out)
    except (CatalogReadError, KeyError):
        if overwrite:
            return None
        raise SpecError(
            f"{out} exists and is not a synthetic image stack (no readable {PARAMS_FILE}); "
            "remove it, choose another directory or pass overwrite=True"
        ) from None
    differences = diff_parameters(info.parameters, params)
    complete = all(f.exists() for f in (*info.files, info.visits_path, info.sources_path))
    if not differences and complete:
        return info
    if overwrite:
        return None
    why = "; ".join(differences[:5]) if differences else "files are missing"
    raise SpecError(
        f"{out} holds a synthetic image stack made with other parameters ({why}); pass "
        "overwrite=True to replace it or choose another directory"
    )


def generate_image_stack(
    out_dir: str | os.PathLike[str],
    *,
    nvisits: int = 6,
    size: int | tuple[int, int] = 256,
    seed: int = 0,
    bands: str = "gri",
    catalog: pd.DataFrame | None = None,
    overwrite: bool = False,
    **options: Any,
) -> ImageStackInfo:
    """Write a deterministic synthetic image stack with its truth (see the module docstring).

    Parameters
    ----------
    out_dir
        Directory to create (atomically): ``visit_<k>.fits``, ``truth_visits.parquet``,
        ``truth_sources.parquet``, ``stack.json``.
    nvisits, size, seed, bands
        Number of visits, image size (``n`` or ``(ny, nx)`` pixels), seed of every draw, and
        the bands visited in turn.
    catalog
        Sources to draw instead of the generator's own (columns in the module docstring).
    overwrite
        Replace an existing ``out_dir`` made with other parameters (otherwise an error).
    **options
        Any other field of :class:`ImageStackConfig` (``center``, ``pixel_scale``,
        ``dither_arcsec``, ``integer_dithers``, ``psf``, ``exptime``, ``sky_sigma``,
        ``stars_per_arcmin2``, ``galaxies_per_arcmin2``, ``n_bad_columns``,
        ``n_cosmic_rays``, ``background_subtracted``, ...).

    Returns
    -------
    ImageStackInfo

    Raises
    ------
    SpecError
        For a bad parameter, or an existing ``out_dir`` with other parameters.

    Examples
    --------
    >>> info = generate_image_stack(getfixture("tmp_path") / "s", nvisits=2, size=48, seed=3)
    >>> [f.name for f in info.files]
    ['visit_0000.fits', 'visit_0001.fits']
    >>> truth = info.visits()
    >>> truth["band"].tolist(), bool((truth["m5"] > 22).all())
    (['g', 'r'], True)
    """
    shape = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    known = set(ImageStackConfig.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise SpecError(f"unknown parameters {unknown}; expected fields of ImageStackConfig")
    if "center" in options:
        options["center"] = tuple(float(v) for v in options["center"])
    cfg = ImageStackConfig(nvisits=nvisits, size=shape, seed=seed, bands=bands, **options)
    cfg.validate()
    params = cfg.parameters()
    if catalog is not None:
        sources = _catalog_sources(catalog, cfg)
        params["catalog"] = dask.base.tokenize(catalog)
    else:
        sources = _draw_sources(cfg)
    out = Path(out_dir)
    cached = _cached(out, params, overwrite)
    if cached is not None:
        log.info("synthetic image stack %s already exists with these parameters", out)
        return cached
    plans = _plan_visits(cfg)
    col_rng = np.random.default_rng([cfg.seed, _STREAM, 4])
    bad_columns = np.sort(
        col_rng.choice(shape[1], size=min(cfg.n_bad_columns, shape[1]), replace=False)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".tmp-{out.name}-{secrets.token_hex(6)}"
    tmp.mkdir()
    try:
        tasks = [dask.delayed(_write_visit)(tmp, cfg, p, sources, bad_columns) for p in plans]
        rows = list(dask.compute(*tasks))
        pd.DataFrame(rows).to_parquet(tmp / VISITS_FILE, index=False)
        sources.to_parquet(tmp / SOURCES_FILE, index=False)
        files = [r["file"] for r in rows]
        record = {"format": FORMAT, "parameters": params, "files": files}
        (tmp / PARAMS_FILE).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
        _replace(tmp, out)
    except BaseException:
        _discard(tmp)
        raise
    return ImageStackInfo(out, tuple(out / f for f in files), params)
