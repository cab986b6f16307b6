"""``list_quantities`` and ``quantity_info``: what a catalogue offers, and what a name means."""

from __future__ import annotations

from skydask.catalog.catalog import Catalog
from skydask.errors import UnknownQuantityError
from skydask.schema.definitions import definitions
from skydask.schema.schema import QuantityInfo

__all__ = ["list_quantities", "quantity_info"]


def list_quantities(catalog: Catalog | None = None) -> list[str]:
    """Quantity names offered by ``catalog``, or every quantity skydask declares.

    Examples
    --------
    >>> "mag_i_cModel" in list_quantities()
    True
    """
    if catalog is not None:
        return catalog.quantities
    return list(definitions())


def quantity_info(name: str, catalog: Catalog | None = None) -> QuantityInfo:
    """Unit, one-line description and definition of a quantity.

    Examples
    --------
    >>> info = quantity_info("snr_i_cModel")
    >>> info.unit, info.definition
    ('', 'cModelFlux_i / cModelFluxErr_i')
    """
    if catalog is not None:
        return catalog.info(name)
    declared = definitions().get(name)
    if declared is None:
        import difflib

        close = difflib.get_close_matches(name, definitions(), n=5)
        raise UnknownQuantityError(
            f"unknown quantity {name!r}; nearest known: {', '.join(close) or 'none'}"
        )
    return QuantityInfo(
        name, declared.unit, declared.description, declared.expr or name, declared.is_native
    )
