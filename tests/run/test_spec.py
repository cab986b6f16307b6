"""Spec validation: every kind of error names the file and line, before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from runner_testdata import spec_text

from skydask.errors import SpecError
from skydask.run import parse_spec, validate


def test_valid_spec_parses(tmp_path: Path) -> None:
    spec = parse_spec(spec_text(tmp_path), "suite.yaml")
    assert [a.name for a in spec.analyses] == ["locus", "depth"]
    assert spec.analyses[0].thresholds[0].metric == "w_sigmaMAD"
    assert spec.analyses[1].params == {"nside": 256, "bands": "gri"}
    assert spec.seed == 7 and spec.cuts == ("mag_i < 26",)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("seed: 7", "seed: 7\ncolour: red"), r"suite.yaml:5: unknown key 'colour' in the spec"),
        (
            ("analysis: depth_map", "analysis: dept_map"),
            r"suite.yaml:13: unknown analysis 'dept_map'",
        ),
        (("nside: 256", "nside: high"), r"suite.yaml:14: parameter 'nside' of depth_map must be"),
        (
            ("{min_stars: 7}", "{min_starz: 7}"),
            r"suite.yaml:8: stellar_locus has no parameter 'min_starz'",
        ),
        (
            ("w_median: {abs_max: 10}", "w_mediam: {abs_max: 10}"),
            r"suite.yaml:11: stellar_locus has no metric",
        ),
        (
            ("abs_max: 10", "abs_max: ten"),
            r"suite.yaml:11: threshold w_median.abs_max must be a number",
        ),
        (("  - name: depth", "  - name: locus"), r"two analyses are named 'locus'"),
        (("name: small-suite", "name: [oops"), r"not valid YAML"),
    ],
)
def test_spec_errors_name_the_line(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    text = spec_text(tmp_path).replace(*edit)
    with pytest.raises(SpecError, match=message):
        parse_spec(text, "suite.yaml")


def test_unknown_quantity_in_cuts_names_the_line(make_dc2_tracts: object) -> None:
    root, _ = make_dc2_tracts(ntracts=1)  # type: ignore[operator]
    spec = parse_spec(spec_text(root).replace('"mag_i < 26"', '"mag_ii < 26"'), "suite.yaml")
    with pytest.raises(SpecError, match=r"suite.yaml:3: cuts: unknown quantity 'mag_ii'.*mag_i"):
        validate(spec)


def test_missing_catalogue_is_a_spec_error(tmp_path: Path) -> None:
    spec = parse_spec(spec_text(tmp_path / "nowhere"), "suite.yaml")
    with pytest.raises(SpecError, match=r"catalog .*does not exist"):
        validate(spec)
