"""Reference data shipped with skydask (see ``README.md`` beside this file for provenance)."""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import pandas as pd

__all__ = ["covey_locus"]

# Byte ranges (1-based, inclusive) of the CDS "Byte-by-byte Description" of the Covey table.
_COVEY_COLUMNS = {
    "g-i": (1, 4), "N": (6, 9), "u-g": (11, 14), "e_u-g": (16, 19), "g-r": (21, 24),
    "e_g-r": (26, 29), "r-i": (31, 34), "e_r-i": (36, 39), "i-z": (41, 45), "e_i-z": (47, 50),
    "z-J": (52, 55), "e_z-J": (57, 60), "J-H": (62, 65), "e_J-H": (67, 70), "H-K": (72, 75),
    "e_H-K": (77, 80),
}  # fmt: skip


@functools.cache
def _covey_table() -> pd.DataFrame:
    text = resources.files("skydask.data").joinpath("covey2007_medianlocus.tbl").read_text()
    rows = []
    for line in text.splitlines():
        # data lines start with the g-i colour as "d.dd"; the header never does
        if len(line) >= 75 and line[:4].replace(".", "", 1).isdigit() and line[1] == ".":
            rows.append({k: float(line[a - 1 : b]) for k, (a, b) in _COVEY_COLUMNS.items()})
    table = pd.DataFrame(rows)
    table["N"] = table["N"].astype(np.int64)
    return table


def covey_locus() -> pd.DataFrame:
    """The Covey et al. (2007) median stellar locus, one row per g-i bin.

    Columns: ``g-i``, ``N`` (stars in the bin), the median colours ``u-g``, ``g-r``, ``r-i``,
    ``i-z``, ``z-J``, ``J-H``, ``H-K`` (mag) and their 1-sigma spreads ``e_<colour>``.

    Examples
    --------
    >>> locus = covey_locus()
    >>> float(locus["g-i"].iloc[0]), float(locus["g-r"].iloc[0])
    (0.1, 0.09)
    >>> bool(locus["g-i"].is_monotonic_increasing)
    True
    """
    return _covey_table().copy()
