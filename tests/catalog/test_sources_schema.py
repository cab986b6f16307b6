"""Source and ForcedSource quantities: flavour detection and resolution onto stored columns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import skydask
from skydask.errors import SchemaError, UnknownQuantityError
from skydask.schema import Schema, detect_flavour
from skydask.schema import expressions as ex
from skydask.schema.definitions import (
    definitions,
    flavour_columns,
    flavour_names,
    flavour_table,
    native_dtypes,
)

# the identifying columns of real tables of each kind (a few of their columns)
TABLES = {
    "dc2": ["objectId", "ra", "dec", "psFlux_g", "psFluxErr_g", "extendedness"],
    "dp1": ["objectId", "coord_ra", "coord_dec", "g_psfFlux", "g_psfFluxErr", "refExtendedness"],
    "dc2_source": ["sourceId", "objectId", "visit", "filter", "ra", "dec", "psFlux", "psFluxErr"],
    "dc2_forced_source": ["objectId", "visit", "filter", "psFlux", "psFluxErr", "psFlux_flag"],
    "dc2_source_native": [
        "id", "visit", "filter", "coord_ra", "coord_dec", "slot_PsfFlux_instFlux",
        "slot_PsfFlux_instFluxErr", "fluxmag0", "objectId",
    ],
    "dc2_forced_source_native": [
        "id", "objectId", "visit", "filter", "slot_PsfFlux_instFlux", "slot_PsfFlux_instFluxErr",
        "fluxmag0",
    ],
    "dp1_source": ["sourceId", "coord_ra", "coord_dec", "visit", "band", "psfFlux", "psfFluxErr"],
    "dp1_forced_source": [
        "objectId", "coord_ra", "coord_dec", "visit", "band", "psfFlux", "psfFluxErr", "tract",
        "patch",
    ],
    "lsst_pipeline_src": [
        "id", "coord_ra", "coord_dec", "base_PsfFlux_instFlux", "base_PsfFlux_mag",
        "base_PsfFlux_snr", "object", "visit", "band",
    ],
}  # fmt: skip


@pytest.mark.parametrize(("flavour", "columns"), list(TABLES.items()))
def test_every_flavour_is_detected_from_its_columns(flavour: str, columns: list[str]) -> None:
    assert detect_flavour(columns) == flavour


def test_object_flavours_are_detected_as_before() -> None:
    # with both identifying sets present the first declared Object flavour still wins
    assert detect_flavour(["ra", "dec", "coord_ra", "coord_dec"]) == "dc2"
    assert [f for f in flavour_names() if flavour_table(f) == "object"] == ["dc2", "dp1"]
    assert "psFlux" not in definitions() and "psFlux_r" not in definitions("source")


def test_source_quantities_have_units_and_the_same_conversions_as_objects() -> None:
    source = definitions("source")
    assert (source["psFlux"].unit, source["mjd"].unit, source["ra"].unit) == ("nJy", "d", "deg")
    assert source["mag"].expr == "-2.5 * log10(psFlux) + 31.4"
    assert source["snr"].expr == "psFlux / psFluxErr"
    assert native_dtypes("source")["band"] == "string"
    with pytest.raises(SchemaError, match="unknown table kind"):
        definitions("diaSource")


def test_dc2_native_fluxes_are_calibrated_with_fluxmag0_in_njy() -> None:
    frame = pd.DataFrame(
        {
            "id": [1, 2], "objectId": [5, 6], "visit": [3, 3], "filter": ["r", "r"],
            "coord_ra": np.radians([60.0, 61.0]), "coord_dec": np.radians([-35.0, -34.0]),
            "slot_PsfFlux_instFlux": [2000.0, 50.0], "slot_PsfFlux_instFluxErr": [20.0, 5.0],
            "fluxmag0": [1.0e11, 1.0e11],
        }
    )  # fmt: skip
    cat = skydask.from_pandas(frame)
    assert cat.schema.flavour == "dc2_source_native"
    out = cat.select(["sourceId", "band", "ra", "dec", "psFlux", "mag", "snr"]).compute()
    # AB: a source of flux fluxmag0 has magnitude 0, so m = -2.5 log10(instFlux / fluxmag0)
    np.testing.assert_allclose(out["mag"], -2.5 * np.log10(frame["slot_PsfFlux_instFlux"] / 1e11))
    np.testing.assert_allclose(out["psFlux"], 10 ** (-0.4 * (out["mag"] - 31.4)))
    np.testing.assert_allclose(out["ra"], [60.0, 61.0])
    np.testing.assert_allclose(out["snr"], [100.0, 10.0])
    assert out["band"].tolist() == ["r", "r"]
    assert out["sourceId"].tolist() == [1, 2]


def test_lsst_pipeline_src_derives_njy_flux_from_the_calibrated_magnitude() -> None:
    schema = Schema("lsst_pipeline_src", TABLES["lsst_pipeline_src"])
    assert schema.table == "source"
    assert ex.to_text(schema.resolve("psFlux")) == "10 ** (-0.4 * (base_PsfFlux_mag - 31.4))"
    values = {
        "base_PsfFlux_mag": np.array([20.0, 23.5]),
        "base_PsfFlux_snr": np.array([400.0, 12.0]),
        "coord_ra": np.array([math.pi, 0.5]),
    }
    mag = ex.evaluate(schema.resolve("mag"), values)
    snr = ex.evaluate(schema.resolve("snr"), values)
    ra = ex.evaluate(schema.resolve("ra"), values)
    np.testing.assert_allclose(mag, values["base_PsfFlux_mag"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(snr, values["base_PsfFlux_snr"], rtol=1e-12)
    np.testing.assert_allclose(ra, np.degrees(values["coord_ra"]), rtol=1e-15)
    assert dict(flavour_columns("lsst_pipeline_src"))["objectId"] == "object"


def test_a_source_table_offers_no_object_quantities_and_names_what_is_missing() -> None:
    schema = Schema("dc2_forced_source", TABLES["dc2_forced_source"])
    assert "mag_r" not in schema and "mag" in schema and "band" in schema
    with pytest.raises(UnknownQuantityError, match=r"'ra'.*needs 'ra'"):
        schema.check(["ra"])
    info = schema.info("psFluxErr")
    assert (info.unit, info.native) == ("nJy", True)


def test_unselected_source_catalogue_returns_its_stored_columns() -> None:
    # 'filter' is the stored name of the band quantity: without a selection every stored
    # column comes back under its own name
    frame = pd.DataFrame({"objectId": [1], "visit": [2], "filter": ["i"], "psFlux": [3.0]})
    cat = skydask.from_pandas(frame)
    assert cat.compute().columns.tolist() == ["objectId", "visit", "filter", "psFlux"]
    assert cat.select(["band", "mag"]).compute()["band"].tolist() == ["i"]
