"""Coadds: resample every visit onto one tangent-plane grid and combine, with variance and counts.

Choices:

* **Grid** (:func:`coadd_grid`): TAN about the mean of the visit centres, north up, east left,
  the visits' median pixel scale, just large enough for every visit; or the caller's WCS.
* **Calibration**: each visit is put in nJy per pixel before combining,
  ``f_nJy = counts 10**(0.4 (31.4 - zeropoint))`` (the schema's AB zero point), so visits with
  different units or transparency combine correctly; a visit without zeropoint is an error.
* **Resampling** with ``reproject``: ``resample="interp"`` (default) is
  ``reproject_interp`` (bilinear): fast, and exact for the pure shifts of dithered visits on
  grids of one pixel scale; ``"exact"`` (``reproject_exact``, spherical polygon overlap, about
  7x slower) conserves flux for any change of scale or rotation; ``"adaptive"``
  (``reproject_adaptive``, the DeForest 2004 anti-aliased method) avoids aliasing when the
  output pixels are much larger. All treat values as surface brightness, so each visit is
  multiplied by the ratio of output to input pixel area (from the pixel scales) to keep flux
  per pixel. The variance plane is resampled with the same method: it is the per-pixel variance
  ignoring the covariance that interpolation adds between neighbouring pixels (sub-pixel
  interpolation lowers the pixel-to-pixel scatter of the resampled noise; aperture fluxes see
  the stated variance).
* **Bad pixels**: pixels with any of ``bad_planes`` set (default
  :data:`.masks.DEFAULT_BAD_PLANES`), non-finite values or non-positive variance become NaN
  before resampling, so every output pixel whose interpolation touches one is dropped for that
  visit.
* **Combination**: ``method="ivw"`` is the inverse-variance weighted mean with variance
  ``1 / sum(1 / var_i)``; ``"median"`` is the per-pixel median with variance
  ``f(n) mean(var_i) / n``, where ``f(n)`` is the variance of the median of ``n`` unit Gaussians
  times ``n`` (:func:`median_variance_factor`: 1 for ``n <= 2``, 1.346 for 3, 1.193 for 4,
  tending to ``pi / 2``), exact for equal variances. ``exposure_count`` is the number of visits
  that contributed to each pixel.
* **Sky**: calexps are background-subtracted; for images that are not (DECam ``ooi``),
  ``subtract_sky=True`` subtracts each visit's sigma-clipped median (one extra task per visit).

The graph is one task per output tile (``tile`` pixels square) that reads, from each visit
overlapping the tile, only the rectangle of pixels that lands on it (plus a 2-pixel margin),
resamples and accumulates; memory per task is about ``n_visits x tile^2`` floats for the median.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from astropy.wcs import WCS
from dask.base import tokenize
from numpy.typing import NDArray
from reproject import reproject_adaptive, reproject_exact, reproject_interp
from scipy.special import erf, erfc

from skydask.errors import SpecError
from skydask.images.masks import DEFAULT_BAD_PLANES, bits
from skydask.images.quality import sky_background
from skydask.images.source import VisitSource
from skydask.images.stack import stack_sources, stack_wcs
from skydask.images.wcs import footprint, shifted_wcs, unit_vectors, wcs_from_string
from skydask.schema.definitions import AB_ZEROPOINT_NJY

__all__ = ["coadd", "coadd_grid", "median_variance_factor"]

_METHODS = ("ivw", "median")
_RESAMPLERS = {"interp": reproject_interp, "exact": reproject_exact, "adaptive": reproject_adaptive}
_MARGIN = 2
_MAX_PIXELS = 400_000_000


@functools.cache
def median_variance_factor(n: int) -> float:
    """``n`` times the variance of the median of ``n`` independent unit Gaussians.

    By quadrature: for odd ``n`` over the density of the middle order statistic; for even ``n``
    (the mean of the two middle values ``X_k``, ``X_k+1``) over the density of ``X_k`` times the
    moments of ``X_k+1`` given ``X_k = x`` (the smallest of ``k`` values above ``x``), both
    one-dimensional. ``pi / 2`` beyond 400.

    Examples
    --------
    >>> [round(median_variance_factor(n), 3) for n in (1, 2, 3, 4, 5, 8)]
    [1.0, 1.0, 1.346, 1.193, 1.434, 1.345]
    """
    if n <= 2:
        return 1.0
    if n > 400:
        return math.pi / 2.0
    x = np.linspace(-8.0, 8.0, 40_001)
    dx = x[1] - x[0]
    cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))
    sf = 0.5 * erfc(x / math.sqrt(2.0))
    log_pdf = -0.5 * x * x - 0.5 * math.log(2.0 * math.pi)
    with np.errstate(divide="ignore"):
        log_c, log_s = np.log(cdf), np.log(sf)
    k = n // 2
    if n % 2:
        log_norm = math.lgamma(n + 1) - 2.0 * math.lgamma(k + 1)
        density = np.exp(log_norm + k * log_c + k * log_s + log_pdf)
        return float(n * np.sum(x * x * density) * dx)
    # X_k has density C Phi^(k-1) S^k phi; given X_k = x, X_k+1 has density
    # k phi(y) S(y)^(k-1) / S(x)^k on y > x, so S(x)^k cancels against the density of X_k
    g = k * np.exp(log_pdf + (k - 1) * log_s)
    # trapezoid rule for the integrals from x upwards (the first point counts half)
    tail = [(np.cumsum((p * g)[::-1])[::-1] - 0.5 * p * g) * dx for p in (1.0, x, x * x)]
    inner = x * x * tail[0] + 2.0 * x * tail[1] + tail[2]  # S^k E[(x + Y)^2 | x]
    log_norm = math.lgamma(n + 1) - math.lgamma(k) - math.lgamma(k + 1)
    weight = np.exp(log_norm + (k - 1) * log_c + log_pdf)
    return float(n * np.sum(weight * inner) * dx / 4.0)


def coadd_grid(stack: xr.Dataset, pixel_scale: float | None = None) -> tuple[WCS, tuple[int, int]]:
    """A TAN grid covering every visit: ``(wcs, (ny, nx))`` (see the module docstring).

    Raises
    ------
    SpecError
        If the grid would exceed 400 million pixels (pass your own WCS and shape for a wide
        area), or the stack has no visit.
    """
    wcs_list = stack_wcs(stack)
    if not wcs_list:
        raise SpecError("cannot make a coadd grid for a stack with no visit")
    shapes = [(int(a), int(b)) for a, b in zip(stack["ny"].values, stack["nx"].values, strict=True)]
    edges = np.concatenate([footprint(w, s, n=8) for w, s in zip(wcs_list, shapes, strict=True)])
    mean = unit_vectors(edges[:, 0], edges[:, 1]).mean(axis=0)
    ra0 = math.degrees(math.atan2(mean[1], mean[0])) % 360.0
    dec0 = math.degrees(math.asin(mean[2] / np.linalg.norm(mean)))
    scale = float(pixel_scale or np.nanmedian(stack["pixel_scale"].values))
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra0, dec0]
    wcs.wcs.cd = [[-scale / 3600.0, 0.0], [0.0, scale / 3600.0]]
    wcs.wcs.crpix = [1.0, 1.0]
    x, y = wcs.all_world2pix(edges[:, 0], edges[:, 1], 0)
    x0, y0 = math.floor(x.min() + 0.5), math.floor(y.min() + 0.5)
    nx, ny = math.ceil(x.max() + 0.5) - x0, math.ceil(y.max() + 0.5) - y0
    if nx * ny > _MAX_PIXELS:
        raise SpecError(
            f"the visits span {ny} x {nx} pixels at {scale} arcsec; pass 'wcs' and 'shape' "
            f"for a grid of at most {_MAX_PIXELS} pixels"
        )
    wcs.wcs.crpix = [1.0 - x0, 1.0 - y0]
    wcs.array_shape = (ny, nx)
    return wcs, (ny, nx)


def _visit_box(
    vis_wcs: WCS, vis_shape: tuple[int, int], out_wcs: WCS, box: tuple[int, int, int, int]
) -> tuple[slice, slice] | None:
    """The visit pixels that land on the output box ``(y0, y1, x0, x1)``, with a margin."""
    y0, y1, x0, x1 = box
    n = 16
    t = np.linspace(0.0, 1.0, n)
    xs = np.concatenate([x0 - 0.5 + t * (x1 - x0), np.full(n, x1 - 0.5), x0 - 0.5 + t * (x1 - x0),
                         np.full(n, x0 - 0.5)])  # fmt: skip
    ys = np.concatenate([np.full(n, y0 - 0.5), y0 - 0.5 + t * (y1 - y0), np.full(n, y1 - 0.5),
                         y0 - 0.5 + t * (y1 - y0)])  # fmt: skip
    ra, dec = out_wcs.all_pix2world(xs, ys, 0)
    vx, vy = vis_wcs.all_world2pix(ra, dec, 0, quiet=True)
    if not (np.isfinite(vx).all() and np.isfinite(vy).all()):
        return None
    ny, nx = vis_shape
    vx0 = max(0, math.floor(vx.min()) - _MARGIN)
    vx1 = min(nx, math.ceil(vx.max()) + 1 + _MARGIN)
    vy0 = max(0, math.floor(vy.min()) - _MARGIN)
    vy1 = min(ny, math.ceil(vy.max()) + 1 + _MARGIN)
    if vx1 <= vx0 or vy1 <= vy0:
        return None
    return slice(vy0, vy1), slice(vx0, vx1)


def _tile_task(
    tile_wcs_header: str,
    tile_shape: tuple[int, int],
    items: list[tuple[VisitSource, str, slice, slice, float, Any]],
    method: str,
    resample: str,
    bad_bits: int,
) -> dict[str, NDArray[Any]]:
    tile_wcs = wcs_from_string(tile_wcs_header)
    fn = _RESAMPLERS[resample]
    images, variances = [], []
    for source, vis_header, ys, xs, scale, sky in items:
        with source.open() as opened:
            img = opened.read("image", ys, xs).astype(np.float64)
            var = opened.read("variance", ys, xs).astype(np.float64)
            mask = opened.read("mask", ys, xs)
        bad = ((mask & bad_bits) != 0) | ~np.isfinite(img) | ~np.isfinite(var) | (var <= 0)
        img = np.where(bad, np.nan, (img - float(sky)) * scale)
        var = np.where(bad, np.nan, var * scale * scale)
        sec_wcs = shifted_wcs(wcs_from_string(vis_header), xs.start, ys.start, img.shape)
        kwargs: dict[str, Any] = {"shape_out": tile_shape, "return_footprint": True}
        if resample == "adaptive":
            kwargs.update(conserve_flux=False, boundary_mode="strict")
        out_img, foot = fn((img, sec_wcs), tile_wcs, **kwargs)
        out_var, _ = fn((var, sec_wcs), tile_wcs, **kwargs)
        good = (foot > 0) & np.isfinite(out_img) & np.isfinite(out_var) & (out_var > 0)
        images.append(np.where(good, out_img, np.nan))
        variances.append(np.where(good, out_var, np.nan))
    if not images:
        nan = np.full(tile_shape, np.nan)
        return {"image": nan, "variance": nan, "exposure_count": np.zeros(tile_shape, np.int32)}
    stack_i, stack_v = np.stack(images), np.stack(variances)
    count = np.isfinite(stack_i).sum(axis=0).astype(np.int32)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "ivw":
            w = np.where(np.isfinite(stack_i), 1.0 / stack_v, 0.0)
            wsum = w.sum(axis=0)
            image = np.where(wsum > 0, np.nansum(w * np.nan_to_num(stack_i), axis=0) / wsum, np.nan)
            variance = np.where(wsum > 0, 1.0 / wsum, np.nan)
        else:
            image = np.full(tile_shape, np.nan)
            variance = np.full(tile_shape, np.nan)
            some = count > 0
            image[some] = np.nanmedian(stack_i[:, some], axis=0)
            table = np.array([median_variance_factor(k) for k in range(int(count.max()) + 1)])
            factor = table[count]
            variance[some] = factor[some] * np.nanmean(stack_v[:, some], axis=0) / count[some]
    return {"image": image.astype(np.float32), "variance": variance.astype(np.float32),
            "exposure_count": count}  # fmt: skip


def _visit_sky(source: VisitSource, bad_bits: int) -> float:
    with source.open() as opened:
        full = (slice(None), slice(None))
        img = opened.read("image", *full)
        mask = opened.read("mask", *full)
    return sky_background(img, (mask & bad_bits) == 0)[0]


def coadd(
    stack: xr.Dataset,
    wcs: WCS | None = None,
    shape: tuple[int, int] | None = None,
    *,
    method: str = "ivw",
    resample: str = "interp",
    band: str | None = None,
    bad_planes: tuple[str, ...] = DEFAULT_BAD_PLANES,
    subtract_sky: bool = False,
    tile: int = 512,
) -> xr.Dataset:
    """Resample and combine the visits of one band (see the module docstring).

    Parameters
    ----------
    stack
        A stack from :func:`skydask.images.open_stack`.
    wcs, shape
        The output grid; default :func:`coadd_grid` (``shape`` may come from
        ``wcs.array_shape``).
    method
        ``"ivw"`` (inverse-variance weighted mean) or ``"median"``.
    resample
        ``"interp"`` (bilinear, default), ``"exact"`` or ``"adaptive"``.
    band
        The band to coadd; required when the stack holds several.
    bad_planes
        Mask planes whose pixels are left out.
    subtract_sky
        Subtract each visit's sigma-clipped median first.
    tile
        Side of the output tiles (one task each).

    Returns
    -------
    xarray.Dataset
        Lazy ``image`` (nJy per pixel), ``variance`` (nJy^2) and ``exposure_count`` over
        ``(y, x)``; attributes ``wcs`` (astropy WCS), ``wcs_header``, ``band``, ``method``,
        ``resample``, ``visits``.

    Raises
    ------
    SpecError
        For a bad parameter, a stack of several bands without ``band``, or a visit without
        zeropoint.
    """
    if method not in _METHODS:
        raise SpecError(f"parameter 'method' must be one of {_METHODS}; got {method!r}")
    if resample not in _RESAMPLERS:
        raise SpecError(
            f"parameter 'resample' must be one of {sorted(_RESAMPLERS)}; got {resample!r}"
        )
    if not (isinstance(tile, int) and tile >= 16):
        raise SpecError(f"parameter 'tile' must be an integer >= 16; got {tile!r}")
    bands = sorted(set(stack["band"].values.tolist()))
    if band is not None:
        if band not in bands:
            raise SpecError(f"band {band!r} is not in the stack; it holds {bands}")
        stack = stack.isel(visit=np.flatnonzero(stack["band"].values == band))
    elif len(bands) > 1:
        raise SpecError(f"the stack holds several bands {bands}; pass band= to coadd one")
    else:
        band = bands[0] if bands else ""
    zp = stack["zeropoint"].values.astype(np.float64)
    if not np.isfinite(zp).all():
        missing = stack["visit"].values[~np.isfinite(zp)].tolist()
        raise SpecError(
            f"coadd needs a zeropoint for every visit; {missing[:5]} have none (pass a "
            "calibration table as open_stack(..., metadata=...))"
        )
    if wcs is None:
        wcs, shape = coadd_grid(stack)
    elif shape is None:
        if wcs.array_shape is None:
            raise SpecError("pass 'shape' with 'wcs' (or set wcs.array_shape)")
        shape = (int(wcs.array_shape[0]), int(wcs.array_shape[1]))
    ny, nx = shape
    sources = stack_sources(stack)
    wcs_list = stack_wcs(stack)
    vis_shapes = [
        (int(a), int(b)) for a, b in zip(stack["ny"].values, stack["nx"].values, strict=True)
    ]
    headers = [w.to_header_string(relax=True) for w in wcs_list]
    out_scale = math.sqrt(abs(float(np.linalg.det(wcs.pixel_scale_matrix)))) * 3600.0
    scales = [
        10.0 ** (0.4 * (AB_ZEROPOINT_NJY - z)) * (out_scale / float(s)) ** 2
        for z, s in zip(zp, stack["pixel_scale"].values, strict=True)
    ]
    bad_bits = bits(bad_planes)
    token = tokenize(headers, [str(s) for s in sources], wcs.to_header_string(), shape, method,
                     resample, bad_bits, subtract_sky, tile)  # fmt: skip
    skies: list[Any] = [
        dask.delayed(_visit_sky, pure=True)(s, bad_bits, dask_key_name=f"skydask-sky-{token}-{i}")
        if subtract_sky
        else 0.0
        for i, s in enumerate(sources)
    ]
    rows: dict[str, list[list[Any]]] = {"image": [], "variance": [], "exposure_count": []}
    for ty in range(0, ny, tile):
        row: dict[str, list[Any]] = {k: [] for k in rows}
        for tx in range(0, nx, tile):
            th, tw = min(tile, ny - ty), min(tile, nx - tx)
            box = (ty, ty + th, tx, tx + tw)
            items = []
            for v in range(len(sources)):
                sec = _visit_box(wcs_list[v], vis_shapes[v], wcs, box)
                if sec is not None:
                    items.append((sources[v], headers[v], sec[0], sec[1], scales[v], skies[v]))
            tile_wcs = shifted_wcs(wcs, tx, ty, (th, tw)).to_header_string(relax=True)
            task = dask.delayed(_tile_task, pure=True)(
                tile_wcs, (th, tw), items, method, resample, bad_bits,
                dask_key_name=f"skydask-coadd-{token}-{ty}-{tx}",
            )  # fmt: skip
            for k, dtype in (("image", np.float32), ("variance", np.float32),
                             ("exposure_count", np.int32)):  # fmt: skip
                row[k].append(da.from_delayed(task[k], (th, tw), dtype=dtype,
                                              meta=np.empty((0, 0), dtype=dtype)))  # fmt: skip
        for k in rows:
            rows[k].append(row[k])
    data_vars = {k: (("y", "x"), da.block(v)) for k, v in rows.items()}
    out = xr.Dataset(data_vars, coords={"y": np.arange(ny), "x": np.arange(nx)})
    out["image"].attrs = {"units": "nJy per pixel"}
    out["variance"].attrs = {"units": "nJy^2 per pixel (resampling covariance not included)"}
    out["exposure_count"].attrs = {"description": "visits contributing to the pixel"}
    out.attrs = {
        "title": "skydask coadd",
        "wcs": wcs,
        "wcs_header": wcs.to_header_string(relax=True),
        "band": band,
        "method": method,
        "resample": resample,
        "visits": stack["visit"].values.tolist(),
        "bad_planes": list(bad_planes),
        "sky_subtracted": subtract_sky,
    }
    return out
