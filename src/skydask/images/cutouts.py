"""Postage stamps at (RA, Dec) in every visit that covers them, as one lazy dask graph.

Semantics are astropy's ``Cutout2D(..., mode="partial", fill_value=nan)`` through each visit's
own WCS: the position goes to pixels with ``all_world2pix`` (origin 0), the stamp's first pixel
is ``ceil(position - size / 2)`` on each axis, and pixels of the stamp outside the image are NaN
(image, variance) and ``NO_DATA`` (mask), with ``partial`` set. A visit *covers* a position when
the position falls on one of its pixels (``-0.5 <= x < nx - 0.5``, the same for y); stamps of
visits that do not cover a position are left empty (all NaN, ``covered`` False), even where a
corner of the stamp would touch the image.

The graph: positions are mapped to pixels on the client (one vectorised WCS call per visit, no
pixel read), then **one task per visit** opens its files once, memory-mapped, and gathers every
stamp of that visit with one fancy-indexing read per plane (no Python loop over stamps); four
``getitem`` tasks hand its planes and byte count to the assembled ``(object, visit, y, x)``
arrays, one chunk per visit. So ``n`` positions on ``m`` visits cost ``5 m`` tasks, not
``n m``, and each file is opened once and read only where the stamps are (:mod:`.planes`). The
``bytes_read`` variable (per visit) counts the file pages those reads touched; compare its sum
with ``stack.disk_bytes.sum()``.

The result is dense over (object, visit): ``n m`` stamps in memory once computed, most of them
empty when the positions are spread over a survey; select the visits first (or split the
positions) when that is large.

``from_files=False`` slices the Dataset's own arrays instead (one task per visit reading the
whole visit): use it for a stack whose arrays were changed in memory, since the default reads
the files the ``source`` coordinate names.
"""

from __future__ import annotations

import logging
import operator
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from astropy import units as u
from astropy.wcs import WCS
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from numpy.typing import NDArray

from skydask.errors import SpecError
from skydask.images.masks import MASK_DTYPE, bit, mask_attrs
from skydask.images.planes import stamp_index
from skydask.images.source import PLANES, VisitSource
from skydask.images.stack import stack_sources, stack_wcs
from skydask.images.wcs import footprint, shifted_wcs, unit_vectors

__all__ = ["cutouts", "stamp_origin", "stamp_shape", "stamp_wcs"]

log = logging.getLogger(__name__)

_DTYPES = {"image": np.dtype(np.float32), "variance": np.dtype(np.float32), "mask": MASK_DTYPE}
# coordinates of the stack that are per visit and small enough to carry along
_VISIT_COORDS = ("band", "mjd", "exptime", "zeropoint", "seeing", "pixel_scale", "wcs", "ny",
                 "nx", "file", "hdu", "layout", "exposure", "detector")  # fmt: skip


def _fill(plane: str) -> Any:
    return bit("NO_DATA") if plane == "mask" else np.nan


def stamp_shape(size: Any, pixel_scale: float) -> tuple[int, int]:
    """Stamp ``(ny, nx)`` in pixels from an int, a pair, or angles (astropy Quantity).

    Angles are converted with ``pixel_scale`` (arcsec) and rounded, so every visit's stamp has
    the same number of pixels.

    Examples
    --------
    >>> stamp_shape(15, 0.2), stamp_shape((11, 21), 0.2), stamp_shape(3 * u.arcsec, 0.2)
    ((15, 15), (11, 21), (15, 15))
    """
    values = size if isinstance(size, (tuple, list)) or (
        isinstance(size, u.Quantity) and size.ndim == 1
    ) else (size, size)  # fmt: skip
    out = []
    for v in values:
        if isinstance(v, u.Quantity):
            n = round(float(v.to_value(u.arcsec)) / pixel_scale)
        else:
            if isinstance(v, float) and not v.is_integer():
                raise SpecError(f"parameter 'size' in pixels must be whole numbers; got {size!r}")
            n = int(v)
        if n < 1:
            raise SpecError(f"parameter 'size' must be at least one pixel; got {size!r}")
        out.append(n)
    if len(out) != 2:
        raise SpecError(f"parameter 'size' must be one or two values; got {size!r}")
    return out[0], out[1]


def stamp_origin(
    x: NDArray[np.float64], y: NDArray[np.float64], shape: tuple[int, int]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Pixel of the visit at each stamp's ``[0, 0]``: ``ceil(position - size / 2)`` per axis.

    The rule of ``astropy.nddata.utils.overlap_slices``.

    Examples
    --------
    >>> [v.tolist() for v in stamp_origin(np.array([10.0, 10.5]), np.array([3.2, 3.2]), (5, 4))]
    [[8, 9], [1, 1]]
    """
    sy, sx = shape
    return (
        np.ceil(x - sx / 2.0).astype(np.int64),
        np.ceil(y - sy / 2.0).astype(np.int64),
    )


def _positions(ra: Any, dec: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    def deg(v: Any) -> NDArray[np.float64]:
        if isinstance(v, u.Quantity):
            return np.atleast_1d(v.to_value(u.deg)).astype(np.float64)
        return np.atleast_1d(np.asarray(v, dtype=np.float64))

    r, d = deg(ra), deg(dec)
    if r.shape != d.shape or r.ndim != 1:
        raise SpecError(
            f"parameters 'ra' and 'dec' must be scalars or 1-D arrays of one length; got shapes "
            f"{r.shape} and {d.shape}"
        )
    if not (np.isfinite(r).all() and np.isfinite(d).all() and (np.abs(d) <= 90).all()):
        raise SpecError("parameters 'ra' and 'dec' must be finite, with |dec| <= 90 degrees")
    return r, d


def _pixels(
    wcs: WCS, shape: tuple[int, int], ra: NDArray[np.float64], dec: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Pixel positions and coverage of every position in one visit."""
    n = len(ra)
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    # only positions near the visit go through the WCS: far ones can make SIP/TPV inversion
    # fail, and a gnomonic projection maps the opposite hemisphere onto the image
    edge = footprint(wcs, shape)
    centre = unit_vectors(*wcs.all_pix2world([(shape[1] - 1) / 2], [(shape[0] - 1) / 2], 0))[0]
    radius = float(np.min(unit_vectors(edge[:, 0], edge[:, 1]) @ centre))
    # 1e-3 in cosine is a margin of ~2.5 deg beyond a small image, ~0.05 deg beyond a wide one
    near = unit_vectors(ra, dec) @ centre >= radius - 1e-3
    if near.any():
        px, py = wcs.all_world2pix(ra[near], dec[near], 0, quiet=True)
        x[near], y[near] = px, py
    ny, nx = shape
    with np.errstate(invalid="ignore"):
        covered = (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5)
    return x, y, covered


def _visit_task(
    source: VisitSource,
    planes: tuple[str, ...],
    stamp: tuple[int, int],
    x0: NDArray[np.int64],
    y0: NDArray[np.int64],
) -> dict[str, Any]:
    """Every stamp of one visit ``(k, sy, sx)``: one gather per plane from the mapped files."""
    out: dict[str, Any] = {}
    with source.open(planes) as opened:
        for p in planes:
            out[p] = opened.gather(p, y0, x0, stamp)
        out["bytes_read"] = np.array([opened.bytes_touched], dtype=np.int64)
    return out


def _array_task(
    arrays: dict[str, NDArray[Any]],
    planes: tuple[str, ...],
    stamp: tuple[int, int],
    x0: NDArray[np.int64],
    y0: NDArray[np.int64],
) -> dict[str, Any]:
    """The same from the visit's arrays (``from_files=False``)."""
    out: dict[str, Any] = {}
    for p in planes:
        data = np.asarray(arrays[p])
        flat, inside = stamp_index(y0, x0, stamp, data.shape)
        values = data.reshape(-1)[flat]
        values[~inside] = _fill(p)
        out[p] = values
    out["bytes_read"] = np.array([sum(np.asarray(a).nbytes for a in arrays.values())], np.int64)
    return out


def _scatter(compact: NDArray[Any], plane: str, n_obj: int, obj: NDArray[np.int64]) -> Any:
    """A visit's dense chunk ``(n_obj, 1, sy, sx)``: its stamps at their objects, empty else."""
    out = np.full((n_obj, 1, *compact.shape[1:]), _fill(plane), dtype=_DTYPES[plane])
    out[obj, 0] = compact
    return out


def cutouts(
    stack: xr.Dataset,
    ra: Any,
    dec: Any,
    size: Any,
    *,
    all_visits: bool = False,
    from_files: bool = True,
    dense: bool = True,
) -> xr.Dataset:
    """Stamps at one or many positions in every visit covering them (see the module docstring).

    Parameters
    ----------
    stack
        A stack from :func:`skydask.images.open_stack` (any selection of its visits).
    ra, dec
        Position(s) in degrees (floats, arrays or astropy Quantities).
    size
        Stamp size: pixels (int or ``(ny, nx)``) or angles (Quantity; converted with the
        visits' median pixel scale, so all stamps have the same pixel count).
    all_visits
        Keep visits that cover none of the positions (all-empty stamps); dropped by default.
    from_files
        Read the files (default); False slices the Dataset's arrays.
    dense
        True (default): arrays over ``(object, visit, y, x)``, empty where a visit does not
        cover an object. False: only the covering stamps, over ``(stamp, y, x)``, with
        per-stamp coordinates ``object``, ``visit``, ``ra``, ``dec``, ``band``, ``mjd``, ...
        (and ``bytes_read`` over ``visit_read``): the compact form for positions spread over
        many visits, where the dense array would be mostly empty.

    Returns
    -------
    xarray.Dataset
        ``image``, ``variance``, ``mask`` over ``(object, visit, y, x)`` (lazy), ``bytes_read``
        over ``visit`` (lazy); coordinates ``ra``, ``dec``, ``n_visits`` per object, the
        stack's per-visit coordinates (``band``, ``mjd``, ``wcs``, ...), and per (object, visit)
        ``covered``, ``partial``, ``x_center``, ``y_center`` (the position in the visit's
        pixels), ``x_origin``, ``y_origin`` (the visit pixel at stamp ``[0, 0]``; 0 where not
        covered). :func:`stamp_wcs` gives a stamp's WCS. Positions that no visit covers are
        kept, with ``n_visits == 0``, and listed in the ``uncovered`` attribute.

    Raises
    ------
    SpecError
        For positions or a size that are not valid.

    Examples
    --------
    >>> from astropy.io import fits
    >>> w = WCS(naxis=2)
    >>> w.wcs.ctype, w.wcs.crval = ["RA---TAN", "DEC--TAN"], [60.0, -35.0]
    >>> w.wcs.cdelt, w.wcs.crpix = [-5e-5, 5e-5], [16.0, 16.0]
    >>> data = np.arange(32 * 32, dtype="f4").reshape(32, 32)
    >>> path = getfixture("tmp_path") / "img.fits"
    >>> fits.PrimaryHDU(data, header=w.to_header()).writeto(path)
    >>> from skydask.images import open_stack
    >>> stamps = cutouts(open_stack(path), [60.0, 10.0], [-35.0, 0.0], 3)
    >>> stamps.image.shape, stamps.n_visits.values.tolist()
    ((2, 1, 3, 3), [1, 0])
    >>> stamps.image[0, 0].values.tolist() == data[14:17, 14:17].tolist()
    True
    >>> stamps.attrs["uncovered"]
    'object 1 at (ra, dec) = (10.000000, 0.000000) deg: covered by none of the 1 visits'
    """
    r, d = _positions(ra, dec)
    n_obj = len(r)
    scales = stack["pixel_scale"].values if "pixel_scale" in stack.coords else np.array([0.2])
    stamp = stamp_shape(size, float(np.nanmedian(scales)) if len(scales) else 0.2)
    wcs_list = stack_wcs(stack)
    sources = stack_sources(stack) if from_files else []
    nvis = len(wcs_list)
    shapes = list(zip(stack["ny"].values.tolist(), stack["nx"].values.tolist(), strict=True))
    xc = np.full((n_obj, nvis), np.nan)
    yc = np.full((n_obj, nvis), np.nan)
    cov = np.zeros((n_obj, nvis), dtype=bool)
    for v, (w, shp) in enumerate(zip(wcs_list, shapes, strict=True)):
        xc[:, v], yc[:, v], cov[:, v] = _pixels(w, shp, r, d)
    x0 = np.zeros((n_obj, nvis), dtype=np.int64)
    y0 = np.zeros((n_obj, nvis), dtype=np.int64)
    ox, oy = stamp_origin(np.where(cov, xc, 0.0), np.where(cov, yc, 0.0), stamp)
    x0[cov], y0[cov] = ox[cov], oy[cov]
    ny_v = np.array([s[0] for s in shapes])[None, :]
    nx_v = np.array([s[1] for s in shapes])[None, :]
    partial = cov & ((x0 < 0) | (y0 < 0) | (x0 + stamp[1] > nx_v) | (y0 + stamp[0] > ny_v))
    keep = np.arange(nvis) if all_visits else np.flatnonzero(cov.any(axis=0))

    planes = PLANES
    token = tokenize(r, d, stamp, [str(s) for s in sources] or id(stack), keep.tolist(), dense)
    tasks, objs = [], []
    for i, v in enumerate(keep.tolist()):
        obj = np.flatnonzero(cov[:, v])
        args = (planes, stamp, x0[obj, v], y0[obj, v])
        key = (f"skydask-stamps-{token}", i)
        if from_files:
            # traverse=False: the arguments hold no dask collection, and walking the
            # VisitSource dataclasses costs more than the task's own work for small visits
            task = dask.delayed(_visit_task, pure=True, traverse=False)(
                sources[v], *args, dask_key_name=key
            )
        else:
            arrays = {p: stack[p].data[v, : shapes[v][0], : shapes[v][1]] for p in planes}
            task = dask.delayed(_array_task, pure=True)(arrays, *args, dask_key_name=key)
        tasks.append(task)
        objs.append(obj)
    n_visits = cov[:, keep].sum(axis=1) if len(keep) else np.zeros(n_obj, dtype=np.int64)
    if dense:
        data_vars = _dense_vars(tasks, objs, planes, n_obj, stamp, token)
        coords = _dense_coords(stack, keep, r, d, n_visits, cov, partial, xc, yc, x0, y0)
    else:
        data_vars = _compact_vars(tasks, objs, planes, stamp, token)
        coords = _compact_coords(stack, keep, objs, r, d, partial, xc, yc, x0, y0)
    coords["y"], coords["x"] = np.arange(stamp[0]), np.arange(stamp[1])
    out = xr.Dataset(data_vars, coords=coords)
    out["mask"].attrs = mask_attrs()
    out["bytes_read"].attrs = {
        "units": "bytes",
        "description": "file pages touched by the memory-mapped reads of each visit's stamps "
        "(or the bytes of the visit's arrays with from_files=False)",
    }
    out.attrs = {
        "title": "skydask cut-outs",
        "stamp_shape": list(stamp),
        "semantics": "astropy Cutout2D mode='partial', fill NaN / NO_DATA; origin "
        "ceil(position - size / 2) per axis",
        "uncovered": _uncovered_message(r, d, n_visits, nvis),
    }
    if (n_visits == 0).any():
        log.warning("cutouts: %s", out.attrs["uncovered"])
    return out


def _layer_array(
    tasks: list[Any], name: str, keys: list[Any], calls: list[Any], chunks: Any, dtype: Any
) -> da.Array:
    """A dask array whose chunk ``keys[i]`` is the task ``calls[i]`` (no extra layers)."""
    layer: dict[Any, Any] = dict(zip(keys, calls, strict=True))
    graph = HighLevelGraph.from_collections(name, layer, dependencies=tasks)
    meta = np.empty((0,) * len(chunks), dtype=dtype)
    return da.Array(graph, name, chunks=chunks, dtype=dtype, meta=meta)


def _bytes_var(tasks: list[Any], token: str, dim: str) -> tuple[tuple[str], Any]:
    if not tasks:
        return (dim,), np.empty(0, dtype=np.int64)
    name = f"skydask-cutouts-bytes-{token}"
    keys = [(name, i) for i in range(len(tasks))]
    calls = [(operator.getitem, t.key, "bytes_read") for t in tasks]
    chunks = ((1,) * len(tasks),)
    return (dim,), _layer_array(tasks, name, keys, calls, chunks, np.int64)


def _dense_vars(
    tasks: list[Any], objs: list[Any], planes: tuple[str, ...], n_obj: int,
    stamp: tuple[int, int], token: str,
) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"bytes_read": _bytes_var(tasks, token, "visit")}
    dims = ("object", "visit", "y", "x")
    for p in planes:
        if not tasks:
            out[p] = (dims, np.empty((n_obj, 0, *stamp), dtype=_DTYPES[p]))
            continue
        # one scatter per visit and plane, straight into the array's chunk
        name = f"skydask-cutouts-{p}-{token}"
        keys = [(name, 0, i, 0, 0) for i in range(len(tasks))]
        calls = [
            (_scatter, (operator.getitem, t.key, p), p, n_obj, obj)
            for t, obj in zip(tasks, objs, strict=True)
        ]
        chunks = ((n_obj,), (1,) * len(tasks), (stamp[0],), (stamp[1],))
        out[p] = (dims, _layer_array(tasks, name, keys, calls, chunks, _DTYPES[p]))
    return out


def _compact_vars(
    tasks: list[Any], objs: list[Any], planes: tuple[str, ...], stamp: tuple[int, int],
    token: str,
) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"bytes_read": _bytes_var(tasks, token, "visit_read")}
    dims = ("stamp", "y", "x")
    sizes = tuple(len(o) for o in objs)
    for p in planes:
        if not sum(sizes):
            out[p] = (dims, np.empty((0, *stamp), dtype=_DTYPES[p]))
            continue
        name = f"skydask-cutouts-{p}-{token}"
        keys = [(name, i, 0, 0) for i in range(len(tasks))]
        calls = [(operator.getitem, t.key, p) for t in tasks]
        chunks = (sizes, (stamp[0],), (stamp[1],))
        out[p] = (dims, _layer_array(tasks, name, keys, calls, chunks, _DTYPES[p]))
    return out


def _dense_coords(
    stack: xr.Dataset, keep: NDArray[np.int64], r: Any, d: Any, n_visits: Any, cov: Any,
    partial: Any, xc: Any, yc: Any, x0: Any, y0: Any,
) -> dict[str, Any]:  # fmt: skip
    pair = ("object", "visit")
    coords: dict[str, Any] = {
        "object": np.arange(len(r)),
        "visit": stack["visit"].values[keep],
        "ra": ("object", r),
        "dec": ("object", d),
        "n_visits": ("object", n_visits.astype(np.int64)),
        "covered": (pair, cov[:, keep]),
        "partial": (pair, partial[:, keep]),
        "x_center": (pair, np.where(cov, xc, np.nan)[:, keep]),
        "y_center": (pair, np.where(cov, yc, np.nan)[:, keep]),
        "x_origin": (pair, x0[:, keep]),
        "y_origin": (pair, y0[:, keep]),
    }
    for name in _VISIT_COORDS:
        if name in stack.coords:
            coords[name] = ("visit", stack[name].values[keep])
    return coords


def _compact_coords(
    stack: xr.Dataset, keep: NDArray[np.int64], objs: list[Any], r: Any, d: Any,
    partial: Any, xc: Any, yc: Any, x0: Any, y0: Any,
) -> dict[str, Any]:  # fmt: skip
    obj = np.concatenate(objs) if objs else np.zeros(0, dtype=np.int64)
    vis = np.repeat(keep, [len(o) for o in objs]) if objs else np.zeros(0, dtype=np.int64)
    coords: dict[str, Any] = {
        "object": ("stamp", obj),
        "visit": ("stamp", stack["visit"].values[vis]),
        "visit_read": stack["visit"].values[keep],
        "ra": ("stamp", r[obj]),
        "dec": ("stamp", d[obj]),
        "covered": ("stamp", np.ones(len(obj), dtype=bool)),
        "partial": ("stamp", partial[obj, vis]),
        "x_center": ("stamp", xc[obj, vis]),
        "y_center": ("stamp", yc[obj, vis]),
        "x_origin": ("stamp", x0[obj, vis]),
        "y_origin": ("stamp", y0[obj, vis]),
    }
    for name in _VISIT_COORDS:
        if name in stack.coords:
            coords[name] = ("stamp", stack[name].values[vis])
    return coords


def _uncovered_message(
    ra: NDArray[np.float64], dec: NDArray[np.float64], n_visits: NDArray[Any], nvis: int
) -> str:
    lost = np.flatnonzero(n_visits == 0)
    if not len(lost):
        return ""
    shown = [
        f"object {i} at (ra, dec) = ({ra[i]:.6f}, {dec[i]:.6f}) deg" for i in lost[:10].tolist()
    ]
    more = f" and {len(lost) - 10} more" if len(lost) > 10 else ""
    return f"{'; '.join(shown)}{more}: covered by none of the {nvis} visits"


def stamp_wcs(stamps: xr.Dataset, object: int, visit: int | str | None = None) -> WCS:
    """The WCS of one stamp (its visit's WCS shifted to the stamp, as ``Cutout2D.wcs``).

    Dense cut-outs: ``object`` is the object index and ``visit`` a visit index or name.
    Compact cut-outs (``dense=False``): ``object`` is the stamp index, ``visit`` is not given.

    Raises
    ------
    SpecError
        If that visit does not cover that object.
    """
    shape = (stamps.sizes["y"], stamps.sizes["x"])
    if "stamp" in stamps.dims:
        k = int(object)
        wcs = stamps["wcs"].values[k]
        x0, y0 = int(stamps["x_origin"].values[k]), int(stamps["y_origin"].values[k])
        return shifted_wcs(wcs, x0, y0, shape)
    if visit is None:
        raise SpecError("stamp_wcs of dense cut-outs needs a visit (index or name)")
    v = (
        int(np.flatnonzero(stamps["visit"].values == visit)[0])
        if isinstance(visit, str)
        else int(visit)
    )
    if not bool(stamps["covered"].values[object, v]):
        raise SpecError(f"visit {stamps['visit'].values[v]} does not cover object {object}")
    wcs = stamps["wcs"].values[v]
    x0 = int(stamps["x_origin"].values[object, v])
    y0 = int(stamps["y_origin"].values[object, v])
    return shifted_wcs(wcs, x0, y0, shape)
