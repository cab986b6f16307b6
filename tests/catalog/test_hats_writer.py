"""Tests of ``write_hats`` and the HEALPix helpers, against independent truths.

The truth for "which pixel" is hpgeom called directly at the file's order (never the
writer's bit shifts), the truth for the chosen order is a brute-force count per pixel, and the
truth for the contents is the input DataFrame itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import dask
import dask.dataframe as dd
import hpgeom
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skydask.catalog import hats_writer
from skydask.catalog.hats_writer import HatsWriteInfo, write_hats
from skydask.catalog.healpix_index import (
    HEALPIX29_COLUMN,
    hats_dir,
    hats_pixel_path,
    healpix29,
    parse_hats_pixel_path,
    to_order,
)
from skydask.errors import SchemaError, SkydaskError

N_ROWS = 200_000
MAX_ROWS = 20_000
ROW_GROUP_ROWS = 3_000
PATH_RE = re.compile(r"Norder=(\d+)/Dir=(\d+)/Npix=(\d+)\.parquet$")


def make_frame(n: int, seed: int = 42) -> pd.DataFrame:
    """Random positions in a 10 x 8 deg box around dec -36, and columns of several types.

    The first 50 rows are given the positions of rows n/2 .. n/2 + 49, so equal
    ``_healpix_29`` values occur in different input partitions (ties test determinism).
    """
    rng = np.random.default_rng(seed)
    ra = rng.uniform(55.0, 65.0, n)
    dec = rng.uniform(-40.0, -32.0, n)
    ra[:50], dec[:50] = ra[n // 2 : n // 2 + 50], dec[n // 2 : n // 2 + 50]
    flux = rng.lognormal(5.0, 1.0, n)
    flux[rng.random(n) < 0.01] = np.nan  # NaN in a payload column is data, not an error
    return pd.DataFrame(
        {
            "objectId": rng.permutation(n).astype(np.int64) + 10**12,
            "ra": ra,
            "dec": dec,
            "mag_r": rng.normal(22.0, 1.5, n).astype(np.float32),
            "psFlux_r": flux,
            "psNdata": rng.integers(0, 200, n, dtype=np.int32),
            "clean": rng.random(n) < 0.9,
            "band": pd.Series(rng.choice(["g", "r", "i"], n), dtype="str"),
        }
    )


def read_all(root: Path) -> pd.DataFrame:
    files = sorted((root / "dataset").glob("Norder=*/Dir=*/Npix=*.parquet"))
    return pa.concat_tables(pq.read_table(f) for f in files).to_pandas()


def pixel_files(root: Path) -> list[tuple[Path, int, int, int]]:
    """(file, order, dir, pixel) of every data file, parsed here, not by the code under test."""
    out = []
    for f in sorted((root / "dataset").rglob("*.parquet")):
        match = PATH_RE.search(f.relative_to(root / "dataset").as_posix())
        assert match is not None, f
        order, directory, pixel = (int(g) for g in match.groups())
        out.append((f, order, directory, pixel))
    return out


def read_properties(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def brute_force_order(df: pd.DataFrame, max_rows: int) -> int:
    for order in range(13):
        pixels = hpgeom.angle_to_pixel(2**order, df["ra"].to_numpy(), df["dec"].to_numpy())
        if np.bincount(pixels - pixels.min()).max() <= max_rows:
            return order
    raise AssertionError("no order up to 12 satisfies the limit")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(N_ROWS)


@pytest.fixture(scope="module")
def written(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> HatsWriteInfo:
    root = tmp_path_factory.mktemp("hats") / "dc2_object"
    return write_hats(
        dd.from_pandas(frame, npartitions=5),
        root,
        max_rows_per_pixel=MAX_ROWS,
        row_group_rows=ROW_GROUP_ROWS,
        catalog_name="dc2 object test",
    )


# -- the written catalogue ----------------------------------------------------------------


def test_round_trip_gives_the_input_rows(frame: pd.DataFrame, written: HatsWriteInfo) -> None:
    back = read_all(written.path)
    assert list(back.columns) == [*frame.columns, HEALPIX29_COLUMN]  # no pandas index column
    assert back[HEALPIX29_COLUMN].dtype == np.int64
    got = back.sort_values("objectId").reset_index(drop=True)
    want = frame.sort_values("objectId").reset_index(drop=True)
    # dask turns "str" columns into "string" (NA-valued) ones; the writer keeps dask's dtype.
    want["band"] = want["band"].astype(dd.from_pandas(frame.iloc[:1], npartitions=1).dtypes["band"])
    pd.testing.assert_frame_equal(got[list(frame.columns)], want, check_exact=True)
    truth = hpgeom.angle_to_pixel(2**29, want["ra"].to_numpy(), want["dec"].to_numpy())
    np.testing.assert_array_equal(got[HEALPIX29_COLUMN].to_numpy(), truth)
    assert written.nrows == N_ROWS


def test_every_file_holds_its_pixel_sorted_in_bounded_row_groups(written: HatsWriteInfo) -> None:
    files = pixel_files(written.path)
    assert [p for _, _, _, p in files] == sorted(written.pixels)
    assert len(files) == written.npixels
    for path, order, directory, pixel in files:
        assert order == written.order
        assert directory == pixel // 10_000 * 10_000
        table = pq.read_table(path)
        pixel_of_row = hpgeom.angle_to_pixel(
            2**order, table["ra"].to_numpy(), table["dec"].to_numpy()
        )
        assert np.all(pixel_of_row == pixel), path
        assert np.all(np.diff(table[HEALPIX29_COLUMN].to_numpy()) >= 0), path
        meta = pq.ParquetFile(path).metadata
        assert meta.num_rows <= MAX_ROWS
        for i in range(meta.num_row_groups):
            group = meta.row_group(i)
            assert group.num_rows <= ROW_GROUP_ROWS
            ra_stats = group.column(table.schema.get_field_index("ra")).statistics
            assert ra_stats is not None and ra_stats.has_min_max
        assert meta.schema.to_arrow_schema().pandas_metadata["index_columns"] == []


def test_metadata_files_describe_every_row_group(written: HatsWriteInfo) -> None:
    dataset = written.path / "dataset"
    metadata = pq.read_metadata(dataset / "_metadata")
    files = pixel_files(written.path)
    file_groups = [
        (p.relative_to(dataset).as_posix(), pq.ParquetFile(p).metadata.row_group(i).num_rows)
        for p, *_ in files
        for i in range(pq.ParquetFile(p).metadata.num_row_groups)
    ]
    listed = [
        (metadata.row_group(i).column(0).file_path, metadata.row_group(i).num_rows)
        for i in range(metadata.num_row_groups)
    ]
    assert listed == file_groups  # files in pixel order, row groups in file order
    assert sum(rows for _, rows in listed) == written.nrows == metadata.num_rows
    common = pq.read_schema(dataset / "_common_metadata")
    assert common.equals(pq.read_schema(files[0][0]), check_metadata=True)
    assert common.equals(metadata.schema.to_arrow_schema())

    info = pd.read_csv(written.path / "partition_info.csv")
    assert list(info.columns) == ["Norder", "Npix"]
    assert info["Norder"].tolist() == [written.order] * written.npixels
    assert info["Npix"].tolist() == list(written.pixels)

    props = read_properties(written.path / "hats.properties")
    largest = max(pq.ParquetFile(p).metadata.num_rows for p, *_ in files)
    expected = {
        "obs_collection": "dc2 object test",
        "dataproduct_type": "object",
        "hats_nrows": str(N_ROWS),
        "hats_col_ra": "ra",
        "hats_col_dec": "dec",
        "hats_col_healpix": HEALPIX29_COLUMN,
        "hats_col_healpix_order": "29",
        "hats_npix_suffix": ".parquet",
        "hats_order": str(written.order),
        "hats_max_rows": str(largest),
        "hats_version": "v1.0",
    }
    assert {k: props.get(k) for k in expected} == expected
    assert props["hats_builder"].startswith("skydask ")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", props["hats_creation_date"])
    fraction = written.npixels / (12 * 4**written.order)
    assert float(props["moc_sky_fraction"]) == pytest.approx(fraction, rel=1e-4)


# -- choices and invariance ---------------------------------------------------------------


def test_order_is_the_coarsest_that_respects_max_rows(
    frame: pd.DataFrame, written: HatsWriteInfo, tmp_path: Path
) -> None:
    assert written.order == brute_force_order(frame, MAX_ROWS)
    small = frame.iloc[:40_000]
    finer = write_hats(dd.from_pandas(small, npartitions=3), tmp_path / "c", max_rows_per_pixel=500)
    assert finer.order == brute_force_order(small, 500)
    assert finer.order > written.order
    counts = [pq.read_metadata(p).num_rows for p, *_ in pixel_files(finer.path)]
    assert max(counts) <= 500
    assert sum(counts) == len(small)


def test_explicit_order_is_used(frame: pd.DataFrame, tmp_path: Path) -> None:
    small = frame.iloc[:10_000]
    info = write_hats(dd.from_pandas(small, npartitions=2), tmp_path / "c", order=3)
    truth = np.unique(hpgeom.angle_to_pixel(2**3, small["ra"].to_numpy(), small["dec"].to_numpy()))
    assert info.order == 3
    assert info.pixels == tuple(truth.tolist())


def test_files_do_not_depend_on_the_input_partitioning(tmp_path: Path) -> None:
    df = make_frame(60_000, seed=7)
    roots = []
    for npartitions in (1, 7):
        root = tmp_path / f"p{npartitions}"
        write_hats(dd.from_pandas(df, npartitions=npartitions), root, max_rows_per_pixel=4_000)
        roots.append(root)
    names = [
        sorted(p.relative_to(r).as_posix() for p in r.rglob("*") if p.is_file()) for r in roots
    ]
    assert names[0] == names[1]
    for name in names[0]:
        if name != "hats.properties":  # holds the creation time
            assert (roots[0] / name).read_bytes() == (roots[1] / name).read_bytes(), name
    # The 50 pairs of rows at identical positions come out in input order within a file.
    back = read_all(roots[0])
    twins = back[
        back["objectId"].isin(df["objectId"].iloc[list(range(50)) + list(range(30_000, 30_050))])
    ]
    first_ids = set(df["objectId"].iloc[:50])
    assert twins[HEALPIX29_COLUMN].nunique() == 50
    for _, pair in twins.groupby(HEALPIX29_COLUMN, sort=False):
        assert len(pair) == 2
        assert pair["objectId"].iloc[0] in first_ids


def test_process_scheduler(frame: pd.DataFrame, tmp_path: Path) -> None:
    small = frame.iloc[:20_000]
    with dask.config.set(scheduler="processes", num_workers=2):
        info = write_hats(
            dd.from_pandas(small, npartitions=4), tmp_path / "c", max_rows_per_pixel=3_000
        )
    assert info.nrows == len(small)
    assert pq.read_metadata(info.path / "dataset" / "_metadata").num_rows == len(small)


# -- failures ----------------------------------------------------------------------------


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith((".tmp-", ".old-")))


def test_failure_in_pass_3_leaves_nothing(
    frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = hats_writer._write_pixel
    calls: list[int] = []

    def failing(order: int, pixel: int, *args: object, **kwargs: object) -> pq.FileMetaData:
        calls.append(pixel)
        if len(calls) == 3:
            raise RuntimeError("disk full (injected)")
        return original(order, pixel, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hats_writer, "_write_pixel", failing)
    target = tmp_path / "cat"
    with pytest.raises(RuntimeError, match="injected"):
        write_hats(
            dd.from_pandas(frame.iloc[:30_000], npartitions=3), target, max_rows_per_pixel=2_000
        )
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_failed_overwrite_keeps_the_old_catalogue(
    frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "cat"
    first = write_hats(dd.from_pandas(frame.iloc[:5_000], npartitions=2), target)
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}

    def failing(*args: object, **kwargs: object) -> pq.FileMetaData:
        raise RuntimeError("injected")

    monkeypatch.setattr(hats_writer, "_write_pixel", failing)
    with pytest.raises(RuntimeError, match="injected"):
        write_hats(dd.from_pandas(frame.iloc[:9_000], npartitions=2), target, overwrite=True)
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
    assert read_properties(target / "hats.properties")["hats_nrows"] == str(first.nrows)
    assert leftovers(tmp_path) == []


def test_existing_path_needs_overwrite(frame: pd.DataFrame, tmp_path: Path) -> None:
    target = tmp_path / "cat"
    write_hats(dd.from_pandas(frame.iloc[:5_000], npartitions=2), target)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_hats(dd.from_pandas(frame.iloc[:9_000], npartitions=2), target)
    assert read_properties(target / "hats.properties")["hats_nrows"] == "5000"

    info = write_hats(dd.from_pandas(frame.iloc[:9_000], npartitions=2), target, overwrite=True)
    assert info.nrows == 9_000
    assert len(read_all(target)) == 9_000
    assert leftovers(tmp_path) == []


def test_overwrite_refuses_a_directory_that_is_not_a_catalogue(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("...")
    with pytest.raises(FileExistsError, match="not a HATS catalogue"):
        write_hats(dd.from_pandas(frame.iloc[:100], npartitions=1), precious, overwrite=True)
    assert (precious / "chapter1.tex").read_text() == "..."


@pytest.mark.parametrize(
    ("column", "value", "count"),
    [("ra", np.nan, 3), ("ra", np.inf, 2), ("decl", np.nan, 4), ("decl", 91.0, 1)],
)
def test_rows_without_a_position_raise_naming_the_column(
    frame: pd.DataFrame, tmp_path: Path, column: str, value: float, count: int
) -> None:
    df = frame.iloc[:10_000].rename(columns={"dec": "decl"})
    df.loc[df.index[[10, 4_000, 9_999, 5][:count]], column] = value
    target = tmp_path / "cat"
    with pytest.raises(SchemaError, match=rf"column '{column}': {count} rows"):
        write_hats(dd.from_pandas(df, npartitions=3), target, dec_column="decl")
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_nullable_ra_with_missing_values_raises(frame: pd.DataFrame, tmp_path: Path) -> None:
    df = frame.iloc[:1_000].astype({"ra": "Float64"})
    df.loc[df.index[7], "ra"] = pd.NA
    with pytest.raises(SchemaError, match=r"column 'ra': 1 rows"):
        write_hats(dd.from_pandas(df, npartitions=2), tmp_path / "cat")


def test_bad_columns_and_arguments(frame: pd.DataFrame, tmp_path: Path) -> None:
    ddf = dd.from_pandas(frame.iloc[:100], npartitions=1)
    with pytest.raises(SchemaError, match="ra_column='RA' is not a column"):
        write_hats(ddf, tmp_path / "a", ra_column="RA")
    with pytest.raises(SchemaError, match="Npix"):
        write_hats(ddf.assign(Npix=1), tmp_path / "b")
    with pytest.raises(ValueError, match="row_group_rows"):
        write_hats(ddf, tmp_path / "c", row_group_rows=0)
    with pytest.raises(ValueError, match="order"):
        write_hats(ddf, tmp_path / "d", order=30)
    with pytest.raises(SkydaskError, match="no rows"):
        write_hats(dd.from_pandas(frame.iloc[:0], npartitions=1), tmp_path / "e")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_input_healpix_column_is_recomputed(frame: pd.DataFrame, tmp_path: Path) -> None:
    df = frame.iloc[:2_000].assign(**{HEALPIX29_COLUMN: np.int64(-1)})
    info = write_hats(dd.from_pandas(df, npartitions=2), tmp_path / "cat")
    back = read_all(info.path)
    assert list(back.columns).count(HEALPIX29_COLUMN) == 1
    assert (back[HEALPIX29_COLUMN] >= 0).all()


# -- healpix_index --------------------------------------------------------------------------


def test_to_order_matches_hpgeom_at_every_order() -> None:
    rng = np.random.default_rng(3)
    ra, dec = rng.uniform(0, 360, 5_000), np.degrees(np.arcsin(rng.uniform(-1, 1, 5_000)))
    hp29 = healpix29(ra, dec)
    for order in (0, 1, 5, 12, 20, 29):
        np.testing.assert_array_equal(
            to_order(hp29, order), hpgeom.angle_to_pixel(2**order, ra, dec, nest=True)
        )


def test_pixel_paths_round_trip() -> None:
    for order, pixel in [(0, 0), (0, 11), (3, 767), (8, 123_456), (29, 12 * 4**29 - 1)]:
        path = hats_pixel_path("/data/cat", order, pixel)
        assert path.parent.name == f"Dir={hats_dir(order, pixel)}"
        assert parse_hats_pixel_path(path) == (order, pixel)
        assert parse_hats_pixel_path(str(path).replace("/", "\\")) == (order, pixel)
    assert parse_hats_pixel_path("cat/dataset/Norder=0/Dir=0/Npix=12.parquet") is None
    assert parse_hats_pixel_path("cat/dataset/Norder=3/Dir=0/Npix=5.parquet.tmp") is None
    assert parse_hats_pixel_path("cat/dataset/_common_metadata") is None
    with pytest.raises(ValueError, match="does not exist"):
        hats_dir(0, 12)
