"""Benchmark of the depth map: six bands end to end against pyarrow reading the same columns.

Run (numbers go to benchmarks/README.md by hand, with this command line):

    .venv/bin/python benchmarks/bench_depth.py --rows 20000000 --data bench-data

The catalogue is ``<data>/synth-<rows>`` made by ``generate_object_catalog(path, rows=...,
seed=1)`` (reused when present, never regenerated). Times: ``open_catalog`` + ``depth_map``
(default nside 1024, "flux_err", bands ugrizy, threaded scheduler) against a plain pyarrow
loop reading the columns the map needs (``ra``, ``dec``, ``psFluxErr_<b>``) file by file;
methods alternate, the median of ``--repeat`` runs is kept, and the ratio of process CPU
times is given beside the wall-clock ratio (less sensitive to other users of a shared
machine). Peak memory: VmHWM of /proc/self/status in a fresh interpreter per method (not
ru_maxrss, which Linux carries across exec), against the in-memory size of those columns.
``--hats`` also maps a HATS copy of those columns (written once to
``<data>/synth-<rows>-depth-hats``), where positions come from ``_healpix_29``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import pyarrow.parquet as pq

import skydask
from peak_memory import peak_memory_mb  # run as a script: this folder is on sys.path
from skydask.analyses.depthmap import depth_map
from skydask.synth import generate_object_catalog

BANDS = "ugrizy"
ERRORS = [f"psFluxErr_{b}" for b in BANDS]


def data_files(path: Path) -> list[Path]:
    hats = sorted((path / "dataset").glob("Norder=*/Dir=*/Npix=*.parquet"))
    return hats or sorted(path.glob("object_tract_*.parquet"))


def needed_columns(path: Path) -> list[str]:
    names = pq.read_schema(data_files(path)[0]).names
    return (["_healpix_29"] if "_healpix_29" in names else ["ra", "dec"]) + ERRORS


def skydask_depth(path: Path, nside: int = 1024) -> dict[str, Any]:
    result = depth_map(skydask.open_catalog(path), bands=BANDS, nside=nside)
    table = result.table()
    return {
        "pixels_i": int(table.set_index("band").loc["i", "n_pixels"]),
        "median_depth": dict(zip(table["band"], table["depth_median"].round(4), strict=True)),
        "reduction": dict(result.reduction),
    }


def pyarrow_read(path: Path) -> dict[str, Any]:
    columns = needed_columns(path)
    rows = 0
    for f in data_files(path):
        rows += pq.read_table(f, columns=columns).num_rows
    return {"rows": rows}


METHODS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "skydask": skydask_depth,
    "pyarrow": pyarrow_read,
}


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def columns_mb(path: Path) -> dict[str, float]:
    """Size of the needed columns: in memory (numpy) and uncompressed in Parquet."""
    columns = needed_columns(path)
    rows, parquet = 0, 0
    for f in data_files(path):
        meta = pq.read_metadata(f)
        rows += meta.num_rows
        names = [meta.schema.column(j).path for j in range(meta.num_columns)]
        for i in range(meta.num_row_groups):
            for c in columns:
                parquet += meta.row_group(i).column(names.index(c)).total_uncompressed_size
    bytes_per_row = 8 * (len(columns) - len(ERRORS)) + 4 * len(ERRORS)
    return {"in_memory": rows * bytes_per_row / 2**20, "parquet_uncompressed": parquet / 2**20}


def compare(path: Path, repeat: int) -> dict[str, Any]:
    wall: dict[str, list[float]] = {m: [] for m in METHODS}
    cpu: dict[str, list[float]] = {m: [] for m in METHODS}
    answers: dict[str, Any] = {}
    for _ in range(repeat):
        for name, fn in METHODS.items():
            w, c, answers[name] = timed(lambda fn=fn: fn(path))
            wall[name].append(w)
            cpu[name].append(c)
    assert answers["skydask"]["reduction"]["rows_read"] == answers["pyarrow"]["rows"]
    med_wall = {m: statistics.median(v) for m, v in wall.items()}
    med_cpu = {m: statistics.median(v) for m, v in cpu.items()}
    return {
        "columns": needed_columns(path),
        "answer": answers["skydask"],
        "median_wall_s": med_wall,
        "median_cpu_s": med_cpu,
        "ratio_wall_skydask_over_pyarrow": med_wall["skydask"] / med_wall["pyarrow"],
        "ratio_cpu_skydask_over_pyarrow": med_cpu["skydask"] / med_cpu["pyarrow"],
        # each round's own ratio, then their median: steadier when the machine's speed drifts
        "ratio_wall_median_of_rounds": statistics.median(
            a / b for a, b in zip(wall["skydask"], wall["pyarrow"], strict=True)
        ),
    }


def memory(path: Path) -> dict[str, Any]:
    peak = {m: peak_memory_mb("bench_depth", m, path, scheduler="threads") for m in METHODS}
    peak["imports_only"] = peak_memory_mb("bench_depth", None, path, scheduler="threads")
    size = columns_mb(path)
    return {
        "peak_mb": peak,
        "columns_mb": size,
        "skydask_over_columns": peak["skydask"] / size["in_memory"],
        "skydask_above_imports_over_columns": (peak["skydask"] - peak["imports_only"])
        / size["in_memory"],
    }


def hats_copy(path: Path, data: Path, rows: int) -> Path:
    out = data / f"synth-{rows}-depth-hats"
    if not out.exists():
        cat = skydask.open_catalog(path).select(["ra", "dec", *ERRORS])
        skydask.write_catalog(cat, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--data", default="bench-data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--hats", action="store_true", help="also map a HATS copy")
    args = parser.parse_args()
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    path = data / f"synth-{args.rows}"
    if not (path / "synth.json").exists():
        generate_object_catalog(path, rows=args.rows, seed=1, progress=True)
    results: dict[str, Any] = {
        "rows": args.rows,
        "files": len(data_files(path)),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "note": "2 cores shared with other users; wall ratios vary with their load",
    }
    with dask.config.set(scheduler="threads"):
        skydask_depth(path)  # warm the page cache and the imports
        results["tracts"] = compare(path, args.repeat)
        if args.hats:
            hats = hats_copy(path, data, args.rows)
            skydask_depth(hats)
            results["hats"] = compare(hats, args.repeat)
    if not args.skip_memory:
        results["tracts"]["memory"] = memory(path)
        if args.hats:
            results["hats"]["memory"] = memory(hats_copy(path, data, args.rows))
    results["load_average_at_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
