"""The depth map's compiled loops: one pass over a partition's rows where numpy needs several,
or a sort.

Three steps of a partition's reduction are per-row work with nothing for numpy to vectorise
across: a position's pixel (:mod:`.positions`: about fifteen numpy calls, each a pass over
the rows and a temporary array), the slot of each row in the pixel-grouped layout
(:mod:`.pixels`: numpy can only get it by sorting ``pixel << b | row`` keys), and each
band's scatter of its errors to those slots (numpy's indexed assignment checks and converts
every index, and needs them as 64-bit integers). Compiled with numba they are one loop
each: on a DC2 tract of 1.24 million rows, the pixels take 5.6 against 8.0 ms, the slots
1 ms against the key sort's 10 ms, and a partition's whole reduction (six bands) 34-38
against 41-44 ms with the scatters compiled and the slots stored as 32-bit integers (one
thread, nothing else running).

The kernels are compiled as :mod:`skydask.analyses.compiled` says (released GIL, cached on
disk, about 95 MB of memory per process that loads them).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from skydask.analyses.compiled import jit

__all__ = ["edge_lines_to_nested", "equatorial_pixels", "fill_slots", "scatter"]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@jit
def _spread(v: int) -> int:  # pragma: no cover - compiled
    """Bit ``i`` of ``v`` to bit ``2 i`` (``0 <= v < 2**32``): the standard interleave."""
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    return (v | (v << 1)) & 0x5555555555555555


@jit
def _nested(order: int, jp: int, jm: int) -> int:  # pragma: no cover - compiled
    """NESTED pixel of the equatorial zone's edge lines ``(jp, jm)`` (Healpix C++'s
    ``loc2pix``)."""
    nside = 1 << order
    ifp, ifm = jp >> order, jm >> order
    if ifp == ifm:
        face = ifp | 4
    elif ifp < ifm:
        face = ifp
    else:
        face = ifm + 8
    ix = jm & (nside - 1)
    iy = nside - (jp & (nside - 1)) - 1
    return (face << (2 * order)) + _spread(ix) + (_spread(iy) << 1)


@jit
def _nested_array(order: int, jp: Ints, jm: Ints, out: Ints) -> None:  # pragma: no cover
    for i in range(len(jp)):
        out[i] = _nested(order, jp[i], jm[i])


def edge_lines_to_nested(
    order: int, jp: npt.NDArray[np.int64], jm: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """NESTED pixels of equatorial-zone edge-line indices ``(jp, jm)`` at ``nside = 2**order``.

    Examples
    --------
    >>> edge_lines_to_nested(0, np.array([0, 0, 1]), np.array([0, 1, 0])).tolist()
    [4, 0, 8]
    """
    jp = np.ascontiguousarray(jp, dtype=np.int64)
    jm = np.ascontiguousarray(jm, dtype=np.int64)
    out = np.empty(len(jp), dtype=np.int64)
    _nested_array(order, jp, jm, out)
    return out


@jit
def equatorial_pixels(  # pragma: no cover - compiled
    ra: Floats,
    dec: Floats,
    out: Ints,
    order: int,
    centre: float,
    coefficients: Floats,
    margin: float,
    table: Ints,
    jp0: int,
    jm0: int,
    width: int,
    doubtful: Ints,
) -> int:
    """Pixels (or table codes) of rows of the equatorial zone into ``out``; see
    :mod:`.positions` for the method and its exactness.

    ``coefficients``: of ``3/4 nside sin(centre + h)`` in powers of ``h`` (radians), at
    least two. With ``u = a - b - 1/2`` and ``v = a + b - 1/2`` (``a = nside (1/2 + ra /
    90)``, ``b = 3/4 nside sin dec``), the edge lines are ``jp = rint(u)``, ``jm =
    rint(v)`` unless ``u`` or ``v`` lies within ``margin`` of a half-integer (or is NaN),
    or the edge lines fall outside the table: such rows' indices go to ``doubtful`` (their
    ``out`` is set to 0) and their number is returned.
    ``table`` (row-major, ``width`` edge lines ``jm`` a row, from ``(jp0, jm0)``) gives a
    row's code; an empty table means the pixel number itself.
    """
    nside = 1 << order
    scale = nside / 90.0
    offset = 0.5 * nside - 0.5
    radians = math.pi / 180.0
    top = len(coefficients) - 1
    limit = 0.5 - margin
    coded = len(table) > 0
    n_doubtful = 0
    for i in range(len(ra)):
        a = ra[i] * scale + offset
        h = dec[i] * radians - centre
        b = coefficients[top] * h + coefficients[top - 1]  # Horner's scheme
        for k in range(top - 2, -1, -1):
            b = b * h + coefficients[k]
        u = a - b
        v = a + b
        jp = np.rint(u)
        jm = np.rint(v)
        if abs(u - jp) <= limit and abs(v - jm) <= limit:  # (false for NaN)
            if not coded:
                out[i] = _nested(order, int(jp), int(jm))
                continue
            cell = (int(jp) - jp0) * width + int(jm) - jm0
            if 0 <= cell < len(table) and 0 <= int(jm) - jm0 < width:
                out[i] = table[cell]
                continue
        doubtful[n_doubtful] = i  # near an edge line, or outside the table
        n_doubtful += 1
        out[i] = 0
    return n_doubtful


@jit
def fill_slots(  # pragma: no cover - compiled
    code: npt.NDArray[np.integer[Any]], rows: Ints, cursor: Ints, inverse: npt.NDArray[np.intp]
) -> None:
    """The slot of every row in a layout grouped by code, a counting sort's scatter.

    Row ``rows[k]`` (or ``k`` when ``rows`` is empty) of code ``code[k]`` takes slot
    ``cursor[code[k]]``, which then moves on by one: with ``cursor`` the first slot of each
    code's group, each group's slots are filled in row order. ``inverse[row]`` receives it.
    """
    if len(rows) == 0:
        for k in range(len(code)):
            c = code[k]
            inverse[k] = cursor[c]
            cursor[c] += 1
    else:
        for k in range(len(code)):
            c = code[k]
            inverse[rows[k]] = cursor[c]
            cursor[c] += 1


@jit
def scatter(  # pragma: no cover - compiled
    values: npt.NDArray[Any], slots: npt.NDArray[np.integer[Any]], out: npt.NDArray[Any]
) -> None:
    """``out[slots] = values``, in one loop (numpy's indexed assignment costs about twice
    as much: it checks and converts every index)."""
    for k in range(len(values)):
        out[slots[k]] = values[k]
