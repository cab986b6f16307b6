"""The lazy Catalog: column pushdown, pruning, cuts, regions and errors, against numpy truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import skydask
from skydask.catalog import reader
from skydask.catalog.regions import angular_separation_deg
from skydask.errors import CatalogReadError, FilterSyntaxError, SchemaError, UnknownQuantityError


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record every data read the catalogue asks pyarrow for (row groups, columns)."""
    calls: list[dict[str, Any]] = []
    original = reader.decode_row_groups

    def recording(path: str, row_groups: Any, columns: list[str], *args: Any, **kw: Any) -> Any:
        table = original(path, row_groups, columns, *args, **kw)
        groups = range(pq.read_metadata(path).num_row_groups) if row_groups is None else row_groups
        calls.append({"row_groups": list(groups), "columns": list(columns)})
        return table

    monkeypatch.setattr(reader, "decode_row_groups", recording)
    return calls


@pytest.fixture(autouse=True)
def _sync_scheduler() -> Any:
    # in-process execution so the recorded reads are visible to the test
    with dask.config.set(scheduler="sync"):
        yield


def mag(flux: pd.Series) -> np.ndarray:
    return -2.5 * np.log10(flux.to_numpy(dtype=np.float64)) + 31.4


def test_select_reads_only_needed_columns(
    make_dc2_tracts: Any, reads: list[dict[str, Any]]
) -> None:
    root, _ = make_dc2_tracts()
    cat = skydask.open_catalog(root).select(["mag_g", "mag_r"])
    cat.compute()
    assert reads, "nothing was read"
    assert all(sorted(c["columns"]) == ["psFlux_g", "psFlux_r"] for c in reads)


def test_where_columns_are_read_but_not_returned(
    make_dc2_tracts: Any, reads: list[dict[str, Any]]
) -> None:
    root, truth = make_dc2_tracts()
    out = skydask.open_catalog(root).select(["mag_r"]).where("extendedness == 0 & clean").compute()
    assert list(out.columns) == ["mag_r"]
    assert {col for c in reads for col in c["columns"]} == {"psFlux_r", "extendedness", "clean"}
    keep = (truth.extendedness == 0) & truth.clean
    np.testing.assert_allclose(
        np.sort(out.mag_r), np.sort(mag(truth.psFlux_r[keep])), rtol=0, atol=1e-12
    )


def test_magnitudes_errors_snr_equal_hand_computation(make_dc2_tracts: Any) -> None:
    root, truth = make_dc2_tracts(ntracts=2)
    q = ["objectId", "mag_i", "magerr_i", "snr_i", "mag_i_cModel", "snr_i_cModel", "g-r"]
    out = skydask.open_catalog(root).select(q).compute().sort_values("objectId")
    t = truth.sort_values("objectId")
    f, e = t.psFlux_i.to_numpy(np.float64), t.psFluxErr_i.to_numpy(np.float64)
    np.testing.assert_allclose(out.mag_i, -2.5 * np.log10(f) + 31.4, rtol=1e-14)
    np.testing.assert_allclose(out.magerr_i, 1.0857 * e / f, rtol=1e-14)
    np.testing.assert_allclose(out.snr_i, f / e, rtol=1e-14)
    np.testing.assert_allclose(
        out.snr_i_cModel,
        t.cModelFlux_i.to_numpy(np.float64) / t.cModelFluxErr_i.to_numpy(np.float64),
        rtol=1e-14,
    )
    np.testing.assert_allclose(out["g-r"], mag(t.psFlux_g) - mag(t.psFlux_r), rtol=1e-13)
    # SNR is flux/err, not 1/magerr
    assert not np.allclose(out.snr_i, 1 / out.magerr_i)


def test_dc2_and_dp1_flavours_give_identical_quantities(tmp_path: Path) -> None:
    from catalog_testdata import dc2_frame

    frame = dc2_frame(2000, np.random.default_rng(3), (10.0, 11.0), (0.0, 1.0))
    dp1 = pd.DataFrame(
        {
            "objectId": frame.objectId,
            "coord_ra": frame.ra,
            "coord_dec": frame.dec,
            "refExtendedness": frame.extendedness,
        }
    )
    for b in "ugrizy":
        dp1[f"{b}_psfFlux"] = frame[f"psFlux_{b}"]
        dp1[f"{b}_psfFluxErr"] = frame[f"psFluxErr_{b}"]
        dp1[f"{b}_cModelFlux"] = frame[f"cModelFlux_{b}"]
        dp1[f"{b}_cModelFluxErr"] = frame[f"cModelFluxErr_{b}"]
    frame.to_parquet(tmp_path / "dc2.parquet")
    dp1.to_parquet(tmp_path / "dp1.parquet")
    a, b = (
        skydask.open_catalog(tmp_path / "dc2.parquet"),
        skydask.open_catalog(tmp_path / "dp1.parquet"),
    )
    assert (a.schema.flavour, b.schema.flavour) == ("dc2", "dp1")
    q = ["objectId", "ra", "dec", "extendedness", "mag_g", "magerr_r", "snr_z_cModel", "r-i"]
    cut = "mag_i < 24 & extendedness == 1"
    pd.testing.assert_frame_equal(
        a.select(q).where(cut).compute(), b.select(q).where(cut).compute()
    )


def test_where_prunes_files_and_row_groups(
    make_dc2_tracts: Any, reads: list[dict[str, Any]]
) -> None:
    # patches are Dec bands of 0.5 deg starting at -35; a cut on dec keeps one band of each file,
    # a cut on ra keeps one file
    root, truth = make_dc2_tracts(ntracts=4, npatch=4)
    cat = skydask.open_catalog(root).select(["ra"]).where("dec > -33.4")
    out = cat.compute()
    assert cat.prune_stats.row_groups_total == 16
    assert cat.prune_stats.row_groups_kept == 4
    assert sum(len(c["row_groups"]) for c in reads) == 4
    assert len(out) == int((truth.dec > -33.4).sum())

    reads.clear()
    cat = skydask.open_catalog(root).select(["dec"]).where("ra >= 52.0 & ra < 53.0")
    out = cat.compute()
    assert (cat.prune_stats.files_kept, cat.npartitions) == (1, 1)
    assert len(reads) == 1 and reads[0]["row_groups"] == [0, 1, 2, 3]
    assert len(out) == int(((truth.ra >= 52) & (truth.ra < 53)).sum())


def test_magnitude_cut_is_pushed_down_as_flux_bound(
    tmp_path: Path, reads: list[dict[str, Any]]
) -> None:
    from catalog_testdata import dc2_frame, write_row_groups

    rng = np.random.default_rng(5)
    groups = []
    for lo in (18.0, 21.0, 24.0):  # row groups of increasingly faint objects
        g = dc2_frame(300, rng, (0.0, 1.0), (0.0, 1.0))
        g["psFlux_r"] = (10 ** (-0.4 * (rng.uniform(lo, lo + 2.5, 300) - 31.4))).astype(np.float32)
        groups.append(g)
    write_row_groups(tmp_path / "mags.parquet", groups)
    cat = skydask.open_catalog(tmp_path / "mags.parquet").select(["mag_r"]).where("mag_r > 23.8")
    out = cat.compute()
    assert [c["row_groups"] for c in reads] == [[2]]
    assert len(out) == 300


def test_len_from_metadata_reads_no_data(make_dc2_tracts: Any, reads: list[dict[str, Any]]) -> None:
    root, truth = make_dc2_tracts()
    assert len(skydask.open_catalog(root)) == len(truth)
    assert reads == []


def test_open_touches_no_file_but_the_first(
    make_dc2_tracts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = make_dc2_tracts(ntracts=6)
    opened: list[str] = []
    original = pq.read_metadata
    monkeypatch.setattr(
        pq, "read_metadata", lambda p, *a, **k: (opened.append(str(p)), original(p, *a, **k))[1]
    )
    cat = skydask.open_catalog(root)
    assert len(opened) == 1
    assert cat.npartitions == 6
    assert len(opened) == 1


@pytest.mark.parametrize(
    ("ra", "dec", "radius", "ra0", "dec0"),
    [
        (51.3, -34.0, 0.4, 50.0, -35.0),  # ordinary
        (0.1, 10.0, 0.7, 358.0, 9.0),  # across RA = 0/360
        (30.0, 89.2, 1.0, 0.0, 87.0),  # contains the pole: every RA
    ],
)
def test_cone_equals_brute_force(
    make_dc2_tracts: Any, ra: float, dec: float, radius: float, ra0: float, dec0: float
) -> None:
    if dec0 == 87.0:
        root, truth = make_dc2_tracts(ntracts=12, npatch=6, rows_per_patch=200, ra0=ra0, dec0=dec0)
    else:
        root, truth = make_dc2_tracts(ntracts=4, npatch=4, ra0=ra0, dec0=dec0)
    cat = skydask.open_catalog(root).cone(ra, dec, radius)
    out = cat.select(["objectId"]).compute()
    expected = truth.objectId[angular_separation_deg(truth.ra, truth.dec, ra, dec) <= radius]
    assert len(expected) > 0
    assert sorted(out.objectId) == sorted(expected)
    assert cat.prune_stats.row_groups_kept < cat.prune_stats.row_groups_total


def test_box_with_ra_wrap_equals_brute_force(make_dc2_tracts: Any) -> None:
    root, truth = make_dc2_tracts(ntracts=4, npatch=4, ra0=358.0, dec0=-1.0)
    cat = skydask.open_catalog(root).box(359.5, 0.5, -0.6, 0.4)
    out = cat.select(["objectId"]).compute()
    in_ra = (truth.ra >= 359.5) | (truth.ra <= 0.5)
    expected = truth.objectId[in_ra & (truth.dec >= -0.6) & (truth.dec <= 0.4)]
    assert len(expected) > 0
    assert sorted(out.objectId) == sorted(expected)
    # strips are 358-359, 359-360, 0-1, 1-2: only the two touching RA = 0 are read
    assert cat.prune_stats.files_kept == 2


def test_healpix_region_equals_brute_force(make_dc2_tracts: Any) -> None:
    import hpgeom

    root, truth = make_dc2_tracts()
    pix = hpgeom.angle_to_pixel(2**7, truth.ra.to_numpy(), truth.dec.to_numpy())
    chosen = sorted(set(pix[:3].tolist()))
    out = skydask.open_catalog(root).healpix(7, chosen).select(["objectId"]).compute()
    assert sorted(out.objectId) == sorted(truth.objectId[np.isin(pix, chosen)])


INJECTIONS = [
    "__import__('os').system('true')",
    "mag_i.__class__",
    "(lambda x: x)(mag_i) > 1",
    "[x for x in mag_i]",
    "mag_i[0] > 1",
    "open('x')",
    "mag_i < 24; import os",
    "mag_i = 3",
    "no_such_quantity > 1",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_attempts_fail_before_reading(
    make_dc2_tracts: Any, reads: list[dict[str, Any]], text: str
) -> None:
    root, _ = make_dc2_tracts(ntracts=1)
    with pytest.raises((FilterSyntaxError, UnknownQuantityError)):
        skydask.open_catalog(root).where(text)
    assert reads == []


def test_unknown_quantity_names_nearest(make_dc2_tracts: Any) -> None:
    root, _ = make_dc2_tracts(ntracts=1)
    with pytest.raises(UnknownQuantityError, match="mag_i") as err:
        skydask.open_catalog(root).select(["mag_ii"])
    assert "mag_ii" in str(err.value)
    with pytest.raises(UnknownQuantityError, match="psf_fwhm_i"):
        skydask.open_catalog(root).select(
            ["psf_fwhm_i"]
        )  # declared, but the files lack PSF moments


def test_non_condition_where_is_rejected(make_dc2_tracts: Any) -> None:
    root, _ = make_dc2_tracts(ntracts=1)
    with pytest.raises(SchemaError, match="not a condition"):
        skydask.open_catalog(root).where("mag_i + 1")


def test_boolean_flag_alone_is_a_condition(make_dc2_tracts: Any) -> None:
    root, truth = make_dc2_tracts(ntracts=1)
    assert len(skydask.open_catalog(root).where("clean")) == int(truth.clean.sum())
    assert len(skydask.open_catalog(root).where("~clean")) == int((~truth.clean).sum())


def test_empty_selection_gives_empty_result_with_columns(make_dc2_tracts: Any) -> None:
    root, _ = make_dc2_tracts(ntracts=2)
    cat = skydask.open_catalog(root).select(["mag_g", "ra"]).where("mag_g < 5")
    out = cat.compute()
    assert len(out) == 0 and list(out.columns) == ["mag_g", "ra"]
    assert len(cat) == 0
    assert len(cat.head()) == 0


def test_truncated_file_error_names_it(make_dc2_tracts: Any) -> None:
    root, _ = make_dc2_tracts(ntracts=3)
    bad = root / "object_tract_1.parquet"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    cat = skydask.open_catalog(root)
    with pytest.raises(CatalogReadError, match=r"object_tract_1\.parquet"):
        len(cat.where("mag_r < 20"))
    with pytest.raises(CatalogReadError, match=r"object_tract_1\.parquet"):
        cat.select(["mag_r"]).compute()


def test_schema_differing_between_files_is_named(make_dc2_tracts: Any) -> None:
    root, _ = make_dc2_tracts(ntracts=3)
    odd = pd.read_parquet(root / "object_tract_2.parquet").drop(columns=["blendedness"])
    odd.to_parquet(root / "object_tract_2.parquet")
    with pytest.raises(
        CatalogReadError, match=r"object_tract_2\.parquet.*missing columns \['blendedness'\]"
    ):
        len(skydask.open_catalog(root).where("blendedness < 0.1"))


def test_hive_layout_keys_become_columns_and_prune(
    tmp_path: Path, reads: list[dict[str, Any]]
) -> None:
    from catalog_testdata import dc2_frame

    rng = np.random.default_rng(7)
    for tract in (10, 11, 12):
        (tmp_path / f"tract={tract}").mkdir()
        dc2_frame(400, rng, (tract, tract + 1.0), (0.0, 1.0)).to_parquet(
            tmp_path / f"tract={tract}" / "part-0.parquet"
        )
    cat = skydask.open_catalog(tmp_path)
    assert "tract" in cat.quantities
    sub = cat.select(["tract", "ra"]).where("tract == 11")
    out = sub.compute()
    assert sub.prune_stats.files_kept == 1 and len(reads) == 1
    assert (out.tract == 11).all() and len(out) == 400 and out.ra.between(11, 12).all()


def test_from_pandas_and_from_astropy(tmp_path: Path) -> None:
    from astropy.table import Table

    from catalog_testdata import dc2_frame

    frame = dc2_frame(1000, np.random.default_rng(2), (0.0, 2.0), (0.0, 2.0))
    a = skydask.from_pandas(frame, npartitions=4).select(["mag_r"]).where("mag_r < 22").compute()
    b = (
        skydask.from_astropy(Table.from_pandas(frame), npartitions=3)
        .select(["mag_r"])
        .where("mag_r < 22")
        .compute()
    )
    expected = np.sort(mag(frame.psFlux_r)[mag(frame.psFlux_r) < 22])
    np.testing.assert_allclose(np.sort(a.mag_r), expected)
    np.testing.assert_allclose(np.sort(b.mag_r), expected)


def test_repr_and_head(make_dc2_tracts: Any) -> None:
    root, truth = make_dc2_tracts(ntracts=2)
    cat = skydask.open_catalog(root)
    text = repr(cat)
    assert (
        "dc2" in text and f"{len(truth):,}" in text and "partitions: 2" in text and "deg2" in text
    )
    head = cat.select(["ra", "mag_i"]).head(7)
    assert len(head) == 7 and list(head.columns) == ["ra", "mag_i"]


def test_graph_is_one_task_per_partition(make_dc2_tracts: Any) -> None:
    root, _ = make_dc2_tracts(ntracts=5)
    ddf = (
        skydask.open_catalog(root)
        .select(["mag_g", "mag_r"])
        .where("mag_r < 23 & extendedness == 0")
        .to_dask()
    )
    assert len(ddf.__dask_graph__()) == ddf.npartitions == 5
    assert len(ddf.optimize().__dask_graph__()) == 5


def test_missing_column_in_one_file_is_named(make_dc2_tracts: Any) -> None:
    # no cut, so no footer is compared: the read itself must name the file and the column
    root, _ = make_dc2_tracts(ntracts=3)
    odd = pd.read_parquet(root / "object_tract_1.parquet").drop(columns=["psFlux_z"])
    odd.to_parquet(root / "object_tract_1.parquet")
    with pytest.raises(CatalogReadError, match=r"object_tract_1\.parquet.*psFlux_z"):
        skydask.open_catalog(root).select(["mag_z"]).compute()


def test_large_file_is_split_on_row_groups_by_config(make_dc2_tracts: Any) -> None:
    root, truth = make_dc2_tracts(ntracts=1, npatch=8, rows_per_patch=100)
    with dask.config.set({"skydask.catalog.max-partition-rows": 250}):
        cat = skydask.open_catalog(root).where("mag_r > 0")
        assert cat.npartitions == 4
        assert len(cat) == int((truth.psFlux_r > 1e-12).sum())


def test_partition_readers_read_what_to_delayed_and_pandas_give(make_dc2_tracts: Any) -> None:
    # each reader reads one partition: the same rows as the delayed task of that partition,
    # and together the rows plain pandas selects, in order; a pruned-away selection has one
    # reader, of the empty result
    root, frame = make_dc2_tracts(ntracts=3)
    cat = skydask.open_catalog(root).select(["ra", "mag_r"]).where("mag_r < 23")
    names = {"x": "ra", "m": "mag_r"}
    readers = cat.partition_readers(names, arrays=True)
    assert len(readers) == cat.npartitions == 3
    parts = [read() for read in readers]
    delayed = dask.compute(*cat.to_delayed(names, arrays=True))
    for got, ref in zip(parts, delayed, strict=True):
        assert sorted(got) == ["m", "x"]
        np.testing.assert_array_equal(got["m"], ref["m"])
        np.testing.assert_array_equal(got["x"], ref["x"])
    expected = frame[mag(frame["psFlux_r"]) < 23]
    np.testing.assert_array_equal(np.concatenate([p["x"] for p in parts]), expected["ra"])
    frames = [read() for read in cat.partition_readers()]
    assert all(isinstance(f, pd.DataFrame) and list(f.columns) == ["ra", "mag_r"] for f in frames)
    (empty,) = cat.where("mag_r < 5").partition_readers(names, arrays=True)
    assert {c: len(v) for c, v in empty().items()} == {"x": 0, "m": 0}


def test_chunked_partitions_hold_what_the_frames_hold(make_dc2_tracts: Any) -> None:
    # every partition read as chunks (one per row group where a column is read as it is
    # stored) holds the frame's columns; a pruned-away selection gives zero typed rows
    root, _ = make_dc2_tracts(ntracts=2, npatch=6)
    cat = skydask.open_catalog(root).select(["ra", "psFlux_r", "mag_r"])
    for selection in (cat, cat.where("mag_r < 23")):
        parts = dask.compute(*selection.to_delayed(chunks=True))
        frames = dask.compute(*selection.to_delayed())
        for part, frame in zip(parts, frames, strict=True):
            assert isinstance(part, reader.ChunkedColumns) and part.rows == len(frame)
            for name in frame.columns:
                np.testing.assert_array_equal(part[name], frame[name].to_numpy())
    (whole,) = dask.compute(cat.to_delayed(chunks=True)[0])
    assert len(whole.chunks("ra")) == 6 and len(whole.chunks("mag_r")) == 1  # computed: joined
    (empty,) = dask.compute(*cat.where("mag_r < 5").to_delayed(chunks=True))
    assert empty.rows == 0 and empty["psFlux_r"].dtype == frames[0]["psFlux_r"].dtype
    with pytest.raises(ValueError, match="arrays or for chunks"):
        cat.to_delayed(arrays=True, chunks=True)
