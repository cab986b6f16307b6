"""The validation suite against its analyses run one by one, and a cache-hit rerun.

    .venv/bin/python benchmarks/bench_validation.py --rows 20000000 --data bench-data

Runs ``analyses/dc2_validation.yaml`` (its catalogue replaced by the benchmark catalogue) with
``skydask.run.run``: (1) the whole suite, (2) each analysis as a one-analysis suite, summed,
(3) the suite again, unchanged (a cache hit). Prints JSON with wall and CPU seconds (the CPU
time of this process, all threads: less sensitive to other jobs on the machine).

``--analyses`` picks the suite's analyses to time (default: the stellar locus and the depth
maps, the two that share one scan; the two-point analyses on 20 million objects take hours
with TXPipe's binning and are measured by ``bench_twopoint.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import dask

from skydask.run import load_spec, run
from skydask.synth import generate_object_catalog


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--data", default="bench-data")
    parser.add_argument("--analyses", default="stellar_locus,depth_map")
    args = parser.parse_args()
    catalog = Path(args.data) / f"synth-{args.rows}"
    generate_object_catalog(catalog, rows=args.rows, seed=1)
    full = load_spec(Path(__file__).parents[1] / "analyses" / "dc2_validation.yaml")
    wanted = args.analyses.split(",")
    suite = replace(
        full, catalog=str(catalog), analyses=tuple(a for a in full.analyses if a.name in wanted)
    )
    out = Path(tempfile.mkdtemp(prefix="bench-validation-"))
    try:
        with dask.config.set(scheduler="threads", num_workers=2):
            run(suite, out=out / "warm-up")  # page cache and imports warm for every timing
            t0, c0 = time.perf_counter(), time.process_time()
            first = run(suite, out=out / "suite")
            t_suite, c_suite = time.perf_counter() - t0, time.process_time() - c0
            singles, singles_cpu = {}, {}
            for analysis in suite.analyses:
                one = replace(suite, name=f"single-{analysis.name}", analyses=(analysis,))
                t0, c0 = time.perf_counter(), time.process_time()
                run(one, out=out / analysis.name)
                singles[analysis.name] = time.perf_counter() - t0
                singles_cpu[analysis.name] = time.process_time() - c0
            t0 = time.perf_counter()
            again = run(suite, out=out / "suite")
            t_hit = time.perf_counter() - t0
        print(
            json.dumps(
                {
                    "rows": args.rows,
                    "analyses": [a.name for a in suite.analyses],
                    "load_average_1_5_15min": [round(v, 2) for v in os.getloadavg()],
                    "suite_s": t_suite,
                    "suite_cpu_s": c_suite,
                    "one_by_one_cpu_s": singles_cpu,
                    "cpu_ratio_suite_over_sum": c_suite / sum(singles_cpu.values()),
                    "one_by_one_s": singles,
                    "sum_one_by_one_s": sum(singles.values()),
                    "ratio_suite_over_sum": t_suite / sum(singles.values()),
                    "cache_hit_s": t_hit,
                    "cache_hit": again.cache_hit,
                    "passed": first.passed,
                    "n_failed": first.metrics["n_failed"],
                },
                indent=2,
            )
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
