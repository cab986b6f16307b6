"""``depth_map``: per-band HEALPix maps of the point-source depth, from a catalogue.

One pass over the catalogue reads, per partition, the objects' positions (``_healpix_29`` in
a HATS catalogue, else ``ra`` and ``dec``) and their PSF flux errors (and fluxes for the S/N
window method), and reduces them to per-pixel summaries merged in a tree
(:func:`skydask.analyses.reduction.tree_reduce`); :mod:`.pixels` explains how medians stay
exact when a pixel's rows are spread over partitions. Pixels that the layout could not
settle in that pass (unordered catalogues) are gathered in a second, restricted pass.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any

import dask
import dask.dataframe as dd
import healsparse
import hpgeom
import numpy as np

from skydask.analyses.depthmap.config import DepthMapConfig
from skydask.analyses.depthmap.pixels import BandStats, ExactPart, PixelReducer, ReductionState
from skydask.analyses.depthmap.result import DepthMapResult
from skydask.analyses.reduction import reduce_tree, tree_reduce
from skydask.analyses.scan import ScanPlan, scan_together
from skydask.catalog.catalog import Catalog
from skydask.catalog.healpix_index import HEALPIX29_COLUMN

__all__ = ["depth_map", "depth_map_plan"]

log = logging.getLogger(__name__)

SPLIT_EVERY = 32
"""Fan-in of the merge tree. Summaries are small (final statistics, plus the sorted flux
errors of pixels on partition edges), and every merge re-sorts the errors it carries, so a
wide tree (fewer levels) does less work than the default of 8."""


MAX_REGIONS = 64
"""Most regions a second pass reads separately (each is planned against every footer)."""


def _quantities(catalog: Catalog, config: DepthMapConfig) -> list[str]:
    # the HATS index is one int64 per row where ra and dec are two float64
    position = [HEALPIX29_COLUMN] if HEALPIX29_COLUMN in catalog.quantities else ["ra", "dec"]
    per_band = ["psFluxErr_{b}"] if config.method == "flux_err" else ["psFlux_{b}", "psFluxErr_{b}"]
    return position + [q.format(b=b) for b in config.bands for q in per_band]


def _is_local(catalog: Catalog, nside: int) -> bool:
    """Does every map pixel have all its rows in one partition?

    True for a HATS catalogue partitioned at an order no finer than the map's, when each
    partition is one whole file (a file larger than ``skydask.catalog.max-partition-rows`` is
    split into several partitions, whose pixels may then straddle them). The HEALPix order
    comes from ``Catalog.healpix_order`` where the catalogue layer offers it.
    """
    order = getattr(catalog, "healpix_order", None)
    if not isinstance(order, int) or order > int(math.log2(nside)):
        return False
    return catalog.npartitions == catalog.prune_stats.files_kept


def _one_partition(catalog: Catalog) -> bool:
    return catalog.npartitions <= 1


def _batches(pixels: np.ndarray, values: np.ndarray, budget: int) -> list[np.ndarray]:
    """Consecutive runs of (sorted) pixels holding at most ``budget`` values each."""
    out, start, held = [], 0, 0
    for i, v in enumerate(values):
        if i > start and held + v > budget:
            out.append(pixels[start:i])
            start, held = i, 0
        held += int(v)
    if start < len(pixels):
        out.append(pixels[start:])
    return out


def _restricted_frame(selected: Catalog, order: int, pixels: np.ndarray) -> dd.DataFrame:
    """The rows of ``pixels``, read through the catalogue's pruning.

    A region prunes with the box enclosing its pixels, so pixels scattered over the footprint
    would prune nothing. They are read as several regions instead, one per group of pixels
    sharing a parent at the finest order giving at most ``MAX_REGIONS`` groups, when the
    groups plan fewer rows than one region does (never for in-memory catalogues, which
    cannot prune).
    """
    single = selected.healpix(order, pixels.tolist())
    for coarse in range(order, -1, -1):
        parents = pixels >> (2 * (order - coarse))
        distinct = np.unique(parents)
        if len(distinct) <= MAX_REGIONS:
            break
    if len(distinct) > 1:
        groups = [selected.healpix(order, pixels[parents == p].tolist()) for p in distinct]
        if sum(g.prune_stats.rows_kept for g in groups) < single.prune_stats.rows_kept:
            return dd.concat([g.to_dask() for g in groups])
    return single.to_dask()


def _second_pass(
    selected: Catalog,
    reducer: PixelReducer,
    conflicts: dict[str, tuple[np.ndarray, np.ndarray]],
    budget: int,
    progress: bool,
) -> tuple[dict[str, list[BandStats]], int]:
    """Gather the rows of conflicting pixels (every band at once) and reduce them exactly."""
    counts: dict[int, int] = {}
    for pix, cnt in conflicts.values():
        for p, c in zip(pix.tolist(), cnt.tolist(), strict=True):
            counts[p] = counts.get(p, 0) + c
    pixels = np.array(sorted(counts), dtype=np.int64)
    values = np.array([counts[p] for p in pixels.tolist()], dtype=np.int64)
    batches = _batches(pixels, values, budget)
    log.info(
        "depth_map: %d pixels have rows in several partitions of an unordered layout; "
        "gathering their %d values in %d restricted pass(es)",
        len(pixels), int(values.sum()), len(batches),
    )  # fmt: skip
    order = int(math.log2(reducer.nside))
    found: dict[str, list[BandStats]] = {b: [] for b in reducer.bands}
    for batch in batches:
        restricted = replace(reducer, local=False, restrict=batch)
        state: ReductionState = tree_reduce(
            _restricted_frame(selected, order, batch),
            restricted.partial,
            restricted.combine,
            split_every=SPLIT_EVERY,
            progress=progress,
        )
        for band, stats in restricted.finish(state).items():
            if band not in conflicts:  # settled in the first pass; read again only in passing
                continue
            wanted = np.isin(stats.pixels, conflicts[band][0])
            found[band].append(
                BandStats(
                    stats.pixels[wanted],
                    stats.counts[wanted],
                    stats.depth[wanted],
                    stats.spread[wanted],
                )
            )
    return found, len(batches)


def _concat(parts: list[BandStats]) -> BandStats:
    pixels = np.concatenate([p.pixels for p in parts])
    order = np.argsort(pixels, kind="stable")
    return BandStats(
        pixels[order],
        np.concatenate([p.counts for p in parts])[order],
        np.concatenate([p.depth for p in parts])[order],
        np.concatenate([p.spread for p in parts])[order],
    )


def _to_map(
    config: DepthMapConfig, pixels: np.ndarray, values: np.ndarray, dtype: Any, what: str, band: str
) -> Any:
    # FITS header keys (8 characters at most) say what a map file holds when read back alone
    metadata = {"QUANTITY": what, "METHOD": config.method, "SNR": config.snr_threshold}
    if band:
        metadata["BAND"] = band
    hmap = healsparse.HealSparseMap.make_empty(
        config.nside_coverage, config.nside, dtype, metadata=metadata
    )
    if len(pixels):
        hmap.update_values_pix(pixels, np.asarray(values, dtype=dtype))
    return hmap


def depth_map(
    catalog: Catalog,
    config: DepthMapConfig | None = None,
    *,
    progress: bool = False,
    **overrides: Any,
) -> DepthMapResult:
    """Per-band HEALPix maps of the point-source depth measured from a catalogue's objects.

    Parameters
    ----------
    catalog : Catalog
        The objects (any layout; cuts already applied are kept). Needs ``psFluxErr_<b>``
        (and ``psFlux_<b>`` for ``"snr_window"``) and ``ra``/``dec`` or ``_healpix_29``.
    config : DepthMapConfig, optional
        Parameters; defaults as documented in :class:`DepthMapConfig`.
    progress : bool
        Show a progress bar.
    **overrides
        Any :class:`DepthMapConfig` field (``bands``, ``nside``, ``method``, ``where``...).

    Returns
    -------
    DepthMapResult
        Maps of the depth, the number of objects used and their spread per band; a mask;
        ``.table()``, ``.plot()``, ``.write(dir)`` and ``.metrics``.

    Raises
    ------
    SpecError
        For an invalid parameter.
    SchemaError
        If the catalogue lacks a quantity the method needs (named in the message).

    Notes
    -----
    ``"flux_err"``: the depth of a pixel is the median over its objects of
    ``-2.5 log10(t psFluxErr) + 31.4`` (``t = snr_threshold``), exact (numpy's median of the
    same numbers); its spread is half the 15.87-84.13 percentile range of those depths.
    ``"snr_window"``: the mean PSF magnitude of the objects with
    ``|S/N - snr_threshold| < snr_delta``, and the standard deviation (ddof 0) as spread.
    Pixels without objects are absent from the maps (never zero).

    Examples
    --------
    >>> import numpy as np, pandas as pd, skydask
    >>> rng = np.random.default_rng(1)
    >>> frame = pd.DataFrame({"ra": rng.uniform(60, 61, 4000), "dec": rng.uniform(-35, -34, 4000),
    ...                       "psFluxErr_i": np.full(4000, 10.0, dtype=np.float32)})
    >>> result = depth_map(skydask.from_pandas(frame, npartitions=3), bands="i", nside=64,
    ...                    depth_cuts={})
    >>> m = result.maps["i"]
    >>> float(m[m.valid_pixels][0])   # -2.5 log10(5 * 10) + 31.4
    27.15257498915995
    >>> int(result.counts["i"][m.valid_pixels].sum())
    4000
    """
    plan = depth_map_plan(catalog, config, progress=progress, **overrides)
    result: DepthMapResult = scan_together(plan, progress=progress)[0]
    return result


def depth_map_plan(
    catalog: Catalog,
    config: DepthMapConfig | None = None,
    *,
    progress: bool = False,
    **overrides: Any,
) -> ScanPlan:
    """:func:`depth_map` as a plan for :func:`~skydask.analyses.scan.scan_together`, so that
    it shares one catalogue scan with other analyses (parameters as :func:`depth_map`).

    The reduction's tree is built on the scanned partitions and kept; the maps are made from
    its root, and pixels straddling partitions of an unordered layout are settled in a second,
    restricted pass of this analysis alone.
    """
    base = config if config is not None else DepthMapConfig()
    cfg = base.with_overrides(**overrides) if overrides else base
    quantities = tuple(_quantities(catalog, cfg))
    catalog.schema.check(list(quantities))  # names the missing quantity before any read
    held: dict[str, Any] = {}

    def collect(frames: list[Any], scanned: Catalog) -> Any:
        # with one partition every pixel is complete in it, whatever the layout
        local = _one_partition(scanned) or _is_local(scanned, cfg.nside)
        held["reducer"] = PixelReducer(
            nside=cfg.nside,
            bands=cfg.bands,
            method=cfg.method,
            snr_threshold=cfg.snr_threshold,
            snr_delta=cfg.snr_delta,
            local=local,
        )
        held["partitions"] = scanned.npartitions
        log.info(
            "depth_map: %s, nside %d, bands %s over %d partitions (%s)",
            cfg.method, cfg.nside, cfg.bands, scanned.npartitions,
            "each map pixel in one partition" if local else "pixels may straddle partitions",
        )  # fmt: skip
        partial = dask.delayed(held["reducer"].partial, pure=True)
        return reduce_tree([partial(f) for f in frames], held["reducer"].combine, SPLIT_EVERY)

    def finish(root: Any) -> DepthMapResult:
        state: ReductionState = root.compute()
        selected = catalog.select(list(quantities))
        if cfg.where is not None:
            selected = selected.where(cfg.where)
        return _finish(cfg, held["reducer"], state, selected, held["partitions"], progress)

    # chunks: the partial works on the columns where the reader decoded them (pixels.py)
    return ScanPlan("depth_map", catalog, quantities, cfg.where, collect, finish, chunks=True)


def _finish(
    cfg: DepthMapConfig,
    reducer: PixelReducer,
    state: ReductionState,
    selected: Catalog,
    partitions: int,
    progress: bool,
) -> DepthMapResult:
    """Maps, mask and summary from the reduced state (and a second pass where needed)."""
    local = reducer.local
    per_band = reducer.finish(state)

    conflicts = {
        b: (p.conflict_pixels, p.conflict_counts)
        for b, p in state.bands.items()
        if isinstance(p, ExactPart) and len(p.conflict_pixels)
    }
    passes = 1
    if conflicts:
        found, extra = _second_pass(selected, reducer, conflicts, cfg.carry_budget, progress)
        passes += extra
        for band, parts in found.items():
            per_band[band] = _concat([per_band[band], *parts])

    maps, counts, spread = {}, {}, {}
    for band in cfg.bands:
        stats = per_band[band]
        keep = stats.counts >= cfg.min_objects
        pix = stats.pixels[keep]
        maps[band] = _to_map(cfg, pix, stats.depth[keep], np.float64, "depth", band)
        counts[band] = _to_map(cfg, pix, stats.counts[keep], np.int32, "nobj", band)
        spread[band] = _to_map(cfg, pix, stats.spread[keep], np.float64, "spread", band)

    mask_bands = list(cfg.depth_cuts) or list(cfg.bands)
    mask_pixels: np.ndarray | None = None
    for band in mask_bands:
        valid = maps[band].valid_pixels
        cut = cfg.depth_cuts.get(band, -math.inf)
        deep = valid[maps[band][valid] > cut]
        mask_pixels = deep if mask_pixels is None else np.intersect1d(mask_pixels, deep)
    assert mask_pixels is not None
    mask = _to_map(cfg, mask_pixels, np.ones(len(mask_pixels), dtype=bool), np.bool_, "mask", "")

    reduction = {
        "partitions": partitions,
        "rows_read": state.rows,
        "rows_without_position": state.rows_without_position,
        "each_pixel_in_one_partition": local,
        "values_merged_across_partitions": state.values_carried,
        "pixels_gathered_in_second_pass": int(
            len(np.unique(np.concatenate([c[0] for c in conflicts.values()]))) if conflicts else 0
        ),
        "passes": passes,
    }
    if state.rows_without_position:
        log.warning(
            "depth_map: %d rows have no valid position and were left out",
            state.rows_without_position,
        )
    log.info(
        "depth_map: done in %d pass(es); pixel area %.5f deg2",
        passes, hpgeom.nside_to_pixel_area(cfg.nside, degrees=True),
    )  # fmt: skip
    return DepthMapResult(
        config=cfg,
        maps=maps,
        counts=counts,
        spread=spread,
        mask=mask,
        reduction=reduction,
    )
