"""Benchmark: the stellar-locus analysis end to end against pyarrow reading the columns it needs.

Run (prints one JSON object):

    .venv/bin/python benchmarks/bench_stellar_locus.py --rows 20000000 --data bench-data

The catalogue is ``<data>/synth-<rows>``, made with ``generate_object_catalog(path, rows=rows,
seed=1)`` if it does not exist (an existing one is reused as it is, never regenerated).

* time: ``stellar_locus(open_catalog(path))`` on the default (threaded) scheduler, against a
  plain pyarrow loop that reads the same stored columns of every file
  (``pq.read_table(columns=...)``), and nothing else; methods alternate, median of
  ``--repeat`` runs each, ratio skydask / pyarrow (goal <= 1.3). The analysis' scan alone
  (the catalogue read, cut and kept as the star frame, without the passes over it) is timed
  too, to tell the catalogue layer's share from the analysis' own;
* CPU time (``time.process_time``, all threads of the process) of each, and its ratio: the
  wall-time ratio moves with other jobs on the machine, the CPU ratio much less;
* peak memory: VmHWM of ``/proc/self/status`` of a fresh interpreter that runs one method (not
  ``ru_maxrss``, which Linux carries across ``exec``), against the in-memory (Arrow) size of
  those columns and the peak of an interpreter that only imports the modules.

Timings on a shared machine vary with what else runs; the load average is printed with them.
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
from skydask.analyses.locus.selection import Plan, build_plan
from skydask.analyses.locus.stars import star_arrays
from skydask.analyses.stellar_locus import StellarLocusConfig, stellar_locus
from skydask.synth import generate_object_catalog


def catalogue_path(data: Path, rows: int) -> Path:
    path = data / f"synth-{rows}"
    if not path.exists():
        generate_object_catalog(path, rows=rows, seed=1, progress=True)
    return path


def needed_columns(path: Path) -> list[str]:
    """The stored columns the analysis reads (its quantities and cuts, resolved)."""
    cat = skydask.open_catalog(path)
    plan = build_plan(cat, StellarLocusConfig())
    wanted = cat.schema.columns_for(list(plan.quantities))
    return [c for c in cat.schema.stored if c in wanted]


def files_of(path: Path) -> list[Path]:
    return sorted(path.glob("object_tract_*.parquet"))


def run_pyarrow(path: Path) -> int:
    columns = needed_columns(path)
    rows = 0
    for f in files_of(path):
        rows += pq.read_table(f, columns=columns).num_rows
    return rows


def run_skydask(path: Path) -> dict[str, float]:
    result = stellar_locus(skydask.open_catalog(path))
    return {k: float(q.value) for k, q in result.metrics.items() if k[0] in "wxy"}


def selected_stars(path: Path) -> tuple[Plan, skydask.Catalog]:
    """The analysis' plan, and the catalogue with its quantities selected and its cut
    pushed down (what its one scan reads)."""
    cat = skydask.open_catalog(path)
    plan = build_plan(cat, StellarLocusConfig())
    return plan, cat.select(list(plan.quantities)).where(plan.pushdown or "True")


def run_scan_only(path: Path) -> int:
    """The analysis' one scan alone: the selected stars read and kept, no passes over them."""
    plan, selected = selected_stars(path)
    rows = selected.to_dask()
    build = dask.delayed(star_arrays, pure=True)
    (kept,) = dask.persist([build(part, plan, "ebv") for part in rows.to_delayed()])
    return sum(stars.counts[plan.selections[0].key] for stars in dask.compute(*kept))


METHODS: dict[str, Callable[[Path], Any]] = {
    "skydask": run_skydask,
    "pyarrow": run_pyarrow,
    "skydask_scan_only": run_scan_only,
}


def column_sizes(path: Path, columns: list[str]) -> dict[str, float]:
    """In-memory (Arrow) and on-disk (compressed) size of the columns, MB."""
    arrow = disk = 0
    for f in files_of(path):
        arrow += pq.read_table(f, columns=columns).nbytes
        meta = pq.read_metadata(f)
        names = [meta.schema.column(j).path for j in range(meta.num_columns)]
        for rg in range(meta.num_row_groups):
            for c in columns:
                disk += meta.row_group(rg).column(names.index(c)).total_compressed_size
    return {"arrow_mb": arrow / 2**20, "compressed_mb": disk / 2**20}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--data", type=Path, default=Path("bench-data"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    path = catalogue_path(args.data, args.rows)
    columns = needed_columns(path)

    times: dict[str, list[float]] = {name: [] for name in METHODS}
    cpu: dict[str, list[float]] = {name: [] for name in METHODS}
    metrics: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, method in METHODS.items():
            t0, c0 = time.perf_counter(), time.process_time()
            out = method(path)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            if name == "skydask":
                metrics = out
    load = os.getloadavg()
    memory = {
        name: peak_memory_mb("bench_stellar_locus", name, path) for name in ("skydask", "pyarrow")
    }
    memory["imports_only"] = peak_memory_mb("bench_stellar_locus", None, path)
    median = {name: statistics.median(t) for name, t in times.items()}
    rounds = [a / b for a, b in zip(times["skydask"], times["pyarrow"], strict=True)]
    median_cpu = {name: statistics.median(t) for name, t in cpu.items()}
    report = {
        "rows": args.rows,
        "catalogue": str(path),
        "cpus": os.cpu_count(),
        "load_average_1_5_15min": [round(v, 2) for v in load],
        "columns_read": columns,
        "time_s": {name: [round(t, 3) for t in ts] for name, ts in times.items()},
        "median_time_s": {name: round(t, 3) for name, t in median.items()},
        "time_ratio_skydask_over_pyarrow": round(median["skydask"] / median["pyarrow"], 3),
        # each round's own ratio (the two runs minutes apart at most), then their median:
        # steadier than the ratio of medians when the machine's speed drifts during the runs
        "time_ratio_median_of_rounds": round(statistics.median(rounds), 3),
        "time_ratio_scan_only_over_pyarrow": round(
            median["skydask_scan_only"] / median["pyarrow"], 3
        ),
        # CPU seconds of the process (all threads): less sensitive to other jobs' load
        "median_cpu_s": {name: round(t, 3) for name, t in median_cpu.items()},
        "cpu_ratio_skydask_over_pyarrow": round(median_cpu["skydask"] / median_cpu["pyarrow"], 3),
        "peak_memory_mb": {name: round(v, 1) for name, v in memory.items()},
        "column_size_mb": {k: round(v, 1) for k, v in column_sizes(path, columns).items()},
        "metrics": {k: round(v, 3) for k, v in metrics.items()},
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
