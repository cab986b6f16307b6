"""Opening Source tables: the real HSC single-visit files, 10,000-file tables, bad files."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from astropy.table import Table

import skydask
from skydask.catalog import reader
from skydask.catalog.listing import LISTING_FILE, read_listing, write_listing
from skydask.errors import CatalogReadError

HSC = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize(("band", "rows", "primary"), [("r", 5891, 5144), ("i", 4689, None)])
def test_hsc_single_visit_files_open_as_a_source_table(
    band: str, rows: int, primary: int | None
) -> None:
    path = HSC / f"faro_hsc_matchedCatalogTract_0_{band}.fits.gz"
    cat = skydask.open_catalog(path)
    assert cat.schema.flavour == "lsst_pipeline_src"
    assert cat.schema.table == "source"
    assert len(cat) == rows
    out = cat.select(
        ["objectId", "sourceId", "visit", "band", "ra", "dec", "mag", "snr", "extendedness",
         "pixelFlags_saturated", "detect_isPrimary"]
    ).compute()  # fmt: skip
    raw = Table.read(path)
    assert set(out["band"]) == {band}  # from faro's filter code (filt = 3 is r, 4 is i)
    assert sorted(set(out["visit"])) == sorted(set(np.asarray(raw["visit"]).tolist()))
    assert len(set(out["visit"])) == 3
    np.testing.assert_array_equal(out["objectId"], np.asarray(raw["object"]))
    np.testing.assert_allclose(out["ra"], np.degrees(np.asarray(raw["coord_ra"])), rtol=1e-15)
    np.testing.assert_allclose(out["dec"], np.degrees(np.asarray(raw["coord_dec"])), rtol=1e-15)
    # psFlux [nJy] comes from the calibrated magnitude, so mag and snr round-trip exactly
    # (a negative flux has no magnitude: its psFlux, and so its snr, is NaN)
    mag = np.asarray(raw["base_PsfFlux_mag"])
    finite = np.isfinite(mag)
    np.testing.assert_allclose(out["mag"], mag, atol=1e-9)
    np.testing.assert_allclose(out["snr"][finite], np.asarray(raw["base_PsfFlux_snr"])[finite],
                               rtol=1e-9)  # fmt: skip
    # the packed afw flags are unpacked by their TFLAG names
    header = fits.getheader(path, 1)
    bit = {v: int(k[5:]) - 1 for k, v in header.items() if k.startswith("TFLAG")}
    flags = np.asarray(raw["flags"])
    assert (
        out["pixelFlags_saturated"].sum() == flags[:, bit["base_PixelFlags_flag_saturated"]].sum()
    )
    assert out["detect_isPrimary"].sum() == flags[:, bit["detect_isPrimary"]].sum()
    if primary is not None:
        assert out["detect_isPrimary"].sum() == primary


def test_a_corrupt_fits_file_is_named() -> None:
    with pytest.raises(CatalogReadError, match=r"no_such_file\.fits"):
        skydask.catalog.afw_fits.read_afw_table("no_such_file.fits")


# --- many files ---------------------------------------------------------------------------


def _visit_frame(visit: int, n: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(visit)
    return pd.DataFrame(
        {
            "sourceId": visit * 1000 + np.arange(n),
            "objectId": np.arange(n, dtype=np.int64),
            "visit": np.full(n, visit, dtype=np.int64),
            "filter": ["r"] * n,
            "ra": rng.uniform(60, 61, n),
            "dec": rng.uniform(-35, -34, n),
            "psFlux": rng.uniform(100, 1000, n).astype(np.float32),
            "psFluxErr": np.full(n, 10.0, dtype=np.float32),
        }
    )


def _many_files(root: Path, n: int) -> Path:
    """``n`` per-visit files in hive ``visit=<k>/`` directories (hard links of one file)."""
    template = root / "template.parquet"
    _visit_frame(0).drop(columns=["visit"]).to_parquet(template, index=False)
    table = root / "source"
    for k in range(1, n + 1):
        directory = table / f"visit={k}"
        directory.mkdir(parents=True)
        os.link(template, directory / "source.parquet")
    return table


class _Opened:
    """Counts the Parquet files pyarrow opens (footers and data), by path."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.footers: list[str] = []
        self.data: list[str] = []
        real_metadata: Callable[..., Any] = pq.read_metadata
        real_decode: Callable[..., Any] = reader.decode_row_groups

        def read_metadata(path: Any, *args: Any, **kwargs: Any) -> Any:
            self.footers.append(str(path))
            return real_metadata(path, *args, **kwargs)

        def decode(path: Any, *args: Any, **kwargs: Any) -> Any:
            self.data.append(str(path))
            return real_decode(path, *args, **kwargs)

        monkeypatch.setattr(pq, "read_metadata", read_metadata)
        monkeypatch.setattr(reader, "decode_row_groups", decode)


@pytest.mark.slow
def test_opening_ten_thousand_files_touches_none_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 10_000
    table = _many_files(tmp_path, n)
    write_listing(table)
    opened = _Opened(monkeypatch)

    def no_walk(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("open_catalog walked the directory despite the listing")

    monkeypatch.setattr(skydask.catalog.open, "discover", no_walk)
    t0 = time.perf_counter()
    cat = skydask.open_catalog(table)
    seconds = time.perf_counter() - t0
    assert (opened.footers, opened.data) == ([], [])
    assert cat.schema.flavour == "dc2_source"  # the schema came from the listing
    assert cat.npartitions == n
    print(f"open_catalog of {n} files with a listing: {seconds:.3f} s")
    assert seconds < 2.0

    # a cut on the hive key plans from footer statistics and opens one file for data
    rows = cat.where("visit == 1234").select(["sourceId", "visit", "mag"]).compute()
    assert rows["visit"].tolist() == [1234] * 5
    assert opened.data == [str(table / "visit=1234" / "source.parquet")]
    assert len(opened.footers) <= n  # each footer read at most once (some were cached)

    # the row count comes from the footers alone
    opened.data.clear()
    assert len(cat) == 5 * n
    assert opened.data == []


def test_without_a_listing_opening_reads_one_footer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _many_files(tmp_path, 50)
    opened = _Opened(monkeypatch)
    cat = skydask.open_catalog(table)
    assert cat.npartitions == 50
    assert len(opened.footers) <= 1 and opened.data == []


def test_a_corrupt_file_is_named_when_it_is_read(tmp_path: Path) -> None:
    table = tmp_path / "source"
    table.mkdir()
    for visit in range(1, 21):
        _visit_frame(visit).to_parquet(table / f"source_visit_{visit}.parquet", index=False)
    write_listing(table)
    bad = table / "source_visit_7.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet file")
    cat = skydask.open_catalog(table)  # reads the listing only: the bad file is not touched
    assert cat.npartitions == 20
    with pytest.raises(CatalogReadError, match=r"source_visit_7\.parquet"):
        cat.select(["objectId", "mag"]).compute()
    # a listed file that disappeared is named too
    _visit_frame(7).to_parquet(bad, index=False)
    (table / "source_visit_3.parquet").unlink()
    with pytest.raises(CatalogReadError, match=r"source_visit_3\.parquet"):
        cat.select(["objectId"]).compute()


def test_without_listing_a_corrupt_first_file_is_named_at_open(tmp_path: Path) -> None:
    table = tmp_path / "source"
    table.mkdir()
    for visit in (1, 2):
        _visit_frame(visit).to_parquet(table / f"source_visit_{visit}.parquet", index=False)
    (table / "source_visit_1.parquet").write_bytes(b"garbage")
    with pytest.raises(CatalogReadError, match=r"source_visit_1\.parquet"):
        skydask.open_catalog(table)


def test_listing_round_trip_and_fallbacks(tmp_path: Path) -> None:
    table = _many_files(tmp_path, 12)
    assert read_listing(table) is None
    path = write_listing(table)
    assert path.name == LISTING_FILE
    listed = read_listing(table)
    assert listed is not None
    layout, schema = listed
    assert layout.kind == "hive" and len(layout.files) == 12
    assert layout.files[0].partition_values == (("visit", 1),)
    assert "visit" in schema.names
    walked = skydask.open_catalog(table)
    assert walked.select(["visit", "mag"]).compute().shape == (60, 2)
    # an unreadable listing is ignored (with a warning), never trusted
    path.write_text("{not json")
    assert read_listing(table) is None
    assert skydask.open_catalog(table).npartitions == 12
    with pytest.raises(CatalogReadError, match="not one"):
        write_listing(tmp_path / "template.parquet")


def test_dc2_per_visit_and_hive_layouts_open_as_source_tables(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    hive = tmp_path / "hive"
    for visit in (5, 6):
        frame = _visit_frame(visit)
        frame.to_parquet(flat / f"source_visit_{visit}.parquet", index=False)
        (hive / f"visit={visit}").mkdir(parents=True)
        frame.drop(columns=["visit"]).to_parquet(hive / f"visit={visit}" / "part.parquet")
    a, b = skydask.open_catalog(flat), skydask.open_catalog(hive)
    assert (a.schema.flavour, b.schema.flavour) == ("dc2_source", "dc2_source")
    left = a.select(["sourceId", "visit", "band", "mag"]).compute().sort_values("sourceId")
    right = b.select(["sourceId", "visit", "band", "mag"]).compute().sort_values("sourceId")
    pd.testing.assert_frame_equal(
        left.reset_index(drop=True), right.reset_index(drop=True), check_dtype=False
    )
