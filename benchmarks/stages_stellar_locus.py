"""Where the stellar-locus time goes: its stages, each alternated with the pyarrow loop.

Run (prints one JSON object):

    .venv/bin/python benchmarks/stages_stellar_locus.py --rows 20000000 --data bench-data
    .venv/bin/python benchmarks/stages_stellar_locus.py --timeline

Each stage adds one step to the previous one, on the threaded scheduler (the analysis'
default), so the difference between two rows is what that step costs when two partitions
share the two cores:

* ``decode``: the 14 stored columns of every tract, read by the partition reader without a cut;
* ``select``: the reader with the analysis' pushed-down cut, the surviving rows taken and put
  in a frame (``read_piece``);
* ``star_arrays``: and the per-partition star arrays the passes read;
* ``analysis``: ``stellar_locus`` end to end (the scan's partials, the passes, the driver).

Every stage runs right after the pyarrow loop of ``bench_stellar_locus.py``; the ratio of each
round is taken against that round's loop, and the medians of ``--repeat`` rounds are printed,
with wall and CPU seconds (``resource.getrusage``: all threads, Arrow's pool included).

``--timeline`` instead runs the analysis once with dask callbacks and prints, per kind of
task, when the first started, when the last ended and the thread-seconds they took.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
from dask.callbacks import Callback

from bench_stellar_locus import (  # this folder
    catalogue_path,
    run_pyarrow,
    run_skydask,
    selected_stars,
)
from bench_twopoint import cpu_seconds  # this folder
from skydask.analyses.locus.stars import star_arrays
from skydask.catalog.reader import ReadPlan, read_piece


def stages(path: Path) -> dict[str, Callable[[], Any]]:
    """The stages, as functions of no argument (the plan is made once, outside the clock)."""
    plan, selected = selected_stars(path)
    read_plan = selected._plan()
    pieces = selected._planned_pieces()
    bare = ReadPlan(read_plan.columns, ())  # every stored column, no cut, no output

    def each(fn: Callable[[Any], Any]) -> Callable[[], Any]:
        return lambda: dask.compute(*[dask.delayed(fn)(piece) for piece in pieces])

    return {
        "decode": each(lambda piece: read_piece(piece, bare, False)),
        "select": each(lambda piece: read_piece(piece, read_plan, False)),
        "star_arrays": each(
            lambda piece: star_arrays(read_piece(piece, read_plan, False), plan, "ebv")
        ),
        "analysis": lambda: run_skydask(path),
    }


def measure(path: Path, repeat: int) -> dict[str, Any]:
    steps = stages(path)
    for fn in steps.values():  # imports and page cache, outside the clock
        fn()
    rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in steps}
    reference: list[tuple[float, float]] = []
    for _ in range(repeat):
        for name, fn in steps.items():
            c0, t0 = cpu_seconds(), time.perf_counter()
            run_pyarrow(path)
            ref_wall, ref_cpu = time.perf_counter() - t0, cpu_seconds() - c0
            reference.append((ref_wall, ref_cpu))
            c0, t0 = cpu_seconds(), time.perf_counter()
            fn()
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            rows[name].append((wall, cpu, wall / ref_wall))
    out: dict[str, Any] = {
        "pyarrow": {
            "wall_s": round(statistics.median(w for w, _ in reference), 3),
            "cpu_s": round(statistics.median(c for _, c in reference), 3),
        }
    }
    for name, values in rows.items():
        out[name] = {
            key: round(statistics.median(v[k] for v in values), 3)
            for k, key in enumerate(("wall_s", "cpu_s", "ratio"))
        }
    return out


class _Recorder(Callback):
    """Start and end of every task, with its thread."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, Any, int, float]] = []

    def _pretask(self, key: Any, dsk: Any, state: Any) -> None:
        self.events.append(("start", key, threading.get_ident(), time.perf_counter()))

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        self.events.append(("end", key, threading.get_ident(), time.perf_counter()))


def timeline(path: Path) -> dict[str, Any]:
    run_skydask(path)
    recorder = _Recorder()
    with recorder:
        t0 = time.perf_counter()
        run_skydask(path)
        total = time.perf_counter() - t0
    started: dict[tuple[Any, int], float] = {}
    kinds: dict[str, list[float]] = {}
    for what, key, thread, at in recorder.events:
        if what == "start":
            started[(key, thread)] = at
            continue
        begin = started.pop((key, thread))
        name = str(key[0] if isinstance(key, tuple) else key)
        kind = name.split("-")[0]
        if kind.startswith("<"):  # a callable object's repr: its class
            kind = kind.split(" object")[0].rsplit(".", 1)[-1]
        first, last, busy, count = kinds.get(kind, [float("inf"), 0.0, 0.0, 0])
        kinds[kind] = [min(first, begin - t0), max(last, at - t0), busy + at - begin, count + 1]
    return {
        "total_s": round(total, 3),
        "tasks": {
            kind: {
                "first_start_s": round(v[0], 3),
                "last_end_s": round(v[1], 3),
                "thread_s": round(v[2], 3),
                "count": int(v[3]),
            }
            for kind, v in sorted(kinds.items(), key=lambda kv: kv[1][0])
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--data", type=Path, default=Path("bench-data"))
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--timeline", action="store_true")
    args = parser.parse_args(argv)
    path = catalogue_path(args.data, args.rows)
    result = timeline(path) if args.timeline else measure(path, args.repeat)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
