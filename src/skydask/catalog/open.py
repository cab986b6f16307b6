"""Open a catalogue: from a path, a registered name, a pandas DataFrame or an astropy Table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skydask.catalog.afw_fits import is_fits_path, open_afw_catalog
from skydask.catalog.catalog import Catalog
from skydask.catalog.layout import discover
from skydask.catalog.listing import read_listing
from skydask.catalog.registry import lookup
from skydask.catalog.sources import MemorySource, ParquetSource
from skydask.schema.schema import Schema, detect_flavour

__all__ = ["from_astropy", "from_pandas", "open_catalog"]


def _schema_for(columns: list[str], schema: str | Schema | None) -> Schema:
    if isinstance(schema, Schema):
        return schema
    return Schema(schema or detect_flavour(columns), columns)


def open_catalog(
    path_or_name: str | os.PathLike[str], schema: str | Schema | None = None
) -> Catalog:
    """Open a catalogue lazily: one Parquet file, a directory of files, hive or HATS layout.

    Parameters
    ----------
    path_or_name : str or path
        A path, or the name of a registered catalogue (see :func:`available_catalogs`).
    schema : str, optional
        The schema flavour (Object: ``"dc2"``, ``"dp1"``; Source/ForcedSource:
        ``"dc2_source"``, ``"dp1_forced_source"``, ``"lsst_pipeline_src"``...); detected from
        the columns when omitted.

    Only the directory listing and one footer are read here; with a listing file
    (:func:`skydask.catalog.listing.write_listing`) only that file, and no data file at all.
    A FITS file (``.fits``, ``.fits.gz``) is read as an afw single-visit source table
    (:func:`skydask.catalog.afw_fits.open_afw_catalog`), in memory.

    Examples
    --------
    >>> import skydask
    >>> skydask.open_catalog("/no/such/catalogue")
    Traceback (most recent call last):
    ...
    skydask.errors.CatalogReadError: no catalogue at '/no/such/catalogue': the path does not exist
    """
    name: str | None = None
    target: str | os.PathLike[str] = path_or_name
    if isinstance(path_or_name, str) and not Path(path_or_name).expanduser().exists():
        entry = lookup(path_or_name)
        if entry is not None:
            name, target = entry.name, entry.path
            schema = schema or entry.schema
    if is_fits_path(target) and Path(target).expanduser().is_file():
        return open_afw_catalog([target], schema, name=name)
    # with a listing file, the files and schema come from it: no walk, no footer read
    listed = read_listing(target)
    source = ParquetSource(*listed) if listed else ParquetSource.open(discover(target))
    return Catalog(source, _schema_for(list(source.arrow_schema.names), schema), name=name)


def from_pandas(
    frame: pd.DataFrame, npartitions: int = 1, schema: str | Schema | None = None
) -> Catalog:
    """A catalogue over an in-memory pandas DataFrame, split into ``npartitions`` partitions."""
    source = MemorySource.from_frame(frame, npartitions)
    return Catalog(source, _schema_for([str(c) for c in frame.columns], schema))


def from_astropy(table: Any, npartitions: int = 1, schema: str | Schema | None = None) -> Catalog:
    """A catalogue over an astropy Table (for example one read from a FITS catalogue).

    Units are dropped (the schema knows each quantity's unit); masked values become NaN for
    floats; multidimensional columns are not supported and raise.
    """
    from astropy.table import Table

    if not isinstance(table, Table):
        raise TypeError(f"from_astropy() expects an astropy Table, got {type(table).__name__}")
    columns: dict[str, Any] = {}
    for col_name in table.colnames:
        col = table[col_name]
        if col.ndim > 1:
            raise ValueError(
                f"column {col_name!r} is {col.ndim}-dimensional; flatten it before from_astropy()"
            )
        data = np.ma.getdata(col)
        mask = np.ma.getmaskarray(col)
        if mask.any():
            if data.dtype.kind != "f":
                data = data.astype(np.float64)
            data = np.where(mask, np.nan, data)
        if data.dtype.kind == "S":
            data = data.astype(str)
        if data.dtype.byteorder not in ("=", "|"):
            data = data.astype(data.dtype.newbyteorder("="))
        columns[col_name] = data
    return from_pandas(pd.DataFrame(columns), npartitions=npartitions, schema=schema)
