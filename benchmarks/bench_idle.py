"""What an idle LocalCluster costs: CPU seconds of its processes while no task runs.

distributed's timers (event-loop tick, memory monitors, system monitor, heartbeats) wake
every process of a cluster many times a second. skydask starts its clusters with
``skydask.cluster.housekeeping`` (:mod:`skydask.cluster.housekeeping`); this script
measures an idle two-worker LocalCluster with those settings and with distributed's own
(the key set to None), alternating, in this process:

    .venv/bin/python benchmarks/bench_idle.py --seconds 10 --repeat 3

Printed: per variant, the median CPU seconds over ``--seconds`` of this process (the
client, the scheduler and the nannies live here) and of each worker, and the ratio of the
totals (skydask's settings over distributed's).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import dask

# run as a script, so this folder is on sys.path
from bench_twopoint import cpu_seconds
from skydask.cluster import connect


def idle_cpu(seconds: float, housekeeping: bool) -> dict[str, Any]:
    """CPU seconds spent by an idle two-worker LocalCluster over ``seconds``."""
    settings = {} if housekeeping else {"skydask.cluster.housekeeping": None}
    with dask.config.set(settings), connect("local", n_workers=2, dashboard_address=None) as client:
        client.wait_for_workers(2)
        time.sleep(2.0)  # start-up over
        here, workers = cpu_seconds(), client.run(cpu_seconds)
        time.sleep(seconds)
        here_after, workers_after = cpu_seconds(), client.run(cpu_seconds)
    spent = sorted(workers_after[w] - workers[w] for w in workers)
    return {"client_process": here_after - here, "workers": spent}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"skydask": [], "distributed": []}
    for _ in range(args.repeat):
        runs["distributed"].append(idle_cpu(args.seconds, housekeeping=False))
        runs["skydask"].append(idle_cpu(args.seconds, housekeeping=True))
    out: dict[str, Any] = {"seconds": args.seconds, "repeat": args.repeat}
    totals = {}
    for name, found in runs.items():
        client = statistics.median(r["client_process"] for r in found)
        workers = statistics.median(sum(r["workers"]) for r in found)
        totals[name] = client + workers
        out[name] = {
            "client_process_cpu_s": round(client, 3),
            "workers_cpu_s": round(workers, 3),
            "each_run": [
                [round(r["client_process"], 3), [round(w, 3) for w in r["workers"]]] for r in found
            ],
        }
    out["ratio_total_cpu"] = round(totals["skydask"] / totals["distributed"], 3)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
