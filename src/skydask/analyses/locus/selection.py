"""The star selection as where-strings, and the extinction correction.

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

:func:`~skydask.analyses.locus.stars.star_arrays` turns one partition of the surviving rows
into the arrays the passes work on.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

import numpy as np

from skydask.analyses.locus.config import PrincipalColour, StellarLocusConfig, colour_bands
from skydask.catalog.catalog import Catalog
from skydask.data import covey_locus
from skydask.errors import SpecError, UnknownQuantityError
from skydask.schema import expressions as ex
from skydask.schema.definitions import AB_ZEROPOINT_NJY

__all__ = ["Plan", "Selection", "build_plan", "covey_edges"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """One star cut: its key in the star arrays' counts, its text and its parsed form."""

    key: str
    snr_band: str
    bands: tuple[str, ...]
    text: str
    expr: ex.Expr

    @functools.cached_property
    def tests(self) -> tuple[tuple[str, ex.Expr], ...]:
        """The cut's conjuncts with their text (which names a test shared between cuts)."""
        return tuple((ex.to_text(test), test) for test in ex.conjuncts(self.expr))


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
    # what the star arrays hold (:mod:`.locus.stars`): (x colour, y colour, cut) of the fits
    # and planes, principal colours with their cut, (locus colour, cut), the g-i bin edges
    pairs: tuple[tuple[str, str, str], ...] = ()
    principal: tuple[tuple[PrincipalColour, str], ...] = ()
    locus: tuple[tuple[str, str], ...] = ()
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
    pairs = [(fit.x, fit.y, uses[f"fit:{fit.name}"]) for fit in config.fits]
    pairs += [(plane.x, plane.y, uses[f"plane:{plane.key}"]) for plane in config.planes]
    return Plan(
        bands=all_bands,
        quantities=tuple(dict.fromkeys(quantities)),
        pushdown=pushdown,
        selections=tuple(selections.values()),
        uses=uses,
        extinction=extinction,
        extinction_mode=mode,
        pairs=tuple(dict.fromkeys(pairs)),
        principal=tuple((pc, uses[f"pc:{pc.name}"]) for pc in config.principal_colours),
        locus=tuple((c, uses[f"locus:{c}"]) for c in config.locus_colours),
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
