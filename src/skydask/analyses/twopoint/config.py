"""Parameters of the two-point analyses: binning, patches, and how shapes become shears.

:class:`TwoPointConfig` holds what TreeCorr needs plus how the work is split. Defaults, and why:

* Binning as TXPipe's: 9 logarithmic bins from 0.5 to 300 arcmin, ``bin_slop = 0`` (every
  pair in its exact bin, no approximation), ``metric = "Euclidean"`` (TreeCorr's default; on
  the sphere it is the chord distance, which TXPipe uses too).
* ``npatch = 32`` sky patches from TreeCorr's k-means on every 10th object. The patches are
  both the unit of work (one Dask task per patch pair) and the jackknife regions: 32 regions
  keep the jackknife covariance of a 9-bin xi+/xi- vector (18 numbers) invertible, and 32
  patches give 528 pair tasks, enough to keep a few hundred cores busy.
* ``cross_patch_weight = "match"``: TreeCorr's recommendation for the jackknife (Mohammad &
  Percival 2022), set explicitly so that TreeCorr does not warn about its own default.
* ``var_method = "jackknife"``: the TreeCorr objects' ``varxi`` and ``cov`` are jackknife
  estimates too, not shot noise.

Any other TreeCorr ``Corr2`` parameter (``angle_slop``, ``min_rpar``, ``split_method``,
``brute`` ...) passes through ``treecorr``; unknown names are refused.

:class:`ShearCalibration` says which quantities hold the shapes and how they become shears:
HSM re-Gaussianization reports *distortions* ``e``, whose mean response to a shear ``g`` is
``<e> = 2 R g`` with the responsivity ``R = 1 - e_rms**2`` (Bernstein & Jarvis 2002; the HSC
first-year convention, Mandelbaum et al. 2018), so ``g = e / (2 R)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from skydask.errors import SpecError

__all__ = ["NAN_POLICIES", "WEIGHTS_INVERSE_VARIANCE", "ShearCalibration", "TwoPointConfig"]

NAN_POLICIES = ("raise", "drop")
"""What to do with selected objects whose position, shape or weight is not finite:
``"raise"`` (default) stops with an error naming the sample and the count; ``"drop"`` removes
them and records how many in the result."""

WEIGHTS_INVERSE_VARIANCE = "inverse_variance"
"""``ShearCalibration.weights`` value for per-object weights ``1 / (sigma**2 + e_rms**2)``."""

# the TreeCorr parameters that TwoPointConfig sets itself (or that make no sense per task)
_OWN_TREECORR_KEYS = frozenset(
    {"min_sep", "max_sep", "nbins", "sep_units", "bin_slop", "angle_slop", "metric",
     "bin_type", "cross_patch_weight", "var_method", "num_threads", "npatch", "bin_size"}
)  # fmt: skip
_BIN_TYPES = ("Log", "Linear")
_CROSS_PATCH_WEIGHTS = ("simple", "mean", "match", "geom")


def _treecorr_valid_params() -> frozenset[str]:
    import treecorr

    return frozenset(treecorr.Corr2._valid_params)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"parameter {name!r} must be a positive integer; got {value!r}")
    return value


def _positive_number(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value > 0)
    ):
        raise SpecError(f"parameter {name!r} must be a finite number > 0; got {value!r}")
    return float(value)


@dataclass(frozen=True)
class TwoPointConfig:
    """Parameters of the two-point measurements (keyword arguments of the analyses override
    them; see the module docstring for the defaults).

    Attributes
    ----------
    min_sep, max_sep : float
        Separation range, in ``sep_units``.
    nbins : int
        Number of separation bins.
    sep_units : str
        ``"arcmin"``, ``"arcsec"``, ``"deg"``, ``"rad"``.
    bin_slop : float or None
        TreeCorr's binning tolerance; 0 puts every pair in its exact bin. None: TreeCorr's
        default.
    angle_slop : float or None
        TreeCorr's tolerance on the shear projection angle (None: TreeCorr's default).
    metric : str
        TreeCorr metric: ``"Euclidean"`` (chord) or ``"Arc"`` (great circle).
    bin_type : str
        ``"Log"`` or ``"Linear"``.
    npatch : int
        Number of sky patches (k-means), at least 2: jackknife regions and units of work.
    every_nth : int
        The k-means runs on every ``every_nth`` object of the patch-defining sample.
    seed : int
        Seed of the k-means initialisation (the patches are deterministic for a seed).
    cross_patch_weight : str
        How the jackknife weights pairs that straddle two patches (TreeCorr's option).
    nan_policy : str
        ``"raise"`` or ``"drop"``, see :data:`NAN_POLICIES`.
    num_threads : int or None
        OpenMP threads of TreeCorr in each task. None: all of the worker process's cores
        (``OMP_NUM_THREADS``, which skydask's clusters set, or the CPU count): TreeCorr holds
        the GIL while it computes, so a process runs one pair computation at a time anyway.
    cache_patches : int
        Trees a worker process keeps alive, counted in objects: ``cache_patches`` times the
        largest patch; a hard cap (room for a pair's new trees is made before they are
        built). Each worker runs its tasks patch by patch along its stretch of the sky, so
        a cached tree serves its next tasks instead of being rebuilt (building and freeing
        a tree costs as much as many neighbouring pairs); the trees its next tasks need are
        kept first, and trees stay until the room is needed. 0 disables the cache; each
        cached patch costs about 275 bytes per object (17 MB for 62,500 sources at 1-100
        arcmin). For 1 million sources in 16 patches on two workers (TreeCorr builds 16
        trees): 47 builds with 5, 39 with 6, 33 with 7, 28 with 8. The default 7 keeps the
        largest worker at 0.45 of TreeCorr's own peak memory (the patch catalogues wait
        without their derived positions, which leaves that room); each patch more of room
        adds about 15 MB to it and takes away 4-6 builds (``benchmarks/README.md``).
    treecorr : mapping
        Further TreeCorr ``Corr2`` parameters, passed through unchanged.

    Examples
    --------
    >>> cfg = TwoPointConfig()
    >>> cfg.min_sep, cfg.max_sep, cfg.nbins, cfg.bin_slop, cfg.cross_patch_weight
    (0.5, 300.0, 9, 0.0, 'match')
    >>> cfg.with_overrides(nbins=5, split_method="median").treecorr_config()["split_method"]
    'median'
    >>> TwoPointConfig(npatch=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    skydask.errors.SpecError: parameter 'npatch' must be at least 2 (...); got 1
    """

    min_sep: float = 0.5
    max_sep: float = 300.0
    nbins: int = 9
    sep_units: str = "arcmin"
    bin_slop: float | None = 0.0
    angle_slop: float | None = None
    metric: str = "Euclidean"
    bin_type: str = "Log"
    npatch: int = 32
    every_nth: int = 10
    seed: int = 0
    cross_patch_weight: str = "match"
    nan_policy: str = "raise"
    num_threads: int | None = None
    cache_patches: int = 7
    treecorr: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _positive_number("min_sep", self.min_sep)
        _positive_number("max_sep", self.max_sep)
        if self.max_sep <= self.min_sep:
            raise SpecError(
                f"parameter 'max_sep' ({self.max_sep}) must exceed 'min_sep' ({self.min_sep})"
            )
        _positive_int("nbins", self.nbins)
        _positive_int("every_nth", self.every_nth)
        _positive_int("npatch", self.npatch)
        if self.npatch < 2:
            raise SpecError(
                "parameter 'npatch' must be at least 2 (the patches are the jackknife regions); "
                f"got {self.npatch}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise SpecError(f"parameter 'seed' must be a non-negative integer; got {self.seed!r}")
        if self.bin_type not in _BIN_TYPES:
            raise SpecError(f"parameter 'bin_type' must be one of {_BIN_TYPES}; got "
                            f"{self.bin_type!r}")  # fmt: skip
        if self.cross_patch_weight not in _CROSS_PATCH_WEIGHTS:
            raise SpecError(
                f"parameter 'cross_patch_weight' must be one of {_CROSS_PATCH_WEIGHTS} "
                f"(TreeCorr recommends 'match' for the jackknife); got {self.cross_patch_weight!r}"
            )
        if self.cross_patch_weight == "geom":
            raise SpecError("parameter 'cross_patch_weight' = 'geom' is for bootstrap resampling; "
                            "the two-point analyses use the jackknife: choose 'match'")  # fmt: skip
        if self.nan_policy not in NAN_POLICIES:
            raise SpecError(f"parameter 'nan_policy' must be one of {NAN_POLICIES}; got "
                            f"{self.nan_policy!r}")  # fmt: skip
        if self.num_threads is not None:
            _positive_int("num_threads", self.num_threads)
        if (
            isinstance(self.cache_patches, bool)
            or not isinstance(self.cache_patches, int)
            or (self.cache_patches < 0)
        ):
            raise SpecError(f"parameter 'cache_patches' must be an integer >= 0; got "
                            f"{self.cache_patches!r}")  # fmt: skip
        if not isinstance(self.treecorr, Mapping):
            raise SpecError(f"parameter 'treecorr' must be a mapping of TreeCorr parameters; "
                            f"got {self.treecorr!r}")  # fmt: skip
        valid = _treecorr_valid_params()
        for key in self.treecorr:
            if key in _OWN_TREECORR_KEYS:
                raise SpecError(
                    f"TreeCorr parameter {key!r} is a TwoPointConfig field: set it directly, "
                    "not through 'treecorr'"
                )
            if key not in valid:
                raise SpecError(f"{key!r} is not a TreeCorr Corr2 parameter; expected one of "
                                f"{sorted(valid - _OWN_TREECORR_KEYS)}")  # fmt: skip
        object.__setattr__(self, "treecorr", MappingProxyType(dict(self.treecorr)))
        # let TreeCorr itself validate units, metric and the pass-through keys, before any work
        try:
            import treecorr

            treecorr.GGCorrelation(self.treecorr_config())
        except (ValueError, TypeError, KeyError) as exc:
            raise SpecError(f"TreeCorr refuses these parameters: {exc}") from exc

    def with_overrides(self, **overrides: Any) -> TwoPointConfig:
        """A copy with some parameters replaced; TreeCorr parameters that are not fields of
        this class go into ``treecorr``."""
        own = {f.name for f in fields(self)}
        mine = {k: v for k, v in overrides.items() if k in own}
        passed = {k: v for k, v in overrides.items() if k not in own}
        if passed:
            valid = _treecorr_valid_params()
            unknown = sorted(k for k in passed if k not in valid)
            if unknown:
                raise SpecError(
                    f"the two-point analyses have no parameter(s) {unknown}; expected some of "
                    f"{sorted(own)} or a TreeCorr Corr2 parameter"
                )
            mine["treecorr"] = {**dict(mine.get("treecorr", self.treecorr)), **passed}
        return replace(self, **mine)

    def treecorr_config(self) -> dict[str, Any]:
        """The TreeCorr configuration of every correlation object of a measurement.

        Examples
        --------
        >>> sorted(TwoPointConfig().treecorr_config())  # doctest: +NORMALIZE_WHITESPACE
        ['bin_slop', 'bin_type', 'cross_patch_weight', 'max_sep', 'metric', 'min_sep',
         'nbins', 'sep_units', 'var_method']
        """
        cfg: dict[str, Any] = {
            "min_sep": float(self.min_sep),
            "max_sep": float(self.max_sep),
            "nbins": int(self.nbins),
            "sep_units": self.sep_units,
            "metric": self.metric,
            "bin_type": self.bin_type,
            "cross_patch_weight": self.cross_patch_weight,
            "var_method": "jackknife",
        }
        if self.bin_slop is not None:
            cfg["bin_slop"] = float(self.bin_slop)
        if self.angle_slop is not None:
            cfg["angle_slop"] = float(self.angle_slop)
        cfg.update(self.treecorr)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["treecorr"] = dict(self.treecorr)
        return out


@dataclass(frozen=True)
class ShearCalibration:
    """Where the source shapes are and how they become shears.

    Attributes
    ----------
    e1, e2 : str
        Quantities holding the shape components (default the HSM distortions ``shear_e1``,
        ``shear_e2``).
    kind : str
        ``"distortion"`` (HSM re-Gaussianization: ``g = e / (2 R)``, ``R = 1 - e_rms**2``) or
        ``"shear"`` (already a shear estimate, used as it is: metacalibrated shapes, or true
        shears in tests).
    sigma : str or None
        Quantity holding the per-component shape measurement uncertainty (HSM's ``sigma``);
        used to estimate ``e_rms`` and for inverse-variance weights.
    e_rms : float or None
        Per-component rms of the intrinsic distortion. None (default): estimated from the
        selected sources of each bin as ``sqrt(<(e1**2 + e2**2) / 2 - sigma**2>)``, the
        measured variance minus the measurement noise (without ``sigma``, the measured variance
        itself, noise included).
    weights : str or None
        ``"inverse_variance"`` (default): ``w = 1 / (sigma**2 + e_rms**2)``; None: unweighted;
        any other string: a quantity holding the weights.
    flip_g1, flip_g2 : bool
        Negate g1 or g2 before TreeCorr sees them (TreeCorr's own options of these names).
        skydask's synthetic catalogues give shapes in the local (east, north) frame, angles
        counted from east towards north; TreeCorr counts them the other way on the sky, so
        ``flip_g2 = True`` is the default (as TXPipe's for DC2); the tests check the sign of
        the tangential shear around the synthetic halos.

    Examples
    --------
    >>> ShearCalibration().kind, ShearCalibration().flip_g2
    ('distortion', True)
    >>> ShearCalibration(kind="shear", e1="g1", e2="g2", sigma=None, weights=None).needs_e_rms
    False
    """

    e1: str = "shear_e1"
    e2: str = "shear_e2"
    kind: str = "distortion"
    sigma: str | None = "ext_shapeHSM_HsmShapeRegauss_sigma"
    e_rms: float | None = None
    weights: str | None = WEIGHTS_INVERSE_VARIANCE
    flip_g1: bool = False
    flip_g2: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("distortion", "shear"):
            raise SpecError(f"shear calibration 'kind' must be 'distortion' or 'shear'; got "
                            f"{self.kind!r}")  # fmt: skip
        for name in ("e1", "e2"):
            if not isinstance(getattr(self, name), str):
                raise SpecError(f"shear calibration {name!r} must be a quantity name")
        if self.e_rms is not None and not (
            isinstance(self.e_rms, int | float) and math.isfinite(self.e_rms) and
            0 <= self.e_rms < 1
        ):  # fmt: skip
            raise SpecError(f"shear calibration 'e_rms' must be in [0, 1); got {self.e_rms!r}")
        if self.weights == WEIGHTS_INVERSE_VARIANCE and self.sigma is None:
            raise SpecError(
                "shear calibration weights='inverse_variance' needs the 'sigma' quantity "
                "(the shape measurement uncertainty); give it or set weights=None"
            )

    @property
    def needs_e_rms(self) -> bool:
        """Whether the conversion or the weights use ``e_rms``."""
        return self.kind == "distortion" or self.weights == WEIGHTS_INVERSE_VARIANCE

    @property
    def weight_quantity(self) -> str | None:
        """The quantity holding per-object weights, if the weights come from one."""
        if self.weights in (None, WEIGHTS_INVERSE_VARIANCE):
            return None
        return self.weights

    def quantities(self) -> list[str]:
        """Every quantity the conversion reads."""
        names = [self.e1, self.e2]
        if self.sigma is not None:
            names.append(self.sigma)
        if self.weight_quantity is not None:
            names.append(self.weight_quantity)
        return list(dict.fromkeys(names))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
