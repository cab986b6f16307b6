"""Foundation benchmarks: skydask's catalogue scan against pyarrow and pandas, cones, opening.

Run (numbers go to benchmarks/README.md by hand, with this command line):

    .venv/bin/python benchmarks/bench_catalog.py --rows 20000000 --data bench-data

(a) select three magnitudes, where("extendedness == 0 & mag_r < 23"), count and mean colours,
    against a plain pyarrow loop reading the same native columns of the same files (ratio);
(b) the same against the DC2 tutorials' way, pandas reading whole files then filtering
    (time ratio, and peak memory of each, measured in fresh subprocesses);
(c) a 1-degree cone: bytes read as a fraction of a full scan of the same columns, and time;
(d) open_catalog on a 1,000-file catalogue (time), and len() from its footers.
Every time is the median of --repeat runs, methods alternating, all in this process.
"""

from __future__ import annotations

import argparse
import json
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
from skydask.synth import generate_object_catalog

CUT = "extendedness == 0 & mag_r < 23"
NATIVE = ["psFlux_g", "psFlux_r", "psFlux_i", "extendedness"]


def skydask_scan(path: Path) -> tuple[int, float, float]:
    cat = skydask.open_catalog(path).select(["g-r", "r-i"]).where(CUT)
    df = cat.to_dask()
    n, gr, ri = dask.compute(df.shape[0], df["g-r"].mean(), df["r-i"].mean())
    return int(n), float(gr), float(ri)


def _mags(table: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with np.errstate(all="ignore"):
        g = -2.5 * np.log10(table["psFlux_g"].to_numpy().astype(np.float64)) + 31.4
        r = -2.5 * np.log10(table["psFlux_r"].to_numpy().astype(np.float64)) + 31.4
        i = -2.5 * np.log10(table["psFlux_i"].to_numpy().astype(np.float64)) + 31.4
    return g, r, i, table["extendedness"].to_numpy()


def pyarrow_scan(path: Path) -> tuple[int, float, float]:
    n, s_gr, s_ri = 0, 0.0, 0.0
    for f in sorted(path.glob("object_tract_*.parquet")):
        g, r, i, ext = _mags(pq.read_table(f, columns=NATIVE))
        keep = (ext == 0) & (r < 23)
        n += int(keep.sum())
        s_gr += float(np.nansum((g - r)[keep]))
        s_ri += float(np.nansum((r - i)[keep]))
    return n, s_gr / n, s_ri / n


def pandas_scan(path: Path) -> tuple[int, float, float]:
    """The DC2 tutorials' way: read each whole file with pandas, then filter."""
    n, s_gr, s_ri = 0, 0.0, 0.0
    for f in sorted(path.glob("object_tract_*.parquet")):
        df = pd.read_parquet(f)
        with np.errstate(all="ignore"):
            df["mag_g"] = -2.5 * np.log10(df["psFlux_g"].astype(np.float64)) + 31.4
            df["mag_r"] = -2.5 * np.log10(df["psFlux_r"].astype(np.float64)) + 31.4
            df["mag_i"] = -2.5 * np.log10(df["psFlux_i"].astype(np.float64)) + 31.4
        sel = df[(df["extendedness"] == 0) & (df["mag_r"] < 23)]
        n += len(sel)
        s_gr += float((sel["mag_g"] - sel["mag_r"]).sum())
        s_ri += float((sel["mag_r"] - sel["mag_i"]).sum())
    return n, s_gr / n, s_ri / n


METHODS: dict[str, Callable[[Path], tuple[int, float, float]]] = {
    "skydask": skydask_scan,
    "pyarrow": pyarrow_scan,
    "pandas": pandas_scan,
}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bytes_of(path: Path, pieces: list[Any], columns: list[str]) -> int:
    """Compressed bytes of the given columns in the given row groups (None: all of a file)."""
    total = 0
    for piece in pieces:
        meta = pq.read_metadata(piece.path)
        names = [meta.schema.column(j).path for j in range(meta.num_columns)]
        rgs = piece.row_groups if piece.row_groups is not None else range(meta.num_row_groups)
        for rg in rgs:
            for c in columns:
                total += meta.row_group(rg).column(names.index(c)).total_compressed_size
    return total


def bench_cone(path: Path, repeat: int) -> dict[str, Any]:
    cat = skydask.open_catalog(path)
    ra0, ra1, dec0, dec1 = cat.sky_box() or (0, 0, 0, 0)
    ra, dec = (ra0 + ra1) / 2, (dec0 + dec1) / 2
    cone = cat.select(["g-r", "r-i"]).where(CUT).cone(ra, dec, 1.0)
    full = cat.select(["g-r", "r-i"]).where("extendedness == 0")  # same columns, no region
    columns = [*NATIVE, "ra", "dec"]
    cone_bytes = bytes_of(path, cone._planned_pieces(), columns)  # type: ignore[arg-type]
    full_bytes = bytes_of(path, full._planned_pieces(), columns)  # type: ignore[arg-type]
    times = {"cone": [], "scan": []}
    for _ in range(repeat):
        times["cone"].append(
            timed(
                lambda: (
                    skydask.open_catalog(path)
                    .select(["g-r"])
                    .where(CUT)
                    .cone(ra, dec, 1.0)
                    .to_dask()
                    .shape[0]
                    .compute()
                )
            )[0]
        )
        times["scan"].append(timed(lambda: skydask_scan(path))[0])
    return {
        "centre": [ra, dec],
        "bytes_fraction": cone_bytes / full_bytes,
        "row_groups": [cone.prune_stats.row_groups_kept, cone.prune_stats.row_groups_total],
        "time_ratio_cone_over_scan": statistics.median(times["cone"])
        / statistics.median(times["scan"]),
    }


def bench_local_cluster(path: Path, repeat: int) -> dict[str, Any]:
    """The scan on a 2-worker LocalCluster (processes) against the pyarrow loop."""
    from skydask.cluster import connect

    times: dict[str, list[float]] = {"skydask_2_workers": [], "pyarrow": []}
    with connect("local", n_workers=2, threads_per_worker=1, dashboard_address=None):
        skydask_scan(path)  # warm the workers (imports, page cache)
        for _ in range(repeat):
            times["skydask_2_workers"].append(timed(lambda: skydask_scan(path))[0])
            times["pyarrow"].append(timed(lambda: pyarrow_scan(path))[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"median_s": med, "ratio": med["skydask_2_workers"] / med["pyarrow"]}


def bench_open(data: Path) -> dict[str, Any]:
    many = data / "thousand_files"
    if not many.exists():
        tmp = data / "thousand_files.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for k in range(1000):
            n = 200
            pd.DataFrame(
                {
                    "objectId": np.arange(n) + k * n,
                    "ra": rng.uniform(0, 1, n) + k % 100,
                    "dec": rng.uniform(0, 1, n),
                    "psFlux_r": rng.uniform(1, 1e4, n),
                    "psFluxErr_r": rng.uniform(1, 10, n),
                }
            ).to_parquet(tmp / f"object_tract_{k}.parquet")
        tmp.rename(many)
    t_open, cat = timed(lambda: skydask.open_catalog(many))
    t_len, n = timed(lambda: len(cat))
    return {"files": 1000, "open_s": t_open, "len_from_footers_s": t_len, "rows": n}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--data", default="bench-data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--cluster", action="store_true", help="also time a 2-worker LocalCluster")
    args = parser.parse_args()
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    path = data / f"synth-{args.rows}"
    t_gen, info = timed(
        lambda: generate_object_catalog(path, rows=args.rows, seed=1, progress=True)
    )
    results: dict[str, Any] = {"rows": args.rows, "files": len(info.files), "generate_s": t_gen}

    with dask.config.set(scheduler="threads", num_workers=2):
        answers = {}
        times: dict[str, list[float]] = {m: [] for m in METHODS}
        for _ in range(args.repeat):
            for name, fn in METHODS.items():
                t, answers[name] = timed(lambda fn=fn: fn(path))
                times[name].append(t)
        ref = answers["pyarrow"]
        for name, ans in answers.items():
            assert ans[0] == ref[0] and np.allclose(ans[1:], ref[1:], rtol=1e-9), (name, ans, ref)
        med = {m: statistics.median(v) for m, v in times.items()}
        results["scan"] = {
            "answer": {"n": ref[0], "mean_g_r": ref[1], "mean_r_i": ref[2]},
            "median_s": med,
            "ratio_skydask_over_pyarrow": med["skydask"] / med["pyarrow"],
            "ratio_skydask_over_pandas": med["skydask"] / med["pandas"],
        }
        results["cone"] = bench_cone(path, args.repeat)
    if not args.skip_memory:
        results["peak_memory_mb"] = {m: peak_memory_mb("bench_catalog", m, path) for m in METHODS}
        results["peak_memory_mb"]["imports_only"] = peak_memory_mb("bench_catalog", None, path)
        columns_mb = (
            sum(
                pq.read_metadata(f).row_group(i).column(j).total_uncompressed_size
                for f in sorted(path.glob("object_tract_*.parquet"))
                for i in range(pq.read_metadata(f).num_row_groups)
                for j in range(pq.read_metadata(f).num_columns)
                if pq.read_metadata(f).schema.column(j).path in NATIVE
            )
            / 2**20
        )
        results["peak_memory_mb"]["native_columns_uncompressed"] = columns_mb
    if args.cluster:
        results["local_cluster"] = bench_local_cluster(path, args.repeat)
    results["open"] = bench_open(data)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
