"""Read rectangles of one FITS image plane, memory-mapped, counting the file pages touched.

A :class:`PlaneRef` says where an image plane lives (file, HDU, data offset, shape, BITPIX,
BSCALE/BZERO); it is made once when the stack is opened, from the headers, and is small enough
to travel in a dask graph. :func:`open_plane` maps the plane on the worker that reads it:

* Uncompressed HDUs are mapped with :mod:`mmap` and advised ``MADV_RANDOM``, so the kernel
  reads only the pages a slice touches (no read-ahead); a stamp of ``h`` rows reads about ``h``
  pages (4 KiB, 1,024 float32 pixels of a row) whatever the image size. Before reading, the
  pages a request needs are announced with ``MADV_WILLNEED``, one call per run of consecutive
  pages, so a cold read is a batch of asynchronous requests rather than one blocking page fault
  after another.
* Tile-compressed HDUs (``.fits.fz``) go through astropy's ``section``, which decompresses only
  the tiles a slice touches; pages are not counted there (``bytes_touched`` stays 0).

The reader applies BSCALE/BZERO itself, on the pixels read only (astropy would scale the whole
plane).

Counting: :class:`PlaneReader` records the distinct pages of the file each request spans (for
each row, the bytes from its first to its last pixel), so ``bytes_touched`` is what a
cold-cache read pulls from disk. The benchmark checks it against the page cache (``mincore``)
after evicting the files: they agree to the page.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from skydask.errors import CatalogReadError

__all__ = ["PAGE_SIZE", "PlaneReader", "PlaneRef", "open_plane", "plane_ref", "stamp_index"]

PAGE_SIZE = mmap.PAGESIZE
_BITPIX = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


@dataclass(frozen=True)
class PlaneRef:
    """Where one 2-D image plane lives in a FITS file."""

    path: str
    hdu: int
    shape: tuple[int, int]
    bitpix: int
    offset: int
    bscale: float = 1.0
    bzero: float = 0.0
    compressed: bool = False

    @property
    def nbytes(self) -> int:
        """Bytes of the plane's data on disk (uncompressed size for a compressed plane)."""
        return self.shape[0] * self.shape[1] * abs(self.bitpix) // 8

    @property
    def scaled(self) -> bool:
        return self.bscale != 1.0 or self.bzero != 0.0


def plane_ref(path: str, hdu_index: int, hdu: Any) -> PlaneRef:
    """A :class:`PlaneRef` for ``hdu`` (an astropy image HDU of the open file ``path``).

    Raises
    ------
    CatalogReadError
        If the HDU is not a 2-D image, or the file is shorter than the HDU's data.
    """
    header = hdu.header
    compressed = isinstance(hdu, fits.CompImageHDU)
    # astropy shows a tile-compressed HDU through the header of the image it holds
    naxis = int(header.get("NAXIS", 0))
    if naxis != 2:
        raise CatalogReadError(
            f"{path} HDU {hdu_index}: expected a 2-D image, found NAXIS = {naxis}"
        )
    shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
    bitpix = int(header["BITPIX"])
    info = hdu.fileinfo()
    offset = int(info["datLoc"])
    if not compressed:
        size = os.path.getsize(path)
        need = offset + shape[0] * shape[1] * abs(bitpix) // 8
        if size < need:
            raise CatalogReadError(
                f"{path} is truncated: HDU {hdu_index} needs {need} bytes of file, the file has "
                f"{size}; expected a complete FITS file"
            )
    return PlaneRef(
        path=path,
        hdu=hdu_index,
        shape=shape,
        bitpix=bitpix,
        offset=offset,
        bscale=float(header.get("BSCALE", 1.0)) if not compressed else 1.0,
        bzero=float(header.get("BZERO", 0.0)) if not compressed else 0.0,
        compressed=compressed,
    )


def stamp_index(
    y0: NDArray[np.int64], x0: NDArray[np.int64], stamp: tuple[int, int], shape: tuple[int, int]
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Flat indices ``(n, sy, sx)`` into a ``shape`` plane of stamps starting at ``(y0, x0)``.

    Pixels outside the plane get a clipped (valid) index and ``False`` in the returned mask.

    Examples
    --------
    >>> flat, inside = stamp_index(np.array([-1]), np.array([2]), (2, 2), (3, 4))
    >>> flat.tolist(), inside.tolist()
    ([[[2, 3], [2, 3]]], [[[False, False], [True, True]]])
    """
    sy, sx = stamp
    ny, nx = shape
    yy = y0[:, None] + np.arange(sy)
    xx = x0[:, None] + np.arange(sx)
    inside = ((yy >= 0) & (yy < ny))[:, :, None] & ((xx >= 0) & (xx < nx))[:, None, :]
    flat = np.clip(yy, 0, ny - 1)[:, :, None] * nx + np.clip(xx, 0, nx - 1)[:, None, :]
    return flat.astype(np.int64), inside


@dataclass
class PlaneReader:
    """An open plane: slice it with :meth:`read` or :meth:`gather` many stamps at once;
    :attr:`pages` holds the file pages touched."""

    ref: PlaneRef
    data: Any
    pages: set[int] = field(default_factory=set)
    mapped: Any = None

    @property
    def bytes_touched(self) -> int:
        return len(self.pages) * PAGE_SIZE

    def read(self, ys: slice, xs: slice) -> NDArray[Any]:
        """Values of rows ``ys`` and columns ``xs`` (steps of 1, inside the plane), scaled.

        Floating-point planes come back as float32 (float64 if stored so), integer planes as
        int64 when BSCALE/BZERO apply (an unsigned 16-bit mask), else their own type; always
        in native byte order and a copy, never a view of the file.
        """
        y0, y1, _ = ys.indices(self.ref.shape[0])
        x0, x1, _ = xs.indices(self.ref.shape[1])
        if y1 <= y0 or x1 <= x0:
            return np.empty((max(0, y1 - y0), max(0, x1 - x0)), dtype=self._out_dtype())
        if not self.ref.compressed:
            rows = np.arange(y0, y1, dtype=np.int64) * self.ref.shape[1]
            self._touch(rows + x0, rows + x1 - 1)
        return self._scale(np.asarray(self.data[y0:y1, x0:x1]))

    def gather(
        self,
        y0: NDArray[np.int64],
        x0: NDArray[np.int64],
        stamp: tuple[int, int],
        index: tuple[NDArray[np.int64], NDArray[np.bool_]] | None = None,
    ) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        """Stamps ``(n, sy, sx)`` starting at ``(y0, x0)``, scaled, and where they are inside.

        One fancy-indexing gather from the mapped file for all stamps (no Python loop per
        stamp); the pages it needs are first announced to the kernel (``MADV_WILLNEED`` per
        run of consecutive pages), so a cold read is a few large requests, not one fault per
        page. Outside pixels hold an arbitrary edge value: use the returned mask. ``index`` is
        :func:`stamp_index` of the same arguments, when the caller has it already.
        """
        flat, inside = index if index is not None else stamp_index(y0, x0, stamp, self.ref.shape)
        if self.ref.compressed:  # tile-compressed: slice each stamp through astropy
            out = np.empty(flat.shape, dtype=self._out_dtype())
            for k in range(len(y0)):
                rows = np.flatnonzero(inside[k].any(axis=1))
                cols = np.flatnonzero(inside[k].any(axis=0))
                if len(rows) and len(cols):
                    ys = slice(int(y0[k] + rows[0]), int(y0[k] + rows[-1] + 1))
                    xs = slice(int(x0[k] + cols[0]), int(x0[k] + cols[-1] + 1))
                    out[k][np.ix_(rows, cols)] = self.read(ys, xs)
            return out, inside
        self._touch(flat[:, :, 0], flat[:, :, -1])
        raw = self.data.reshape(-1)[flat]
        return self._scale(raw), inside

    def _touch(self, first_px: NDArray[np.int64], last_px: NDArray[np.int64]) -> None:
        """Record (and prefetch) the pages of row segments from ``first_px`` to ``last_px``."""
        item = abs(self.ref.bitpix) // 8
        first = (self.ref.offset + first_px.ravel() * item) // PAGE_SIZE
        last = (self.ref.offset + (last_px.ravel() + 1) * item - 1) // PAGE_SIZE
        span = int((last - first).max()) + 1 if first.size else 0
        pages = (first[:, None] + np.arange(span)[None, :])[
            np.arange(span)[None, :] <= (last - first)[:, None]
        ]
        new = np.setdiff1d(np.unique(pages), np.fromiter(self.pages, np.int64, len(self.pages)))
        if self.mapped is not None and new.size and hasattr(mmap, "MADV_WILLNEED"):
            breaks = np.flatnonzero(np.diff(new) > 1)
            starts = np.concatenate([new[:1], new[breaks + 1]])
            ends = np.concatenate([new[breaks], new[-1:]])
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
                self.mapped.madvise(mmap.MADV_WILLNEED, a * PAGE_SIZE, (b - a + 1) * PAGE_SIZE)
        self.pages.update(new.tolist())

    def _out_dtype(self) -> np.dtype[Any]:
        native = np.dtype(_BITPIX[self.ref.bitpix]).newbyteorder("=")
        if self.ref.scaled:
            return np.dtype(np.int64) if native.kind in "iu" else np.dtype(np.float64)
        return native

    def _scale(self, raw: NDArray[Any]) -> NDArray[Any]:
        native = raw.astype(raw.dtype.newbyteorder("="), copy=True)
        if not self.ref.scaled:
            return native
        if native.dtype.kind in "iu" and float(self.ref.bscale).is_integer():
            return native.astype(np.int64) * int(self.ref.bscale) + int(self.ref.bzero)
        return native.astype(np.float64) * self.ref.bscale + self.ref.bzero


@contextmanager
def open_plane(ref: PlaneRef) -> Iterator[PlaneReader]:
    """Map one plane for reading (see the module docstring); closes the map on exit.

    Raises
    ------
    CatalogReadError
        If the file is missing or shorter than the plane's data.
    """
    if ref.compressed:
        try:
            with fits.open(ref.path, memmap=False, lazy_load_hdus=True) as hdul:
                yield PlaneReader(ref, hdul[ref.hdu].section)
        except OSError as exc:
            raise CatalogReadError(f"cannot read {ref.path} HDU {ref.hdu}: {exc}") from exc
        return
    try:
        fh = open(ref.path, "rb")  # noqa: SIM115  (closed below, after the map)
    except OSError as exc:
        raise CatalogReadError(f"cannot open {ref.path}: {exc}") from exc
    try:
        size = os.fstat(fh.fileno()).st_size
        if size < ref.offset + ref.nbytes:
            raise CatalogReadError(
                f"{ref.path} is truncated: HDU {ref.hdu} needs {ref.offset + ref.nbytes} bytes "
                f"of file, the file has {size}"
            )
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        if hasattr(mm, "madvise"):
            mm.madvise(mmap.MADV_RANDOM)
        data = np.frombuffer(
            mm, dtype=_BITPIX[ref.bitpix], count=ref.shape[0] * ref.shape[1], offset=ref.offset
        ).reshape(ref.shape)
        reader = PlaneReader(ref, data, mapped=mm)
        try:
            yield reader
        finally:
            # every slice handed out was a copy, so the map can close once our view is gone
            reader.data = None
            reader.mapped = None
            del data
            with contextlib.suppress(BufferError):  # a caller kept a view: the GC closes it
                mm.close()
    finally:
        fh.close()
