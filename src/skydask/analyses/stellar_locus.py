"""Stellar-locus principal colours: the widths of the stellar locus, as Rubin measures them.

:func:`stellar_locus` takes a :class:`~skydask.Catalog` and measures

* the principal colours w, x, y of Ivezic et al. (2004) as Rubin's ``analysis_tools`` fits them:
  an orthogonal-distance line through the stars in a box of a colour-colour plane, refitted
  twice on the stars between the perpendiculars through the box ends, clipped at
  ``n * 0.74 * IQR`` of their perpendicular distances (n = 3.5, then 5.0); the result is the
  line, the number of stars, and the median and sigmaMAD of the perpendicular distances (mmag);
* the SDSS principal colours s, w, x, y with Ivezic's fixed coefficients (median, sigmaMAD);
* the median locus of the data (median u-g, g-r, r-i, i-z in Covey et al. 2007's g-i bins),
  beside Covey's values and spreads;
* star-density histograms of the colour-colour planes for the plots;

and returns a :class:`StellarLocusResult` with ``.metrics``, ``.table()``, ``.verdicts()``
(against Rubin's normal ranges), ``.plot()`` and ``.write(dir)``.

Star selection (Rubin's defaults, all in :class:`StellarLocusConfig`): point sources
(``extendedness < 0.5``, per band where the catalogue has per-band extendedness), ``clean``,
no PSF-flux flag in the bands a piece uses, PSF S/N >= 300 and magnitude < 22.5 in its S/N band
(r for w, x, s and the locus; i for y), finite magnitudes; each part only where the catalogue
has the quantity (extendedness is required unless ``extendedness_max=None``). Magnitudes are
corrected for extinction when the catalogue has per-band ``A_<band>`` or ``ebv`` (E(B-V),
times ``extinction_coeffs``, by default the LSST R_b of Schlafly & Finkbeiner 2011:
u 4.81, g 3.64, r 2.70, i 2.06, z 1.58, y 1.31).

How it runs: one scan of the catalogue, then passes over the selected stars
---------------------------------------------------------------------------
1. **One scan.** ``catalog.select(quantities).where(cut)`` reads only the needed columns (PSF
   fluxes of the bands used, the S/N bands' flux errors, flags, ``extendedness``, ``clean``,
   extinction) of the row groups that the cut does not exclude by their Parquet statistics,
   and keeps the rows that pass the cut every piece shares. Each partition becomes the
   compact arrays the passes read (:func:`.locus.stars.star_arrays`: per fit the two colours
   of the stars of its cut, each principal colour, each locus colour with the star's g-i
   bin; 16 bytes per star and fit plane, 8 per principal or locus colour). In the same task,
   everything that does not depend on a fitted line is reduced at once: the star counts, the
   plot histograms, the box sums of every fit and the histogram pass of the medians of the
   principal and locus colours; the plot planes' arrays are then dropped. The arrays stay in
   worker memory (``persist``) for the passes: on a cluster they are spread over the workers
   and never collected (about 60 MB for the 630,000 stars with S/N > 300 of a 20-million-object
   synthetic catalogue). Keeping them costs that memory; re-reading the catalogue for each
   pass would cost six more scans (``persist=False`` does that, and keeps nothing). The kept arrays
   are coalesced into one partition per scheduler slot
   (:func:`~skydask.analyses.reduction.parallel_slots`): a pass is then a few tasks on large
   arrays rather than one per catalogue file.
2. **Passes over the kept stars**, all decomposable (a partial per partition merged in a tree,
   :func:`~skydask.analyses.reduction.reduce_tree`): per clip step, the histogram pass of the
   exact quartiles of the distances in the strip, then their gather pass, which also refits
   (:class:`~skydask.analyses.locus.fitting.ClipSumsTask`: the histogram already bounds the
   clip limit to a narrow range, so the pass sums the points inside it and returns the few in
   the range); then the histogram and gather passes of the exact medians of the distances,
   whose gather pass also yields their median absolute deviations (the same histogram bounds
   where ``median -+ MAD`` lies, see
   :class:`~skydask.analyses.locus.quantiles.QuantileQueue`): six passes with Rubin's two clip
   steps. The principal and locus colours' medians and deviations need no fit: their
   histogram pass is part of the scan and their gather pass rides along with the first clip
   step's. Where a range cannot be bounded (a statistic in an open-ended bin), the refit or
   the deviation takes passes of its own, with the same result.

The fits need only the partial sums ``n, Sx, Sy, Sxx, Syy, Sxy`` (the orthogonal fit of a line
with equal errors is the principal axis of the 2x2 covariance), so they equal a fit on the
collected points to rounding. Medians, quartiles and sigmaMAD come from fine histograms
accumulated across partitions (0.1 mmag bins over +-2 mag for distances and principal colours;
0.002 mag bins within 0.3 mag of Covey's median for the locus colours), followed by a gather of
the values inside the few bins that hold the wanted order statistics
(:mod:`.locus.quantiles`; a few hundred values per statistic for a million stars): they are
exactly ``numpy.percentile`` of the collected values, not approximations to the bin width.
Only sums, histograms and those few values ever leave the workers.

Differences from Rubin's code, all deliberate: the line is fitted in closed form (``scipy.odr``
is deprecated since SciPy 1.17 and converges to the same line); the strip between the
perpendiculars uses the current line's perpendicular (Rubin keeps the first fit's slope for it,
a sub-percent difference); a fit with fewer than ``min_stars`` stars at any step raises
:class:`TooFewStarsError` instead of returning NaN. The SDSS principal colours are applied to
the magnitudes with Ivezic's published coefficients as they are (they do not sum exactly to
zero, so w, s, y carry a small magnitude term, as in the original); the range of s is on its
parallel colour ``0.910u - 0.495g - 0.415r - 1.280`` in -0.2..0.8 (Helmi et al. 2003).
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import uuid
from typing import Any

import dask
import numpy as np
import pandas as pd

from skydask.analyses.locus.config import (
    LSST_EXTINCTION_COEFFS,
    RUBIN_FITS,
    RUBIN_THRESHOLDS,
    SDSS_PRINCIPAL_COLOURS,
    ColourPlane,
    LocusFit,
    PrincipalColour,
    StellarLocusConfig,
)
from skydask.analyses.locus.fitting import (
    ClipSumsTask,
    CountTask,
    DensityTask,
    Line,
    LocusValues,
    PerpValues,
    PrincipalValues,
    Region,
    SumsTask,
    box_centre,
    line_from_sums,
)
from skydask.analyses.locus.quantiles import (
    SIGMA_MAD,
    HistSpec,
    QuantileJob,
    QuantileQueue,
    merge_partials,
)
from skydask.analyses.locus.result import (
    Density,
    FitStep,
    LocusFitResult,
    PrincipalColourResult,
    StellarLocusResult,
    Verdict,
)
from skydask.analyses.locus.selection import Plan, build_plan, covey_edges
from skydask.analyses.locus.stars import StarArrays, locus_key, pair_key, star_arrays
from skydask.analyses.reduction import compute, parallel_slots, reduce_tree
from skydask.analyses.scan import ScanPlan, scan_together
from skydask.catalog.catalog import Catalog
from skydask.catalog.reader import ChunkedColumns
from skydask.data import covey_locus
from skydask.errors import SkydaskError, SpecError

__all__ = [
    "LSST_EXTINCTION_COEFFS",
    "RUBIN_FITS",
    "RUBIN_THRESHOLDS",
    "SDSS_PRINCIPAL_COLOURS",
    "ColourPlane",
    "LocusFit",
    "LocusFitResult",
    "PrincipalColour",
    "PrincipalColourResult",
    "StellarLocusConfig",
    "StellarLocusResult",
    "TooFewStarsError",
    "Verdict",
    "stellar_locus",
    "stellar_locus_plan",
]

log = logging.getLogger(__name__)

# Plot ranges of the colours (mag); any other colour gets _DEFAULT_RANGE.
_COLOUR_RANGES = {
    "u-g": (0.0, 3.6),
    "g-r": (-0.4, 2.0),
    "r-i": (-0.4, 2.6),
    "i-z": (-0.4, 1.6),
    "z-y": (-0.4, 1.0),
    "g-i": (-0.6, 4.4),
}
_DEFAULT_RANGE = (-1.0, 3.0)
# Distances and principal colours (mmag) are histogrammed over +-2 mag; values beyond are in
# the under/overflow bins and still handled exactly.
_MMAG_HALF_RANGE = 2000.0
# Locus colours are binned within this distance (mag) of Covey's median in each g-i bin.
_LOCUS_HALF_RANGE = 0.3


class TooFewStarsError(SkydaskError, ValueError):
    """A fit has fewer stars than ``StellarLocusConfig.min_stars`` at one of its steps."""


class _Pass:
    """The partial of one pass: every task on one partition of the kept stars.

    Dask tokenizes a delayed function's arguments; walking the tasks' fields for every
    partition of every pass costs more than the pass's arithmetic, so a pass carries a random
    token instead (each pass is a new object, so no two passes share one).
    """

    def __init__(self, tasks: tuple[Any, ...]) -> None:
        self.tasks = tasks
        self.token = uuid.uuid4().hex

    def __dask_tokenize__(self) -> str:
        return self.token

    def __call__(self, stars: StarArrays) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for task in self.tasks:
            out.update(task.partial(stars))
        return out


class _ScanPart:
    """One catalogue partition's task in the scan: its star arrays (only those the passes
    read) and the partial of everything that needs no fitted line (tokenized as :class:`_Pass`).
    """

    def __init__(self, plan: Plan, ebv_quantity: str, first: _Pass, keep: frozenset[str]):
        self.plan, self.ebv_quantity, self.first, self.keep = plan, ebv_quantity, first, keep
        self.token = uuid.uuid4().hex

    def __dask_tokenize__(self) -> str:
        return self.token

    def __call__(self, frame: pd.DataFrame | ChunkedColumns) -> tuple[StarArrays, dict[str, Any]]:
        stars = star_arrays(frame, self.plan, self.ebv_quantity)
        return stars.only(self.keep), self.first(stars)


def _run_pass(parts: list[Any], config: StellarLocusConfig, tasks: list[Any]) -> dict[str, Any]:
    """One decomposable pass: every task's partial on every partition, merged in a tree."""
    if not tasks:
        return {}
    partial = dask.delayed(_Pass(tuple(tasks)), pure=True)
    tree = reduce_tree([partial(p) for p in parts], merge_partials, config.split_every)
    (merged,) = compute(tree, progress=config.progress)
    return dict(merged)


def _grid(colour: str, step: float) -> tuple[float, float, int]:
    lo, hi = _COLOUR_RANGES.get(colour, _DEFAULT_RANGE)
    n = round((hi - lo) / step)
    return lo, lo + n * step, n


def _too_few(fit: LocusFit, n: int, step: str, config: StellarLocusConfig) -> TooFewStarsError:
    return TooFewStarsError(
        f"stellar locus fit {fit.name!r} ({fit.y} vs {fit.x}): only {n} stars {step}, need at "
        f"least min_stars={config.min_stars} (box {fit.x} {fit.x_min}..{fit.x_max}, "
        f"{fit.y} {fit.y_min}..{fit.y_max}; lower min_stars or loosen the star selection)"
    )


def _mmag_hist(config: StellarLocusConfig) -> HistSpec:
    nbins = round(2 * _MMAG_HALF_RANGE / config.hist_bin_mmag)
    return HistSpec(-_MMAG_HALF_RANGE, config.hist_bin_mmag, nbins)


def stellar_locus(
    catalog: Catalog, config: StellarLocusConfig | None = None, **overrides: Any
) -> StellarLocusResult:
    """Measure the stellar-locus principal colours of a catalogue (see the module docstring).

    Parameters
    ----------
    catalog
        The catalogue (any cuts or sky regions already applied to it are kept).
    config
        Parameters; default :class:`StellarLocusConfig` (Rubin's).
    **overrides
        Fields of the configuration to replace, e.g. ``snr_min=100``.

    Returns
    -------
    StellarLocusResult

    Raises
    ------
    UnknownQuantityError
        A quantity the configuration needs is not in the catalogue (before anything is read).
    SpecError
        A parameter is invalid or unknown.
    TooFewStarsError
        A fit has fewer than ``min_stars`` stars at one of its steps.

    Examples
    --------
    Stars on the straight locus r-i = 0.4 (g-r) - 0.05, with an isotropic scatter of 20 mmag
    in both colours (so 20 mmag perpendicular to the locus):

    >>> import numpy as np, pandas as pd, skydask
    >>> rng = np.random.default_rng(1)
    >>> n = 4000
    >>> t = rng.uniform(0.3, 1.0, n)
    >>> gr, ri = t + rng.normal(0, 0.02, n), 0.4 * t - 0.05 + rng.normal(0, 0.02, n)
    >>> r = rng.uniform(17, 21, n)
    >>> mags = {"g": r + gr, "r": r, "i": r - ri}
    >>> df = pd.DataFrame({f"psFlux_{b}": 10 ** (-0.4 * (m - 31.4)) for b, m in mags.items()})
    >>> df["extendedness"] = 0.0
    >>> cat = skydask.from_pandas(df, npartitions=4, schema="dc2")
    >>> cfg = StellarLocusConfig.for_bands("gri", fits=("w",), snr_min=None)
    >>> result = stellar_locus(cat, cfg)
    >>> w = result.fits["w"]
    >>> round(w.slope, 2), round(w.intercept, 2), 18 < w.sigma_mad_mmag < 22
    (0.4, -0.05, True)
    >>> result.verdicts()["w_sigmaMAD"].passed
    True
    """
    config = (config or StellarLocusConfig()).replace(**overrides)
    if config.persist:
        result: StellarLocusResult = scan_together(
            stellar_locus_plan(catalog, config), progress=config.progress
        )[0]
        return result
    plan = build_plan(catalog, config)  # raises on unknown quantities, before reading
    log.info("stellar_locus: re-reading %s where %s for every pass", plan.quantities, plan.pushdown)
    selected = catalog.select(list(plan.quantities))
    if plan.pushdown is not None:
        selected = selected.where(plan.pushdown)
    first = _FirstPass(plan, config)
    stars, partials = first.scan(selected.to_delayed(), slots=None)
    (merged,) = compute(partials, progress=config.progress)
    return _measure(functools.partial(_run_pass, stars, config), merged, first, plan, config)


def stellar_locus_plan(
    catalog: Catalog, config: StellarLocusConfig | None = None, **overrides: Any
) -> ScanPlan:
    """:func:`stellar_locus` as a plan for :func:`~skydask.analyses.scan.scan_together`, so
    that it shares one catalogue scan with other analyses (parameters as
    :func:`stellar_locus`; the selected stars are always kept in memory, ``persist=True``).
    """
    config = (config or StellarLocusConfig()).replace(**overrides)
    if not config.persist:
        raise SpecError(
            "stellar_locus: persist=False re-reads the catalogue for every pass and cannot "
            "share a scan; use stellar_locus(catalog, persist=False) on its own"
        )
    plan = build_plan(catalog, config)  # raises on unknown quantities, before reading
    log.info("stellar_locus: reading %s where %s", list(plan.quantities), plan.pushdown)
    first = _FirstPass(plan, config)

    def collect(frames: list[Any], scanned: Catalog) -> tuple[list[Any], Any]:
        return first.scan(frames, slots=parallel_slots())

    def finish(kept: tuple[list[Any], Any]) -> StellarLocusResult:
        stars, partials = kept
        (merged,) = compute(partials)  # already in memory: a lookup
        return _measure(functools.partial(_run_pass, stars, config), merged, first, plan, config)

    return ScanPlan(
        "stellar_locus", catalog, plan.quantities, plan.pushdown, collect, finish, chunks=True
    )


class _FirstPass:
    """What the scan computes besides the star arrays: everything that needs no fitted line.

    The star counts, the plot histograms, the box sums of every fit, and the histogram pass of
    the medians of the principal and locus colours (whose gather pass then rides along with
    the first clip step's, see :class:`~skydask.analyses.locus.quantiles.QuantileQueue`).
    """

    def __init__(self, plan: Plan, config: StellarLocusConfig) -> None:
        self.tasks: list[Any] = [CountTask(f"count:{s.key}", s.key) for s in plan.selections]
        self.grids = {}
        for plane in config.planes:
            grid = (_grid(plane.x, config.density_bin), _grid(plane.y, config.density_bin))
            self.grids[plane.key] = grid
            self.tasks.append(
                DensityTask(
                    f"density:{plane.key}", plane, plan.selection(f"plane:{plane.key}"), *grid
                )
            )
        self.tasks += [
            SumsTask(f"sums:{f.name}", f, plan.selection(f"fit:{f.name}"), Region("box"))
            for f in config.fits
        ]
        self.colour_jobs = _colour_median_jobs(plan, config)
        self.deviations = {f"mad:pc:{pc.name}": f"pc:{pc.name}" for pc in config.principal_colours}
        self.tasks += self.queue().tasks()
        # the arrays the passes after the scan read: the fits' planes and the colours
        self.keep = frozenset(
            [pair_key(f.x, f.y, plan.selection(f"fit:{f.name}")) for f in config.fits]
            + [pc.name for pc in config.principal_colours]
            + [locus_key(c, plan.selection(f"locus:{c}")) for c in config.locus_colours]
        )
        self.scan_part = _ScanPart(plan, config.ebv_quantity, _Pass(tuple(self.tasks)), self.keep)
        self.split_every = config.split_every

    def queue(self) -> QuantileQueue:
        """The colours' quantile jobs, awaiting the histogram pass the scan makes (a new
        queue for each measurement: the queue keeps each job's progress)."""
        queue = QuantileQueue()
        queue.add(self.colour_jobs)
        for name, of in self.deviations.items():
            queue.add_deviation(name, of=of)
        return queue

    def scan(self, frames: list[Any], slots: int | None) -> tuple[list[Any], Any]:
        """Per frame the kept star arrays, coalesced into ``slots`` partitions (None: as
        they are), and the merge tree of the partials."""
        build = dask.delayed(self.scan_part, pure=True, nout=2)
        parts = [build(f) for f in frames]
        stars = [p[0] for p in parts]
        if slots is not None and len(stars) > slots:
            # The kept stars are ~3 % of the rows; one partition per scheduler slot makes each
            # of the passes a few tasks on large arrays instead of one per catalogue file.
            concat = dask.delayed(StarArrays.concat, pure=True)
            bounds = np.linspace(0, len(stars), slots + 1).round().astype(int)
            stars = [concat(stars[a:b]) for a, b in itertools.pairwise(bounds.tolist())]
        partials = reduce_tree([p[1] for p in parts], merge_partials, self.split_every)
        return stars, partials


def _colour_median_jobs(plan: Plan, config: StellarLocusConfig) -> dict[str, QuantileJob]:
    """The medians of the principal colours and of the locus colours per g-i bin."""
    hist = _mmag_hist(config)
    jobs = {
        f"pc:{pc.name}": QuantileJob(PrincipalValues(pc.name), hist, 1, (0.5,))
        for pc in config.principal_colours
    }
    # the locus colours are binned around Covey's medians, +-_LOCUS_HALF_RANGE
    locus_hist = HistSpec(
        -_LOCUS_HALF_RANGE,
        config.locus_hist_bin,
        round(2 * _LOCUS_HALF_RANGE / config.locus_hist_bin),
    )
    covey = covey_locus()
    ngroups = len(plan.gi_edges or covey_edges()) - 1
    for c in config.locus_colours:
        expected = covey[c].to_numpy(dtype=np.float64) if c in covey else np.zeros(len(covey))
        jobs[f"locus:{c}"] = QuantileJob(
            LocusValues(c, plan.selection(f"locus:{c}")),
            locus_hist,
            ngroups,
            (0.5,),
            offset=tuple(float(v) for v in expected),
        )
    return jobs


class _Passes:
    """The passes after the scan: each runs the caller's tasks and the quantile jobs' next
    steps."""

    def __init__(self, run: Any, queue: QuantileQueue) -> None:
        self.run, self.queue = run, queue
        self.count = 0

    def step(self, tasks: list[Any]) -> dict[str, Any]:
        merged = self.run(tasks + self.queue.tasks())
        self.count += 1
        self.queue.update(merged)
        return dict(merged)


def _clip_region(
    lines: dict[str, Line], clips: dict[str, tuple[float, int, float, float]], fit: LocusFit
) -> Region:
    return Region("clip", lines[fit.name], clips[fit.name][0])


def _clip_sums_tasks(
    config: StellarLocusConfig,
    n_sigma: float,
    sel: dict[str, str],
    lines: dict[str, Line],
    queue: QuantileQueue,
    step: int,
) -> dict[str, ClipSumsTask]:
    """Per fit, the refit sums over the range its clip limit can take after the histogram
    pass of the strip's quartiles (none for a fit whose quartiles are in an open-ended bin)."""
    tasks = {}
    for f in config.fits:
        bounds = queue.bounds(f"strip{step}:{f.name}")
        assert bounds is not None
        (q_lo,), (q_hi,) = bounds
        scale = n_sigma * config.iqr_to_sigma
        lo, hi = scale * float(q_lo[1] - q_hi[0]), scale * float(q_hi[1] - q_lo[0])
        if math.isfinite(lo) and math.isfinite(hi):
            # a margin for the rounding of the limit's own arithmetic
            lo, hi = max(0.0, lo - 1e-9 * abs(lo) - 1e-12), hi + 1e-9 * abs(hi) + 1e-12
            tasks[f.name] = ClipSumsTask(
                f"clipsums:{f.name}", f, sel[f.name], lines[f.name], lo, hi
            )
    return tasks


def _measure(
    run: Any, first: dict[str, Any], scan: _FirstPass, plan: Plan, config: StellarLocusConfig
) -> StellarLocusResult:
    # -- from the scan: counts, plot histograms, the box sums of every fit -----------------
    hist = _mmag_hist(config)
    queue = scan.queue()
    queue.update(first)  # the scan made the colours' histogram pass
    passes = _Passes(run, queue)
    counts = {s.key: int(first[f"count:{s.key}"]) for s in plan.selections}
    log.info("stellar_locus: stars per cut %s", counts)

    sel = {f.name: plan.selection(f"fit:{f.name}") for f in config.fits}
    lines: dict[str, Line] = {}
    steps: dict[str, list[FitStep]] = {}
    regions: dict[str, Region] = {}
    for f in config.fits:
        sums = first[f"sums:{f.name}"]
        if sums[0] < config.min_stars:
            raise _too_few(f, int(sums[0]), "in the fit box", config)
        line = lines[f.name] = line_from_sums(sums, box_centre(f))
        steps[f.name] = [
            FitStep(None, None, None, None, None, int(sums[0]), line.slope, line.intercept)
        ]
        regions[f.name] = Region("box")

    # -- clip steps: exact quartiles of the distances in the strip, then refit -------------
    for step, n_sigma in enumerate(config.clip_sigmas):
        jobs = {
            f"strip{step}:{f.name}": QuantileJob(
                PerpValues(f, sel[f.name], Region("strip", lines[f.name]), lines[f.name]),
                hist,
                1,
                (0.25, 0.75),
            )
            for f in config.fits
        }
        queue.add(jobs)
        passes.step([])  # the strips' histograms
        # the gather pass that finds the quartiles also refits, within the clip's range
        refit_tasks = _clip_sums_tasks(config, n_sigma, sel, lines, queue, step)
        merged = passes.step(list(refit_tasks.values()))
        clips = {}
        for f in config.fits:
            (q,), (n_strip,) = queue.done[f"strip{step}:{f.name}"]
            if n_strip < config.min_stars:
                raise _too_few(
                    f, int(n_strip), "between the perpendiculars through the box ends", config
                )
            clip = n_sigma * config.iqr_to_sigma * float(q[1] - q[0])
            clips[f.name] = (clip, int(n_strip), float(q[0]), float(q[1]))
        if len(refit_tasks) < len(config.fits):  # a range was unbounded: refit in a pass
            merged = passes.step(
                [
                    SumsTask(f"sums:{f.name}", f, sel[f.name], _clip_region(lines, clips, f))
                    for f in config.fits
                    if f.name not in refit_tasks
                ]
            )
        for f in config.fits:
            clip, n_strip, q25, q75 = clips[f.name]
            task = refit_tasks.get(f.name)
            sums = (
                task.total(merged[task.key], clip) if task is not None else merged[f"sums:{f.name}"]
            )
            if sums[0] < config.min_stars:
                raise _too_few(
                    f,
                    int(sums[0]),
                    f"after clipping at {n_sigma} x {config.iqr_to_sigma} x IQR = {clip:.1f} mmag",
                    config,
                )
            regions[f.name] = _clip_region(lines, clips, f)
            line = lines[f.name] = line_from_sums(sums, box_centre(f))
            steps[f.name].append(
                FitStep(n_sigma, n_strip, q25, q75, clip, int(sums[0]), line.slope, line.intercept)
            )

    # -- exact medians of the final distances, then their median absolute deviations -------
    for f in config.fits:
        source = PerpValues(f, sel[f.name], regions[f.name], lines[f.name])
        queue.add({f"fit:{f.name}": QuantileJob(source, hist, 1, (0.5,))})
        queue.add_deviation(f"mad:fit:{f.name}", of=f"fit:{f.name}")
    while queue.pending:
        passes.step([])
    log.info(
        "stellar_locus: %d passes over the kept stars (%d deviations needed passes of their own)",
        passes.count,
        queue.fallbacks,
    )
    done = queue.done

    def stats(key: str) -> tuple[int, float, float]:
        n = int(done[key][1][0])
        if n == 0:
            return 0, math.nan, math.nan
        return n, float(done[key][0][0, 0]), SIGMA_MAD * float(done[f"mad:{key}"][0][0, 0])

    fits = {}
    for f in config.fits:
        n, median, sigma = stats(f"fit:{f.name}")
        fits[f.name] = LocusFitResult(
            f,
            lines[f.name].slope,
            lines[f.name].intercept,
            n,
            median,
            sigma,
            tuple(steps[f.name]),
            regions[f.name],
        )
        log.info("stellar_locus: %s", fits[f.name].summary())
    principal = {}
    for pc in config.principal_colours:
        n, median, sigma = stats(f"pc:{pc.name}")
        principal[pc.name] = PrincipalColourResult(pc, n, median, sigma)
    locus = _locus_table(config, plan.gi_edges or covey_edges(), done)
    density = {}
    for plane in config.planes:
        (x0, x1, nx), (y0, y1, ny) = scan.grids[plane.key]
        counts_2d = np.asarray(first[f"density:{plane.key}"]).reshape(nx, ny)
        density[plane.key] = Density(
            plane, np.linspace(x0, x1, nx + 1), np.linspace(y0, y1, ny + 1), counts_2d
        )
    return StellarLocusResult(config, fits, principal, locus, density, counts, plan.describe())


def _locus_table(
    config: StellarLocusConfig, edges: tuple[float, ...], medians: dict[str, Any]
) -> pd.DataFrame:
    covey = covey_locus()
    table = pd.DataFrame(
        {
            "g-i": covey["g-i"].to_numpy(),
            "gi_min": np.asarray(edges[:-1]),
            "gi_max": np.asarray(edges[1:]),
            "covey_N": covey["N"].to_numpy(),
        }
    )
    for c in config.locus_colours:
        q, n = medians[f"locus:{c}"]
        table[f"n_{c}"] = n.astype(np.int64)
        table[c] = q[:, 0]
        if c in covey:
            table[f"covey_{c}"] = covey[c].to_numpy()
            table[f"covey_e_{c}"] = covey[f"e_{c}"].to_numpy()
        else:  # a colour Covey does not tabulate (z-y): nothing to compare with
            table[f"covey_{c}"] = np.nan
            table[f"covey_e_{c}"] = np.nan
        table[f"delta_{c}"] = table[c] - table[f"covey_{c}"]
    return table
