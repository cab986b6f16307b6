"""A visit's pixels on disk, and the one function that turns them into image, variance, mask.

A :class:`VisitSource` is what a reader (one module per layout) finds in the headers: where the
image, variance (or inverse-variance weight) and mask planes are, and how to convert them. It
lives in the stack's ``source`` coordinate, so every later step (the lazy arrays, cut-outs,
coadds, quality) reads pixels through :meth:`VisitSource.open`, whatever the layout:

* ``image`` — float32, the file's units (counts or ADU; the ``zeropoint`` coordinate calibrates
  them).
* ``variance`` — float32, same units squared: the variance plane (LSST), ``1 / weight`` for an
  inverse-variance weight map (DECam ``oow``; weight 0 gives ``inf``, i.e. no information), or a
  constant estimated when the stack was opened (plain FITS; see :mod:`.read_fits`).
* ``mask`` — int32 canonical bits (:mod:`.masks`); a plain FITS image gets ``NO_DATA`` where
  the image is not finite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from skydask.images.masks import MASK_DTYPE, bit, remap_bits, remap_cp_codes
from skydask.images.planes import PlaneReader, PlaneRef, open_plane, stamp_index

__all__ = ["PLANES", "OpenVisit", "VisitSource"]

#: The three planes of every visit, in the order of the stack's variables.
PLANES = ("image", "variance", "mask")


@dataclass(frozen=True)
class VisitSource:
    """How to read one visit (see the module docstring).

    ``variance_kind`` is ``"variance"``, ``"invvar"`` or ``"constant"`` (then
    ``variance_value`` holds it); ``mask_kind`` is ``"bits"`` (with ``plane_map``), ``"codes"``
    (DECam community pipeline) or ``"none"``.
    """

    layout: str
    image: PlaneRef
    variance: PlaneRef | None = None
    variance_kind: str = "variance"
    variance_value: float = float("nan")
    mask: PlaneRef | None = None
    mask_kind: str = "none"
    plane_map: tuple[tuple[int, int], ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape

    @property
    def nbytes(self) -> int:
        """Bytes of pixel data on disk over the visit's planes."""
        refs = (self.image, self.variance, self.mask)
        return sum(r.nbytes for r in refs if r is not None)

    @contextmanager
    def open(self, planes: tuple[str, ...] = PLANES) -> Iterator[OpenVisit]:
        """Map the files the requested planes need (each file once) for slicing."""
        with ExitStack() as stack:
            readers: dict[str, PlaneReader] = {}
            for name in ("image", "variance", "mask"):
                ref = getattr(self, name)
                if ref is not None and _needs(name, planes, self):
                    readers[name] = stack.enter_context(open_plane(ref))
            yield OpenVisit(self, readers)

    def __repr__(self) -> str:  # short, for the stack's repr
        return f"VisitSource({self.layout}: {self.image.path}[{self.image.hdu}])"


def _needs(name: str, planes: tuple[str, ...], source: VisitSource) -> bool:
    if name in planes:
        return True
    # a plain image's mask is derived from its image
    return name == "image" and "mask" in planes and source.mask_kind == "none"


@dataclass
class OpenVisit:
    """A visit whose files are mapped: :meth:`read` one plane's rectangle."""

    source: VisitSource
    readers: dict[str, PlaneReader]

    @property
    def bytes_touched(self) -> int:
        return sum(r.bytes_touched for r in self.readers.values())

    def read(self, plane: str, ys: slice, xs: slice) -> NDArray[Any]:
        """One plane over rows ``ys`` and columns ``xs`` (inside the image), converted."""
        if plane not in PLANES:
            raise ValueError(f"unknown plane {plane!r}; expected one of {PLANES}")
        shape = _shape(ys, xs, self.source.shape)
        return self._convert(plane, lambda name: self.readers[name].read(ys, xs), shape)

    def gather(
        self, plane: str, y0: NDArray[np.int64], x0: NDArray[np.int64], stamp: tuple[int, int]
    ) -> NDArray[Any]:
        """Stamps ``(n, sy, sx)`` of one plane starting at visit pixels ``(y0, x0)``, converted,
        NaN (``NO_DATA`` in the mask) outside the image (see :meth:`.PlaneReader.gather`)."""
        if plane not in PLANES:
            raise ValueError(f"unknown plane {plane!r}; expected one of {PLANES}")
        index = stamp_index(y0, x0, stamp, self.source.shape)
        inside = index[1]

        def raw(name: str) -> NDArray[Any]:
            return self.readers[name].gather(y0, x0, stamp, index)[0]

        values = self._convert(plane, raw, inside.shape)
        values[~inside] = bit("NO_DATA") if plane == "mask" else np.nan
        return values

    def _convert(
        self, plane: str, raw: Callable[[str], NDArray[Any]], shape: tuple[int, ...]
    ) -> NDArray[Any]:
        src = self.source
        if plane == "image":
            return raw("image").astype(np.float32, copy=False)
        if plane == "variance":
            if src.variance_kind == "constant" or "variance" not in self.readers:
                return np.full(shape, src.variance_value, dtype=np.float32)
            values = raw("variance").astype(np.float32, copy=False)
            if src.variance_kind == "invvar":
                with np.errstate(divide="ignore"):
                    values = np.where(values > 0, 1.0 / values, np.inf).astype(np.float32)
            return values
        if src.mask_kind == "none" or "mask" not in self.readers:
            image = raw("image")
            return np.where(np.isfinite(image), 0, bit("NO_DATA")).astype(MASK_DTYPE)
        if src.mask_kind == "codes":
            return remap_cp_codes(raw("mask"))
        return remap_bits(raw("mask"), src.plane_map)


def _shape(ys: slice, xs: slice, shape: tuple[int, int]) -> tuple[int, int]:
    y0, y1, _ = ys.indices(shape[0])
    x0, x1, _ = xs.indices(shape[1])
    return max(0, y1 - y0), max(0, x1 - x0)
