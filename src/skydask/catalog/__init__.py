"""Catalogue access: lazy, cuttable catalogues over partitioned Parquet.

The public entry points are :func:`open_catalog`, :func:`from_pandas`, :func:`from_astropy`,
:class:`Catalog`, :func:`write_catalog` and :func:`available_catalogs`. They are imported on
first use (:mod:`skydask._lazy`): a Dask worker running the partition reader (:mod:`.reader`)
does not load dask.dataframe.
"""

from typing import TYPE_CHECKING

from skydask._lazy import lazy_exports

if TYPE_CHECKING:
    from skydask.catalog.catalog import Catalog
    from skydask.catalog.listing import write_listing
    from skydask.catalog.open import from_astropy, from_pandas, open_catalog
    from skydask.catalog.registry import available_catalogs
    from skydask.catalog.write import write_catalog

__all__ = [
    "Catalog",
    "available_catalogs",
    "from_astropy",
    "from_pandas",
    "open_catalog",
    "write_catalog",
    "write_listing",
]

_EXPORTS = {
    "Catalog": "skydask.catalog.catalog",
    "write_listing": "skydask.catalog.listing",
    "from_astropy": "skydask.catalog.open",
    "from_pandas": "skydask.catalog.open",
    "open_catalog": "skydask.catalog.open",
    "available_catalogs": "skydask.catalog.registry",
    "write_catalog": "skydask.catalog.write",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
