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

* the unit-sphere positions ``_x, _y, _z`` that a spherical catalogue derives from
  ``ra, dec`` (``Catalog._generate_xyz``), and ``Catalog.loaded``, which is ``_x is not
  None`` (:func:`drop_positions`, :func:`restore_positions`).

A patch's catalogue is built once, in the task that groups its rows
(:func:`skydask.analyses.twopoint.patches.build_patch`), and then travels and waits on its
workers as a pickled ``Catalog`` without its derived positions: 40 bytes an object (ra,
dec, w, g1, g2) instead of 64. On the worker holding the most patches (all 16 of the
benchmark's million sources) that leaves 24 MB more for trees, which is where the time goes
(:mod:`.pairs`): a tree of 62,500 sources at 1-100 arcmin holds 17 MB (275 bytes an object)
and costs tens of milliseconds to build and to free. The positions are derived again, bit
for bit (by the C++ that TreeCorr's own catalogue uses), just before a tree is built, 4 ms
for 62,500 objects, and dropped once it is built (the tree has its own copy).
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
    "drop_positions",
    "make_catalog",
    "make_correlation",
    "patch_stats",
    "release",
    "restore_positions",
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
    return treecorr.Catalog(**kwargs)


class _Dropped:
    """Stands for the positions :func:`drop_positions` forgot. Not None, so TreeCorr still
    sees the catalogue as loaded (rather than trying to read it from a file); any use of it
    as an array raises, so a path that needed the positions fails loudly instead of
    computing with wrong ones."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            "a patch catalogue's positions were dropped to save memory; "
            "skydask.analyses.twopoint._treecorr.restore_positions must run before its "
            "tree is built"
        )

    __array__ = __len__ = __getitem__ = __iter__ = _refuse

    def __reduce__(self) -> str:
        return "DROPPED"  # pickled as this module's singleton


DROPPED = _Dropped()


def drop_positions(cat: Any) -> None:
    """Forget the positions a spherical catalogue derived from ``ra, dec`` (24 of its 64
    bytes an object with shears and weights); :func:`restore_positions` derives them again.
    Only while the catalogue has no tree to build: its cached trees stay usable. (A patch
    has trees of one kind only: sources G, lenses and randoms N; a new kind of tree asked
    of a catalogue whose positions are dropped would raise, never compute.)"""
    if cat.coords != "spherical":
        raise ValueError(f"only derived (spherical) positions can be dropped; got {cat.coords}")
    cat._x = cat._y = cat._z = DROPPED


def restore_positions(cat: Any) -> None:
    """Derive again the positions :func:`drop_positions` forgot, as TreeCorr derived them
    (a no-op if they are there)."""
    if cat._x is DROPPED:
        cat._x = cat._y = cat._z = None
        cat._generate_xyz()


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
