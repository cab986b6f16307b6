"""``write_catalog``: save a catalogue as a HEALPix-partitioned HATS catalogue."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from skydask.catalog.catalog import Catalog
from skydask.catalog.healpix_index import HEALPIX29_COLUMN
from skydask.errors import SchemaError

if TYPE_CHECKING:
    from skydask.catalog.hats_writer import HatsWriteInfo

__all__ = ["write_catalog"]


def write_catalog(
    catalog: Catalog,
    path: str | os.PathLike[str],
    order: int | None = None,
    *,
    max_rows_per_pixel: int = 1_000_000,
    row_group_rows: int = 100_000,
    overwrite: bool = False,
) -> HatsWriteInfo:
    """Write a catalogue (its selection and cuts applied) as HATS, atomically.

    The columns written are ``catalog.columns``: the selected quantities, or every stored
    column of an unselected catalogue, so the copy keeps its schema flavour. Rows are sorted by
    their ``_healpix_29`` index inside each HEALPix pixel file, in row groups of at most
    ``row_group_rows`` rows, so later cones and cuts skip almost everything.
    """
    schema = catalog.schema
    ra, dec = (
        schema.resolve("ra") if "ra" in schema else None,
        schema.resolve("dec") if "dec" in schema else None,
    )
    if ra is None or dec is None:
        raise SchemaError("write_catalog needs 'ra' and 'dec' quantities to partition on the sky")
    columns = catalog.columns
    extra = [q for q in ("ra", "dec") if q not in columns]
    ddf = catalog.select(columns + extra).to_dask() if extra else catalog.to_dask()
    from skydask.catalog.hats_writer import write_hats

    if HEALPIX29_COLUMN in ddf.columns:
        ddf = ddf.drop(columns=[HEALPIX29_COLUMN])
    return write_hats(
        ddf,
        path,
        ra_column="ra",
        dec_column="dec",
        order=order,
        max_rows_per_pixel=max_rows_per_pixel,
        row_group_rows=row_group_rows,
        catalog_name=catalog.name,
        overwrite=overwrite,
    )
