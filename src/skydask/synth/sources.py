"""Synthetic Source and ForcedSource tables matching a synthetic object catalogue, with truth.

:func:`generate_source_tables` observes the objects of a catalogue made by
:func:`skydask.synth.generate_object_catalog` in every visit of its dithered pointings (the
model, with its numbers, is in :mod:`skydask.synth.sources_model`) and writes::

    <out_dir>/
      source/source_visit_<V>.parquet              Source: detections, one file per visit (DC2)
      forced_source/tract=<T>/forced_source_tract_<T>.parquet
                                                   ForcedSource: every object in every visit
                                                   of its field, hive by tract (DP1 shards by
                                                   tract and patch)
      truth/visits.parquet                         every visit: band, mjd, centre, FWHM, m5,
                                                   injected zeropoint offset and shift
      truth/variables.parquet                      the variable objects and their parameters
      sources.json                                 parameters, realised numbers

Either table can be written per visit (``"visit"``) or per tract (``"tract"``). Column names
are DC2's DPDD-like ones (flavours ``dc2_source`` and ``dc2_forced_source``), and each table
directory gets a listing file (:mod:`skydask.catalog.listing`), so opening it reads no data
file.

How the work runs: one dask task per tract reads the tract's objects and truth and measures
them in the visits whose field reaches them, a chunk of visits at a time (memory is bounded by
the chunk, not the tract). Per-tract files are written directly; per-visit files are first
written as (visit, tract) shards, then one task per group of visits joins each visit's shards
into its file. All randomness comes from ``seed`` in per-tract streams, so the data do not
depend on the scheduler. Writing is atomic, and an existing ``out_dir`` made with the same
parameters is returned as it is.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from skydask.catalog.listing import write_listing
from skydask.errors import CatalogReadError, SpecError
from skydask.scheduling import compute
from skydask.schema.definitions import BANDS, flavour_columns, native_dtypes
from skydask.synth.config import diff_parameters
from skydask.synth.generate import SynthInfo, _discard, _replace
from skydask.synth.io import PARQUET_OPTIONS, arrow_type, read_synth_params
from skydask.synth.magnitudes import flux_njy
from skydask.synth.sources_model import (
    STREAM_MEASURE,
    SourceModel,
    Visits,
    draw_variables,
    draw_visits,
    variable_flux,
)
from skydask.synth.survey import SurveyModel

__all__ = [
    "LAYOUTS",
    "SourceSynthInfo",
    "generate_source_tables",
    "read_variables",
    "read_visits",
]

log = logging.getLogger(__name__)

FORMAT = "skydask.synth.source_tables"
SOURCES_VERSION = 1
PARAMS_FILE = "sources.json"
SOURCE_DIR = "source"
FORCED_DIR = "forced_source"
TRUTH_DIR = "truth"
VISITS_FILE = "visits.parquet"
VARIABLES_FILE = "variables.parquet"
SHARD_DIR = "_shards"
LAYOUTS = ("visit", "tract")

# Visits measured at once in a tract task: bounds memory to about chunk x objects rows.
_VISIT_CHUNK = 24
# Visits joined into their files per task of the second (per-visit) phase.
_VISITS_PER_TASK = 64
# sourceId = visit << 45 | objectId: objectIds of the synthetic sky map stay below 2**45
# (tract < 8192), visits below 2**18.
_ID_SHIFT = 45
_FORCED_COLUMNS = (
    "objectId", "visit", "band", "mjd", "ra", "dec", "psFlux", "psFluxErr", "psFlux_flag",
)  # fmt: skip
_SOURCE_COLUMNS = (
    "sourceId", "objectId", "visit", "band", "mjd", "ra", "dec", "psFlux", "psFluxErr",
    "psFlux_flag", "extendedness", "pixelFlags_saturated", "pixelFlags_cr", "pixelFlags_bad",
    "pixelFlags_edge", "detect_isPrimary",
)  # fmt: skip


def _table_schema(quantities: Sequence[str], flavour: str) -> pa.Schema:
    """Arrow schema of a table: the source quantities' dtypes under the flavour's names."""
    dtypes = native_dtypes("source")
    names = dict(flavour_columns(flavour))
    return pa.schema([pa.field(names[q], arrow_type(dtypes[q])) for q in quantities])


FORCED_SCHEMA = _table_schema(_FORCED_COLUMNS, "dc2_forced_source")
SOURCE_SCHEMA = _table_schema(_SOURCE_COLUMNS, "dc2_source")


@dataclass(frozen=True)
class SourceSynthInfo:
    """What a set of synthetic source tables is and where its files are."""

    path: Path
    catalog_path: Path
    seed: int
    bands: str
    n_visits: int
    forced_source_rows: int
    source_rows: int
    source_layout: str
    forced_source_layout: str

    @property
    def source_dir(self) -> Path:
        """The Source table (open it with :func:`skydask.open_catalog`)."""
        return self.path / SOURCE_DIR

    @property
    def forced_source_dir(self) -> Path:
        """The ForcedSource table."""
        return self.path / FORCED_DIR

    @property
    def visits_path(self) -> Path:
        return self.path / TRUTH_DIR / VISITS_FILE

    @property
    def variables_path(self) -> Path:
        return self.path / TRUTH_DIR / VARIABLES_FILE

    @property
    def params_path(self) -> Path:
        return self.path / PARAMS_FILE

    @classmethod
    def from_record(cls, path: Path, record: dict[str, Any]) -> SourceSynthInfo:
        p, out = record["parameters"], record["output"]
        return cls(
            path=path,
            catalog_path=Path(record["catalog_path"]),
            seed=int(p["seed"]),
            bands=str(p["bands"]),
            n_visits=int(out["n_visits"]),
            forced_source_rows=int(out["forced_source_rows"]),
            source_rows=int(out["source_rows"]),
            source_layout=str(p["source_layout"]),
            forced_source_layout=str(p["forced_source_layout"]),
        )


def read_visits(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The visit truth of a source-table directory: ``visit``, ``band``, ``mjd``, ``ra``,
    ``dec`` (centre), ``psf_fwhm`` (arcsec), ``m5``, ``zp_offset`` (mag, added to every
    magnitude of the visit), ``shift_ra_mas``, ``shift_dec_mas`` (the visit's common shift)."""
    file = Path(path) / TRUTH_DIR / VISITS_FILE
    if not file.exists():
        raise CatalogReadError(f"{file} not found: {path} holds no synthetic source tables")
    return pd.read_parquet(file)


def read_variables(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The variable objects: ``objectId``, ``kind`` and their light-curve parameters (see
    :func:`skydask.synth.sources_model.draw_variables`)."""
    file = Path(path) / TRUTH_DIR / VARIABLES_FILE
    if not file.exists():
        raise CatalogReadError(f"{file} not found: {path} holds no synthetic source tables")
    return pd.read_parquet(file)


# --- one tract ------------------------------------------------------------------------------


def _unit(ra: NDArray[np.float64], dec: NDArray[np.float64]) -> NDArray[np.float64]:
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)


class _Writers:
    """Per-tract file for the tract layout, (visit, tract) shards for the visit layout."""

    def __init__(self, tmp: Path, kind: str, layout: str, tract: int, schema: pa.Schema) -> None:
        self.tmp, self.kind, self.layout, self.tract, self.schema = tmp, kind, layout, tract, schema
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.rows += table.num_rows
        if self.layout == "tract":
            if self.writer is None:
                directory = self.tmp / self.kind / f"tract={self.tract}"
                directory.mkdir(parents=True, exist_ok=True)
                self.writer = pq.ParquetWriter(
                    directory / f"{self.kind}_tract_{self.tract}.parquet",
                    self.schema,
                    use_dictionary=["filter"],
                    **PARQUET_OPTIONS,
                )
            self.writer.write_table(table)
            return
        visits = table.column("visit").to_numpy()
        order = np.argsort(visits, kind="stable")
        table = table.take(pa.array(order))
        visits = visits[order]
        starts = np.flatnonzero(np.r_[True, visits[1:] != visits[:-1]])
        ends = np.r_[starts[1:], len(visits)]
        for a, b in zip(starts, ends, strict=True):
            directory = self.tmp / SHARD_DIR / self.kind / str(int(visits[a]))
            directory.mkdir(parents=True, exist_ok=True)
            # shards are temporary: Arrow IPC, uncompressed, is several times cheaper than
            # Parquet to write and to read back
            shard = directory / f"tract_{self.tract}.arrow"
            with pa.OSFile(str(shard), "wb") as sink, pa.ipc.new_file(sink, self.schema) as ipc:
                ipc.write_table(table.slice(a, b - a))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _measure_chunk(
    rng: np.random.Generator,
    obj: dict[str, NDArray[Any]],
    mags: NDArray[np.float64],
    band_col: dict[str, int],
    variables: pd.DataFrame,
    visits: Visits,
    cos_dist: NDArray[np.float64],
    fov_radius: float,
    model: SourceModel,
) -> tuple[pa.Table, pa.Table]:
    """ForcedSource and Source rows of the objects in the fields of a chunk of visits."""
    vi, oi = np.nonzero(cos_dist >= math.cos(math.radians(fov_radius)))
    n = len(vi)
    band = visits.band[vi]
    mjd = visits.mjd[vi]
    columns = np.array([band_col[b] for b in visits.band], dtype=np.int64)  # per visit
    m_true = mags[oi, columns[vi]]
    s_p = visits.fwhm[vi] / 2.355
    s_g = obj["size_true"][oi]
    psf_fraction = 2.0 * s_p**2 / (2.0 * s_p**2 + s_g**2)
    f_psf = flux_njy(m_true) * psf_fraction
    if len(variables):
        # after the PSF fraction: a periodic star has none to lose, a transient is a point
        # source on its host
        row_vars = variables.reindex(obj["objectId"][oi]).reset_index(drop=True)
        f_psf = variable_flux(f_psf, mjd, row_vars, model)
    f5 = flux_njy(visits.m5[vi])
    calib = 10.0 ** (-0.4 * visits.zp_offset[vi])
    err = f5 / 5.0 * np.sqrt(1.0 + model.source_noise * np.maximum(f_psf, 0.0) / f5) * calib
    noise = rng.standard_normal(n)
    flux = f_psf * calib + noise * err
    flag = rng.random(n) < model.flux_flag_rate
    forced = {
        "objectId": obj["objectId"][oi], "visit": visits.visit[vi], "band": band, "mjd": mjd,
        "ra": obj["ra"][oi], "dec": obj["dec"][oi], "psFlux": flux, "psFluxErr": err,
        "psFlux_flag": flag,
    }  # fmt: skip

    # positions of the detections: shift of the visit, per-source error, centroid noise
    snr_true = f_psf * calib / err
    sigma_cen = math.sqrt(2.0) * s_p * 1000.0 / np.maximum(snr_true, 1.0)  # mas per axis
    astro = rng.standard_normal((2, n)) * model.astrometric_rms_mas
    cen = rng.standard_normal((2, n)) * sigma_cen
    dx = visits.shift_ra_mas[vi] + astro[0] + cen[0]
    dy = visits.shift_dec_mas[vi] + astro[1] + cen[1]
    dec_m = obj["dec"][oi] + dy / 3.6e6
    ra_m = np.mod(obj["ra"][oi] + dx / 3.6e6 / np.cos(np.radians(obj["dec"][oi])), 360.0)
    pixel = rng.random((2, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        m_now = -2.5 * np.log10(f_psf) + 31.4  # the PSF magnitude: what saturates
    distance = np.degrees(np.arccos(np.clip(cos_dist[vi, oi], -1.0, 1.0)))
    source = {
        "sourceId": (visits.visit[vi] << _ID_SHIFT) | obj["objectId"][oi],
        **{k: forced[k] for k in _FORCED_COLUMNS},
        "ra": ra_m,
        "dec": dec_m,
        "extendedness": (psf_fraction < model.extended_psf_fraction).astype(np.float32),
        "pixelFlags_saturated": m_now < visits.m5[vi] - model.saturation_below_m5,
        "pixelFlags_cr": pixel[0] < model.cr_rate,
        "pixelFlags_bad": pixel[1] < model.bad_rate,
        "pixelFlags_edge": distance > model.edge_fraction * fov_radius,
        "detect_isPrimary": np.ones(n, dtype=bool),
    }
    detected = flux / err >= model.detection_snr
    return _to_table(forced, FORCED_SCHEMA, None), _to_table(source, SOURCE_SCHEMA, detected)


def _to_table(
    columns: dict[str, Any], schema: pa.Schema, keep: NDArray[np.bool_] | None
) -> pa.Table:
    names = dict(flavour_columns("dc2_source"))
    arrays = []
    for field in schema:
        quantity = next(q for q, c in names.items() if c == field.name)
        values = np.asarray(columns[quantity])
        if keep is not None:
            values = values[keep]
        if field.type == pa.string():
            arrays.append(pa.array(values.astype(str), type=pa.string()))
        else:
            arrays.append(pa.array(values.astype(field.type.to_pandas_dtype()), type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _tract_task(
    tmp: Path,
    tract: int,
    object_file: Path,
    truth_file: Path,
    visits: Visits,
    bands: str,
    seed: int,
    years: float,
    fov_radius: float,
    model: SourceModel,
    layouts: tuple[str, str],
) -> dict[str, Any]:
    """Measure one tract's objects in every visit whose field reaches them; write the rows."""
    objects = pq.read_table(object_file, columns=["objectId", "ra", "dec"])
    truth = pq.read_table(
        truth_file, columns=["objectId", "is_star", "size_true", *(f"mag_true_{b}" for b in bands)]
    )
    obj = {
        "objectId": objects.column("objectId").to_numpy(),
        "ra": objects.column("ra").to_numpy(),
        "dec": objects.column("dec").to_numpy(),
        "size_true": truth.column("size_true").to_numpy().astype(np.float64),
    }
    if not np.array_equal(obj["objectId"], truth.column("objectId").to_numpy()):
        raise CatalogReadError(f"{truth_file} and {object_file} do not hold the same objects")
    if len(obj["objectId"]) and int(obj["objectId"].max()) >= 2**_ID_SHIFT:
        raise SpecError(f"objectIds of {object_file} exceed 2**{_ID_SHIFT}; tract too large")
    mags = np.stack([truth.column(f"mag_true_{b}").to_numpy() for b in bands], axis=1)
    band_col = {b: k for k, b in enumerate(bands)}
    variables = draw_variables(
        obj["objectId"], truth.column("is_star").to_numpy(), seed, tract, years, model
    )
    indexed = variables.set_index("objectId")

    xyz = _unit(obj["ra"], obj["dec"])
    centre = xyz.mean(axis=0)
    centre /= np.linalg.norm(centre)
    reach = math.degrees(math.acos(float(np.clip((xyz @ centre).min(), -1.0, 1.0))))
    to_visits = _unit(visits.ra, visits.dec) @ centre
    near = np.flatnonzero(to_visits >= math.cos(math.radians(min(180.0, fov_radius + reach))))
    rng = np.random.default_rng([seed, STREAM_MEASURE, tract])
    writers = {
        FORCED_DIR: _Writers(tmp, FORCED_DIR, layouts[1], tract, FORCED_SCHEMA),
        SOURCE_DIR: _Writers(tmp, SOURCE_DIR, layouts[0], tract, SOURCE_SCHEMA),
    }
    try:
        for start in range(0, len(near), _VISIT_CHUNK):
            chunk = visits.take(near[start : start + _VISIT_CHUNK])
            cos_dist = _unit(chunk.ra, chunk.dec) @ xyz.T
            forced, source = _measure_chunk(
                rng, obj, mags, band_col, indexed, chunk, cos_dist, fov_radius, model
            )
            writers[FORCED_DIR].write(forced)
            writers[SOURCE_DIR].write(source)
    finally:
        for w in writers.values():
            w.close()
    log.debug("tract %d: %d forced sources", tract, writers[FORCED_DIR].rows)
    return {
        "tract": tract,
        "forced_source_rows": writers[FORCED_DIR].rows,
        "source_rows": writers[SOURCE_DIR].rows,
        "variables": variables,
    }


def _join_shards(tmp: Path, kind: str, visits: Sequence[int], schema: pa.Schema) -> int:
    """Second phase of the per-visit layout: each visit's shards become one file."""
    written = 0
    for visit in visits:
        directory = tmp / SHARD_DIR / kind / str(visit)
        shards = sorted(directory.glob("*.arrow"))
        if not shards:
            continue
        tables = []
        for shard in shards:
            with pa.memory_map(str(shard)) as source:
                tables.append(pa.ipc.open_file(source).read_all())
        table = pa.concat_tables(tables)
        order = pc.sort_indices(table, sort_keys=[("objectId", "ascending")])
        pq.write_table(
            table.take(order),
            tmp / kind / f"{kind}_visit_{visit}.parquet",
            use_dictionary=["filter"],
            **PARQUET_OPTIONS,
        )
        written += 1
    return written


# --- orchestration --------------------------------------------------------------------------


def _catalog_info(catalog: SynthInfo | str | os.PathLike[str]) -> tuple[SynthInfo, dict[str, Any]]:
    path = catalog.path if isinstance(catalog, SynthInfo) else Path(catalog)
    record = read_synth_params(path)
    return SynthInfo.from_record(path, record), record["parameters"]


def _cached(out: Path, params: dict[str, Any], overwrite: bool) -> SourceSynthInfo | None:
    if not out.exists():
        return None
    try:
        record = json.loads((out / PARAMS_FILE).read_text())
        old = record["parameters"]
    except (OSError, ValueError, KeyError, TypeError):
        if overwrite:
            return None
        raise SpecError(
            f"{out} exists and holds no synthetic source tables (no readable {PARAMS_FILE}); "
            "remove it, choose another out_dir or pass overwrite=True"
        ) from None
    differences = diff_parameters(old, params)
    if not differences:
        log.info("synthetic source tables %s already exist with these parameters", out)
        return SourceSynthInfo.from_record(out, record)
    if overwrite:
        return None
    shown = "; ".join(differences[:8]) + ("; ..." if len(differences) > 8 else "")
    raise SpecError(
        f"{out} holds source tables generated with different parameters ({shown}); pass "
        "overwrite=True to replace them or choose another out_dir"
    )


def generate_source_tables(
    catalog: SynthInfo | str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    bands: str = "ugrizy",
    seed: int | None = None,
    model: SourceModel | None = None,
    source_layout: str = "visit",
    forced_source_layout: str = "tract",
    overwrite: bool = False,
    progress: bool = False,
) -> SourceSynthInfo:
    """Write Source and ForcedSource tables, with truth, for a synthetic object catalogue.

    Parameters
    ----------
    catalog
        A catalogue of :func:`skydask.synth.generate_object_catalog` (its :class:`SynthInfo`
        or directory). Its footprint, years and seed give the visits (its pointings).
    out_dir
        Where to write (atomically); default ``<catalog>/multiepoch``.
    bands
        Bands whose visits to simulate, e.g. ``"ri"``.
    seed
        Seed of the visit times, errors, variables and noise; default the catalogue's.
    model
        The visit and measurement model (:class:`~skydask.synth.sources_model.SourceModel`).
    source_layout, forced_source_layout
        ``"visit"`` (one file per visit, DC2's layout) or ``"tract"`` (hive ``tract=<T>/``).
    overwrite
        Replace an existing ``out_dir`` made with other parameters.
    progress
        Show dask's progress bar.

    Returns
    -------
    SourceSynthInfo
        Paths and sizes.

    Examples
    --------
    >>> import tempfile, skydask
    >>> from skydask.synth import generate_object_catalog
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     cat = generate_object_catalog(f"{tmp}/cat", rows=2000, seed=1,
    ...                                   footprint=(60.0, 61.0, -35.0, -34.0), years=1.0)
    ...     info = generate_source_tables(cat, bands="r")
    ...     forced = skydask.open_catalog(info.forced_source_dir)
    ...     (forced.schema.flavour, len(forced) == info.forced_source_rows)
    ('dc2_forced_source', True)
    """
    info, catalog_params = _catalog_info(catalog)
    model = model or SourceModel()
    if not isinstance(bands, str) or not bands or any(b not in BANDS for b in bands):
        raise SpecError(f"parameter 'bands' must be a string of bands among {BANDS}; got {bands!r}")
    for name, layout in (
        ("source_layout", source_layout),
        ("forced_source_layout", forced_source_layout),
    ):
        if layout not in LAYOUTS:
            raise SpecError(f"parameter {name!r} must be one of {LAYOUTS}; got {layout!r}")
    seed = info.seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError(f"parameter 'seed' must be a non-negative integer; got {seed!r}")
    survey = SurveyModel()
    params = json.loads(
        json.dumps(
            {
                "generator_version": SOURCES_VERSION,
                "catalog": catalog_params,
                "seed": seed,
                "bands": "".join(b for b in BANDS if b in bands),
                "source_layout": source_layout,
                "forced_source_layout": forced_source_layout,
                "source_model": model.to_dict(),
                "survey": survey.to_dict(),
                "sourceId": f"visit * 2**{_ID_SHIFT} + objectId",
            }
        )
    )
    out = Path(out_dir) if out_dir is not None else info.path / "multiepoch"
    cached = _cached(out, params, overwrite)
    if cached is not None:
        return cached

    t0 = time.perf_counter()
    visits = draw_visits(info.footprint, info.years, seed, params["bands"], survey, model)
    if len(visits) >= 2**18:
        raise SpecError(f"{len(visits)} visits exceed the 2**18 that sourceId allows")
    layouts = (source_layout, forced_source_layout)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".tmp-{out.name}-{secrets.token_hex(6)}"
    (tmp / TRUTH_DIR).mkdir(parents=True)
    try:
        for kind in (SOURCE_DIR, FORCED_DIR):
            (tmp / kind).mkdir()
        visits_d = dask.delayed(visits, pure=True)
        tasks = [
            dask.delayed(_tract_task, pure=False)(
                tmp, tract, obj_file, truth_file, visits_d, params["bands"], seed, info.years,
                survey.fov_radius_deg, model, layouts,
            )
            for tract, obj_file, truth_file in zip(
                info.tracts, info.files, info.truth_files, strict=True
            )
        ]  # fmt: skip
        results = sorted(compute(*tasks, progress=progress), key=lambda r: int(r["tract"]))
        joins = []
        for kind, schema, layout in (
            (SOURCE_DIR, SOURCE_SCHEMA, source_layout),
            (FORCED_DIR, FORCED_SCHEMA, forced_source_layout),
        ):
            if layout == "visit":
                ids = visits.visit.tolist()
                joins += [
                    dask.delayed(_join_shards, pure=False)(
                        tmp, kind, ids[i : i + _VISITS_PER_TASK], schema
                    )
                    for i in range(0, len(ids), _VISITS_PER_TASK)
                ]
        if joins:
            compute(*joins, progress=progress)
        shutil.rmtree(tmp / SHARD_DIR, ignore_errors=True)
        for kind in (SOURCE_DIR, FORCED_DIR):
            write_listing(tmp / kind)
        variables = pd.concat([r["variables"] for r in results], ignore_index=True)
        pq.write_table(
            pa.Table.from_pandas(visits.to_frame(), preserve_index=False),
            tmp / TRUTH_DIR / VISITS_FILE,
            **PARQUET_OPTIONS,
        )
        pq.write_table(
            pa.Table.from_pandas(variables, preserve_index=False),
            tmp / TRUTH_DIR / VARIABLES_FILE,
            **PARQUET_OPTIONS,
        )
        record = {
            "format": FORMAT,
            "catalog_path": str(info.path),
            "parameters": params,
            "realised": {
                "visits_per_band": {b: int((visits.band == b).sum()) for b in params["bands"]},
                "zeropoint_rms": float(np.std(visits.zp_offset)),
                "variables": {
                    k: int((variables["kind"] == k).sum()) for k in ("periodic", "transient")
                },
                "seconds": round(time.perf_counter() - t0, 2),
            },
            "output": {
                "n_visits": len(visits),
                "forced_source_rows": int(sum(r["forced_source_rows"] for r in results)),
                "source_rows": int(sum(r["source_rows"] for r in results)),
                "rows_per_tract": {str(r["tract"]): int(r["forced_source_rows"]) for r in results},
            },
        }
        (tmp / PARAMS_FILE).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
        _replace(tmp, out)
    except BaseException:
        _discard(tmp)
        raise
    log.info("wrote source tables %s in %.1f s", out, time.perf_counter() - t0)
    return SourceSynthInfo.from_record(out, record)
