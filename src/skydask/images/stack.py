"""``open_stack``: FITS exposures as one lazy ``xarray.Dataset`` (dims visit, y, x).

Opening reads headers only: one dask task per batch of 32 files (on the cluster's workers when
a ``distributed`` client is active, else in threads) returns each visit's metadata and where its
planes are (:mod:`.layouts`). No pixel is read until a computation asks for it.

The Dataset:

* variables ``image`` (float32, the file's units), ``variance`` (float32, those units squared)
  and ``mask`` (int32 canonical bits, their meaning in the variable's ``flag_meanings`` and
  ``flag_masks`` attributes, see :mod:`.masks`);
* dims ``visit``, ``y``, ``x``; one chunk per visit ``(1, ny, nx)``;
* per-visit coordinates ``band``, ``mjd`` (mid-exposure, UTC), ``exptime`` (s), ``zeropoint``
  (AB mag of one image unit), ``seeing`` (PSF FWHM, arcsec), ``pixel_scale`` (arcsec), ``wcs``
  (the visit's own astropy WCS), ``ny`` and ``nx`` (the visit's true size), ``file``, ``hdu``,
  ``layout``, ``exposure``, ``detector``, ``disk_bytes`` (its pixel bytes on disk) and ``source``
  (how to read it, used by cut-outs, coadds and quality);
* visits sorted by ``mjd`` (undated last), then name.

Visits of different sizes share the array shape of the largest, **padded**: pixels beyond a
visit's ``ny`` x ``nx`` are NaN in image and variance and ``NO_DATA`` in the mask. Padding was
chosen over a ragged list so that ``stack.image.isel(visit=...)`` and xarray's reductions work
as usual; calexps of one camera have one size, so real stacks pad little (DECam test files:
one row). Each visit keeps its own WCS; nothing assumes a shared pixel grid.

Reads are lazy and narrow: each chunk is read by a task that memory-maps the file and slices
only the pixels asked for (dask fuses the slicing of ``stack.image[3, 100:200, 50:80]`` into the
read), see :mod:`.planes`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize
from numpy.typing import NDArray

from skydask.errors import SpecError
from skydask.images.layouts import expand_paths, scan_file
from skydask.images.masks import MASK_DTYPE, bit, mask_attrs
from skydask.images.metadata import VisitMeta, apply_metadata, read_metadata_table
from skydask.images.source import PLANES, VisitSource
from skydask.images.wcs import wcs_from_string

__all__ = ["open_stack", "stack_sources", "stack_wcs"]

log = logging.getLogger(__name__)

_SCAN_BATCH = 32
_DTYPES = {"image": np.dtype(np.float32), "variance": np.dtype(np.float32), "mask": MASK_DTYPE}


def _fill(plane: str) -> Any:
    return bit("NO_DATA") if plane == "mask" else np.nan


@dataclass(frozen=True)
class _PlaneStack:
    """A lazily read ``(visit, y, x)`` array of one plane, for ``dask.array.from_array``."""

    sources: tuple[VisitSource, ...]
    plane: str
    shape: tuple[int, int, int]

    @property
    def dtype(self) -> np.dtype[Any]:
        return _DTYPES[self.plane]

    @property
    def ndim(self) -> int:
        return 3

    def __getitem__(self, key: Any) -> NDArray[Any]:
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = next(j for j, k in enumerate(key) if k is Ellipsis)
            key = key[:i] + (slice(None),) * (3 - len(key) + 1) + key[i + 1 :]
        key = key + (slice(None),) * (3 - len(key))
        index = [np.arange(n)[k] for n, k in zip(self.shape, key, strict=True)]
        scalar = [np.ndim(i) == 0 for i in index]
        vis, ys, xs = (np.atleast_1d(i) for i in index)
        out = np.full((len(vis), len(ys), len(xs)), _fill(self.plane), dtype=self.dtype)
        for n, v in enumerate(vis):
            src = self.sources[int(v)]
            yin, xin = ys < src.shape[0], xs < src.shape[1]
            if not (yin.any() and xin.any()):
                continue
            y0, y1 = int(ys[yin].min()), int(ys[yin].max()) + 1
            x0, x1 = int(xs[xin].min()), int(xs[xin].max()) + 1
            with src.open((self.plane,)) as opened:
                block = opened.read(self.plane, slice(y0, y1), slice(x0, x1))
            out[n][np.ix_(yin, xin)] = block[np.ix_(ys[yin] - y0, xs[xin] - x0)]
        drop = tuple(0 if s else slice(None) for s in scalar)
        return out[drop]


def _scan_batch(files: list[str], layout: str) -> list[tuple[VisitMeta, VisitSource]]:
    return [visit for f in files for visit in scan_file(f, layout)]


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        k = seen.get(name, 0)
        seen[name] = k + 1
        out.append(name if k == 0 else f"{name}#{k}")
    return out


def open_stack(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    layout: str = "auto",
    metadata: Any = None,
    sort: str | None = "mjd",
) -> xr.Dataset:
    """Open FITS exposures as a lazy, dask-backed image stack (see the module docstring).

    Parameters
    ----------
    paths
        A file, glob pattern, directory or list of them (:func:`.layouts.expand_paths`).
    layout
        ``"auto"`` (per file), ``"lsst"``, ``"decam_cp"`` or ``"fits"`` (:mod:`.layouts`).
    metadata
        A calibration table overriding header values: a path, astropy Table or DataFrame,
        either a Legacy Surveys ``survey-ccds`` table or one with a ``file`` column
        (:func:`.metadata.read_metadata_table`).
    sort
        ``"mjd"`` (then name) or ``None`` for the order of the files.

    Returns
    -------
    xarray.Dataset
        Variables ``image``, ``variance``, ``mask`` over ``(visit, y, x)``.

    Raises
    ------
    CatalogReadError
        If a file is missing, not FITS, truncated, without a celestial WCS, or incomplete for
        its layout; the message names the file.
    SpecError
        For a bad ``layout`` or ``sort``.

    Examples
    --------
    >>> from astropy.io import fits
    >>> from astropy.wcs import WCS
    >>> w = WCS(naxis=2)
    >>> w.wcs.ctype, w.wcs.crval = ["RA---TAN", "DEC--TAN"], [60.0, -35.0]
    >>> w.wcs.cdelt, w.wcs.crpix = [-5e-5, 5e-5], [16.5, 16.5]
    >>> path = getfixture("tmp_path") / "one.fits"
    >>> fits.PrimaryHDU(np.ones((32, 32), "f4"), header=w.to_header()).writeto(path)
    >>> stack = open_stack(path)
    >>> dict(stack.sizes), stack.layout.values.tolist(), round(float(stack.pixel_scale[0]), 3)
    ({'visit': 1, 'y': 32, 'x': 32}, ['fits'], 0.18)
    >>> float(stack.image[0, 3:5, 3:5].sum().compute())
    4.0
    """
    if sort not in ("mjd", None):
        raise SpecError(f"parameter 'sort' must be 'mjd' or None; got {sort!r}")
    files = expand_paths(paths)
    table = read_metadata_table(metadata) if metadata is not None else None
    batches = [files[i : i + _SCAN_BATCH] for i in range(0, len(files), _SCAN_BATCH)]
    if len(batches) == 1:
        scanned = [_scan_batch(batches[0], layout)]
    else:
        scanned = list(dask.compute(*[dask.delayed(_scan_batch)(b, layout) for b in batches]))
    visits = [(apply_metadata(m, table), s) for batch in scanned for m, s in batch]
    if sort == "mjd":
        visits.sort(key=lambda v: (math.isnan(v[0].mjd), v[0].mjd, v[0].name))
    metas = [m for m, _ in visits]
    sources = tuple(s for _, s in visits)
    log.info("opened %d visits from %d files", len(metas), len(files))
    return _build(metas, sources)


def _build(metas: list[VisitMeta], sources: tuple[VisitSource, ...]) -> xr.Dataset:
    nv = len(metas)
    ny = max(m.shape[0] for m in metas)
    nx = max(m.shape[1] for m in metas)
    token = tokenize([(s.image, s.variance, s.mask, s.variance_value) for s in sources])
    data_vars = {}
    for plane in PLANES:
        lazy = _PlaneStack(sources, plane, (nv, ny, nx))
        arr = da.from_array(
            lazy,
            chunks=(1, ny, nx),
            asarray=False,
            lock=False,
            inline_array=True,
            name=f"skydask-stack-{plane}-{token}",
            meta=np.empty((0, 0, 0), dtype=_DTYPES[plane]),
        )
        data_vars[plane] = (("visit", "y", "x"), arr)
    frame = pd.DataFrame([m.__dict__ for m in metas])
    wcs = np.empty(nv, dtype=object)
    wcs[:] = [wcs_from_string(m.wcs_header) for m in metas]
    src = np.empty(nv, dtype=object)
    src[:] = list(sources)
    coords: dict[str, Any] = {
        "visit": _unique_names(frame["name"].tolist()),
        "y": np.arange(ny),
        "x": np.arange(nx),
        "band": ("visit", frame["band"].astype(str).to_numpy()),
        "mjd": ("visit", frame["mjd"].to_numpy(dtype=np.float64)),
        "exptime": ("visit", frame["exptime"].to_numpy(dtype=np.float64)),
        "zeropoint": ("visit", frame["zeropoint"].to_numpy(dtype=np.float64)),
        "seeing": ("visit", frame["seeing"].to_numpy(dtype=np.float64)),
        "pixel_scale": ("visit", frame["pixel_scale"].to_numpy(dtype=np.float64)),
        "ny": ("visit", np.array([m.shape[0] for m in metas], dtype=np.int64)),
        "nx": ("visit", np.array([m.shape[1] for m in metas], dtype=np.int64)),
        "wcs": ("visit", wcs),
        "file": ("visit", frame["file"].astype(str).to_numpy()),
        "hdu": ("visit", frame["hdu"].to_numpy(dtype=np.int64)),
        "layout": ("visit", np.array([s.layout for s in sources])),
        "exposure": ("visit", frame["exposure"].astype(str).to_numpy()),
        "detector": ("visit", frame["detector"].astype(str).to_numpy()),
        "disk_bytes": ("visit", np.array([s.nbytes for s in sources], dtype=np.int64)),
        "source": ("visit", src),
    }
    ds = xr.Dataset(data_vars, coords=coords)
    ds["image"].attrs = {"units": "file units (calibrate with the zeropoint coordinate)"}
    ds["variance"].attrs = {"units": "file units squared; inf where the weight is zero"}
    ds["mask"].attrs = mask_attrs()
    units = {
        "mjd": "d (UTC, mid-exposure)",
        "exptime": "s",
        "zeropoint": "mag (AB) of 1 unit",
        "seeing": "arcsec (PSF FWHM)",
        "pixel_scale": "arcsec",
        "disk_bytes": "bytes",
    }
    for name, unit in units.items():
        ds[name].attrs["units"] = unit
    ds.attrs = {
        "title": "skydask image stack",
        "padding": "visits smaller than the arrays are padded: NaN image and variance, "
        "NO_DATA mask",
    }
    return ds


def stack_sources(stack: xr.Dataset) -> list[VisitSource]:
    """The per-visit :class:`VisitSource` objects of a stack made by :func:`open_stack`.

    Raises
    ------
    SpecError
        If the Dataset has no ``source`` coordinate (it was not made by ``open_stack``).
    """
    if "source" not in stack.coords:
        raise SpecError(
            "the stack has no 'source' coordinate; expected a Dataset from skydask.open_stack"
        )
    return list(stack["source"].values)


def stack_wcs(stack: xr.Dataset) -> list[Any]:
    """The per-visit WCS objects of a stack.

    Raises
    ------
    SpecError
        If the Dataset has no ``wcs`` coordinate.
    """
    if "wcs" not in stack.coords:
        raise SpecError("the stack has no 'wcs' coordinate; expected one astropy WCS per visit")
    return list(stack["wcs"].values)
