"""write_catalog: time and peak memory of writing a synthetic catalogue as HATS.

    .venv/bin/python benchmarks/bench_write.py --rows 5000000 --data bench-data

Generates (or reuses) a synthetic DC2-layout catalogue, then in a fresh subprocess writes it
with ``skydask.write_catalog`` and reports wall time and peak resident memory (VmHWM). The
reference in the same script is a plain pyarrow copy of the same files (read each file, write
it back), the floor for any rewrite of the data.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from skydask.synth import generate_object_catalog

WRITE = """
import json, sys, time, dask, skydask
src, dst = sys.argv[1], sys.argv[2]
with dask.config.set(scheduler="threads", num_workers=2):
    t0 = time.perf_counter()
    info = skydask.write_catalog(skydask.open_catalog(src), dst)
    dt = time.perf_counter() - t0
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"seconds": dt, "peak_mb": int(hwm.split()[1]) / 1024, "order": info.order,
                  "pixels": info.npixels, "rows": info.nrows}))
"""

COPY = """
import json, sys, time, pathlib, pyarrow.parquet as pq
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
t0 = time.perf_counter()
for f in sorted(src.glob("object_tract_*.parquet")):
    pq.write_table(pq.read_table(f), dst / f.name)
dt = time.perf_counter() - t0
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"seconds": dt, "peak_mb": int(hwm.split()[1]) / 1024}))
"""


def run(code: str, src: Path, dst: Path) -> dict[str, float]:
    shutil.rmtree(dst, ignore_errors=True)
    out = subprocess.run(
        [sys.executable, "-c", code, str(src), str(dst)], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    shutil.rmtree(dst, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--data", default="bench-data")
    args = parser.parse_args()
    data = Path(args.data)
    src = data / f"synth-{args.rows}"
    generate_object_catalog(src, rows=args.rows, seed=1)
    files = sorted(src.glob("object_tract_*.parquet"))
    columns = pq.read_schema(files[0]).names
    t0 = time.perf_counter()
    copy = run(COPY, src, data / "copy.tmp")
    write = run(WRITE, src, data / "hats.tmp")
    results = {
        "rows": args.rows,
        "columns": len(columns),
        "files": len(files),
        "write_catalog": write,
        "pyarrow_copy": copy,
        "time_ratio_write_over_copy": write["seconds"] / copy["seconds"],
        "total_s": time.perf_counter() - t0,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
