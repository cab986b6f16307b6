"""The specs shipped in analyses/ validate (structure, parameters, thresholds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from skydask.run import load_spec

SPECS = sorted((Path(__file__).parents[2] / "analyses").glob("*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_shipped_spec_validates(path: Path) -> None:
    spec = load_spec(path)
    assert spec.catalog == "skydask_demo"
    assert all(a.thresholds for a in spec.analyses)


def test_the_suite_names_every_analysis_spec() -> None:
    suite = load_spec(Path(__file__).parents[2] / "analyses" / "dc2_validation.yaml")
    singles = {
        a.analysis for p in SPECS if p.stem != "dc2_validation" for a in load_spec(p).analyses
    }
    assert singles <= {a.analysis for a in suite.analyses}
