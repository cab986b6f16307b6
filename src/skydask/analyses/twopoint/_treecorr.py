"""Everything that touches TreeCorr's internals, in one place (TreeCorr 5.x).

The distributed measurement must reproduce ``Corr2.process()`` on patched catalogues number
for number, which needs a few of TreeCorr's private pieces, named here so that a TreeCorr
upgrade has one file to check (the exactness tests compare with ``process()`` itself):

* ``Catalog._get_center_size()``: a patch's centre (unweighted mean of the unit vectors) and
  radius, which ``process()`` uses to skip pairs of patches too far apart;
* ``Corr2._trivially_zero`` / ``Corr2._set_metric``: that test itself;
* ``NNCorrelation._add_tot``: a skipped pair still adds ``sumw_i * sumw_j`` to ``tot``;
* the per-catalogue pieces of ``calculateVarG`` (``_varg1``, ``_meang1``, ``_altmeang1`` ...),
  combined over patches by the formula of TreeCorr's ``_compute_var_multi_cat``;
* the field caches ``_nfields``, ``_gfields`` ... of a ``Catalog`` (:func:`release`).

A patch's catalogue is built once, in the task that groups its rows
(:func:`skydask.analyses.twopoint.patches.build_patch`), and then travels as a pickled
``Catalog``: TreeCorr pickles the positions it derived (``x, y, z``) and not the trees, so
a pair task never recomputes the positions (cheap anyway: TreeCorr derives them in C++, and
a 62,500-object catalogue costs 2.1 ms with them given or not). The
trees are what costs: 15-25 ms to build in a busy worker, about as much to free, and 16 MB
for 60,000 sources at 1-100 arcmin (about 270 bytes per object), built again wherever a
process has released them (see :mod:`.pairs`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CORRELATIONS",
    "PatchStats",
    "add_tot",
    "combined_varg",
    "make_catalog",
    "make_correlation",
    "patch_stats",
    "release",
    "trivially_zero",
]

CORRELATIONS = ("GG", "NG", "NN")


def make_correlation(kind: str, config: dict[str, Any]) -> Any:
    """A new TreeCorr correlation object: ``"GG"``, ``"NG"`` or ``"NN"``."""
    import treecorr

    classes = {
        "GG": treecorr.GGCorrelation,
        "NG": treecorr.NGCorrelation,
        "NN": treecorr.NNCorrelation,
    }
    return classes[kind](dict(config))


def make_catalog(columns: Mapping[str, NDArray[np.float64]], field: str) -> Any:
    """A TreeCorr catalogue of one patch's rows: positions ``ra``, ``dec`` (deg), weights
    ``w`` if given, shears ``g1``, ``g2`` for a ``"G"`` field (float64 arrays)."""
    import treecorr

    kwargs: dict[str, Any] = {
        "ra": np.ascontiguousarray(columns["ra"], dtype=np.float64),
        "dec": np.ascontiguousarray(columns["dec"], dtype=np.float64),
        "ra_units": "deg",
        "dec_units": "deg",
    }
    if "w" in columns:
        kwargs["w"] = np.ascontiguousarray(columns["w"], dtype=np.float64)
    if field == "G":
        kwargs["g1"] = np.ascontiguousarray(columns["g1"], dtype=np.float64)
        kwargs["g2"] = np.ascontiguousarray(columns["g2"], dtype=np.float64)
    cat = treecorr.Catalog(**kwargs)
    cat.x  # noqa: B018  (derive the positions now, so that they travel with the catalogue)
    return cat


def catalog_nbytes(cat: Any) -> int:
    """Bytes of the arrays a catalogue holds (what pickling it moves), without its trees."""
    return int(sum(v.nbytes for v in vars(cat).values() if isinstance(v, np.ndarray)))


_FIELD_CACHES = ("_nfields", "_kfields", "_zfields", "_vfields", "_gfields", "_tfields", "_qfields")


def release(cat: Any) -> None:
    """Free a catalogue's trees now, and let the catalogue itself go when it is dropped.

    A catalogue's field caches hold functions that refer back to it: a reference cycle, so
    without this the catalogue and its trees (hundreds of bytes per object) live until
    Python's cyclic garbage collector runs, which in a worker busy with C++ code may be very
    late: the memory of every pair task would pile up.
    """
    cat.clear_cache()
    for name in _FIELD_CACHES:
        cat.__dict__.pop(name, None)  # the properties rebuild them if ever needed again


@dataclass(frozen=True)
class PatchStats:
    """What the driver needs to know of one patch of one sample, without its rows.

    ``center`` and ``size`` are TreeCorr's (unit-sphere chord units); ``var_parts`` the
    per-catalogue pieces of the shear variance (G samples only).
    """

    patch: int
    nobj: int
    sumw: float
    sumw2: float
    center: tuple[float, float, float]
    size: float
    var_parts: tuple[float, ...] | None = None

    @property
    def empty(self) -> bool:
        return self.nobj == 0


def patch_stats(cat: Any, field: str, patch: int) -> PatchStats:
    """Statistics of one patch from its TreeCorr catalogue (None for an empty patch)."""
    if cat is None:
        return PatchStats(patch, 0, 0.0, 0.0, (0.0, 0.0, 0.0), 0.0, None)
    x, y, z, s = cat._get_center_size()
    var_parts = None
    if field == "G":
        cat.varg  # noqa: B018  (computes the per-component pieces read below)
        var_parts = (
            float(cat._meang1), float(cat._altmeang1), float(cat._varg1),
            float(cat._meang2), float(cat._altmeang2), float(cat._varg2),
        )  # fmt: skip
    return PatchStats(
        patch, int(cat.nobj), float(cat.sumw), float(cat.sumw2),
        (float(x), float(y), float(z)), float(s), var_parts,
    )  # fmt: skip


def _var_multi(parts: list[PatchStats], k: int) -> float:
    # TreeCorr's _compute_var_multi_cat, term for term and in the same order
    vark = meank = altmeank = sumw = sumw2 = 0.0
    for p in parts:
        assert p.var_parts is not None
        cat_meank, cat_altmeank, cat_vark = p.var_parts[3 * k : 3 * k + 3]
        vark += cat_vark * p.sumw + cat_meank * p.sumw2 * (2 * cat_altmeank - cat_meank)
        meank += cat_meank * p.sumw
        altmeank += cat_altmeank * p.sumw2
        sumw += p.sumw
        sumw2 += p.sumw2
    meank /= sumw
    altmeank /= sumw2
    return (vark - meank * sumw2 * (2 * altmeank - meank)) / sumw


def combined_varg(stats: list[PatchStats]) -> float:
    """The shear variance per component over the non-empty patches, as ``calculateVarG``."""
    parts = [p for p in stats if not p.empty]
    if not parts:
        return math.nan
    if len(parts) == 1:
        assert parts[0].var_parts is not None
        return (parts[0].var_parts[2] + parts[0].var_parts[5]) / 2
    return (_var_multi(parts, 0) + _var_multi(parts, 1)) / 2


class _Geometry:
    """Stands in for a patch catalogue where TreeCorr asks only for centre, size or sumw."""

    def __init__(self, stats: PatchStats) -> None:
        self._stats = stats
        self.sumw = stats.sumw

    def _get_center_size(self) -> tuple[float, float, float, float]:
        x, y, z = self._stats.center
        return x, y, z, self._stats.size


def prepare_driver(corr: Any) -> None:
    """Set the metric of a correlation that will only be added to (as ``process()`` does)."""
    corr._set_metric(None, "spherical", "spherical")


def trivially_zero(corr: Any, a: PatchStats, b: PatchStats) -> bool:
    """Whether ``process()`` would skip this pair of patches as farther apart than max_sep."""
    return bool(corr._trivially_zero(_Geometry(a), _Geometry(b)))


def add_tot(corr: Any, ij: tuple[int, int], a: PatchStats, b: PatchStats) -> None:
    """Account for a pair of patches with no pair in range, as ``process()`` does.

    For NN the pair still adds ``sumw_i * sumw_j`` to ``tot`` (and an empty entry to
    ``results``, so that the jackknife's ``tot`` is right); for GG and NG it is a no-op.
    """
    corr._add_tot(ij, _Geometry(a), _Geometry(b))
