"""The reports as a mask layer over an image stack, so coadds and cut-outs leave them out.

Each report that says pixels are bad (not a false positive, not "awesome!", not rejected, not a
duplicate merged into another) flags a region of its image in the canonical mask plane of its
class (``problems.yaml``): a disc around the click, the click's column or row, or the whole
image. Reports are matched to the stack's visits by ``image_id`` (the visit name).

* :func:`flag_mask` — the layer alone: a lazy ``int32`` DataArray over ``(visit, y, x)``, the
  stack's shape and chunks, with the canonical bits of the flagged regions.
* :func:`hide_flagged` — the stack with the layer OR-ed into its ``mask`` variable *and* into
  every read of its files (the ``source`` coordinate is wrapped), so
  :func:`skydask.images.coadd` and :func:`skydask.images.cutouts` see the flags as they see any
  mask plane. Coadds leave out pixels of ``bad_planes``: the default planes cover BAD, CR,
  STREAK, BLEED and SAT; pass ``bad_planes=CHECKER_BAD_PLANES`` to also leave out SUSPECT
  (sky and flat-field problems) and CROSSTALK.

Examples
--------
>>> region_hits("disc", 5.0, 5.0, 2, np.array([5, 5]), np.array([5, 8])).tolist()
[True, False]
>>> region_hits("column", 5.0, 5.0, 3, np.array([0, 99]), np.array([6, 7])).tolist()
[True, False]
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray

from skydask.checker.problems import problem_class
from skydask.errors import SpecError
from skydask.images.masks import DEFAULT_BAD_PLANES, MASK_DTYPE, bit
from skydask.images.source import PLANES, OpenVisit, VisitSource
from skydask.images.stack import stack_sources

__all__ = [
    "CHECKER_BAD_PLANES",
    "FlaggedVisitSource",
    "flag_mask",
    "flags_by_visit",
    "hide_flagged",
    "region_hits",
]

#: Coadd ``bad_planes`` that leave out every plane the checker's classes set.
CHECKER_BAD_PLANES: tuple[str, ...] = (*DEFAULT_BAD_PLANES, "SUSPECT", "CROSSTALK")

#: One flag: (mask bit, region, x, y, size).
Flag = tuple[int, str, float, float, int]


def region_hits(
    region: str, x: float, y: float, size: int, ys: NDArray[Any], xs: NDArray[Any]
) -> NDArray[np.bool_]:
    """Which pixels ``(ys, xs)`` (broadcast together) lie in a region around ``(x, y)``."""
    ys, xs = np.asarray(ys, dtype=np.float64), np.asarray(xs, dtype=np.float64)
    if region == "disc":
        return np.asarray((xs - x) ** 2 + (ys - y) ** 2 <= float(size) ** 2)
    if region == "column":
        return np.asarray(np.abs(xs - round(x)) <= size // 2) & np.ones_like(ys, dtype=bool)
    if region == "row":
        return np.asarray(np.abs(ys - round(y)) <= size // 2) & np.ones_like(xs, dtype=bool)
    if region == "image":
        return np.ones(np.broadcast_shapes(ys.shape, xs.shape), dtype=bool)
    raise SpecError(f"unknown region {region!r}; expected disc, column, row or image")


def _apply(flags: tuple[Flag, ...], ys: NDArray[Any], xs: NDArray[Any]) -> NDArray[np.int32]:
    out = np.zeros(np.broadcast_shapes(ys.shape, xs.shape), dtype=MASK_DTYPE)
    for value, region, x, y, size in flags:
        out[region_hits(region, x, y, size, ys, xs)] |= value
    return out


def _read_reports(reports: Any) -> pd.DataFrame:
    if isinstance(reports, pd.DataFrame):
        return reports
    if isinstance(reports, (str, os.PathLike)):
        return pd.read_parquet(reports)
    if hasattr(reports, "to_dask"):  # a skydask Catalog over the export
        frame: pd.DataFrame = reports.to_dask().compute()
        return frame
    raise SpecError(
        "parameter 'reports' must be a DataFrame, the path of an export or a Catalog; "
        f"got {type(reports).__name__}"
    )


def flags_by_visit(reports: Any, plane: str | None = None) -> dict[str, tuple[Flag, ...]]:
    """The flags of each image key, from an export (path, DataFrame or Catalog).

    ``plane`` sets one canonical plane for every flag instead of each class's own.

    Raises
    ------
    SpecError
        If the table lacks the export's columns.
    """
    frame = _read_reports(reports)
    need = {"image_id", "x", "y", "problem", "false_positive", "status"}
    missing = sorted(need - set(frame.columns))
    if missing:
        raise SpecError(f"the reports table lacks the columns {missing} of a checker export")
    keep = ~frame["false_positive"].astype(bool) & ~frame["status"].isin(["rejected", "merged"])
    kept = frame[keep]
    out: dict[str, list[Flag]] = {}
    for key, problem, x, y in zip(
        kept["image_id"].astype(str),
        kept["problem"].astype(str),
        kept["x"].to_numpy(dtype=np.float64),
        kept["y"].to_numpy(dtype=np.float64),
        strict=True,
    ):
        cls = problem_class(problem)
        if cls.plane is not None:
            value = bit(plane or cls.plane)
            out.setdefault(key, []).append((value, cls.region, float(x), float(y), cls.size))
    return {k: tuple(v) for k, v in out.items()}


def _visit_layer(flags: tuple[Flag, ...], shape: tuple[int, int], true: tuple[int, int]) -> Any:
    ys = np.arange(shape[0])[:, None]
    xs = np.arange(shape[1])[None, :]
    layer = _apply(flags, ys, xs)
    layer[true[0] :, :] = 0  # padding of a smaller visit is NO_DATA already
    layer[:, true[1] :] = 0
    return layer


def flag_mask(stack: xr.Dataset, reports: Any, *, plane: str | None = None) -> xr.DataArray:
    """The mask layer of the reports over a stack (see the module docstring)."""
    flags = flags_by_visit(reports, plane)
    ny, nx = stack.sizes["y"], stack.sizes["x"]
    blocks = []
    for i, key in enumerate(stack["visit"].values.tolist()):
        mine = flags.get(str(key), ())
        true = (int(stack["ny"].values[i]), int(stack["nx"].values[i]))
        if mine:
            block = da.from_delayed(
                dask.delayed(_visit_layer, pure=True)(mine, (ny, nx), true),
                shape=(ny, nx),
                dtype=MASK_DTYPE,
            )
        else:
            block = da.zeros((ny, nx), dtype=MASK_DTYPE, chunks=(ny, nx))
        blocks.append(block)
    data = da.stack(blocks) if blocks else da.zeros((0, ny, nx), dtype=MASK_DTYPE)
    layer = xr.DataArray(data, dims=("visit", "y", "x"), coords={"visit": stack["visit"].values})
    layer.attrs = {**stack["mask"].attrs, "description": "regions flagged in the exposure checker"}
    return layer


@dataclass(frozen=True, repr=False)
class FlaggedVisitSource(VisitSource):
    """A :class:`VisitSource` whose mask reads carry the checker's flags."""

    flags: tuple[Flag, ...] = ()

    @contextmanager
    def open(self, planes: tuple[str, ...] = PLANES) -> Iterator[OpenVisit]:
        with super().open(planes) as opened:
            yield _FlaggedOpenVisit(self, opened.readers)

    def __repr__(self) -> str:  # distinct from the plain source: dask keys are built from it
        digest = hashlib.sha1(repr(self.flags).encode()).hexdigest()[:12]
        return f"FlaggedVisitSource({self.layout}: {self.image.path}[{self.image.hdu}] {digest})"


class _FlaggedOpenVisit(OpenVisit):
    source: FlaggedVisitSource

    def read(self, plane: str, ys: slice, xs: slice) -> NDArray[Any]:
        values = super().read(plane, ys, xs)
        if plane != "mask" or not self.source.flags:
            return values
        ny, nx = self.source.shape
        rows = np.arange(*ys.indices(ny))[:, None]
        cols = np.arange(*xs.indices(nx))[None, :]
        return values | _apply(self.source.flags, rows, cols)

    def gather(
        self, plane: str, y0: NDArray[np.int64], x0: NDArray[np.int64], stamp: tuple[int, int]
    ) -> NDArray[Any]:
        values = super().gather(plane, y0, x0, stamp)
        if plane != "mask" or not self.source.flags:
            return values
        rows = np.asarray(y0)[:, None, None] + np.arange(stamp[0])[None, :, None]
        cols = np.asarray(x0)[:, None, None] + np.arange(stamp[1])[None, None, :]
        ny, nx = self.source.shape
        inside = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
        return values | np.where(inside, _apply(self.source.flags, rows, cols), 0)


def hide_flagged(stack: xr.Dataset, reports: Any, *, plane: str | None = None) -> xr.Dataset:
    """The stack with the reports' flags in its mask and in every file read (module docstring).

    Examples
    --------
    >>> import skydask.images as im
    >>> from skydask.synth.images import generate_image_stack
    >>> info = generate_image_stack(getfixture("tmp_path") / "s", nvisits=1, size=32)
    >>> stack = im.open_stack(info.path)
    >>> reports = pd.DataFrame({"image_id": ["visit_0000"], "x": [10.0], "y": [12.0],
    ...     "problem": ["satellite"], "false_positive": [False], "status": ["open"]})
    >>> flagged = hide_flagged(stack, reports)
    >>> int(flagged["mask"][0, 12, 10]) & bit("STREAK") > 0
    True
    """
    flags = flags_by_visit(reports, plane)
    layer = flag_mask(stack, reports, plane=plane)
    wrapped = np.empty(stack.sizes["visit"], dtype=object)
    for i, (key, src) in enumerate(
        zip(stack["visit"].values.tolist(), stack_sources(stack), strict=True)
    ):
        base = {f.name: getattr(src, f.name) for f in fields(VisitSource)}
        wrapped[i] = FlaggedVisitSource(**base, flags=flags.get(str(key), ()))
    out = stack.assign(mask=stack["mask"] | layer.data)
    out["mask"].attrs = stack["mask"].attrs
    return out.assign_coords(source=("visit", wrapped))
