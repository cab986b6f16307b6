"""Adapters between a run spec's single catalogue and analyses that take several.

A spec names one catalogue; galaxy-shear needs lenses and sources. Both come from the same
catalogue here, told apart by the analysis's own named cut sets (``lens_cuts``,
``source_cuts``), so a spec can run it like any other analysis.
"""

from __future__ import annotations

from typing import Any

from skydask.analyses.twopoint import TwoPointResult, galaxy_shear
from skydask.catalog.catalog import Catalog

__all__ = ["galaxy_shear_one_catalog"]


def galaxy_shear_one_catalog(catalog: Catalog, **params: Any) -> TwoPointResult:
    """Galaxy-shear with lenses and sources selected from the same catalogue."""
    return galaxy_shear(catalog, catalog, **params)
