"""Register skydask's defaults (``skydask.yaml``) with dask's configuration system.

Imported once by :mod:`skydask`; afterwards ``dask.config.get("skydask.catalog....")`` works
everywhere, with the usual dask precedence: ``dask.config.set`` over environment variables
(``DASK_SKYDASK__CATALOG__MAX_PARTITION_ROWS``) over YAML files in ``~/.config/dask`` over these
defaults.
"""

from __future__ import annotations

from importlib import resources

import dask.config
import yaml

__all__ = ["register_defaults"]


def register_defaults() -> None:
    text = resources.files("skydask").joinpath("skydask.yaml").read_text()
    defaults = yaml.safe_load(text)
    dask.config.update_defaults(defaults)


register_defaults()
