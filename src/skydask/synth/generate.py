"""Orchestration: plan the sky, run one dask task per group of tracts, write atomically, cache.

The work is split by tract: ``npartitions`` groups of consecutive tracts (default one per
tract), one ``dask.delayed`` task per group. A task generates its tracts patch by patch and
streams each patch to the tract's Parquet file as one row group, so peak memory is about one
patch plus the writers' buffers, whatever the total. ``dask.compute`` runs the tasks on the
default scheduler, which is a ``distributed`` cluster when a client is active (the output
directory must then be on a file system the workers share).

Writing is atomic: everything goes to ``out_dir.parent / ".tmp-<name>-<random>"`` and is
renamed to ``out_dir`` at the end; a failure removes the temporary directory and leaves
``out_dir`` as it was. An existing ``out_dir`` with the same parameters is returned as is.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from skydask.errors import CatalogReadError, SpecError
from skydask.scheduling import compute
from skydask.synth import objects as _objects
from skydask.synth.config import MAX_ROWS_PER_PATCH, SynthConfig, diff_parameters
from skydask.synth.io import (
    DEPTH_TRUTH_FILE,
    OBJECT_DICTIONARY_COLUMNS,
    PARAMS_FILE,
    PARQUET_OPTIONS,
    POINTINGS_FILE,
    TRUTH_DIR,
    object_file_name,
    object_schema,
    read_synth_params,
    truth_dictionary_columns,
    truth_file_name,
    write_table,
)
from skydask.synth.shear import ShearModel, shear_field
from skydask.synth.sky import Tract, allocate_rows, plan_tracts
from skydask.synth.survey import DepthTruth, compute_depth_truth, draw_pointings, pointings_frame

__all__ = ["SynthInfo", "generate_object_catalog"]

log = logging.getLogger(__name__)

FORMAT = "skydask.synth.object_catalog"


@dataclass(frozen=True)
class SynthInfo:
    """What a synthetic catalogue is and where its files are.

    Attributes
    ----------
    path
        The catalogue directory.
    rows, seed, footprint, years, nside_truth
        The parameters it was generated with.
    tracts
        Tract ids with at least one object, ascending.
    files
        The object files ``object_tract_<N>.parquet``, in tract order.
    """

    path: Path
    rows: int
    seed: int
    tracts: tuple[int, ...]
    files: tuple[Path, ...]
    footprint: tuple[float, float, float, float]
    years: float
    nside_truth: int

    @property
    def truth_dir(self) -> Path:
        """Directory of the truth tables."""
        return self.path / TRUTH_DIR

    @property
    def truth_files(self) -> tuple[Path, ...]:
        """Per-object truth files ``truth/truth_tract_<N>.parquet``, in tract order."""
        return tuple(self.truth_dir / truth_file_name(t) for t in self.tracts)

    @property
    def depth_truth_path(self) -> Path:
        """The per-pixel truth table."""
        return self.truth_dir / DEPTH_TRUTH_FILE

    @property
    def params_path(self) -> Path:
        """The ``synth.json`` record."""
        return self.path / PARAMS_FILE

    @classmethod
    def from_record(cls, path: Path, record: dict[str, Any]) -> SynthInfo:
        p = record["parameters"]
        tracts = tuple(int(t) for t in record["output"]["tracts"])
        fp = [float(v) for v in p["footprint"]]
        return cls(
            path=path,
            rows=int(p["rows"]),
            seed=int(p["seed"]),
            tracts=tracts,
            files=tuple(path / object_file_name(t) for t in tracts),
            footprint=(fp[0], fp[1], fp[2], fp[3]),
            years=float(p["years"]),
            nside_truth=int(p["nside_truth"]),
        )


def _package_version() -> str:
    try:
        return metadata.version("skydask")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _write_tracts(
    tmp: Path,
    tracts: Sequence[Tract],
    patch_rows: Sequence[Sequence[int]],
    config: SynthConfig,
    depth: DepthTruth,
) -> list[dict[str, int]]:
    """One task: generate and write the given tracts, one row group per non-empty patch."""
    out = []
    for tract, rows in zip(tracts, patch_rows, strict=True):
        if sum(rows) == 0:
            continue
        obj_path = tmp / object_file_name(tract.tract)
        truth_path = tmp / TRUTH_DIR / truth_file_name(tract.tract)
        truth_writer: pq.ParquetWriter | None = None
        with pq.ParquetWriter(
            obj_path,
            object_schema(),
            use_dictionary=OBJECT_DICTIONARY_COLUMNS,
            **PARQUET_OPTIONS,
        ) as writer:
            try:
                for patch, n in zip(tract.patches, rows, strict=True):
                    if n == 0:
                        continue
                    table, truth = _objects.make_patch(tract, patch, n, config, depth)
                    # one row group per patch, however many rows it has
                    writer.write_table(table, row_group_size=n)
                    if truth_writer is None:
                        truth_writer = pq.ParquetWriter(
                            truth_path,
                            truth.schema,
                            use_dictionary=truth_dictionary_columns(truth.schema),
                            **PARQUET_OPTIONS,
                        )
                    truth_writer.write_table(truth, row_group_size=n)
            finally:
                if truth_writer is not None:
                    truth_writer.close()
        log.debug("wrote tract %d: %d rows in %d patches", tract.tract, sum(rows), len(rows))
        out.append({"tract": tract.tract, "rows": int(sum(rows))})
    return out


def _cached(out: Path, params: dict[str, Any], overwrite: bool) -> SynthInfo | None:
    """The existing catalogue if it matches ``params``; raise if it differs and not overwrite."""
    if not out.exists():
        return None
    try:
        record = read_synth_params(out)
        old = record["parameters"]
    except (CatalogReadError, KeyError, TypeError):
        if overwrite:
            return None
        raise SpecError(
            f"{out} exists and is not a skydask.synth catalogue (no readable {PARAMS_FILE}); "
            "remove it, choose another directory or pass overwrite=True"
        ) from None
    differences = diff_parameters(old, params)
    if not differences:
        info = SynthInfo.from_record(out, record)
        missing = [f for f in (*info.files, *info.truth_files) if not f.exists()]
        if not missing:
            log.info("synthetic catalogue %s already exists with these parameters", out)
            return info
        if not overwrite:
            raise SpecError(
                f"{out} has matching parameters but is missing {len(missing)} files "
                f"(first: {missing[0]}); pass overwrite=True to regenerate it"
            )
        return None
    if overwrite:
        return None
    shown = "; ".join(differences[:10]) + ("; ..." if len(differences) > 10 else "")
    raise SpecError(
        f"{out} holds a synthetic catalogue generated with different parameters "
        f"({len(differences)} differ: {shown}); pass overwrite=True to replace it or choose "
        "another directory"
    )


def _groups(n_items: int, npartitions: int) -> list[range]:
    bounds = np.linspace(0, n_items, npartitions + 1).round().astype(int)
    return [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def generate_object_catalog(
    out_dir: str | os.PathLike[str],
    rows: int = 2_000_000,
    seed: int = 42,
    *,
    footprint: tuple[float, float, float, float] = (55.0, 65.0, -40.0, -32.0),
    years: float = 5.0,
    shear: ShearModel | None = None,
    npartitions: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> SynthInfo:
    """Generate a deterministic DC2-like object catalogue with known truth.

    Parameters
    ----------
    out_dir
        Directory to create (atomically). Parquet files ``object_tract_<N>.parquet`` (one row
        group per patch, columns exactly the schema's native quantities), ``truth/`` and
        ``synth.json``.
    rows
        Total number of objects, allocated to patches in proportion to their solid angle.
    seed
        Seed of every random draw; the same seed gives the same data for any ``npartitions``.
    footprint
        ``(ra_min, ra_max, dec_min, dec_max)`` in degrees (no wrap through RA = 0).
    years
        Survey duration; the visit numbers are the 10-year LSST design scaled by ``years / 10``.
    shear
        The true shear field (:class:`skydask.synth.shear.ShearModel`, recorded in
        ``synth.json``); None is the default model (a power-law Gaussian field plus 5 isothermal
        halos). ``ShearModel.from_power_spectrum(ell, c_ell, n_halos=0)`` draws the Gaussian
        field from a tabulated convergence power spectrum, such as a cosmology's shear ``C_ell``
        (:func:`skydask.analyses.twopoint.theory.shear_model`), so that a measured xi+/xi- can
        be compared with that theory.
    npartitions
        Number of dask tasks (groups of consecutive tracts); default one per tract.
    overwrite
        Replace an existing ``out_dir`` made with other parameters (otherwise an error).
    progress
        Show dask's progress bar (``distributed.progress`` when a client is active).

    Returns
    -------
    SynthInfo
        Paths and parameters of the catalogue.

    Raises
    ------
    SpecError
        If a parameter is invalid, or ``out_dir`` exists with other parameters and
        ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     info = generate_object_catalog(f"{tmp}/cat", rows=2000, seed=1,
    ...                                    footprint=(60.0, 61.0, -35.0, -34.0), years=1.0)
    ...     df = pd.read_parquet(info.files[0])
    >>> info.rows, info.tracts
    (2000, (2150,))
    >>> len(df)
    2000

    A field without halos, whose convergence power spectrum is a power law:

    >>> ell = np.geomspace(10.0, 2.0e4, 100)
    >>> model = ShearModel.from_power_spectrum(ell, 1e-9 * (ell / 100.0) ** -1.2, n_halos=0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     info = generate_object_catalog(f"{tmp}/cat", rows=2000, seed=1, shear=model,
    ...                                    footprint=(60.0, 61.0, -35.0, -34.0), years=1.0)
    ...     record = read_synth_params(info.path)["parameters"]["shear"]
    >>> record["n_halos"], len(record["power_table"]["ell"])
    (0, 100)
    """
    config = SynthConfig.create(rows, seed, footprint, years, shear)
    if npartitions is not None and (
        isinstance(npartitions, bool) or not isinstance(npartitions, int) or npartitions < 1
    ):
        raise SpecError(f"parameter 'npartitions' must be a positive integer; got {npartitions!r}")
    params = config.parameters()
    out = Path(out_dir)
    cached = _cached(out, params, overwrite)
    if cached is not None:
        return cached

    t0 = time.perf_counter()
    tracts = plan_tracts(config.footprint)
    patches = [p for t in tracts for p in t.patches]
    alloc = allocate_rows([p.solid_angle for p in patches], config.rows)
    if alloc.max() >= MAX_ROWS_PER_PATCH:
        raise SpecError(
            f"parameter 'rows' = {config.rows} puts {int(alloc.max())} objects in one patch; "
            f"objectId allows fewer than {MAX_ROWS_PER_PATCH} per patch: enlarge the footprint"
        )
    patch_rows: list[list[int]] = []
    start = 0
    for t in tracts:
        patch_rows.append([int(v) for v in alloc[start : start + len(t.patches)]])
        start += len(t.patches)

    pointings = draw_pointings(config.footprint, config.years, config.seed, config.survey)
    depth = compute_depth_truth(
        config.footprint, config.years, config.seed, config.nside_truth, config.survey, pointings
    )
    field = shear_field(config.footprint, config.seed, config.shear)
    log.info(
        "generating %d objects in %d tracts (%d patches), %d pixels of depth truth",
        config.rows, len(tracts), len(patches), len(depth.pixels),
    )  # fmt: skip

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".tmp-{out.name}-{secrets.token_hex(6)}"
    tmp.mkdir()
    try:
        (tmp / TRUTH_DIR).mkdir()
        depth_d = dask.delayed(depth, pure=True)
        groups = _groups(len(tracts), npartitions or len(tracts))
        tasks = [
            dask.delayed(_write_tracts, pure=False)(
                tmp, [tracts[i] for i in g], [patch_rows[i] for i in g], config, depth_d
            )
            for g in groups
        ]  # fmt: skip
        results = [item for part in compute(*tasks, progress=progress) for item in part]
        results.sort(key=lambda r: r["tract"])

        for name, frame in (
            (DEPTH_TRUTH_FILE, depth.to_frame()),
            (POINTINGS_FILE, pointings_frame(pointings)),
        ):
            write_table(tmp / TRUTH_DIR / name, pa.Table.from_pandas(frame, preserve_index=False))
        record = {
            "format": FORMAT,
            "skydask_version": _package_version(),
            "parameters": params,
            "realised": {
                "n_pointings": {p.band: len(p.ra) for p in pointings},
                "mean_visits": {
                    p.band: float(np.mean(depth.nvisits[k])) for k, p in enumerate(pointings)
                },
                "depth_truth_pixels": len(depth.pixels),
                "shear_field": field.summary(),
                "seconds": round(time.perf_counter() - t0, 2),
            },
            "output": {
                "tracts": [r["tract"] for r in results],
                "rows_per_tract": {str(r["tract"]): r["rows"] for r in results},
                "patches": len(patches),
            },
        }
        (tmp / PARAMS_FILE).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
        _replace(tmp, out)
    except BaseException:
        _discard(tmp)
        raise
    log.info("wrote %s in %.1f s", out, time.perf_counter() - t0)
    return SynthInfo.from_record(out, record)


def _discard(tmp: Path) -> None:
    """Remove a failed generation's temporary directory, even with tasks still running.

    When one task fails, dask re-raises at once while the other tasks may still be running
    and about to open their next file under ``tmp``. Renaming the directory first makes those
    opens fail (tasks never create directories), so nothing can reappear while it is removed.
    """
    doomed = tmp.with_name(tmp.name + "-failed")
    try:
        tmp.rename(doomed)
    except OSError:
        doomed = tmp
    for _ in range(50):
        shutil.rmtree(doomed, ignore_errors=True)
        if not doomed.exists():
            return
        time.sleep(0.1)
    log.warning("could not remove the temporary directory %s", doomed)


def _replace(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``, replacing an existing ``out`` with a second rename."""
    if not out.exists():
        tmp.rename(out)
        return
    trash = out.parent / f".tmp-{out.name}-old-{secrets.token_hex(6)}"
    out.rename(trash)
    try:
        tmp.rename(out)
    except BaseException:
        trash.rename(out)  # put the old catalogue back
        raise
    shutil.rmtree(trash, ignore_errors=True)
