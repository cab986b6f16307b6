"""Two-point benchmark: distributed shear_shear / galaxy_shear against one TreeCorr process.

Each measurement runs in a fresh child process (so that peak memory is its own), alternating
TreeCorr and skydask, on the same data and the same patch centres:

* TreeCorr: one process, ``num_threads=2``; reads the Parquet columns with pyarrow, builds the
  catalogues with ``patch_centers``, ``process()``, then the jackknife covariance.
* skydask: ``connect("local", n_workers=2)`` (one single-threaded worker process per core;
  started before the clock), then ``open_catalog`` and ``shear_shear`` / ``galaxy_shear``
  end to end (reading, the shuffle by patch, the pair tasks, the covariance).

Peak memory is each process's ``ru_maxrss``: TreeCorr's process, and the largest skydask
worker; both also after subtracting the same process's RSS before any data was read
(imports, and for a worker the dask machinery), which is the part that grows with the data.
CPU seconds (user + system of TreeCorr's process; of the workers and the driver, which runs
the scheduler, for skydask; the driver's alone too) and the load average at the start of each
run are printed too: on a shared machine the CPU seconds move much less than the times. So
are the trees built and reused (``tree_cache``, per skydask run) and the anchor patches of
the pair tasks each worker ran, in its order (``pair_workers``: its lane, :mod:`skydask.
analyses.twopoint.regions`).

    .venv/bin/python benchmarks/bench_twopoint.py --config fast --repeat 2
    .venv/bin/python benchmarks/bench_twopoint.py --config fast --repeat 2 --cache-patches 8
    .venv/bin/python benchmarks/bench_twopoint.py --config txpipe --repeat 1

``--cache-patches`` sets the analysis's ``cache_patches`` (trees a worker keeps between pairs,
in patches; default: the analysis's default).

``fast``: 1-100 arcmin, 20 bins, TreeCorr's default bin_slop (PERFORMANCE.md's first
reference). ``txpipe``: 0.5-300 arcmin, 9 bins, bin_slop 0 (TXPipe's defaults, the analysis
defaults). Data: ``--sources`` galaxies uniform over 80 deg^2 (RA 55-65, Dec -40 to -32)
carrying the synthetic generator's Gaussian shear field plus shape noise 0.25 and weights,
``--lenses`` uniform positions, 8 Parquet files each.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

CONFIGS: dict[str, dict[str, Any]] = {
    "fast": {"min_sep": 1.0, "max_sep": 100.0, "nbins": 20, "bin_slop": None},
    "txpipe": {"min_sep": 0.5, "max_sep": 300.0, "nbins": 9, "bin_slop": 0.0},
}
FOOTPRINT = (55.0, 65.0, -40.0, -32.0)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_seconds() -> float:
    """CPU seconds (user + system, all threads) of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return math.nan


def make_data(root: Path, n_sources: int, n_lenses: int, npatch: int, seed: int) -> Path:
    """Write the sources and lenses (8 Parquet files each) and the shared patch centres."""
    import pandas as pd
    import treecorr

    from skydask.synth.shear import ShearModel, shear_at, shear_field

    out = root / f"twopoint-{n_sources}-{n_lenses}-{npatch}-{seed}"
    if (out / "centers.npy").exists():
        return out
    (out / "sources").mkdir(parents=True, exist_ok=True)
    (out / "lenses").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    s = np.sin(np.radians(FOOTPRINT[2:]))

    def positions(n: int) -> tuple[np.ndarray, np.ndarray]:
        ra = rng.uniform(FOOTPRINT[0], FOOTPRINT[1], n)
        return ra, np.degrees(np.arcsin(rng.uniform(s[0], s[1], n)))

    ra, dec = positions(n_sources)
    field = shear_field(FOOTPRINT, seed, ShearModel(n_halos=0, reduced_shear=False))
    g, _ = shear_at(ra, dec, field)
    sources = pd.DataFrame({
        "ra": ra, "dec": dec,
        "g1": g.real + rng.normal(0, 0.25, n_sources),
        "g2": g.imag + rng.normal(0, 0.25, n_sources),
        "w": rng.uniform(0.5, 1.5, n_sources),
    })  # fmt: skip
    lra, ldec = positions(n_lenses)
    lenses = pd.DataFrame({"ra": lra, "dec": ldec})
    for name, frame in (("sources", sources), ("lenses", lenses)):
        # sorted by RA: files are contiguous pieces of sky, as a survey's tracts
        frame = frame.sort_values("ra", ignore_index=True)
        bounds = np.linspace(0, len(frame), 9).astype(int)
        for k in range(8):
            part = frame.iloc[bounds[k] : bounds[k + 1]]
            part.to_parquet(out / name / f"object_tract_{k}.parquet", index=False)
    cat = treecorr.Catalog(ra=ra[::10], dec=dec[::10], ra_units="deg", dec_units="deg",
                           npatch=npatch, rng=np.random.default_rng(seed))  # fmt: skip
    np.save(out / "centers.npy", cat.patch_centers)
    return out


def _read(path: Path, columns: list[str]) -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    tables = [pq.read_table(f, columns=columns) for f in sorted(path.glob("*.parquet"))]
    return {c: np.concatenate([t[c].to_numpy() for t in tables]) for c in columns}


def child_treecorr(data: Path, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    import pyarrow.parquet  # noqa: F401  (imports before the clock, as the workers')
    import treecorr

    base_peak, base_rss = _peak_mb(), _rss_mb()
    centers = np.load(data / "centers.npy")
    cfg = {k: v for k, v in config.items() if v is not None}
    cfg.update(sep_units="arcmin", cross_patch_weight="match", num_threads=2)
    load = os.getloadavg()[0]
    c0 = cpu_seconds()
    t0 = time.perf_counter()
    src = _read(data / "sources", ["ra", "dec", "g1", "g2", "w"])
    sources = treecorr.Catalog(ra=src["ra"], dec=src["dec"], g1=src["g1"], g2=src["g2"],
                               w=src["w"], flip_g2=True, ra_units="deg", dec_units="deg",
                               patch_centers=centers)  # fmt: skip
    if kind == "GG":
        corr = treecorr.GGCorrelation(cfg)
        corr.process(sources)
        values = [corr.xip.tolist(), corr.xim.tolist()]
    else:
        lens = _read(data / "lenses", ["ra", "dec"])
        lenses = treecorr.Catalog(ra=lens["ra"], dec=lens["dec"], ra_units="deg",
                                  dec_units="deg", patch_centers=centers)  # fmt: skip
        corr = treecorr.NGCorrelation(cfg)
        corr.process(lenses, sources)
        values = [corr.xi.tolist()]
    cov = corr.estimate_cov("jackknife")
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "cpu_s": cpu_seconds() - c0,
        "load": load,
        "peak_mb": _peak_mb(),
        "base_mb": base_rss,
        "base_peak_mb": base_peak,
        "values": values,
        "cov_diag": np.diag(cov).tolist(),
    }


def _warm_up() -> None:
    """Import in a worker what the analysis' tasks will (TreeCorr's process has them before
    its clock starts too). ``skydask.analyses.twopoint`` resolves its names lazily, so the
    modules the read, split and pair tasks run are named one by one (the reads give NumPy
    arrays: the tasks import no pandas)."""
    import pyarrow.parquet  # noqa: F401
    import treecorr  # noqa: F401

    import skydask.analyses.twopoint.pairs
    import skydask.analyses.twopoint.patches
    import skydask.analyses.twopoint.samples
    import skydask.catalog.reader  # noqa: F401


def child_skydask(data: Path, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    import skydask
    from skydask.analyses.twopoint import ShearCalibration, galaxy_shear, shear_shear
    from skydask.cluster import connect

    centers = np.load(data / "centers.npy")
    shear = ShearCalibration(kind="shear", e1="g1", e2="g2", sigma=None, weights="w")
    with connect("local", n_workers=2, dashboard_address=None) as client:
        client.wait_for_workers(2)
        # the workers' resident memory before any data: imports and the dask machinery
        client.run(_warm_up)
        base = client.run(_rss_mb)
        load = os.getloadavg()[0]
        cpu0 = {**client.run(cpu_seconds), "driver": cpu_seconds()}
        t0 = time.perf_counter()
        sources = skydask.open_catalog(data / "sources")
        common = {"shear": shear, "source_cuts": None, "patch_centers": centers, **config}
        if kind == "GG":
            res = shear_shear(sources, **common)
            values = [res.corr().xip.tolist(), res.corr().xim.tolist()]
        else:
            res = galaxy_shear(skydask.open_catalog(data / "lenses"), sources, lens_cuts=None,
                               **common)  # fmt: skip
            values = [res.corr().xi.tolist()]
        seconds = time.perf_counter() - t0
        cpu1 = {**client.run(cpu_seconds), "driver": cpu_seconds()}
        peaks = client.run(_peak_mb)
    driver_cpu = cpu1["driver"] - cpu0["driver"]
    return {"seconds": seconds, "cpu_s": sum(cpu1[k] - cpu0[k] for k in cpu0), "load": load,
            "driver_cpu_s": driver_cpu,
            "worker_peak_mb": max(peaks.values()),
            "worker_base_mb": max(base.values()), "driver_peak_mb": _peak_mb(),
            "values": values, "cov_diag": np.diag(res.covariance).tolist(),
            "reduction": res.reduction}  # fmt: skip


def _run_child(args: argparse.Namespace, which: str, kind: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", which, "--kind", kind, "--config", args.config,
           "--data-dir", str(args.data_path)]  # fmt: skip
    if args.cache_patches is not None:
        cmd += ["--cache-patches", str(args.cache_patches)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{which} child failed:\n{done.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def _max_rel(a: list[list[float]], b: list[list[float]]) -> float:
    x, y = np.concatenate([np.asarray(v) for v in a]), np.concatenate([np.asarray(v) for v in b])
    return float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-300)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=1_000_000)
    parser.add_argument("--lenses", type=int, default=100_000)
    parser.add_argument("--npatch", type=int, default=16)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="fast")
    parser.add_argument("--kinds", default="GG,NG")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--data", default="bench-data")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", choices=["treecorr", "skydask"])
    parser.add_argument("--kind", default="GG")
    parser.add_argument("--data-dir")
    parser.add_argument("--cache-patches", type=int, help="TwoPointConfig.cache_patches (default: "
                        "the analysis default)")  # fmt: skip
    args = parser.parse_args()
    config = dict(CONFIGS[args.config])
    if args.child:
        if args.child == "treecorr":
            print(json.dumps(child_treecorr(Path(args.data_dir), args.kind, config)))
        else:
            if args.cache_patches is not None:
                config["cache_patches"] = args.cache_patches
            print(json.dumps(child_skydask(Path(args.data_dir), args.kind, config)))
        return
    args.data_path = make_data(Path(args.data), args.sources, args.lenses, args.npatch, args.seed)
    summary: dict[str, Any] = {"sources": args.sources, "lenses": args.lenses,
                               "npatch": args.npatch, "config": args.config, **config,
                               "cache_patches": args.cache_patches}  # fmt: skip
    for kind in args.kinds.split(","):
        runs: dict[str, list[dict[str, Any]]] = {"treecorr": [], "skydask": []}
        for _ in range(args.repeat):
            for which in ("treecorr", "skydask"):
                runs[which].append(_run_child(args, which, kind))
                print(which, kind, round(runs[which][-1]["seconds"], 2), file=sys.stderr)
        t_tc = statistics.median(r["seconds"] for r in runs["treecorr"])
        t_sd = statistics.median(r["seconds"] for r in runs["skydask"])
        tc, sd = runs["treecorr"][0], runs["skydask"][0]
        summary[kind] = {
            "treecorr_seconds": [round(r["seconds"], 2) for r in runs["treecorr"]],
            "skydask_seconds": [round(r["seconds"], 2) for r in runs["skydask"]],
            "time_ratio": round(t_sd / t_tc, 3),
            "treecorr_peak_mb": round(tc["peak_mb"]),
            "treecorr_base_mb": round(tc["base_mb"]),
            "worker_peak_mb": round(max(r["worker_peak_mb"] for r in runs["skydask"])),
            "worker_base_mb": round(sd["worker_base_mb"]),
            "driver_peak_mb": round(sd["driver_peak_mb"]),
            "memory_ratio": round(sd["worker_peak_mb"] / tc["peak_mb"], 3),
            "memory_ratio_above_baseline": round(
                (sd["worker_peak_mb"] - sd["worker_base_mb"]) / (tc["peak_mb"] - tc["base_mb"]), 3
            ),
            "max_rel_diff_values": _max_rel(sd["values"], tc["values"]),
            "max_rel_diff_cov_diag": _max_rel([sd["cov_diag"]], [tc["cov_diag"]]),
            "treecorr_cpu_s": [round(r["cpu_s"], 1) for r in runs["treecorr"]],
            "skydask_cpu_s": [round(r["cpu_s"], 1) for r in runs["skydask"]],
            "skydask_driver_cpu_s": [round(r["driver_cpu_s"], 1) for r in runs["skydask"]],
            "load_at_start": [
                round(r["load"], 2) for w in ("treecorr", "skydask") for r in runs[w]
            ],
            "pairs_computed": sd["reduction"]["pairs_computed"],
            "pair_tasks": sd["reduction"]["pair_tasks"],
            "patch_placement": sd["reduction"]["patch_placement"],
            "skydask_phases_s": sd["reduction"]["seconds"],
            "tree_cache": [r["reduction"]["tree_cache"] for r in runs["skydask"]],
            "pair_workers": sd["reduction"].get("pair_workers"),
            "patches_placed": sd["reduction"].get("patches_placed"),
        }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
