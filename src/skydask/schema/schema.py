"""A catalogue's schema: which quantities it offers and how each is computed from its columns.

A :class:`Schema` binds the declared quantities (``quantities.yaml``) to the columns one
catalogue actually stores, through a *flavour* (DC2's GCRCatalogs names, Rubin's DP0.2/DP1
band-prefixed names). Every quantity resolves to one expression over stored columns, so the
catalogue layer can read exactly the columns a selection or filter needs, and translate cuts on
derived quantities (a magnitude) into bounds on stored ones (a flux) for pushdown.

Columns that no declared quantity maps to (``_healpix_29``, a truth column, a user's extra
column) are quantities of their own, under their own names.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from skydask.errors import SchemaError, UnknownQuantityError
from skydask.schema import expressions as ex
from skydask.schema.definitions import (
    definitions,
    flavour_columns,
    flavour_description,
    flavour_detect_columns,
    flavour_names,
    flavour_table,
)

__all__ = ["QuantityInfo", "Schema", "detect_flavour"]


@dataclass(frozen=True)
class QuantityInfo:
    """What one quantity is: unit, description, and its definition on this schema."""

    name: str
    unit: str
    description: str
    definition: str
    native: bool

    def __str__(self) -> str:
        unit = f" [{self.unit}]" if self.unit else ""
        return f"{self.name}{unit}: {self.description} (= {self.definition})"


def detect_flavour(columns: Iterable[str]) -> str:
    """Guess the schema flavour from a catalogue's column names.

    Examples
    --------
    >>> detect_flavour(["ra", "dec", "psFlux_g"])
    'dc2'
    >>> detect_flavour(["coord_ra", "coord_dec", "g_psfFlux"])
    'dp1'
    >>> detect_flavour(["objectId", "visit", "filter", "mjd", "ra", "dec", "psFlux", "psFluxErr"])
    'dc2_forced_source'
    >>> detect_flavour(["coord_ra", "coord_dec", "base_PsfFlux_instFlux", "visit"])
    'lsst_pipeline_src'
    """
    present = set(columns)
    matches = [f for f in flavour_names() if set(flavour_detect_columns(f)) <= present]
    if not matches:
        wanted = {f: flavour_detect_columns(f) for f in flavour_names()}
        raise SchemaError(
            f"cannot tell the schema flavour: the columns include none of the identifying sets "
            f"{wanted}; pass schema=<flavour> to open_catalog"
        )
    # The most specific identifying set wins: a Source table also carries the [ra, dec] that
    # identify a DC2 Object table. Ties go to the first declared (Object flavours come first),
    # so Object tables are detected exactly as before Source flavours existed.
    return max(matches, key=lambda f: len(flavour_detect_columns(f)))


@functools.cache
def _colour_names() -> frozenset[str]:
    return frozenset(name for name in definitions() if "-" in name)


class Schema:
    """The quantities of one catalogue, resolved onto its stored columns.

    Parameters
    ----------
    flavour : str
        An Object flavour (``"dc2"``, ``"dp1"``) or a Source/ForcedSource one
        (``"dc2_source"``, ``"lsst_pipeline_src"``...; see
        :func:`skydask.schema.definitions.flavour_names`); it decides the table kind.
    columns : iterable of str
        The columns the catalogue stores (including hive partition keys).

    Examples
    --------
    >>> s = Schema("dp1", ["coord_ra", "coord_dec", "g_psfFlux", "g_psfFluxErr"])
    >>> sorted(s.columns_for(["mag_g", "snr_g"]))
    ['g_psfFlux', 'g_psfFluxErr']
    >>> ex.to_text(s.resolve("mag_g"))
    '-2.5 * log10(g_psfFlux) + 31.4'
    """

    def __init__(self, flavour: str, columns: Iterable[str]) -> None:
        self.flavour = flavour
        # "object" or "source": which set of declared quantities this catalogue resolves
        self.table = flavour_table(flavour)
        self.stored = tuple(dict.fromkeys(columns))
        stored = set(self.stored)
        resolved: dict[str, ex.Expr] = {}
        mapped_columns: set[str] = set()
        for quantity, column_expr in flavour_columns(flavour):
            expr = ex.parse(column_expr)
            if ex.names(expr) <= stored:
                resolved[quantity] = expr
                mapped_columns |= ex.names(expr)
        for name, definition in definitions(self.table).items():
            if definition.expr is None or name in resolved:
                continue
            expr = ex.parse(definition.expr)
            # derived quantities are declared in dependency order, so one pass suffices
            if ex.names(expr) <= resolved.keys():
                resolved[name] = ex.substitute(expr, resolved)
        # stored columns no quantity claims stay reachable under their own names
        for column in self.stored:
            if column not in mapped_columns and column not in resolved:
                resolved[column] = ex.Name(column)
        self._resolved = resolved

    # -- what is available -------------------------------------------------------------
    @property
    def quantities(self) -> list[str]:
        """Every quantity this catalogue offers, native ones first."""
        return list(self._resolved)

    def __contains__(self, name: object) -> bool:
        return name in self._resolved

    def _unknown(self, name: str) -> UnknownQuantityError:
        close = difflib.get_close_matches(name, self._resolved, n=5, cutoff=0.6)
        hint = f"; nearest known: {', '.join(close)}" if close else ""
        declared = definitions(self.table).get(name)
        if declared is not None:
            needs = declared.expr or dict(flavour_columns(self.flavour)).get(name, name)
            return UnknownQuantityError(
                f"quantity {name!r} is not available in this {self.flavour} catalogue: "
                f"it needs {needs!r}, which the files do not provide{hint}"
            )
        return UnknownQuantityError(f"unknown quantity {name!r}{hint}")

    def check(self, names: Iterable[str]) -> None:
        """Raise :class:`UnknownQuantityError` for the first name this schema lacks."""
        for name in names:
            if name not in self._resolved:
                raise self._unknown(name)

    def resolve(self, name: str) -> ex.Expr:
        """The expression over stored columns that computes quantity ``name``."""
        try:
            return self._resolved[name]
        except KeyError:
            raise self._unknown(name) from None

    def columns_for(self, names: Iterable[str]) -> set[str]:
        """The stored columns needed to compute the given quantities."""
        out: set[str] = set()
        for name in names:
            out |= ex.names(self.resolve(name))
        return out

    # -- expressions ---------------------------------------------------------------------
    def parse(self, text: str) -> ex.Expr:
        """Parse a filter or expression over quantity names and check every name.

        Nothing is read: an unknown name fails here, naming the nearest known quantities.
        """
        expr = ex.parse(text, hyphenated_names=_colour_names() & self._resolved.keys())
        self.check(sorted(ex.names(expr)))
        return expr

    def to_columns(self, expr: ex.Expr) -> ex.Expr:
        """Rewrite an expression over quantities as one over stored columns."""
        self.check(sorted(ex.names(expr)))
        return ex.substitute(expr, {n: self._resolved[n] for n in ex.names(expr)})

    # -- description ---------------------------------------------------------------------
    def info(self, name: str) -> QuantityInfo:
        """Unit, description and definition of one quantity on this schema."""
        expr = self.resolve(name)
        declared = definitions(self.table).get(name)
        return QuantityInfo(
            name=name,
            unit=declared.unit if declared else "",
            description=declared.description if declared else "column stored in the catalogue",
            definition=ex.to_text(expr),
            native=declared.is_native if declared else True,
        )

    @property
    def description(self) -> str:
        return flavour_description(self.flavour)

    def __repr__(self) -> str:
        return f"Schema({self.flavour!r}, {len(self.stored)} columns, {len(self)} quantities)"

    def __len__(self) -> int:
        return len(self._resolved)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Schema)
            and other.flavour == self.flavour
            and other.stored == self.stored
        )

    def __hash__(self) -> int:
        return hash((self.flavour, self.stored))


def quantity_table(names: Mapping[str, QuantityInfo]) -> list[QuantityInfo]:
    """Infos as a list, in the given order (helper for printing)."""
    return list(names.values())
