"""The two-point analyses: shear-shear, galaxy-shear and galaxy-galaxy, single or tomographic.

Each function takes lazy catalogues (a :class:`skydask.Catalog`, or a mapping of bin names to
catalogues for several bins), applies the named cut sets (:mod:`.cuts`), converts the shapes
(:class:`.ShearCalibration`), and measures with TreeCorr distributed by sky patch
(:mod:`.measure`). :func:`two_point` measures any combination in one go (every pair of bins,
3x2pt), sharing the patches, so that the covariance of everything is one joint jackknife.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from skydask.analyses.twopoint.config import ShearCalibration, TwoPointConfig
from skydask.analyses.twopoint.cuts import CutSet, cut_set
from skydask.analyses.twopoint.measure import STATISTICS, Request, measure
from skydask.analyses.twopoint.result import TwoPointResult
from skydask.analyses.twopoint.samples import Rows, Sample
from skydask.catalog.catalog import Catalog
from skydask.errors import SchemaError, SpecError

__all__ = ["galaxy_galaxy", "galaxy_shear", "shear_shear", "two_point"]

log = logging.getLogger(__name__)

Bins = Catalog | Mapping[str, Catalog] | Sequence[Catalog]
RANDOMS = "randoms"


def _bins(value: Any, prefix: str, what: str) -> dict[str, Catalog]:
    if isinstance(value, Catalog):
        return {f"{prefix}_0": value}
    if isinstance(value, Mapping):
        out = dict(value)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        out = {f"{prefix}_{i}": v for i, v in enumerate(value)}
    else:
        raise SpecError(f"{what} must be a skydask Catalog, a mapping of bin names to Catalogs "
                        f"or a list of Catalogs; got {type(value).__name__}")  # fmt: skip
    if not out:
        raise SpecError(f"{what}: no bins given")
    for name, cat in out.items():
        if not isinstance(cat, Catalog):
            raise SpecError(f"{what} bin {name!r} must be a skydask Catalog; got "
                            f"{type(cat).__name__}")  # fmt: skip
        if name == RANDOMS:
            raise SpecError(f"{what}: the bin name {RANDOMS!r} is reserved")
    return out


def _cuts(value: CutSet | str | Mapping[str, str] | None, role: str) -> CutSet | None:
    if value is None or isinstance(value, CutSet):
        return value
    if isinstance(value, str):
        return cut_set(value)
    if isinstance(value, Mapping):
        return cut_set(role, **{k: False for k in cut_set(role).cuts}).with_cuts(**dict(value))
    raise SpecError(f"{role}_cuts must be a CutSet, a cut-set name, a mapping of cut names to "
                    f"where-strings, or None; got {value!r}")  # fmt: skip


def _select(catalog: Catalog, cuts: CutSet | None, quantities: dict[str, str], what: str) -> Any:
    """The cut catalogue's needed quantities, lazily, under their canonical names."""
    try:
        if cuts is not None:
            catalog = cuts.apply(catalog)
        selected = catalog.select(list(dict.fromkeys(quantities.values())))
    except SchemaError as exc:
        raise type(exc)(f"{what}: {exc}") from exc
    return Rows(tuple(quantities), tuple(selected.partition_readers(quantities, arrays=True)))


def _describe(catalog: Catalog, cuts: CutSet | None) -> str:
    parts = [catalog.name or "catalogue"]
    query = catalog.describe_query()
    if query != "everything":
        parts.append(query)
    expr = cuts.expression() if cuts is not None else None
    parts.append(f"{cuts.name} cuts: {expr}" if cuts is not None and expr else "no cut set")
    return "; ".join(parts)


def _source_samples(sources: Any, shear: ShearCalibration, cuts: CutSet | None) -> list[Sample]:
    out = []
    for name, cat in _bins(sources, "source", "sources").items():
        quantities = {"ra": "ra", "dec": "dec", "e1": shear.e1, "e2": shear.e2}
        if shear.sigma is not None:
            quantities["sigma"] = shear.sigma
        if shear.weight_quantity is not None:
            quantities["wq"] = shear.weight_quantity
        what = f"source bin {name!r} (shapes {shear.e1!r}, {shear.e2!r})"
        frame = _select(cat, cuts, quantities, what)
        out.append(Sample(name, "source", frame, shear, _describe(cat, cuts)))
    return out


def _lens_samples(lenses: Any, cuts: CutSet | None, prefix: str = "lens") -> list[Sample]:
    out = []
    for name, cat in _bins(lenses, prefix, "lenses").items():
        frame = _select(cat, cuts, {"ra": "ra", "dec": "dec"}, f"lens bin {name!r}")
        out.append(Sample(name, "lens", frame, None, _describe(cat, cuts)))
    return out


def _randoms_sample(randoms: Any) -> Sample:
    if isinstance(randoms, Catalog):
        frame = _select(randoms, None, {"ra": "ra", "dec": "dec"}, "randoms")
        return Sample(RANDOMS, "random", frame, None, _describe(randoms, None))
    columns = getattr(randoms, "columns", None)
    if columns is None or not hasattr(randoms, "to_delayed"):
        raise SpecError(
            "randoms must be a skydask Catalog or a dask DataFrame with ra, dec columns (such "
            f"as randoms() returns); got {type(randoms).__name__}"
        )
    missing = [c for c in ("ra", "dec") if c not in columns]
    if missing:
        raise SchemaError(
            f"the randoms have no column(s) {missing}; expected ra, dec (deg) and optionally w"
        )
    frame = randoms[["ra", "dec"]]
    if "w" in columns:
        frame = frame.assign(wq=randoms["w"])
    return Sample(RANDOMS, "random", frame, None, "random points")


def _config(config: TwoPointConfig | None, overrides: dict[str, Any]) -> TwoPointConfig:
    base = config if config is not None else TwoPointConfig()
    return base.with_overrides(**overrides) if overrides else base


def two_point(
    *,
    sources: Bins | None = None,
    lenses: Bins | None = None,
    randoms: Any = None,
    statistics: Sequence[str] | None = None,
    config: TwoPointConfig | None = None,
    shear: ShearCalibration | None = None,
    source_cuts: CutSet | str | Mapping[str, str] | None = "source",
    lens_cuts: CutSet | str | Mapping[str, str] | None = "lens",
    patch_centers: Any = None,
    progress: bool = False,
    **overrides: Any,
) -> TwoPointResult:
    """Tomographic two-point functions: every pair of bins of every statistic, in one go.

    Parameters
    ----------
    sources : Catalog, mapping of str to Catalog, or list of Catalogs, optional
        Source bins (a single Catalog is bin ``source_0``; a list gives ``source_<i>``).
    lenses : same, optional
        Lens bins (``lens_<i>``).
    randoms : Catalog or dask DataFrame, optional
        Random points over the footprint (e.g. from :func:`randoms`): required by
        galaxy_galaxy (Landy-Szalay); galaxy_shear subtracts the shear around them.
    statistics : list of str, optional
        Among ``"shear_shear"`` (xi+, xi-: every source pair i <= j), ``"galaxy_shear"``
        (gamma_t: every lens x source pair) and ``"galaxy_galaxy"`` (w(theta): every lens pair
        i <= j). Default: all that the given samples allow.
    config : TwoPointConfig, optional
        Binning, patches and TreeCorr parameters (defaults: TXPipe's).
    shear : ShearCalibration, optional
        Shape quantities and their conversion to shears (default: HSM distortions,
        ``g = e / (2R)``, inverse-variance weights, ``flip_g2``).
    source_cuts, lens_cuts : CutSet, str, mapping or None
        The cut sets (default DESC's ``"source"`` and ``"lens"``, see :mod:`.cuts`); a mapping
        gives the cuts explicitly; None applies none (the catalogues are used as they are).
    patch_centers : array, optional
        Reuse these patches (a previous result's ``patch_centers``) instead of the k-means.
    progress : bool
        Show the progress of the pair tasks: a progress bar on the local schedulers, a log
        line (INFO) per finished task on a distributed cluster, where each worker's next
        task is submitted when its previous one ends.
    **overrides
        Any :class:`TwoPointConfig` field or TreeCorr ``Corr2`` parameter.

    Returns
    -------
    TwoPointResult
        TreeCorr objects, tables, the joint jackknife covariance, figures and files.

    Raises
    ------
    SpecError
        For an invalid parameter or an empty bin.
    SchemaError
        If a catalogue lacks a quantity (e.g. sources without shapes), or a selected object
        has a non-finite shear with ``nan_policy="raise"``.
    """
    cfg = _config(config, overrides)
    shear = shear if shear is not None else ShearCalibration()
    if statistics is None:
        statistics = [s for s, ok in (("shear_shear", sources is not None),
                                      ("galaxy_shear", sources is not None and lenses is not None),
                                      ("galaxy_galaxy", lenses is not None and randoms is not None))
                      if ok]  # fmt: skip
    statistics = list(dict.fromkeys(statistics))
    unknown = [s for s in statistics if s not in STATISTICS]
    if unknown or not statistics:
        raise SpecError(f"statistics must be some of {list(STATISTICS)}; got {statistics!r}")
    needs_sources = {"shear_shear", "galaxy_shear"} & set(statistics)
    needs_lenses = {"galaxy_shear", "galaxy_galaxy"} & set(statistics)
    if needs_sources and sources is None:
        raise SpecError(f"{sorted(needs_sources)} need sources")
    if needs_lenses and lenses is None:
        raise SpecError(f"{sorted(needs_lenses)} need lenses")
    if "galaxy_galaxy" in statistics and randoms is None:
        raise SpecError("galaxy_galaxy needs randoms (the Landy-Szalay estimator)")

    samples: list[Sample] = []
    if needs_sources:
        samples += _source_samples(sources, shear, _cuts(source_cuts, "source"))
    if needs_lenses:
        samples += _lens_samples(lenses, _cuts(lens_cuts, "lens"))
    use_randoms = randoms is not None and needs_lenses
    if use_randoms:
        samples.append(_randoms_sample(randoms))
    src = [s.name for s in samples if s.role == "source"]
    lns = [s.name for s in samples if s.role == "lens"]
    requests: list[Request] = []
    for stat in statistics:
        if stat == "shear_shear":
            requests += [Request(stat, a, b) for i, a in enumerate(src) for b in src[i:]]
        elif stat == "galaxy_shear":
            requests += [Request(stat, a, b) for a in lns for b in src]
        else:
            requests += [Request(stat, a, b) for i, a in enumerate(lns) for b in lns[i:]]
    measured = measure(
        samples, requests, cfg, randoms=RANDOMS if use_randoms else None,
        patch_centers=patch_centers, progress=progress,
    )  # fmt: skip
    return TwoPointResult(
        config=cfg,
        requests=tuple(requests),
        correlations=measured.correlations,
        randoms_correlations=measured.randoms_correlations,
        covariance=measured.covariance,
        patch_centers=measured.patch_centers,
        calibrations=measured.calibrations,
        samples=measured.samples,
        reduction=measured.reduction,
    )


def shear_shear(
    sources: Bins,
    config: TwoPointConfig | None = None,
    *,
    shear: ShearCalibration | None = None,
    source_cuts: CutSet | str | Mapping[str, str] | None = "source",
    patch_centers: Any = None,
    progress: bool = False,
    **overrides: Any,
) -> TwoPointResult:
    """Shear-shear correlations xi+(theta), xi-(theta) (and their imaginary parts) of sources.

    With several source bins, every pair i <= j. Parameters as :func:`two_point`.

    Examples
    --------
    >>> import numpy as np, pandas as pd, skydask
    >>> rng = np.random.default_rng(2)
    >>> n = 4000
    >>> df = pd.DataFrame({"ra": rng.uniform(60, 62, n), "dec": rng.uniform(-36, -34, n),
    ...                    "g1": np.full(n, 0.05), "g2": np.zeros(n)})
    >>> res = shear_shear(skydask.from_pandas(df, npartitions=2), source_cuts=None,
    ...                   shear=ShearCalibration(kind="shear", e1="g1", e2="g2", sigma=None,
    ...                                          weights=None),
    ...                   min_sep=5.0, max_sep=30.0, nbins=3, npatch=4, bin_slop=0.1)
    >>> res.table()["xip"].round(5).tolist()  # a constant shear: 0.05**2
    [0.0025, 0.0025, 0.0025]
    """
    return two_point(
        sources=sources, statistics=["shear_shear"], config=config, shear=shear,
        source_cuts=source_cuts, patch_centers=patch_centers, progress=progress, **overrides,
    )  # fmt: skip


def galaxy_shear(
    lenses: Bins,
    sources: Bins,
    randoms: Any = None,
    config: TwoPointConfig | None = None,
    *,
    shear: ShearCalibration | None = None,
    source_cuts: CutSet | str | Mapping[str, str] | None = "source",
    lens_cuts: CutSet | str | Mapping[str, str] | None = "lens",
    patch_centers: Any = None,
    progress: bool = False,
    **overrides: Any,
) -> TwoPointResult:
    """Tangential and cross shear gamma_t, gamma_x of sources around lenses.

    With ``randoms``, the shear around random points is subtracted (``DG - RG``). With
    several bins, every lens x source pair. Parameters as :func:`two_point`.
    """
    return two_point(
        sources=sources, lenses=lenses, randoms=randoms, statistics=["galaxy_shear"],
        config=config, shear=shear, source_cuts=source_cuts, lens_cuts=lens_cuts,
        patch_centers=patch_centers, progress=progress, **overrides,
    )  # fmt: skip


def galaxy_galaxy(
    galaxies: Bins,
    randoms: Any,
    config: TwoPointConfig | None = None,
    *,
    lens_cuts: CutSet | str | Mapping[str, str] | None = "lens",
    patch_centers: Any = None,
    progress: bool = False,
    **overrides: Any,
) -> TwoPointResult:
    """Angular clustering w(theta) with the Landy-Szalay estimator (DD, DR, RD, RR).

    ``galaxies`` are lens bins (cut with ``lens_cuts``); with several, every pair i <= j
    (RD from the second bin). Parameters as :func:`two_point`.
    """
    return two_point(
        lenses=galaxies, randoms=randoms, statistics=["galaxy_galaxy"], config=config,
        lens_cuts=lens_cuts, patch_centers=patch_centers, progress=progress, **overrides,
    )  # fmt: skip
