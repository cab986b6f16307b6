"""Named catalogues from registry YAML files (package, dask config, environment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import pytest

import skydask
from skydask.errors import SpecError


def test_package_registry_lists_entries() -> None:
    names = skydask.available_catalogs()
    assert "dc2_object_run2.2i_dr6" in names
    assert names["dc2_object_run2.2i_dr6"].schema == "dc2"


def test_user_registry_through_dask_config_with_site_root(
    tmp_path: Path, make_dc2_tracts: Any
) -> None:
    root, truth = make_dc2_tracts(ntracts=2)
    registry = tmp_path / "mine.yaml"
    registry.write_text(
        f"my_tracts:\n  path: '{{site_root}}/{root.name}'\n  schema: dc2\n  description: test\n"
    )
    with dask.config.set(
        {"skydask.catalogs.paths": [str(registry)], "skydask.catalogs.site-root": str(root.parent)}
    ):
        assert skydask.available_catalogs()["my_tracts"].path == str(root)
        cat = skydask.open_catalog("my_tracts")
        assert cat.name == "my_tracts"
        assert len(cat) == len(truth)


def test_registry_through_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.yaml").write_text("env_cat:\n  path: /somewhere\n")
    monkeypatch.setenv("SKYDASK_CATALOG_PATH", str(tmp_path))
    assert skydask.available_catalogs()["env_cat"].path == "/somewhere"


def test_bad_registry_entry_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.yaml").write_text("broken:\n  path: /x\n  colour: red\n")
    monkeypatch.setenv("SKYDASK_CATALOG_PATH", str(tmp_path / "bad.yaml"))
    with pytest.raises(SpecError, match=r"broken.*colour"):
        skydask.available_catalogs()
