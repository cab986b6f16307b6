"""The command line: synth, info, catalogs and the demo, run as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skydask.cli import main


@pytest.fixture(scope="module")
def small_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "synth"
    assert main(["synth", "--rows", "30000", "--seed", "7", "--out", str(out)]) == 0
    return out


def test_info_prints_flavour_partitions_rows_area(
    small_synth: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", str(small_synth)]) == 0
    text = capsys.readouterr().out
    assert "schema:     dc2" in text
    assert "rows:       30,000" in text
    assert "deg2" in text
    assert "psFlux_g" in text


def test_info_on_missing_path_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_catalogs_lists_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalogs"]) == 0
    assert "dc2_object_run2.2i_dr6" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_summary_matches_the_data(
    small_synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    args = [
        "demo",
        "--rows",
        "30000",
        "--seed",
        "7",
        "--catalog",
        str(small_synth),
        "--out",
        str(out),
    ]
    assert main([*args, "--cluster", "local"]) == 0
    text = capsys.readouterr().out
    assert "dashboard: http://127.0.0.1:" in text
    assert (out / "colour_colour.png").stat().st_size > 10_000
    assert (out / "sky_density.png").stat().st_size > 10_000
    summary = json.loads((out / "summary.json").read_text())
    frame = pd.concat(
        pd.read_parquet(p) for p in sorted(small_synth.glob("object_tract_*.parquet"))
    )
    assert summary["objects"] == len(frame) == 30000
    assert summary["stars"] == int((frame.extendedness < 0.5).sum())
    with np.errstate(all="ignore"):
        m5 = -2.5 * np.log10(5 * frame.psFluxErr_i.astype(float)) + 31.4
        mag = -2.5 * np.log10(frame.psFlux_i.astype(float)) + 31.4
    assert abs(summary["median_depth"]["i"] - np.median(m5)) < 0.01
    # the count is taken on 0.01-mag bins: it may differ from the exact one by the bin's content
    exact = int((mag < summary["median_depth"]["i"]).sum())
    assert abs(summary["counts_to_median_depth"]["i"] - exact) <= 0.01 * exact


def test_cluster_info_prints_the_job_script(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCRATCH", raising=False)
    assert main(["cluster-info"]) == 0
    assert "nersc-perlmutter" in capsys.readouterr().out
    assert main(["cluster-info", "nersc-perlmutter"]) == 0
    out = capsys.readouterr().out
    assert "#SBATCH --constraint=cpu" in out
    assert "WARNING: 'account' is empty" in out
    # $SCRATCH is not set on this machine: said, and no literal '$SCRATCH' directory made
    assert "WARNING: cluster profile 'nersc-perlmutter': log_directory" in out
    assert "#SBATCH -e" not in out and not (tmp_path / "$SCRATCH").exists()
    assert main(["cluster-info", "no-such-site"]) == 2


def test_synth_shear_from_theory_without_halos(tmp_path: Path) -> None:
    from skydask.analyses.twopoint.theory import shear_cl, source_nz
    from skydask.synth import read_synth_params

    out = tmp_path / "theory"
    argv = ["synth", "--rows", "3000", "--seed", "7", "--out", str(out)]
    assert main([*argv, "--shear-from-theory", "--no-halos"]) == 0
    shear = read_synth_params(out)["parameters"]["shear"]
    assert shear["n_halos"] == 0 and shear["halos"] == []
    # the field's spectrum is pyccl's shear C_ell of DC2's cosmology for the SRD sources
    ell, cl = (np.array(shear["power_table"][k]) for k in ("ell", "C_ell"))
    np.testing.assert_allclose(cl, shear_cl(ell, source_nz()), rtol=1e-12)
    assert ell[0] >= 2.0 and ell[-1] >= 2.0e4
