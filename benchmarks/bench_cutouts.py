"""Cut-outs benchmark: skydask.images.cutouts against plain loops of astropy's Cutout2D.

Run (numbers go to benchmarks/README.md by hand, with this command line):

    .venv/bin/python benchmarks/bench_cutouts.py --data bench-data/cutouts

Data: ``skydask.synth.images.generate_image_stack`` with 100 visits of 1024 x 1024 pixels
(0.2", LSST Exposure layout: float32 image and variance, int32 mask; 12 MiB per visit, 1.2 GiB
in all) over six bands, dithered by up to +-120" so the pointings spread over ~7' and each
position falls on a fraction of the visits, as for objects spread over a survey. 1,000
positions uniform over the field, stamps of 25 x 25 pixels of all three planes.

Methods (each returns the same stamps of the visits covering each position; checked equal):

* ``skydask`` dense: ``cutouts(stack, ra, dec, 25).compute()``, the (object, visit, y, x)
  arrays (mostly empty here: each position is on ~a fifth of the visits), and compact:
  ``cutouts(..., dense=False)``, only the covering stamps over (stamp, y, x); dask's threaded
  scheduler (2 threads by default), the stack opened once beforehand (headers only);
* ``loop``: per file, open it memory-mapped, its WCS, ``world_to_pixel`` of all positions at
  once, then ``Cutout2D(plane, (x, y), 25, mode="partial", fill_value=nan)`` for each of the
  three planes of each covered position: a careful plain loop;
* ``loop_naive``: the same with ``Cutout2D(plane, SkyCoord, 25, wcs=wcs)`` per stamp, as a user
  would first write it (only on the first ``--naive-files`` files, scaled to all).

The cold runs (files evicted from the page cache first) time the compact form and the loop.

Bytes: the sum of ``bytes_read`` (file pages the stamps touch) against the stack's pixel
bytes; and, measured, the pages of the files in the page cache after a cold run (the files'
pages evicted with ``posix_fadvise(DONTNEED)`` first, residency read with ``mincore``), which
includes whatever the kernel read beyond the touched pages.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import logging
import mmap
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS

import skydask.images as im
from skydask.synth.images import generate_image_stack

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]  # fmt: skip
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]


def evict(paths: list[Path]) -> None:
    """Drop the files' clean pages from the page cache (no root needed)."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def resident_bytes(paths: list[Path]) -> int:
    """Bytes of the files now in the page cache (``mincore``)."""
    total = 0
    for p in paths:
        size = p.stat().st_size
        fd = os.open(p, os.O_RDONLY)
        try:
            addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if addr in (None, ctypes.c_void_p(-1).value):
                raise OSError(ctypes.get_errno(), "mmap failed")
            pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
            vec = (ctypes.c_ubyte * pages)()
            if _libc.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore failed")
            total += int(np.count_nonzero(np.frombuffer(vec, dtype=np.uint8) & 1)) * mmap.PAGESIZE
            _libc.munmap(addr, size)
        finally:
            os.close(fd)
    return total


Stamps = dict[tuple[int, str], tuple[np.ndarray, np.ndarray, np.ndarray]]


def run_skydask(
    stack: Any, ra: np.ndarray, dec: np.ndarray, size: int, dense: bool
) -> tuple[Stamps, int]:
    done = im.cutouts(stack, ra, dec, size, dense=dense).compute()
    out: Stamps = {}
    image, var, mask = done.image.values, done.variance.values, done.mask.values
    if dense:
        for k, v in zip(*np.nonzero(done.covered.values), strict=True):
            out[(int(k), str(done.visit.values[v]))] = (image[k, v], var[k, v], mask[k, v])
    else:
        for i, (k, v) in enumerate(zip(done.object.values, done.visit.values, strict=True)):
            out[(int(k), str(v))] = (image[i], var[i], mask[i])
    return out, int(done.bytes_read.sum())


def run_loop(files: list[Path], ra: np.ndarray, dec: np.ndarray, size: int) -> Stamps:
    out: Stamps = {}
    for f in files:
        with fits.open(f, memmap=True) as hdul:
            wcs = WCS(hdul[1].header)
            ny, nx = hdul[1].shape
            x, y = wcs.world_to_pixel_values(ra, dec)
            inside = (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5)
            planes = (hdul[1].data, hdul[3].data, hdul[2].data)
            for k in np.flatnonzero(inside):
                cut = []
                for p in planes:
                    fill = np.nan if p.dtype.kind == "f" else 256
                    c = Cutout2D(p, (x[k], y[k]), size, mode="partial", fill_value=fill).data
                    # a native-order copy: the stamps are used after the file is closed
                    cut.append(np.array(c, dtype=c.dtype.newbyteorder("=")))
                out[(int(k), f.stem)] = (cut[0], cut[1], cut[2])
    return out


def run_loop_naive(files: list[Path], ra: np.ndarray, dec: np.ndarray, size: int) -> int:
    n = 0
    positions = SkyCoord(ra, dec, unit="deg")
    for f in files:
        with fits.open(f, memmap=True) as hdul:
            wcs = WCS(hdul[1].header)
            for pos in positions:
                if not wcs.footprint_contains(pos):
                    continue
                for p in (hdul[1].data, hdul[3].data, hdul[2].data):
                    fill = np.nan if p.dtype.kind == "f" else 256
                    c = Cutout2D(p, pos, size, wcs=wcs, mode="partial", fill_value=fill).data
                    np.array(c, dtype=c.dtype.newbyteorder("="))
                n += 1
    return n


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="bench-data/cutouts")
    ap.add_argument("--nvisits", type=int, default=100)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--positions", type=int, default=1000)
    ap.add_argument("--stamp", type=int, default=25)
    ap.add_argument("--dither-arcsec", type=float, default=120.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--naive-files", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    # positions off every visit are expected here; the library logs each call's list
    logging.getLogger("skydask.images").setLevel(logging.ERROR)

    t0 = time.perf_counter()
    info = generate_image_stack(
        Path(args.data) / f"stack-{args.nvisits}x{args.size}-d{args.dither_arcsec:g}",
        nvisits=args.nvisits, size=args.size, seed=args.seed, bands="ugrizy",
        dither_arcsec=args.dither_arcsec, stars_per_arcmin2=20.0, galaxies_per_arcmin2=40.0,
    )  # fmt: skip
    t_gen = time.perf_counter() - t0
    files = list(info.files)
    stack = im.open_stack(info.path)
    rng = np.random.default_rng(args.seed)
    half = (args.size / 2 * 0.2 + args.dither_arcsec) / 3600.0
    dec = -35.0 + rng.uniform(-half, half, args.positions)
    ra = 60.0 + rng.uniform(-half, half, args.positions) / np.cos(np.radians(-35.0))

    with dask.config.set(scheduler="threads", num_workers=args.threads):
        dask.compute(dask.delayed(len)([1]))  # dask imports distributed on first use: not timed
        # cold: evict, run once each, measure what came into the page cache
        evict(files)
        t_cold, (stamps, touched) = timed(
            lambda: run_skydask(stack, ra, dec, args.stamp, dense=False), 1
        )
        cached = resident_bytes(files)
        evict(files)
        t_cold_loop, _ = timed(lambda: run_loop(files, ra, dec, args.stamp), 1)
        cached_loop = resident_bytes(files)
        # warm: medians of --repeat
        t_sky, (stamps, touched) = timed(
            lambda: run_skydask(stack, ra, dec, args.stamp, dense=True), args.repeat
        )
        t_compact, (compact, _) = timed(
            lambda: run_skydask(stack, ra, dec, args.stamp, dense=False), args.repeat
        )
        t_loop, ref = timed(lambda: run_loop(files, ra, dec, args.stamp), args.repeat)
    naive_files = files[: args.naive_files]
    t_naive, n_naive = timed(lambda: run_loop_naive(naive_files, ra, dec, args.stamp), 1)
    t_naive_all = t_naive * len(files) / len(naive_files)

    for found in (stamps, compact):
        assert found.keys() == ref.keys(), "skydask and the loop found different stamps"
        for key, planes in ref.items():
            for a, b in zip(found[key], planes, strict=True):
                np.testing.assert_array_equal(a, b)
    pixel_bytes = int(stack.disk_bytes.sum())
    file_bytes = sum(f.stat().st_size for f in files)
    result = {
        "visits": len(files), "image": [args.size, args.size], "positions": args.positions,
        "stamp": args.stamp, "stamps_found": len(ref),
        "stamps_per_visit_mean": len(ref) / len(files),
        "generate_s": round(t_gen, 1),
        "warm": {"skydask_dense_s": round(t_sky, 3), "skydask_compact_s": round(t_compact, 3),
                 "loop_s": round(t_loop, 3),
                 "ratio_dense_over_loop": round(t_sky / t_loop, 3),
                 "ratio_compact_over_loop": round(t_compact / t_loop, 3),
                 "loop_naive_s_scaled": round(t_naive_all, 1),
                 "ratio_skydask_over_naive": round(t_sky / t_naive_all, 4)},
        "cold": {"skydask_compact_s": round(t_cold, 3), "loop_s": round(t_cold_loop, 3),
                 "ratio": round(t_cold / t_cold_loop, 3)},
        "bytes": {"pixel_bytes": pixel_bytes, "file_bytes": file_bytes,
                  "touched_by_skydask": touched,
                  "touched_fraction": round(touched / pixel_bytes, 4),
                  "page_cache_after_cold_skydask": cached,
                  "page_cache_fraction_skydask": round(cached / file_bytes, 4),
                  "page_cache_after_cold_loop": cached_loop,
                  "page_cache_fraction_loop": round(cached_loop / file_bytes, 4),
                  "stamp_pixels_fraction": round(
                      len(ref) * args.stamp**2 * 12 / pixel_bytes, 4)},
        "threads": args.threads, "naive_files_timed": len(naive_files),
        "naive_stamps_timed": n_naive,
    }  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
