"""skydask: lazy, parallel analysis of LSST / DESC survey catalogues with Dask.

The public API is what this module exports; everything else may change.

>>> import pandas as pd
>>> import skydask
>>> cat = skydask.from_pandas(pd.DataFrame({"ra": [1.0], "dec": [2.0], "psFlux_i": [1000.0]}))
>>> round(float(cat.select("mag_i").compute()["mag_i"][0]), 2)
23.9
"""

from importlib.metadata import PackageNotFoundError, version

import skydask.config  # noqa: F401  (registers the dask-config defaults first)
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
