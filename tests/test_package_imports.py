"""Lazy imports (PEP 562): ``import skydask`` is cheap, and the public API is unchanged.

Each check runs in a fresh interpreter (``sys.modules`` of the test process already holds
everything), as a Dask worker does when it unpickles its first skydask task.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import skydask
import skydask.analyses

HEAVY = ["matplotlib", "xarray", "astropy.wcs", "skydask.images"]


def _loaded_after(statement: str, modules: list[str]) -> list[str]:
    found = f"[m for m in {modules!r} if m in sys.modules]"
    code = f"import json, sys\n{statement}\nprint(json.dumps({found}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)  # fmt: skip
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_import_skydask_loads_no_image_or_plotting_module() -> None:
    assert _loaded_after("import skydask", [*HEAVY, "dask.dataframe", "skydask.analyses"]) == []


def test_a_two_point_worker_loads_neither_images_nor_other_analyses() -> None:
    # what a worker imports to unpickle the read, split and pair tasks of a two-point run:
    # the partition reader and the pair code, not the catalogue layer's dask.dataframe
    # (which loads xarray and scipy through dask.array), nor the images or other analyses
    others = [
        "skydask.analyses.depthmap",
        "skydask.analyses.multiepoch",
        "skydask.analyses.stellar_locus",
        "healsparse",
        "dask.dataframe",
        "xarray",
    ]
    statement = (
        "import skydask.catalog.reader, skydask.analyses.twopoint.pairs, "
        "skydask.analyses.twopoint.samples, skydask.analyses.twopoint.patches"
    )
    assert _loaded_after(statement, ["matplotlib", "astropy.wcs", "skydask.images", *others]) == []


def test_public_names_resolve_as_before() -> None:
    for module in (skydask, skydask.analyses):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"
            assert name in dir(module)
    assert skydask.open_catalog is skydask.catalog.open_catalog
    assert skydask.open_stack.__module__ == "skydask.images.stack"
    assert skydask.analyses.shear_shear is skydask.analyses.twopoint.shear_shear


def test_a_function_named_like_its_module_stays_the_function() -> None:
    # the package exported the function stellar_locus, whose module has the same name;
    # importing the module (as a worker or a user may) must not rebind the package's name
    code = ("import skydask.analyses.stellar_locus\nimport skydask.analyses as a\n"
            "from skydask.analyses import stellar_locus\n"
            "print(callable(a.stellar_locus), a.stellar_locus is stellar_locus,\n"
            "      a.stellar_locus.__module__)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)  # fmt: skip
    assert done.stdout.split() == ["True", "True", "skydask.analyses.stellar_locus"]


def test_unknown_attribute_is_an_attribute_error() -> None:
    for module in (skydask, skydask.analyses):
        with pytest.raises(AttributeError, match="no_such_name"):
            module.no_such_name
