"""Schema flavours, quantity resolution and descriptions."""

from __future__ import annotations

import pytest

import skydask
from skydask.errors import SchemaError, UnknownQuantityError
from skydask.schema import BANDS, Schema, definitions, detect_flavour
from skydask.schema import expressions as ex


def test_every_quantity_has_unit_and_description() -> None:
    for d in definitions().values():
        assert d.description.strip(), d.name
        assert isinstance(d.unit, str)


def test_per_band_quantities_are_generated_for_every_band() -> None:
    names = set(definitions())
    for b in BANDS:
        for template in (
            "psFlux_{}",
            "mag_{}",
            "magerr_{}",
            "snr_{}",
            "mag_{}_cModel",
            "snr_{}_cModel",
            "psf_fwhm_{}",
        ):
            assert template.format(b) in names


def test_dp1_columns_resolve_to_the_same_quantities() -> None:
    dp1 = Schema("dp1", ["coord_ra", "coord_dec", "i_psfFlux", "i_psfFluxErr", "refExtendedness"])
    assert ex.to_text(dp1.resolve("ra")) == "coord_ra"
    assert ex.to_text(dp1.resolve("snr_i")) == "i_psfFlux / i_psfFluxErr"
    assert dp1.columns_for(["mag_i", "extendedness"]) == {"i_psfFlux", "refExtendedness"}
    assert "mag_g" not in dp1


def test_unmapped_columns_are_quantities_of_their_own() -> None:
    s = Schema("dc2", ["ra", "dec", "my_extra"])
    assert "my_extra" in s
    assert s.info("my_extra").description == "column stored in the catalogue"


def test_colour_names_parse_as_one_quantity() -> None:
    s = Schema("dc2", ["psFlux_g", "psFlux_r", "ra", "dec"])
    expr = s.parse("g-r > 0.5")
    assert ex.names(expr) == {"g-r"}
    assert ex.to_text(s.to_columns(expr)).count("log10") == 2


def test_unknown_flavour_and_undetectable_columns() -> None:
    with pytest.raises(SchemaError, match="unknown schema flavour"):
        Schema("sdss", ["ra"])
    with pytest.raises(SchemaError, match="cannot tell the schema flavour"):
        detect_flavour(["foo", "bar"])


def test_quantity_info_and_list() -> None:
    info = skydask.quantity_info("mag_r_cModel")
    assert info.unit == "mag"
    assert info.definition == "-2.5 * log10(cModelFlux_r) + 31.4"
    assert "psf_fwhm_y" in skydask.list_quantities()
    with pytest.raises(UnknownQuantityError, match="mag_r"):
        skydask.quantity_info("mag_rr")
