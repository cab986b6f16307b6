"""Images to PNG: read one visit through ``skydask.images``, stretch it, encode it, cache it.

* The images are those of one stack (:func:`skydask.images.open_stack`), known by their
  ``visit`` name. A request names an image by its database id, which is looked up in that
  stack: no part of a request is ever made into a file path, so no request can reach a file
  outside the configured images.
* Pixels are read through the visit's :class:`~skydask.images.source.VisitSource` (the same
  memory-mapped reader as cut-outs and coadds), at the visit's own size (no padding).
* Stretches: ``"asinh"`` (astropy's ``AsinhStretch(0.1)`` formula between the 1st and
  99.8th percentiles of the finite pixels, as :mod:`skydask.images.plots` does) and
  ``"zscale"`` (IRAF's zscale interval, linear). Percentiles are taken on at most ~500,000
  evenly spaced pixels, and the stretch is computed in float32 in place, so a 4k x 4k image
  costs a few passes over 64 MB, not a sort (a test compares it with astropy's own).
* The PNG is 8-bit grey, north up: row 0 of the PNG is the image's last row (FITS and astropy
  count ``y`` upwards). A click at PNG column ``c`` and row ``r`` (continuous, 0 at the top-left
  corner) is pixel ``x = c - 0.5``, ``y = ny - r - 0.5`` in astropy's 0-based convention.
* The mask overlay is a separate RGBA PNG (transparent where no shown plane is set), so the
  viewer toggles it without another render; ``DETECTED`` and ``DETECTED_NEGATIVE`` are not
  shown by default (they cover every source).
* Rendered PNGs are kept in a least-recently-used cache per (image, kind, stretch) up to a size
  in bytes; concurrent requests for the same uncached image render it once.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from astropy.visualization import ZScaleInterval
from numpy.typing import NDArray
from PIL import Image as PILImage

from skydask.errors import SpecError
from skydask.images import open_stack
from skydask.images.masks import MASK_PLANES, bit
from skydask.images.source import VisitSource
from skydask.images.stack import stack_sources

__all__ = [
    "MASK_COLOURS",
    "STRETCHES",
    "ImageEntry",
    "ImageStore",
    "encode_png",
    "mask_rgba",
    "stretch_to_uint8",
]

log = logging.getLogger(__name__)

STRETCHES = ("asinh", "zscale")
#: RGB of each mask plane in the overlay; planes not listed are not drawn.
MASK_COLOURS: dict[str, tuple[int, int, int]] = {
    "NO_DATA": (40, 40, 160),
    "EDGE": (90, 90, 255),
    "SUSPECT": (255, 160, 255),
    "LOW_WEIGHT": (120, 120, 200),
    "INTRP": (0, 200, 200),
    "CROSSTALK": (0, 160, 255),
    "TRANSIENT": (160, 255, 160),
    "OTHER": (200, 200, 200),
    "BAD": (255, 40, 40),
    "SAT": (255, 220, 0),
    "BLEED": (255, 140, 0),
    "CR": (255, 0, 255),
    "STREAK": (0, 255, 80),
    "UNMASKEDNAN": (255, 255, 255),
}
_SAMPLE = 500_000
_ASINH_A = 0.1  # astropy AsinhStretch(a): linear below ~a, logarithmic above


def _sample(values: NDArray[np.float32]) -> NDArray[np.float32]:
    finite = values[np.isfinite(values)]
    step = max(1, finite.size // _SAMPLE)
    return finite[::step]


def stretch_to_uint8(image: NDArray[Any], stretch: str = "asinh") -> NDArray[np.uint8]:
    """An image scaled to 0..255 by a named stretch (NaN becomes 0).

    Raises
    ------
    SpecError
        For an unknown stretch.

    Examples
    --------
    >>> ramp = np.arange(100, dtype="f4").reshape(10, 10)
    >>> out = stretch_to_uint8(ramp, "zscale")
    >>> int(out.min()), int(out.max()), out.dtype.name
    (0, 255, 'uint8')
    >>> int(stretch_to_uint8(np.full((2, 2), np.nan), "asinh").max())
    0
    """
    if stretch not in STRETCHES:
        raise SpecError(f"parameter 'stretch' must be one of {STRETCHES}; got {stretch!r}")
    image = np.asarray(image, dtype=np.float32)
    sample = _sample(image)
    if sample.size == 0:
        return np.zeros(image.shape, dtype=np.uint8)
    if stretch == "zscale":
        lo, hi = ZScaleInterval().get_limits(sample)
    else:
        lo, hi = np.percentile(sample, [1.0, 99.8])
    scale = 1.0 / (hi - lo) if hi > lo else 1.0
    # float32 in place: a 4k x 4k image is 64 MB, and astropy's ImageNormalize would make
    # float64 masked copies (3 s instead of 0.3 s); the formula is AsinhStretch's
    out = np.subtract(image, np.float32(lo), dtype=np.float32)
    out *= np.float32(scale)
    np.clip(out, 0.0, 1.0, out=out)
    if stretch == "asinh":
        out /= np.float32(_ASINH_A)
        np.arcsinh(out, out=out)
        out *= np.float32(1.0 / np.arcsinh(1.0 / _ASINH_A))
    np.nan_to_num(out, copy=False, nan=0.0)
    out *= np.float32(255.0)
    out += np.float32(0.5)
    return out.astype(np.uint8)


def mask_rgba(mask: NDArray[Any], planes: Sequence[str] | None = None) -> NDArray[np.uint8]:
    """An RGBA overlay (alpha 150 where a shown plane is set) of a canonical bit mask.

    Later planes of :data:`MASK_COLOURS` are drawn over earlier ones.

    Examples
    --------
    >>> m = np.array([[0, bit("CR")]], dtype="i4")
    >>> mask_rgba(m)[0].tolist()
    [[0, 0, 0, 0], [255, 0, 255, 150]]
    """
    shown = [p for p in MASK_COLOURS if planes is None or p in planes]
    out = np.zeros((*mask.shape, 4), dtype=np.uint8)
    for plane in shown:
        hit = (mask & bit(plane)) != 0
        if hit.any():
            out[hit] = (*MASK_COLOURS[plane], 150)
    return out


def encode_png(pixels: NDArray[np.uint8]) -> bytes:
    """PNG bytes of a grey (2-D) or RGBA (3-D) image; fast compression (level 1)."""
    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


@dataclass(frozen=True)
class ImageEntry:
    """One image of the store: what the database copies and how to read its pixels."""

    key: str
    source: VisitSource
    wcs_header: str
    ny: int
    nx: int
    band: str
    visit: str
    detector: str
    mjd: float | None
    file: str
    hdu: int


class _LRU:
    """A thread-safe least-recently-used cache of bytes with a budget in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, ...], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._building: dict[tuple[str, ...], threading.Lock] = {}

    def get_or_build(self, key: tuple[str, ...], build: Callable[[], bytes]) -> bytes:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            gate = self._building.setdefault(key, threading.Lock())
        with gate:  # one render per key; the others wait for it
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = build()
            with self._lock:
                self._building.pop(key, None)
                if len(value) <= self.max_bytes:
                    self._items[key] = value
                    self._size += len(value)
                    while self._size > self.max_bytes:
                        _, old = self._items.popitem(last=False)
                        self._size -= len(old)
            return value


class ImageStore:
    """The images being checked, rendered on demand (see the module docstring).

    Parameters
    ----------
    stack
        A stack from :func:`skydask.images.open_stack`.
    cache_bytes
        Budget of the PNG cache.

    Examples
    --------
    >>> from skydask.synth.images import generate_image_stack
    >>> info = generate_image_stack(getfixture("tmp_path") / "s", nvisits=2, size=32)
    >>> store = ImageStore.open(info.path)
    >>> store.keys(), store.entry("visit_0001").band
    (['visit_0000', 'visit_0001'], 'r')
    >>> store.png("visit_0000", "image", "zscale")[:4]
    b'\\x89PNG'
    """

    def __init__(self, stack: xr.Dataset, *, cache_bytes: int = 256 << 20) -> None:
        sources = stack_sources(stack)
        self._entries: dict[str, ImageEntry] = {}
        for i, key in enumerate(stack["visit"].values.tolist()):
            wcs = stack["wcs"].values[i]
            exposure = str(stack["exposure"].values[i])
            mjd = float(stack["mjd"].values[i])
            self._entries[str(key)] = ImageEntry(
                key=str(key),
                source=sources[i],
                wcs_header=wcs.to_header_string(relax=True),
                ny=int(stack["ny"].values[i]),
                nx=int(stack["nx"].values[i]),
                band=str(stack["band"].values[i]),
                visit=exposure or str(key),
                detector=str(stack["detector"].values[i]),
                mjd=mjd if np.isfinite(mjd) else None,
                file=str(stack["file"].values[i]),
                hdu=int(stack["hdu"].values[i]),
            )
        self._cache = _LRU(cache_bytes)

    @classmethod
    def open(
        cls, paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], **kwargs: Any
    ) -> ImageStore:
        """A store over the files named by ``paths`` (a glob, directory, file or list)."""
        return cls(open_stack(paths), **kwargs)

    def keys(self) -> list[str]:
        """The image keys (the stack's ``visit`` names), in stack order."""
        return list(self._entries)

    def entry(self, key: str) -> ImageEntry:
        """One image.

        Raises
        ------
        KeyError
            If no image of the store has this key.
        """
        return self._entries[key]

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def read(
        self, key: str, planes: tuple[str, ...] = ("image", "mask"), window: Any = None
    ) -> dict[str, NDArray[Any]]:
        """Planes of one image (``window`` = ``(ys, xs)`` slices; whole image by default)."""
        entry = self.entry(key)
        ys, xs = window if window is not None else (slice(None), slice(None))
        with entry.source.open(planes) as opened:
            return {p: opened.read(p, ys, xs) for p in planes}

    def png(self, key: str, kind: str, stretch: str = "asinh") -> bytes:
        """The cached PNG of an image: ``kind`` ``"image"`` (stretched) or ``"mask"``."""
        entry = self.entry(key)  # KeyError before anything is cached
        if kind == "image":
            if stretch not in STRETCHES:
                raise SpecError(f"parameter 'stretch' must be one of {STRETCHES}; got {stretch!r}")

            def build() -> bytes:
                pixels = self.read(entry.key, ("image",))["image"]
                return encode_png(stretch_to_uint8(pixels, stretch)[::-1])

            return self._cache.get_or_build((key, kind, stretch), build)
        if kind == "mask":

            def build_mask() -> bytes:
                mask = self.read(entry.key, ("mask",))["mask"]
                shown = [p for p in MASK_PLANES if not p.startswith("DETECTED")]
                return encode_png(mask_rgba(mask, shown)[::-1])

            return self._cache.get_or_build((key, kind), build_mask)
        raise SpecError(f"parameter 'kind' must be 'image' or 'mask'; got {kind!r}")

    def stamp_png(self, key: str, x: float, y: float, size: int = 64) -> bytes:
        """A ``size`` x ``size`` zscale PNG centred on pixel ``(x, y)`` (for the gallery)."""
        entry = self.entry(key)
        half = size // 2
        cx, cy = round(x), round(y)
        x0, y0 = max(0, cx - half), max(0, cy - half)
        x1, y1 = min(entry.nx, cx + half), min(entry.ny, cy + half)
        if x1 <= x0 or y1 <= y0:
            raise SpecError(f"position ({x}, {y}) is outside image {key!r}")

        def build() -> bytes:
            pixels = self.read(key, ("image",), (slice(y0, y1), slice(x0, x1)))["image"]
            return encode_png(stretch_to_uint8(pixels, "zscale")[::-1])

        return self._cache.get_or_build((key, "stamp", f"{x0},{y0},{x1},{y1}"), build)
