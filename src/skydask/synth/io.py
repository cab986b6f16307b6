"""On-disk layout of a synthetic catalogue, its Arrow schemas, and readers for the truth.

Layout of ``out_dir`` (DC2's per-tract layout)::

    object_tract_<N>.parquet       one file per tract, one row group per non-empty patch
    truth/truth_tract_<N>.parquet  per-object truth, same rows and row groups
    truth/depth_truth.parquet      per HEALPix NESTED pixel truth at nside_truth
    truth/pointings.parquet        every visit: band, centre, PSF FWHM and distortion
    synth.json                     parameters, package version and the list of files
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from skydask.errors import CatalogReadError, SchemaError
from skydask.schema.definitions import native_dtypes

__all__ = [
    "PARAMS_FILE",
    "TRUTH_DIR",
    "arrow_type",
    "object_file_name",
    "object_schema",
    "read_depth_truth",
    "read_synth_params",
    "read_truth",
    "truth_file_name",
]

PARAMS_FILE = "synth.json"
TRUTH_DIR = "truth"
DEPTH_TRUTH_FILE = "depth_truth.parquet"
POINTINGS_FILE = "pointings.parquet"
PARQUET_OPTIONS: dict[str, Any] = {"compression": "snappy", "write_statistics": True}
# Dictionary encoding only where values repeat: on noisy float columns pyarrow would try it,
# find it useless and fall back, which costs half the write time and grows the files.
OBJECT_DICTIONARY_COLUMNS = ["tract", "patch", "parentObjectId", "psNdata"]


def truth_dictionary_columns(schema: pa.Schema) -> list[str]:
    """Truth columns worth dictionary encoding: those constant on a depth-truth pixel."""
    return [n for n in schema.names if n == "pixel" or n.startswith("psf_fwhm_")]


_ARROW_TYPES = {
    "int64": pa.int64(),
    "int32": pa.int32(),
    "float64": pa.float64(),
    "float32": pa.float32(),
    "bool": pa.bool_(),
    "string": pa.string(),
}


def arrow_type(dtype: str) -> pa.DataType:
    """The Arrow type skydask writes for a schema dtype name.

    Examples
    --------
    >>> arrow_type("float32")
    DataType(float)
    """
    try:
        return _ARROW_TYPES[dtype]
    except KeyError:
        raise SchemaError(
            f"schema dtype {dtype!r} has no Arrow type in skydask.synth; expected one of "
            f"{sorted(_ARROW_TYPES)}"
        ) from None


@functools.cache
def object_schema() -> pa.Schema:
    """Arrow schema of the object files: exactly ``native_dtypes()``, in order.

    Examples
    --------
    >>> object_schema().names[:4]
    ['objectId', 'parentObjectId', 'tract', 'patch']
    """
    return pa.schema([pa.field(k, arrow_type(v)) for k, v in native_dtypes().items()])


def object_file_name(tract: int) -> str:
    return f"object_tract_{tract}.parquet"


def truth_file_name(tract: int) -> str:
    return f"truth_tract_{tract}.parquet"


def _tract_of(path: Path) -> int:
    match = re.search(r"_tract_(\d+)\.parquet$", path.name)
    return int(match.group(1)) if match else -1


def read_synth_params(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``synth.json`` record of a synthetic catalogue.

    Raises
    ------
    CatalogReadError
        If the file is missing or is not valid JSON.
    """
    path = Path(out_dir) / PARAMS_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise CatalogReadError(
            f"{path} not found: {out_dir} is not a skydask.synth catalogue"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogReadError(f"{path} could not be read as JSON: {exc}") from exc
    return data


def read_truth(out_dir: str | os.PathLike[str], columns: list[str] | None = None) -> pd.DataFrame:
    """Per-object truth of every tract, in tract then row order (joins on ``objectId``).

    Columns: ``objectId``, ``is_star``, ``is_red``, ``pixel`` (nside_truth NESTED), true
    magnitudes ``mag_true_<b>``, the reduced shear ``g1_true``, ``g2_true`` and convergence
    ``kappa_true`` at the object, the intrinsic and the sheared noise-free distortions
    ``e1_int``, ``e2_int``, ``e1_true``, ``e2_true``, the Gaussian size ``size_true`` (arcsec,
    0 for stars) and the coadd PSF FWHM ``psf_fwhm_<b>`` (arcsec) of the object's pixel.
    """
    files = sorted((Path(out_dir) / TRUTH_DIR).glob("truth_tract_*.parquet"), key=_tract_of)
    if not files:
        raise CatalogReadError(f"no truth_tract_*.parquet under {Path(out_dir) / TRUTH_DIR}")
    return pd.concat([pd.read_parquet(f, columns=columns) for f in files], ignore_index=True)


def read_depth_truth(out_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Per-pixel truth: ``pixel`` (NESTED, nside in ``synth.json``), ``ra``, ``dec`` (centre),
    ``nvisits_<b>``, ``m5_<b>`` (true 5-sigma point-source depth), ``psf_fwhm_<b>`` (arcsec),
    ``psf_e1_<b>``, ``psf_e2_<b>`` (coadd PSF distortion).

    The pixels are every pixel whose centre is within one pixel radius of the footprint, so a
    thin ring just outside it is included.
    """
    path = Path(out_dir) / TRUTH_DIR / DEPTH_TRUTH_FILE
    if not path.exists():
        raise CatalogReadError(f"{path} not found: {out_dir} is not a skydask.synth catalogue")
    return pd.read_parquet(path)


def write_table(path: Path, table: pa.Table) -> None:
    """Write one small table in a single row group (truth side tables)."""
    pq.write_table(table, path, **PARQUET_OPTIONS)
