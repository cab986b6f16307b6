"""The star selection as where-strings, the extinction correction, and the star frame.

Each piece of the analysis (a fit, a principal colour, a locus colour, a plotted plane) uses
the stars that pass one cut: point source, clean, unflagged and finite in its bands, and bright
enough in its S/N band. :func:`build_plan` writes those cuts as where-strings over quantity
names, from the configuration and from what the catalogue offers, and checks every name before
anything is read. The part all cuts share, with the S/N and magnitude limits of every S/N band
ORed, is handed to :meth:`Catalog.where`, so it is pushed down to the Parquet statistics and
applied while reading; the per-piece cuts are then evaluated on the few surviving rows.

The magnitude limit is pushed down as the equivalent flux limit
``psFlux_b > 10**(-0.4 (mag_max - 31.4))`` (nJy): the same rows, without a logarithm over every
row of the catalogue, which is where a scan spends its time.

:func:`star_frame` turns one partition of the surviving rows into the frame the passes work
on: per-band extinction-corrected magnitudes ``m_<band>`` (float64) and one boolean column per
distinct cut.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from skydask.analyses.locus.config import PrincipalColour, StellarLocusConfig, colour_bands
from skydask.analyses.locus.fitting import colour_column, gi_bin_column, principal_column
from skydask.catalog.catalog import Catalog
from skydask.data import covey_locus
from skydask.errors import SpecError, UnknownQuantityError
from skydask.schema import expressions as ex
from skydask.schema.definitions import AB_ZEROPOINT_NJY

__all__ = ["Plan", "Selection", "build_plan", "covey_edges", "star_frame"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """One star cut: its column name in the star frame, its text and its parsed form."""

    key: str
    snr_band: str
    bands: tuple[str, ...]
    text: str
    expr: ex.Expr


@dataclass(frozen=True)
class Plan:
    """Everything decided before reading: quantities, cuts, extinction."""

    bands: tuple[str, ...]
    quantities: tuple[str, ...]
    pushdown: str | None
    selections: tuple[Selection, ...]
    # piece -> selection key: "fit:w", "pc:s", "locus:u-g", "plane:r-i_vs_g-r"
    uses: dict[str, str]
    # band -> ("ebv", R_b) | ("A", quantity) | ("none", 0)
    extinction: dict[str, tuple[str, float | str]]
    extinction_mode: str
    # what the star frame holds besides the cuts: (colour, cut) pairs, principal colours with
    # their cut, cuts whose stars need a g-i bin, and the g-i bin edges
    colours: tuple[tuple[str, str], ...] = ()
    principal: tuple[tuple[PrincipalColour, str], ...] = ()
    gi_bins: tuple[str, ...] = ()
    gi_edges: tuple[float, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def selection(self, piece: str) -> str:
        return self.uses[piece]

    def describe(self) -> dict[str, object]:
        return {
            "pushdown": self.pushdown,
            "selections": {s.key: s.text for s in self.selections},
            "uses": dict(self.uses),
            "extinction": self.extinction_mode,
            "notes": list(self.notes),
        }


def _with_context(exc: UnknownQuantityError, where: str) -> UnknownQuantityError:
    return UnknownQuantityError(f"{where}: {exc}")


def _check(catalog: Catalog, names: list[str], where: str) -> None:
    try:
        catalog.schema.check(names)
    except UnknownQuantityError as exc:
        raise _with_context(exc, where) from None


def _number(value: float) -> str:
    return repr(float(value))


def build_plan(catalog: Catalog, config: StellarLocusConfig) -> Plan:
    """Decide the quantities and cuts; raise on anything missing, before reading."""
    schema = catalog.schema
    pieces: dict[str, tuple[str, tuple[str, ...], str]] = {}
    for fit in config.fits:
        pieces[f"fit:{fit.name}"] = (fit.snr_band, fit.bands, f"fits[{fit.name!r}]")
    for pc in config.principal_colours:
        pieces[f"pc:{pc.name}"] = (pc.snr_band, pc.bands, f"principal_colours[{pc.name!r}]")
    for c in config.locus_colours:
        bands = tuple(dict.fromkeys(("g", "i", *colour_bands(c))))
        pieces[f"locus:{c}"] = (config.locus_snr_band, bands, f"locus_colours[{c!r}]")
    for plane in config.planes:
        pieces[f"plane:{plane.key}"] = (plane.snr_band, plane.bands, f"planes[{plane.key!r}]")
    if not pieces:
        raise SpecError(
            "stellar_locus has nothing to measure: fits, principal_colours, "
            "locus_colours and planes are all empty"
        )

    # every band a piece needs, the S/N band included (its flags and magnitude count too)
    for snr_band, bands, where in pieces.values():
        _check(catalog, [f"mag_{b}" for b in (*bands, snr_band)], f"StellarLocusConfig.{where}")
        if config.snr_min is not None:
            _check(catalog, [f"snr_{snr_band}"], f"StellarLocusConfig.{where} (snr_min)")
    all_bands = tuple(dict.fromkeys(b for snr, bands, _ in pieces.values() for b in (*bands, snr)))
    notes: list[str] = []

    def per_band_extendedness(band: str) -> str | None:
        for name in (f"{band}_extendedness", f"extendedness_{band}"):
            if name in schema:
                return name
        return None

    per_band_ext = {b: per_band_extendedness(b) for b in all_bands}
    use_per_band = config.extendedness_max is not None and all(per_band_ext.values())
    common: list[str] = []
    if config.extendedness_max is not None and not use_per_band:
        _check(
            catalog,
            ["extendedness"],
            "StellarLocusConfig.extendedness_max (set it to None "
            "to select without a star/galaxy classifier)",
        )
        common.append(f"extendedness < {_number(config.extendedness_max)}")
    if config.require_clean:
        if "clean" in schema:
            common.append("clean")
        else:
            notes.append("no 'clean' quantity: the clean cut is not applied")
    flags = {b: f"psFlux_flag_{b}" for b in all_bands if f"psFlux_flag_{b}" in schema}
    if config.require_flags:
        missing = [b for b in all_bands if b not in flags]
        if missing:
            notes.append(f"no psFlux_flag in bands {missing}: no flag cut there")

    def band_cut(b: str) -> list[str]:
        cut = []
        if config.snr_min is not None:
            cut.append(f"snr_{b} >= {_number(config.snr_min)}")
        if config.mag_max is not None:
            flux = 10 ** (-0.4 * (config.mag_max - AB_ZEROPOINT_NJY))
            cut.append(f"psFlux_{b} > {_number(flux)}")
        return cut

    snr_bands = tuple(dict.fromkeys(snr for snr, _, _ in pieces.values()))
    alternatives = [" & ".join(band_cut(b)) for b in snr_bands if band_cut(b)]
    pushdown_parts = list(common)
    if len(alternatives) == 1:
        pushdown_parts.append(alternatives[0])
    elif alternatives:
        pushdown_parts.append("(" + " | ".join(f"({a})" for a in alternatives) + ")")
    if config.where:
        pushdown_parts.append(f"({config.where})")
    pushdown = " & ".join(pushdown_parts) or None

    selections: dict[tuple[str, tuple[str, ...]], Selection] = {}
    uses: dict[str, str] = {}
    for piece, (snr_band, bands, _) in pieces.items():
        need = tuple(sorted(set(bands) | {snr_band}, key=all_bands.index))
        sig = (snr_band, need)
        if sig not in selections:
            parts = list(common) + band_cut(snr_band)
            for b in need:
                parts.append(f"isfinite(mag_{b})")
                if config.require_flags and b in flags:
                    parts.append(f"~{flags[b]}")
                if use_per_band:
                    parts.append(f"{per_band_ext[b]} < {_number(config.extendedness_max or 0)}")
            text = " & ".join(parts)
            selections[sig] = Selection(
                f"sel{len(selections)}", snr_band, need, text, schema.parse(text)
            )
        uses[piece] = selections[sig].key

    extinction, mode = _extinction(catalog, config, all_bands)
    quantities: list[str] = [f"mag_{b}" for b in all_bands]
    for sel in selections.values():
        quantities.extend(sorted(ex.names(sel.expr)))
    for kind, source in extinction.values():
        if kind == "A":
            quantities.append(str(source))
        elif kind == "ebv":
            quantities.append(config.ebv_quantity)
    for note in notes:
        log.info("stellar_locus: %s", note)
    colours: list[tuple[str, str]] = []
    for fit in config.fits:
        colours += [(fit.x, uses[f"fit:{fit.name}"]), (fit.y, uses[f"fit:{fit.name}"])]
    for plane in config.planes:
        key = uses[f"plane:{plane.key}"]
        colours += [(plane.x, key), (plane.y, key)]
    for c in config.locus_colours:
        colours.append((c, uses[f"locus:{c}"]))
    return Plan(
        bands=all_bands,
        quantities=tuple(dict.fromkeys(quantities)),
        pushdown=pushdown,
        selections=tuple(selections.values()),
        uses=uses,
        extinction=extinction,
        extinction_mode=mode,
        colours=tuple(dict.fromkeys(colours)),
        principal=tuple((pc, uses[f"pc:{pc.name}"]) for pc in config.principal_colours),
        gi_bins=tuple(dict.fromkeys(uses[f"locus:{c}"] for c in config.locus_colours)),
        gi_edges=covey_edges() if config.locus_colours else (),
        notes=tuple(notes),
    )


def covey_edges() -> tuple[float, ...]:
    """Edges of Covey et al.'s g-i bins: halfway between the tabulated centres, the end bins
    symmetric about theirs (as :mod:`skydask.synth.stars` draws them).

    Examples
    --------
    >>> edges = covey_edges()
    >>> [round(e, 3) for e in edges[:3]], len(edges) == len(covey_locus()) + 1
    ([0.05, 0.15, 0.23], True)
    """
    centre = covey_locus()["g-i"].to_numpy(dtype=np.float64)
    mid = 0.5 * (centre[1:] + centre[:-1])
    first = centre[0] - (mid[0] - centre[0])
    last = centre[-1] + (centre[-1] - mid[-1])
    return (float(first), *map(float, mid), float(last))


def _extinction(
    catalog: Catalog, config: StellarLocusConfig, bands: tuple[str, ...]
) -> tuple[dict[str, tuple[str, float | str]], str]:
    schema = catalog.schema
    mode = config.extinction
    if mode == "auto":
        if all(f"A_{b}" in schema for b in bands):
            mode = "A"
        elif config.ebv_quantity in schema:
            mode = "ebv"
        else:
            mode = "none"
    if mode == "A":
        _check(catalog, [f"A_{b}" for b in bands], "StellarLocusConfig.extinction='A'")
        return {b: ("A", f"A_{b}") for b in bands}, "A_<band> quantities"
    if mode == "ebv":
        _check(catalog, [config.ebv_quantity], "StellarLocusConfig.extinction='ebv'")
        missing = [b for b in bands if b not in config.extinction_coeffs]
        if missing:
            raise SpecError(
                f"StellarLocusConfig.extinction_coeffs has no A_b/E(B-V) for bands {missing}; "
                f"it has {sorted(config.extinction_coeffs)}"
            )
        coeffs = {b: ("ebv", float(config.extinction_coeffs[b])) for b in bands}
        text = ", ".join(f"R_{b}={config.extinction_coeffs[b]:g}" for b in bands)
        return dict(coeffs), f"{config.ebv_quantity} x ({text})"
    return {b: ("none", 0.0) for b in bands}, "none"


def star_frame(frame: pd.DataFrame, plan: Plan, ebv_quantity: str) -> pd.DataFrame:
    """One partition of the star frame: per cut a flag, and the values the passes use.

    Columns: every cut (bool); every (colour, cut) pair of the plan (float64, NaN for the stars
    outside the cut); every principal colour (mmag, NaN outside its cut or range); the g-i bin
    of the stars of each locus cut (int16, -1 outside). Rows: the stars in at least one cut.
    """
    n = len(frame)
    mags: dict[str, np.ndarray] = {}
    for b in plan.bands:
        mag = frame[f"mag_{b}"].to_numpy(dtype=np.float64)
        kind, source = plan.extinction[b]
        if kind == "A":
            mag = mag - frame[str(source)].to_numpy(dtype=np.float64)
        elif kind == "ebv":
            mag = mag - float(source) * frame[ebv_quantity].to_numpy(dtype=np.float64)
        mags[b] = mag
    out: dict[str, np.ndarray] = {}
    any_selected = np.zeros(n, dtype=bool)
    # NumPy arrays, not Series: the cuts are element-wise, and pandas' alignment costs more
    columns = {str(c): frame[c].to_numpy() for c in frame.columns}
    for sel in plan.selections:
        value = np.broadcast_to(np.asarray(ex.evaluate(sel.expr, columns), dtype=np.bool_), (n,))
        out[sel.key] = value
        any_selected |= value
    for colour, key in plan.colours:
        a, b = colour_bands(colour)
        out[colour_column(colour, key)] = np.where(out[key], mags[a] - mags[b], np.nan)
    with np.errstate(invalid="ignore"):
        for pc, key in plan.principal:
            parallel = sum(c * mags[b] for b, c in pc.range_coeffs) + pc.range_const
            mmag = (sum(c * mags[b] for b, c in pc.coeffs) + pc.const) * 1e3
            inside = out[key] & (parallel > pc.range_min) & (parallel < pc.range_max)
            out[principal_column(pc.name)] = np.where(inside, mmag, np.nan)
        if plan.gi_bins:
            # one binning of g-i serves every cut (the cuts only choose which stars keep it)
            edges = np.asarray(plan.gi_edges, dtype=np.float64)
            gi = mags["g"] - mags["i"]
            in_range = (gi >= edges[0]) & (gi < edges[-1])
            group = np.where(in_range, np.searchsorted(edges, gi, side="right") - 1, -1)
            group = group.astype(np.int16)
            for key in plan.gi_bins:
                out[gi_bin_column(key)] = np.where(out[key], group, np.int16(-1))
    rows = np.flatnonzero(any_selected)
    kept = {name: values[rows] for name, values in out.items()}
    return pd.DataFrame(kept, index=pd.RangeIndex(len(rows)), copy=False)
