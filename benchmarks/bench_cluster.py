"""Cluster benchmarks: SLURM start-up, and the foundation scan on SLURM vs LocalCluster workers.

Needs the localhost SLURM (``bash scripts/slurm-up.sh``, as root). Run:

    .venv/bin/python benchmarks/bench_cluster.py --rows 20000000 --data bench-data

(1) time from ``connect("localhost-slurm")`` to both workers connected (median of --repeat);
(2) the scan of bench_catalog (count and mean colours of point sources brighter than r = 23)
    on 2 SLURM worker jobs against 2 LocalCluster workers (1 thread each), alternating.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

# run as a script, so this folder is on sys.path
from bench_catalog import skydask_scan, timed
from skydask.cluster import connect
from skydask.synth import generate_object_catalog


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--data", default="bench-data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = Path(args.data) / f"synth-{args.rows}"
    generate_object_catalog(path, rows=args.rows, seed=1)

    startup = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        with connect("localhost-slurm") as client:
            client.wait_for_workers(2, timeout=300)
            startup.append(time.perf_counter() - t0)

    scans: dict[str, list[float]] = {"slurm": [], "local": []}
    answers = {}
    with connect("localhost-slurm") as client:
        client.wait_for_workers(2, timeout=300)
        skydask_scan(path)  # warm up the workers
        for _ in range(args.repeat):
            t, answers["slurm"] = timed(lambda: skydask_scan(path))
            scans["slurm"].append(t)
    with connect("local", n_workers=2, threads_per_worker=1, dashboard_address=None):
        skydask_scan(path)
        for _ in range(args.repeat):
            t, answers["local"] = timed(lambda: skydask_scan(path))
            scans["local"].append(t)
    assert answers["slurm"] == answers["local"], answers
    med = {k: statistics.median(v) for k, v in scans.items()}
    print(
        json.dumps(
            {
                "rows": args.rows,
                "connect_to_2_workers_s": {"median": statistics.median(startup), "all": startup},
                "scan_median_s": med,
                "ratio_slurm_over_local": med["slurm"] / med["local"],
                "answer": answers["slurm"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
