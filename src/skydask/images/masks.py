"""One bit mask for every layout: the canonical mask planes and the remapping into them.

Each layout stores its mask differently: an LSST Exposure names its planes in the mask header
(``MP_BAD = 0``, ``MP_SAT = 1``, ... and the numbers differ between files), the DECam community
pipeline writes integer codes (1 bad, 2 no data, 3 saturated, 4 bleed trail, 5 cosmic ray, 6 low
weight, 7 transient, 8 streak), and a plain FITS image has no mask at all. A stack mixes layouts,
so every reader remaps its mask into the fixed planes of :data:`MASK_PLANES` (bit ``k`` is
plane ``MASK_PLANES[k]``, names as in LSST's ``afw``) and the stack's ``mask`` variable carries
their meaning in CF-convention attributes (``flag_masks``, ``flag_meanings``).

A file plane with no canonical name (an LSST plane such as ``MP_FAKE``) becomes ``OTHER``.

Examples
--------
>>> bit("SAT")
2
>>> int(remap_cp_codes(np.array([0, 3, 5]))[1]) == bit("SAT")
True
>>> describe(bit("BAD") | bit("CR"))
['BAD', 'CR']
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from skydask.errors import SchemaError

__all__ = [
    "DEFAULT_BAD_PLANES",
    "MASK_DTYPE",
    "MASK_PLANES",
    "bit",
    "bits",
    "describe",
    "lsst_plane_map",
    "mask_attrs",
    "remap_bits",
    "remap_cp_codes",
]

#: The canonical planes, bit ``k`` of the mask is ``MASK_PLANES[k]``, with what each means.
MASK_PLANES: dict[str, str] = {
    "BAD": "bad detector pixel",
    "SAT": "saturated",
    "INTRP": "interpolated over",
    "CR": "cosmic ray",
    "EDGE": "near the detector edge",
    "DETECTED": "part of a detected source",
    "DETECTED_NEGATIVE": "part of a negative detection",
    "SUSPECT": "value suspect (e.g. non-linear regime)",
    "NO_DATA": "no data (outside the image, or padding of a smaller visit)",
    "CROSSTALK": "crosstalk corrected",
    "BLEED": "saturation bleed trail",
    "STREAK": "satellite or meteor streak",
    "LOW_WEIGHT": "weight far below the image median",
    "TRANSIENT": "transient found by comparing exposures",
    "UNMASKEDNAN": "non-finite value",
    "OTHER": "a plane of the file with no canonical name",
}
_NAMES = tuple(MASK_PLANES)
#: The mask variable's dtype (LSST masks are 32-bit).
MASK_DTYPE = np.dtype(np.int32)
#: Planes that make a pixel unusable for coadds, sky statistics and PSF stars.
DEFAULT_BAD_PLANES: tuple[str, ...] = (
    "BAD", "SAT", "CR", "EDGE", "NO_DATA", "BLEED", "STREAK", "UNMASKEDNAN", "INTRP",
)  # fmt: skip

# DECam community pipeline InstCal data-quality codes (legacypipe's remap_dq_cp_codes).
_CP_CODES = {
    1: "BAD",
    2: "NO_DATA",
    3: "SAT",
    4: "BLEED",
    5: "CR",
    6: "LOW_WEIGHT",
    7: "TRANSIENT",
    8: "STREAK",
}
# LSST plane names that mean a canonical plane under another name.
_LSST_ALIASES = {"INTERPOLATED": "INTRP", "SATURATED": "SAT", "CLIPPED": "TRANSIENT"}


def bit(name: str) -> int:
    """The mask value (``1 << k``) of one canonical plane.

    Raises
    ------
    SchemaError
        If ``name`` is not a canonical plane.
    """
    try:
        return 1 << _NAMES.index(name)
    except ValueError:
        raise SchemaError(
            f"unknown mask plane {name!r}; expected one of {', '.join(_NAMES)}"
        ) from None


def bits(names: Iterable[str]) -> int:
    """The OR of several planes' values.

    Examples
    --------
    >>> bits(["BAD", "SAT"])
    3
    """
    out = 0
    for name in names:
        out |= bit(name)
    return out


def describe(value: int) -> list[str]:
    """The names of the planes set in one mask value."""
    return [name for k, name in enumerate(_NAMES) if int(value) >> k & 1]


def mask_attrs() -> dict[str, Any]:
    """CF-convention attributes saying what each bit of the ``mask`` variable means."""
    return {
        "flag_masks": [1 << k for k in range(len(_NAMES))],
        "flag_meanings": " ".join(_NAMES),
        "flag_descriptions": dict(MASK_PLANES),
        "description": "bit mask, canonical planes of skydask.images.masks.MASK_PLANES",
    }


def lsst_plane_map(header: Mapping[str, Any]) -> tuple[tuple[int, int], ...]:
    """``(file bit, canonical bit)`` pairs from an LSST mask header's ``MP_<NAME>`` keys.

    Examples
    --------
    >>> lsst_plane_map({"MP_BAD": 0, "MP_DETECTED": 5, "MP_FAKE": 9})
    ((0, 0), (5, 5), (9, 15))
    """
    pairs = []
    for key, value in header.items():
        if not str(key).startswith("MP_"):
            continue
        name = str(key)[3:].upper()
        name = _LSST_ALIASES.get(name, name)
        canon = _NAMES.index(name) if name in MASK_PLANES else _NAMES.index("OTHER")
        pairs.append((int(value), canon))
    return tuple(sorted(pairs))


def remap_bits(raw: NDArray[Any], plane_map: tuple[tuple[int, int], ...]) -> NDArray[np.int32]:
    """Remap a mask whose planes are bits (LSST) through ``(file bit, canonical bit)`` pairs.

    Examples
    --------
    >>> remap_bits(np.array([1, 2, 3]), ((0, 1), (1, 0))).tolist()
    [2, 1, 3]
    """
    raw = np.asarray(raw).astype(np.int64, copy=False)
    if all(src == dst for src, dst in plane_map) and raw.size and raw.max() < 1 << 31:
        known = bits(MASK_PLANES) if len(plane_map) == len(MASK_PLANES) else _mapped(plane_map)
        if not (raw & ~known).any():  # the file already uses the canonical planes
            return raw.astype(MASK_DTYPE)
    low, high = _tables(plane_map)
    return (low[raw & 0xFFFF] | high[(raw >> 16) & 0xFFFF]).astype(MASK_DTYPE)


def _mapped(plane_map: tuple[tuple[int, int], ...]) -> int:
    out = 0
    for src, _ in plane_map:
        out |= 1 << src
    return out


@functools.lru_cache(maxsize=64)
def _tables(plane_map: tuple[tuple[int, int], ...]) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Look-up tables remapping the low and the high 16 bits of a mask value at once."""
    values = np.arange(1 << 16, dtype=np.int64)
    low = np.zeros(1 << 16, dtype=np.int64)
    high = np.zeros(1 << 16, dtype=np.int64)
    for src, dst in plane_map:
        table = low if src < 16 else high
        table |= ((values >> (src % 16)) & 1) << dst
    return low.astype(MASK_DTYPE), high.astype(MASK_DTYPE)


def remap_cp_codes(raw: NDArray[Any]) -> NDArray[np.int32]:
    """Remap DECam community-pipeline data-quality codes (0 good, 1..8) to canonical bits.

    Codes outside 1..8 become ``OTHER``.

    Examples
    --------
    >>> describe(int(remap_cp_codes(np.array([5]))[0]))
    ['CR']
    """
    raw = np.asarray(raw)
    out = np.zeros(raw.shape, dtype=MASK_DTYPE)
    known = np.zeros(raw.shape, dtype=bool)
    for code, name in _CP_CODES.items():
        hit = raw == code
        out[hit] = bit(name)
        known |= hit
    out[(raw != 0) & ~known] = bit("OTHER")
    return out
