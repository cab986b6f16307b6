"""Layout, determinism, atomic writing and caching of generate_object_catalog."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from synth_testdata import FOOTPRINT, ROWS, SEED, read_all

from skydask.errors import SkydaskError, SpecError
from skydask.schema.definitions import native_dtypes
from skydask.synth import SynthInfo, generate_object_catalog, read_synth_params, read_truth
from skydask.synth import objects as synth_objects
from skydask.synth.shear import ShearModel
from skydask.synth.sky import PATCHES_PER_SIDE, plan_tracts

SMALL = {"rows": 3000, "footprint": (60.0, 62.0, -35.0, -33.0), "years": 1.0}

_ARROW = {
    "int64": pa.int64(),
    "int32": pa.int32(),
    "float64": pa.float64(),
    "float32": pa.float32(),
    "bool": pa.bool_(),
    "string": pa.string(),
}


def test_partitioning_does_not_change_the_data(catalog: SynthInfo, tmp_path: Path) -> None:
    # the fixture used npartitions=7; one task must give byte-for-byte the same tables
    one = generate_object_catalog(
        tmp_path / "one", rows=ROWS, seed=SEED, footprint=FOOTPRINT, npartitions=1
    )
    assert one.tracts == catalog.tracts
    assert len(catalog.tracts) >= 7
    a, b = read_all(catalog.path), read_all(one.path)
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)
    pa_, pb = read_synth_params(catalog.path), read_synth_params(one.path)
    assert pa_["parameters"] == pb["parameters"]
    assert pa_["output"] == pb["output"]


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    a = generate_object_catalog(tmp_path / "a", seed=1, **SMALL)
    b = generate_object_catalog(tmp_path / "b", seed=2, **SMALL)
    fa, fb = pd.read_parquet(a.files[0]), pd.read_parquet(b.files[0])
    assert len(fa) == len(fb)  # same allocation: it depends on geometry only
    assert not np.allclose(fa["ra"], fb["ra"])
    assert not np.allclose(fa["psFlux_i"], fb["psFlux_i"])


def test_rows_ids_and_tracts(catalog: SynthInfo, objects: pd.DataFrame) -> None:
    assert len(objects) == ROWS
    assert objects["objectId"].is_unique
    ids = objects["objectId"].to_numpy()
    assert np.array_equal(ids >> 32, objects["tract"].to_numpy())
    xy = objects["patch"].str.split(",", expand=True).astype(int)
    assert np.array_equal((ids >> 24) & 0xFF, xy[0] + PATCHES_PER_SIDE * xy[1])
    # i counts 0..n-1 within each patch, in row order
    row_in_patch = objects.groupby(["tract", "patch"], sort=False).cumcount().to_numpy()
    assert np.array_equal(ids & (2**24 - 1), row_in_patch)
    parents = objects["parentObjectId"].to_numpy()
    assert 0.03 < np.mean(parents != 0) < 0.07  # 5 % deblended children
    assert not np.isin(parents[parents != 0], ids).any()  # parents are not in the table
    info = read_synth_params(catalog.path)
    assert sum(info["output"]["rows_per_tract"].values()) == ROWS


def test_columns_and_dtypes_are_the_native_schema(
    catalog: SynthInfo, objects: pd.DataFrame
) -> None:
    expected = native_dtypes()
    for f in catalog.files:
        schema = pq.read_schema(f)
        assert schema.names == list(expected)
        assert [schema.field(n).type for n in schema.names] == [
            _ARROW[v] for v in expected.values()
        ]
    assert list(objects.columns) == list(expected)
    for name, dtype in expected.items():
        if dtype != "string":
            assert objects[name].dtype == np.dtype(dtype), name
    assert objects["patch"].str.fullmatch(r"\d,\d").all()


def test_one_row_group_per_patch_in_patch_order(catalog: SynthInfo) -> None:
    for f in catalog.files:
        pf = pq.ParquetFile(f)
        table = pf.read(columns=["patch", "objectId", "ra"])
        starts = np.cumsum(
            [0] + [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
        )
        patches = table.column("patch").to_pylist()
        seen = []
        for i in range(pf.num_row_groups):
            group = set(patches[starts[i] : starts[i + 1]])
            assert len(group) == 1, f"row group {i} of {f.name} mixes patches {group}"
            seen.append(group.pop())
            stats = (
                pf.metadata.row_group(i).column(pf.schema_arrow.get_field_index("ra")).statistics
            )
            assert stats is not None and stats.has_min_max
        index = [int(p.split(",")[0]) + PATCHES_PER_SIDE * int(p.split(",")[1]) for p in seen]
        assert index == sorted(index) and len(set(index)) == len(index)
        assert pf.metadata.row_group(0).column(0).compression == "SNAPPY"


def test_rows_follow_patch_solid_angle(catalog: SynthInfo, objects: pd.DataFrame) -> None:
    patches = [p for t in plan_tracts(FOOTPRINT) for p in t.patches]
    area = np.array([p.solid_angle for p in patches])
    quota = ROWS * area / area.sum()
    counts = objects.groupby(["tract", "patch"]).size()
    got = np.array([counts.get((p.tract, p.name), 0) for p in patches])
    assert got.sum() == ROWS
    assert np.all(np.abs(got - quota) < 1.0)  # largest remainder: within one of the quota
    # every object lies in its patch box (clipped to the footprint)
    box = {(p.tract, p.name): p for p in patches}
    for (tract, name), grp in objects.groupby(["tract", "patch"]):
        p = box[(tract, name)]
        assert grp["ra"].between(p.ra_min, p.ra_max).all()
        assert grp["dec"].between(p.dec_min, p.dec_max).all()
    assert (objects["x"] > 0).all() and (objects["y"] > 0).all()


def test_truth_rows_match_objects(objects: pd.DataFrame, truth: pd.DataFrame) -> None:
    assert np.array_equal(truth["objectId"].to_numpy(), objects["objectId"].to_numpy())
    for col in ("is_star", "g1_true", "g2_true", "e1_int", "mag_true_i", "psf_fwhm_r", "pixel"):
        assert col in truth.columns


def test_synth_json_records_every_parameter(catalog: SynthInfo) -> None:
    record = json.loads(catalog.params_path.read_text())
    p = record["parameters"]
    assert record["skydask_version"]
    assert (p["rows"], p["seed"], p["footprint"], p["years"]) == (ROWS, SEED, list(FOOTPRINT), 5.0)
    assert p["nside_truth"] == 512
    assert p["survey"]["single_visit_m5"] == {
        "u": 23.9, "g": 25.0, "r": 24.7, "i": 24.0, "z": 23.3, "y": 22.1
    }  # fmt: skip
    assert p["stars"]["locus_width"] == 0.02
    assert p["stars"]["star_fraction"] == 0.15
    assert p["galaxies"]["e_rms"] == pytest.approx(0.3491, abs=1e-4)
    assert len(p["shear"]["halos"]) == 5
    assert {"amplitude_A", "slope", "ell_cut", "gamma_rms"} <= set(p["shear"])
    assert record["output"]["tracts"] == list(catalog.tracts)


def test_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tracts = plan_tracts(SMALL["footprint"])
    assert len(tracts) >= 2
    real = synth_objects.make_patch

    def failing(tract, patch, n, config, depth):  # type: ignore[no-untyped-def]
        if tract.tract == tracts[-1].tract:
            raise RuntimeError("injected failure")
        return real(tract, patch, n, config, depth)

    monkeypatch.setattr(synth_objects, "make_patch", failing)
    out = tmp_path / "cat"
    with pytest.raises(RuntimeError, match="injected failure"):
        generate_object_catalog(out, seed=5, npartitions=1, **SMALL)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary directory either


def test_failure_with_tasks_still_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # one task fails at once while the others are still generating: dask re-raises at once,
    # and the stragglers must not leave files behind when they next open a file
    tracts = plan_tracts(FOOTPRINT)
    real = synth_objects.make_patch
    active = [0]
    lock = threading.Lock()

    def slow_or_failing(tract, patch, n, config, depth):  # type: ignore[no-untyped-def]
        if tract.tract == tracts[0].tract:
            raise RuntimeError("injected failure")
        with lock:
            active[0] += 1
        try:
            time.sleep(0.01)
            return real(tract, patch, n, config, depth)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(synth_objects, "make_patch", slow_or_failing)
    out = tmp_path / "cat"
    with pytest.raises(RuntimeError, match="injected failure"):
        generate_object_catalog(out, rows=8000, seed=5, footprint=FOOTPRINT, years=1.0)
    assert list(tmp_path.iterdir()) == []
    deadline = time.monotonic() + 20
    while active[0] and time.monotonic() < deadline:  # let the stragglers run into the wall
        time.sleep(0.05)
    time.sleep(0.2)
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_the_old_catalogue_on_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "cat"
    first = generate_object_catalog(out, seed=5, **SMALL)
    before = read_all(out)

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("injected failure")

    monkeypatch.setattr(synth_objects, "make_patch", failing)
    with pytest.raises(RuntimeError):
        generate_object_catalog(out, seed=6, overwrite=True, **SMALL)
    after = read_all(out)
    assert before.keys() == after.keys()
    pd.testing.assert_frame_equal(before[first.files[0].name], after[first.files[0].name])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat"]


def test_cache_hit_does_not_regenerate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "cat"
    first = generate_object_catalog(out, seed=5, **SMALL)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*")}

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(synth_objects, "make_patch", failing)
    # npartitions and progress do not change the data, so they do not defeat the cache
    again = generate_object_catalog(out, seed=5, npartitions=3, **SMALL)
    assert again == first
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == mtimes


def test_other_parameters_raise_naming_them(tmp_path: Path) -> None:
    out = tmp_path / "cat"
    generate_object_catalog(out, seed=5, **SMALL)
    with pytest.raises(SpecError) as err:
        generate_object_catalog(out, seed=6, **{**SMALL, "rows": 4000})
    message = str(err.value)
    assert str(out) in message
    assert "rows: 3000 -> 4000" in message and "seed: 5 -> 6" in message
    assert isinstance(err.value, SkydaskError)


def test_overwrite_replaces(tmp_path: Path) -> None:
    out = tmp_path / "cat"
    generate_object_catalog(out, seed=5, **SMALL)
    info = generate_object_catalog(out, seed=5, overwrite=True, **{**SMALL, "rows": 4000})
    assert info.rows == 4000
    assert sum(len(pd.read_parquet(f)) for f in info.files) == 4000
    assert read_synth_params(out)["parameters"]["rows"] == 4000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat"]


def test_existing_directory_that_is_not_a_catalogue(tmp_path: Path) -> None:
    out = tmp_path / "cat"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SpecError, match=r"not a skydask\.synth catalogue"):
        generate_object_catalog(out, seed=5, **SMALL)
    assert (out / "notes.txt").exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rows": 0}, "rows"),
        ({"seed": -1}, "seed"),
        ({"years": 0.0}, "years"),
        ({"footprint": (350.0, 10.0, -10.0, 0.0)}, "footprint"),
        ({"npartitions": 0}, "npartitions"),
        ({"shear": {"gamma_rms": 0.03}}, "'shear' must be a skydask.synth.shear.ShearModel"),
    ],
)
def test_invalid_parameters(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    args = {**SMALL, "seed": 1, **kwargs}
    with pytest.raises(SpecError, match=match):
        generate_object_catalog(tmp_path / "cat", **args)  # type: ignore[arg-type]
    assert not (tmp_path / "cat").exists()


def test_shear_model_sets_the_field_and_is_recorded(tmp_path: Path) -> None:
    plain = ShearModel(n_halos=0, reduced_shear=False)
    double = ShearModel(n_halos=0, reduced_shear=False, gamma_rms=0.04)
    a = generate_object_catalog(tmp_path / "a", seed=5, shear=plain, **SMALL)
    b = generate_object_catalog(tmp_path / "b", seed=5, shear=double, **SMALL)
    columns = ["objectId", "g1_true", "g2_true"]
    ta, tb = read_truth(a.path, columns=columns), read_truth(b.path, columns=columns)
    assert ta.objectId.tolist() == tb.objectId.tolist()
    # the same white noise filtered by sqrt(C_ell) with 4x the amplitude A: twice the shear
    # at every object (no halos, no reduced shear, so the field is linear in sqrt(A))
    for c in ("g1_true", "g2_true"):
        np.testing.assert_allclose(tb[c], 2.0 * ta[c], rtol=1e-6, atol=1e-9)
    assert float(np.std(ta.g1_true)) > 0.005  # a field, not zeros
    record = read_synth_params(b.path)["parameters"]["shear"]
    assert record["gamma_rms"] == 0.04 and record["n_halos"] == 0 and record["halos"] == []
    with pytest.raises(SpecError, match=r"shear\.gamma_rms: 0\.02 -> 0\.04"):
        generate_object_catalog(a.path, seed=5, shear=double, **SMALL)


def test_no_shear_model_is_the_default_model(tmp_path: Path) -> None:
    # existing catalogues keep their parameters: None and ShearModel() are the same catalogue
    info = generate_object_catalog(tmp_path / "cat", seed=5, **SMALL)
    mtimes = {p: p.stat().st_mtime_ns for p in info.path.rglob("*")}
    assert generate_object_catalog(info.path, seed=5, shear=ShearModel(), **SMALL) == info
    assert {p: p.stat().st_mtime_ns for p in info.path.rglob("*")} == mtimes
    assert len(read_synth_params(info.path)["parameters"]["shear"]["halos"]) == 5


def test_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate_object_catalog(tmp_path / "cat", seed=1, progress=True, **SMALL)
    assert "Completed" in capsys.readouterr().out


def test_distributed_client_gives_the_same_data(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    ref = generate_object_catalog(tmp_path / "ref", seed=9, **SMALL)
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    ):
        info = generate_object_catalog(tmp_path / "dist", seed=9, progress=True, **SMALL)
    a, b = read_all(ref.path), read_all(info.path)
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)


def test_info_paths(catalog: SynthInfo) -> None:
    assert catalog.truth_dir.is_dir()
    assert all(f.exists() for f in catalog.truth_files)
    assert catalog.depth_truth_path.exists()
    assert os.path.basename(catalog.files[0]).startswith("object_tract_")
