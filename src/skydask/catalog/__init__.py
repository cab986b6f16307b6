"""Catalogue access: lazy, cuttable catalogues over partitioned Parquet.

The public entry points are :func:`open_catalog`, :func:`from_pandas`, :func:`from_astropy`,
:class:`Catalog`, :func:`write_catalog` and :func:`available_catalogs`.
"""

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
