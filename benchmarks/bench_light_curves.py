"""Benchmark of light-curve statistics for every object against pandas on the table loaded whole.

Run (numbers go to benchmarks/README.md by hand, with this command line):

    .venv/bin/python benchmarks/bench_light_curves.py --rows 610000 --years 1 --data bench-data

Data: ``generate_object_catalog(<data>/lc-<rows>-<years>y, rows=..., seed=1, years=...)`` (the
default 80 deg2 footprint) and its ForcedSource table from ``generate_source_tables`` (bands
ugrizy, about 82 visits per object and year; 610,000 objects over one year give ~50 million
rows), reused when present. ``--layout tract`` (default) reads the ForcedSource partitioned by
tract (each object whole in one partition: no shuffle); ``--layout visit`` one file per visit
(a shuffle by objectId).

Task: per (object, band) the number of epochs, mean, standard deviation, weighted mean and its
error, chi^2 about the weighted mean, first and last epoch, of the unflagged measurements.

* skydask: ``light_curves(open_catalog(forced_source_dir))`` on the threaded scheduler.
* pandas: ``pandas.read_parquet`` of the six needed columns of every file, concatenated, then
  the same statistics with ``groupby`` (sums, then a second pass for chi^2).

Methods alternate, the median of ``--repeat`` runs is kept, CPU times are given beside wall
times (a shared machine), and both answers are checked equal. Peak memory: VmHWM of a fresh
interpreter per method (imports alone reported too).
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
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

import skydask
from peak_memory import peak_memory_mb  # run as a script: this folder is on sys.path
from skydask.analyses.multiepoch import light_curves
from skydask.synth import generate_object_catalog
from skydask.synth.sources import generate_source_tables

COLUMNS = ["objectId", "filter", "mjd", "psFlux", "psFluxErr", "psFlux_flag"]


def dataset(data: Path, rows: int, years: float, layout: str) -> Path:
    """The ForcedSource directory (generated once)."""
    catalog = generate_object_catalog(
        data / f"lc-{rows}-{years:g}y", rows=rows, seed=1, years=years, progress=True
    )
    tables = generate_source_tables(
        catalog,
        catalog.path / f"multiepoch-{layout}",
        bands="ugrizy",
        source_layout="tract",
        forced_source_layout=layout,
        progress=True,
    )
    return tables.forced_source_dir


def skydask_stats(path: Path) -> pd.DataFrame:
    stats: pd.DataFrame = light_curves(skydask.open_catalog(path)).stats
    return stats


def pandas_stats(path: Path) -> pd.DataFrame:
    files = sorted(path.rglob("*.parquet"))
    frame = pd.concat([pd.read_parquet(f, columns=COLUMNS) for f in files], ignore_index=True)
    frame = frame[~frame["psFlux_flag"]]
    flux = frame["psFlux"].astype(np.float64)
    w = 1.0 / frame["psFluxErr"].astype(np.float64) ** 2
    work = pd.DataFrame(
        {"objectId": frame["objectId"], "band": frame["filter"], "f": flux, "w": w,
         "wf": w * flux, "mjd": frame["mjd"]}
    )  # fmt: skip
    grouped = work.groupby(["objectId", "band"], sort=True, observed=True)
    out = grouped.agg(
        n_epochs=("f", "size"), flux_mean=("f", "mean"), flux_std=("f", "std"),
        sw=("w", "sum"), swf=("wf", "sum"), mjd_min=("mjd", "min"), mjd_max=("mjd", "max"),
    )  # fmt: skip
    out["flux_wmean"] = out["swf"] / out["sw"]
    out["flux_wmean_err"] = 1.0 / np.sqrt(out["sw"])
    wmean = grouped["wf"].transform("sum") / grouped["w"].transform("sum")
    work["r2"] = work["w"] * (work["f"] - wmean) ** 2
    out["chi2"] = work.groupby(["objectId", "band"], sort=True, observed=True)["r2"].sum()
    out["chi2_dof"] = out["chi2"] / (out["n_epochs"] - 1)
    return out.drop(columns=["sw", "swf"]).reset_index()


METHODS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "skydask": skydask_stats,
    "pandas": pandas_stats,
}


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def check_equal(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, float]:
    """Both methods' statistics agree (largest relative difference per column)."""
    a = a.sort_values(["objectId", "band"], ignore_index=True)
    b = b.sort_values(["objectId", "band"], ignore_index=True)
    if not (a["objectId"].to_numpy() == b["objectId"].to_numpy()).all():
        raise AssertionError("the two methods found different objects")
    worst = {}
    for column in ["n_epochs", "flux_mean", "flux_wmean", "chi2", "mjd_max"]:
        x, y = a[column].to_numpy(np.float64), b[column].to_numpy(np.float64)
        scale = np.maximum(np.abs(y), 1e-9)
        worst[column] = float(np.nanmax(np.abs(x - y) / scale))
    if max(worst.values()) > 1e-6:
        raise AssertionError(f"the methods disagree: {worst}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=610_000, help="objects in the catalogue")
    parser.add_argument("--years", type=float, default=1.0)
    parser.add_argument("--data", type=Path, default=Path("bench-data"))
    parser.add_argument("--layout", choices=["tract", "visit"], default="tract")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    args = parser.parse_args()
    dask.config.set(scheduler="threads")
    path = dataset(args.data, args.rows, args.years, args.layout)
    n_rows = sum(pq.read_metadata(f).num_rows for f in sorted(path.rglob("*.parquet")))
    on_disk = sum(f.stat().st_size for f in path.rglob("*.parquet"))

    wall: dict[str, list[float]] = {m: [] for m in METHODS}
    cpu: dict[str, list[float]] = {m: [] for m in METHODS}
    answers: dict[str, pd.DataFrame] = {}
    for _ in range(args.repeat):
        for name, fn in METHODS.items():
            w, c, answers[name] = timed(lambda fn=fn: fn(path))
            wall[name].append(w)
            cpu[name].append(c)
    agreement = check_equal(answers["skydask"], answers["pandas"])
    median = {m: statistics.median(v) for m, v in wall.items()}
    median_cpu = {m: statistics.median(v) for m, v in cpu.items()}
    report: dict[str, Any] = {
        "rows": n_rows,
        "objects_x_bands": len(answers["skydask"]),
        "files": len(list(path.rglob("*.parquet"))),
        "layout": args.layout,
        "parquet_mb": round(on_disk / 2**20, 1),
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "seconds": {m: round(v, 2) for m, v in median.items()},
        "cpu_seconds": {m: round(v, 2) for m, v in median_cpu.items()},
        "ratio_skydask_over_pandas": round(median["skydask"] / median["pandas"], 3),
        "cpu_ratio_skydask_over_pandas": round(median_cpu["skydask"] / median_cpu["pandas"], 3),
        "agreement_max_relative_difference": agreement,
    }
    if not args.no_memory:
        report["peak_memory_mb"] = {
            "imports_only": round(
                peak_memory_mb("bench_light_curves", None, path, scheduler="threads")
            ),
            **{
                m: round(peak_memory_mb("bench_light_curves", m, path, scheduler="threads"))
                for m in METHODS
            },
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
