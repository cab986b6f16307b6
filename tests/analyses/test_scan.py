"""One catalogue scan shared by several analyses (skydask.analyses.scan)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
from dask.callbacks import Callback

import skydask
from skydask.analyses.depthmap.analysis import depth_map, depth_map_plan
from skydask.analyses.scan import scan_together
from skydask.analyses.stellar_locus import stellar_locus, stellar_locus_plan
from skydask.synth import generate_object_catalog


class ReadCounter(Callback):
    """Counts the catalogue-read tasks dask runs (keys named ``read-...``)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def _pretask(self, key: Any, dsk: Any, state: Any) -> None:
        name = key[0] if isinstance(key, tuple) else key
        if str(name).startswith("read-"):
            self.reads += 1


@pytest.fixture(scope="module")
def tracts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scan") / "synth"
    generate_object_catalog(out, rows=150_000, seed=21, footprint=(60.0, 62.0, -36.0, -34.0))
    return out


def _same_maps(a: Any, b: Any) -> None:
    for band in a.maps:
        pa, pb = a.maps[band].valid_pixels, b.maps[band].valid_pixels
        np.testing.assert_array_equal(pa, pb)
        np.testing.assert_array_equal(a.maps[band][pa], b.maps[band][pb])
        np.testing.assert_array_equal(a.counts[band][pa], b.counts[band][pb])


def test_two_analyses_read_every_file_once_and_match_separate_runs(tracts: Path) -> None:
    cat = skydask.open_catalog(tracts).where("clean")
    nfiles = cat.npartitions
    assert nfiles > 1
    with ReadCounter() as alone:
        locus = stellar_locus(cat)
        depth = depth_map(cat, nside=256)
    assert alone.reads == 2 * nfiles  # each analysis read every file
    with ReadCounter() as shared:
        together = scan_together(stellar_locus_plan(cat), depth_map_plan(cat, nside=256))
    assert shared.reads == nfiles  # one read of every file for both
    locus2, depth2 = together
    assert locus2.metrics.keys() == locus.metrics.keys()
    for name, q in locus.metrics.items():
        assert q.value == pytest.approx(locus2.metrics[name].value, rel=1e-10, abs=1e-9), name
    assert locus.fits["w"].n_stars > 300
    _same_maps(depth, depth2)
    assert depth2.reduction["partitions"] == nfiles


def test_plans_with_their_own_cuts_share_the_read(tracts: Path) -> None:
    cat = skydask.open_catalog(tracts)
    with ReadCounter() as shared:
        bright, faint = scan_together(
            depth_map_plan(cat, bands="i", nside=128, where="mag_i < 23"),
            depth_map_plan(cat, bands="i", nside=128, where="~(mag_i < 23)"),
        )
    assert shared.reads == cat.npartitions
    brute_bright = depth_map(cat, bands="i", nside=128, where="mag_i < 23")
    brute_faint = depth_map(cat, bands="i", nside=128, where="~(mag_i < 23)")
    _same_maps(bright, brute_bright)
    _same_maps(faint, brute_faint)
    n_all = depth_map(cat, bands="i", nside=128).reduction["rows_read"]
    assert bright.reduction["rows_read"] + faint.reduction["rows_read"] == n_all


def test_plans_on_other_rows_are_refused(tracts: Path) -> None:
    cat = skydask.open_catalog(tracts)
    with pytest.raises(ValueError, match="same catalogue with the same cuts"):
        scan_together(stellar_locus_plan(cat.where("clean")), depth_map_plan(cat))
    with pytest.raises(ValueError, match="at least one plan"):
        scan_together()


def test_shared_scan_on_a_distributed_client(tracts: Path) -> None:
    distributed = pytest.importorskip("distributed")
    cat = skydask.open_catalog(tracts).where("clean")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False) as cluster,
        distributed.Client(cluster),
    ):
        locus, depth = scan_together(stellar_locus_plan(cat), depth_map_plan(cat, nside=256))
    with dask.config.set(scheduler="threads"):
        ref = stellar_locus(cat)
    for name, q in ref.metrics.items():
        assert q.value == pytest.approx(locus.metrics[name].value, rel=1e-10, abs=1e-9), name
    _same_maps(depth, depth_map(cat, nside=256))


def test_split_gives_each_plan_its_rows_as_chunks_or_frames() -> None:
    """One partition in pieces (one a slice with an offset) split for four plans: chunks of
    all rows are handed over as they are; cuts and frames get numpy's rows of the columns."""
    import pandas as pd

    from skydask.analyses.scan import _split
    from skydask.catalog.reader import ChunkedColumns
    from skydask.schema import expressions as ex

    rng = np.random.default_rng(4)
    x, y = rng.normal(0, 1, 50), rng.normal(0, 1, 60).astype(np.float32)
    part = ChunkedColumns({"x": [(0, x[:20]), (20, x[20:])], "y": [(0, y[10:])]}, 50)
    cut = ex.parse("x > 0.2")
    steps = ((None, ("x",), True), (cut, ("x", "y"), True), (None, ("y",), False),
             (cut, ("y",), False))  # fmt: skip
    whole, chosen, frame, chosen_frame = _split(part, steps)
    assert whole.chunks("x") is part.chunks("x")  # the reader's chunks, never joined
    keep = x > 0.2
    assert isinstance(chosen, ChunkedColumns) and chosen.rows == int(keep.sum())
    np.testing.assert_array_equal(chosen["x"], x[keep])
    np.testing.assert_array_equal(chosen["y"], y[10:][keep])
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["y"]
    np.testing.assert_array_equal(frame["y"].to_numpy(), y[10:])
    np.testing.assert_array_equal(chosen_frame["y"].to_numpy(), y[10:][keep])
    assert list(chosen_frame.index) == list(range(int(keep.sum())))
    (empty,) = _split(ChunkedColumns.of_arrays({"x": x[:0]}, 0), ((cut, ("x",), True),))
    assert empty.rows == 0 and empty["x"].dtype == x.dtype


def test_a_plan_asking_for_chunks_gets_the_row_groups(tracts: Path) -> None:
    """Alone or beside a plan that takes frames, a chunked plan is given the columns as
    read (several row groups) and the other plan frames of the same values."""
    import pandas as pd

    from skydask.analyses.scan import ScanPlan
    from skydask.catalog.reader import ChunkedColumns

    cat = skydask.open_catalog(tracts)

    def keep(parts: list[Any], scanned: Any) -> Any:
        return dask.delayed(list)(parts)

    def plan(chunks: bool) -> ScanPlan:
        return ScanPlan("p", cat, ("psFluxErr_i",), None, keep, lambda kept: kept.compute(),
                        chunks=chunks)  # fmt: skip

    (alone,) = scan_together(plan(True))
    chunked, frames = scan_together(plan(True), plan(False))
    for part, twin, frame in zip(alone, chunked, frames, strict=True):
        assert isinstance(part, ChunkedColumns) and isinstance(frame, pd.DataFrame)
        assert len(part.chunks("psFluxErr_i")) > 1
        assert len(twin.chunks("psFluxErr_i")) > 1
        np.testing.assert_array_equal(part["psFluxErr_i"], frame["psFluxErr_i"].to_numpy())
        np.testing.assert_array_equal(twin["psFluxErr_i"], frame["psFluxErr_i"].to_numpy())
