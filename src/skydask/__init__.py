"""skydask: lazy, parallel analysis of LSST / DESC survey catalogues with Dask.

The public API is what this module exports; everything else may change.

>>> import pandas as pd
>>> import skydask
>>> cat = skydask.from_pandas(pd.DataFrame({"ra": [1.0], "dec": [2.0], "psFlux_i": [1000.0]}))
>>> round(float(cat.select("mag_i").compute()["mag_i"][0]), 2)
23.9

The names are imported on first use (PEP 562), as are the subpackages (``skydask.catalog``,
``skydask.analyses``, ...): ``import skydask`` loads only the dask configuration, so that a
Dask worker unpickling one skydask function does not load the image modules (astropy.wcs,
matplotlib, xarray: 60 MB per process) or the other analyses.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import skydask.config  # noqa: F401  (registers the dask-config defaults first)
from skydask._lazy import lazy_exports

if TYPE_CHECKING:
    from skydask.catalog import (
        Catalog,
        available_catalogs,
        from_astropy,
        from_pandas,
        open_catalog,
        write_catalog,
    )
    from skydask.images import open_stack
    from skydask.quantities import list_quantities, quantity_info

try:
    __version__ = version("skydask")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = [
    "Catalog",
    "__version__",
    "available_catalogs",
    "from_astropy",
    "from_pandas",
    "list_quantities",
    "open_catalog",
    "open_stack",
    "quantity_info",
    "write_catalog",
]

_EXPORTS = {
    "Catalog": "skydask.catalog",
    "available_catalogs": "skydask.catalog",
    "from_astropy": "skydask.catalog",
    "from_pandas": "skydask.catalog",
    "open_catalog": "skydask.catalog",
    "write_catalog": "skydask.catalog",
    "open_stack": "skydask.images",
    "list_quantities": "skydask.quantities",
    "quantity_info": "skydask.quantities",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
