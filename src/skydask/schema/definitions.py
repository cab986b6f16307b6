"""Load the quantity definitions of ``quantities.yaml`` and expand them per band.

This is the one place where ``{band}``, ``{b1}`` and ``{b2}`` templates are expanded, so that
every other module sees a flat table of quantities and no code lists per-band columns.

Quantities come in table kinds (:data:`TABLES`): the Object table's (``native``, ``derived``,
``flavours`` in the YAML) and the Source/ForcedSource tables' (``source_native``,
``source_derived``, ``source_flavours``). A flavour belongs to one kind and resolves against that
kind's quantities only, so ``psFlux`` (one visit, one band) and ``psFlux_r`` (the coadd) never
share a namespace.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

__all__ = [
    "BANDS",
    "TABLES",
    "QuantityDefinition",
    "definitions",
    "flavour_columns",
    "flavour_names",
    "flavour_table",
    "native_dtypes",
]

TABLES: dict[str, tuple[str, str, str]] = {
    "object": ("native", "derived", "flavours"),
    "source": ("source_native", "source_derived", "source_flavours"),
}
"""Table kind -> its (native, derived, flavours) sections of ``quantities.yaml``."""


@dataclass(frozen=True)
class QuantityDefinition:
    """One quantity: its name, unit, description, and how it is obtained.

    ``expr`` is ``None`` for a native quantity (stored in catalogues); for a derived quantity it
    is an expression in the filter language over other quantities.
    """

    name: str
    unit: str
    description: str
    dtype: str | None = None
    expr: str | None = None

    @property
    def is_native(self) -> bool:
        return self.expr is None


@functools.cache
def _raw() -> dict[str, Any]:
    text = resources.files("skydask.schema").joinpath("quantities.yaml").read_text()
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def _expand(template: str, spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Expand one templated entry into concrete entries (strings formatted per band/pair)."""
    raw = _raw()
    if "{band}" in template:
        subs = [{"band": b} for b in raw["bands"]]
    elif "{b1}" in template:
        subs = [{"b1": b1, "b2": b2} for b1, b2 in raw["colours"]]
    else:
        subs = [{}]
    out = {}
    for sub in subs:
        out[template.format(**sub)] = {
            k: v.format(**sub) if isinstance(v, str) else v for k, v in spec.items()
        }
    return out


def _sections(table: str) -> tuple[str, str, str]:
    try:
        return TABLES[table]
    except KeyError:
        from skydask.errors import SchemaError

        raise SchemaError(
            f"unknown table kind {table!r}; expected one of {sorted(TABLES)}"
        ) from None


@functools.cache
def definitions(table: str = "object") -> dict[str, QuantityDefinition]:
    """All quantities of one table kind, native and derived, by name, in declaration order.

    Examples
    --------
    >>> defs = definitions()
    >>> defs["mag_i"].expr
    '-2.5 * log10(psFlux_i) + 31.4'
    >>> defs["psFlux_i"].unit
    'nJy'
    >>> defs["g-r"].description
    'PSF colour g - r'
    >>> definitions("source")["mag"].expr
    '-2.5 * log10(psFlux) + 31.4'
    """
    raw = _raw()
    native, derived, _ = _sections(table)
    out: dict[str, QuantityDefinition] = {}
    for section in (native, derived):
        for template, spec in raw[section].items():
            for name, entry in _expand(template, spec).items():
                out[name] = QuantityDefinition(
                    name=name,
                    unit=entry.get("unit", ""),
                    description=entry["description"],
                    dtype=entry.get("dtype"),
                    expr=entry.get("expr"),
                )
    return out


def native_dtypes(table: str = "object") -> dict[str, str]:
    """The native (stored) quantities of one table kind and their dtypes.

    Examples
    --------
    >>> dt = native_dtypes()
    >>> dt["ra"], dt["psFlux_g"], dt["clean"]
    ('float64', 'float32', 'bool')
    >>> native_dtypes("source")["band"]
    'string'
    """
    return {d.name: d.dtype or "float64" for d in definitions(table).values() if d.is_native}


def flavour_names() -> list[str]:
    """Names of the schema flavours, Object flavours first (``'dc2'``, ``'dp1'``, then the
    Source/ForcedSource flavours such as ``'dc2_source'``)."""
    raw = _raw()
    return [name for _, _, section in TABLES.values() for name in raw.get(section, {})]


def flavour_table(flavour: str) -> str:
    """The table kind (``"object"`` or ``"source"``) a flavour describes.

    Examples
    --------
    >>> flavour_table("dp1"), flavour_table("lsst_pipeline_src")
    ('object', 'source')
    """
    raw = _raw()
    for table, (_, _, section) in TABLES.items():
        if flavour in raw.get(section, {}):
            return table
    from skydask.errors import SchemaError

    raise SchemaError(
        f"unknown schema flavour {flavour!r}; expected one of {sorted(flavour_names())}"
    )


def _flavour_spec(flavour: str) -> dict[str, Any]:
    spec: dict[str, Any] = _raw()[_sections(flavour_table(flavour))[2]][flavour]
    return spec


@functools.cache
def flavour_columns(flavour: str) -> tuple[tuple[str, str], ...]:
    """For one flavour, (native quantity, column name or expression) for every native quantity.

    Examples
    --------
    >>> dict(flavour_columns("dp1"))["psFlux_r"]
    'r_psfFlux'
    >>> dict(flavour_columns("dc2"))["psFlux_r"]
    'psFlux_r'
    >>> dict(flavour_columns("dp1_source"))["psFlux"]
    'psfFlux'
    """
    spec = _flavour_spec(flavour)
    mapping: dict[str, str] = {}
    for template, column in spec["columns"].items():
        mapping.update({k: v["c"] for k, v in _expand(template, {"c": column}).items()})
    natives = [d.name for d in definitions(flavour_table(flavour)).values() if d.is_native]
    return tuple((q, mapping.get(q, q)) for q in natives)


def flavour_detect_columns(flavour: str) -> list[str]:
    """Columns whose presence identifies a flavour."""
    return list(_flavour_spec(flavour)["detect"])


def flavour_description(flavour: str) -> str:
    return str(_flavour_spec(flavour)["description"])


BANDS: tuple[str, ...] = tuple(_raw()["bands"])
PIXEL_SCALE_ARCSEC: float = float(_raw()["pixel_scale_arcsec"])
AB_ZEROPOINT_NJY: float = float(_raw()["ab_zeropoint_njy"])
