"""Data, references and helpers shared by the two-point tests (``test_twopoint_*.py``).

Imported as ``analyses.twopoint_testdata`` (``tests`` is on pytest's pythonpath). The
references are TreeCorr itself, run the documented way (``Catalog(..., patch_centers=...)``
and ``process()``) on the whole catalogue in one process.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pytest
import treecorr

from skydask.analyses.twopoint import ShearCalibration

# sources whose columns are already shears, with per-object weights: what TreeCorr would read
SHEAR = ShearCalibration(kind="shear", e1="g1", e2="g2", sigma=None, weights="w")
# the same, unweighted
SHEAR_UNWEIGHTED = ShearCalibration(kind="shear", e1="g1", e2="g2", sigma=None, weights=None)

RA_RANGE = (60.0, 64.0)
DEC_RANGE = (-36.0, -33.0)


def uniform_sky(
    rng: np.random.Generator, n: int, ra: tuple[float, float] = RA_RANGE,
    dec: tuple[float, float] = DEC_RANGE,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``n`` points uniform on the sphere inside an RA/Dec box (degrees)."""
    s = rng.uniform(math.sin(math.radians(dec[0])), math.sin(math.radians(dec[1])), n)
    return rng.uniform(ra[0], ra[1], n), np.degrees(np.arcsin(s))


def mock_sources(n: int, seed: int) -> pd.DataFrame:
    """Sources with a weak coherent shear pattern plus noise, weights, and two bins (``zbin``)."""
    rng = np.random.default_rng(seed)
    ra, dec = uniform_sky(rng, n)
    # a smooth pattern, so that xi+ and gamma_t are not pure noise
    g1 = 0.02 * np.cos(np.radians(ra) * 90) + rng.normal(0, 0.25, n)
    g2 = 0.02 * np.sin(np.radians(dec) * 90) + rng.normal(0, 0.25, n)
    return pd.DataFrame({
        "ra": ra, "dec": dec, "g1": g1, "g2": g2, "w": rng.uniform(0.5, 1.5, n),
        "zbin": rng.integers(0, 2, n),
    })  # fmt: skip


def mock_points(n: int, seed: int, clustered: bool = False) -> pd.DataFrame:
    """Positions (lenses, randoms); ``clustered`` adds small clumps so that w(theta) > 0."""
    rng = np.random.default_rng(seed)
    ra, dec = uniform_sky(rng, n)
    if clustered:
        k = n // 3
        centres = rng.integers(0, n, k // 20)
        pick = centres[rng.integers(0, len(centres), k)]
        ra[:k] = ra[pick] + rng.normal(0, 0.03, k)
        dec[:k] = dec[pick] + rng.normal(0, 0.03, k)
    return pd.DataFrame({"ra": ra, "dec": dec})


def tc_catalog(frame: pd.DataFrame, centers: np.ndarray, field: str,
               weights: bool = True) -> Any:  # fmt: skip
    """The reference TreeCorr catalogue: whole frame, shared patch centres, ``flip_g2`` as
    skydask's default."""
    kwargs: dict[str, Any] = {
        "ra": frame["ra"].to_numpy(),
        "dec": frame["dec"].to_numpy(),
        "ra_units": "deg",
        "dec_units": "deg",
        "patch_centers": centers,
    }
    if field == "G":
        kwargs.update(g1=frame["g1"].to_numpy(), g2=frame["g2"].to_numpy(), flip_g2=True)
    if weights and "w" in frame.columns:
        kwargs["w"] = frame["w"].to_numpy()
    return treecorr.Catalog(**kwargs)


def assert_same(actual: Any, expected: Any, what: str, rtol: float = 1e-10,
                atol: float = 1e-12) -> None:  # fmt: skip
    """Equal to TreeCorr's roundoff: 1e-10 relative, 1e-12 absolute near zero."""
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol,
                               err_msg=what)  # fmt: skip


@contextmanager
def local_client(n_workers: int, processes: bool, memory_limit: str | None = None) -> Iterator[Any]:
    """A LocalCluster (no dashboard) and its client, closed afterwards: worker processes
    listen on 127.0.0.1; in-process workers talk through memory (``inproc://``), no socket.

    ``memory_limit`` only sets what the workers report (the memory monitor is switched off),
    for code that sizes its work by it."""
    import dask
    from distributed import Client, LocalCluster

    network = {"host": "127.0.0.1"} if processes else {}
    limits = {} if memory_limit is None else {"memory_limit": memory_limit}
    monitor = {} if memory_limit is None else {
        f"distributed.worker.memory.{k}": False for k in ("target", "spill", "pause", "terminate")
    }  # fmt: skip
    with dask.config.set(monitor), LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=processes, dashboard_address=None,
        silence_logs=logging.ERROR, **network, **limits,
    ) as cluster, Client(cluster) as client:  # fmt: skip
        yield client


def require_slurm() -> None:
    """Skip without a usable SLURM, unless SKYDASK_REQUIRE_SLURM=1 (CI), where it fails.

    The same check as the ``slurm`` fixture of ``tests/cluster/conftest.py``.
    """
    usable = False
    if shutil.which("sinfo") is not None:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                             check=False)  # fmt: skip
        usable = out.returncode == 0 and any(
            s.startswith(("idle", "mixed", "alloc")) for s in out.stdout.split()
        )
    if usable:
        return
    if os.environ.get("SKYDASK_REQUIRE_SLURM") == "1":
        pytest.fail("SLURM is required (SKYDASK_REQUIRE_SLURM=1) but sinfo shows no usable node")
    pytest.skip("no SLURM here: run scripts/slurm-up.sh (CI does)")
