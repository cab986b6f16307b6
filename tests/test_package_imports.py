"""Lazy imports (PEP 562): ``import skydask`` is cheap, and the public API is unchanged.

Each check runs in a fresh interpreter (``sys.modules`` of the test process already holds
everything), as a Dask worker does when it unpickles its first skydask task.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
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
        "pandas",
    ]
    statement = (
        "import skydask.catalog.reader, skydask.analyses.twopoint.pairs, "
        "skydask.analyses.twopoint.samples, skydask.analyses.twopoint.patches"
    )
    assert _loaded_after(statement, ["matplotlib", "astropy.wcs", "skydask.images", *others]) == []


def test_a_read_task_for_arrays_runs_without_pandas(tmp_path: Path) -> None:
    """``Catalog.to_delayed(arrays=True)``'s task, unpickled and run in a fresh interpreter as
    a worker would, gives the rows without importing pandas (40 MB a worker)."""
    rng = np.random.default_rng(3)
    table = pa.table({"ra": rng.uniform(50, 51, 500), "dec": rng.uniform(-30, -29, 500),
                      "psFlux_i": rng.uniform(1e3, 1e4, 500).astype(np.float32)})  # fmt: skip
    pq.write_table(table, tmp_path / "objects.parquet", row_group_size=100)
    cat = skydask.open_catalog(tmp_path / "objects.parquet").where("psFlux_i > 5000")
    (task,) = cat.select(["ra", "mag_i"]).to_delayed({"ra": "ra", "m": "mag_i"}, arrays=True)
    (tmp_path / "task.pkl").write_bytes(cloudpickle.dumps((dict(task.dask), task.key)))
    code = (
        "import json, pickle, sys\n"
        "from dask.local import get_sync\n"
        f"graph, key = pickle.loads(open({str(tmp_path / 'task.pkl')!r}, 'rb').read())\n"
        "out = get_sync(graph, key)\n"
        "print(json.dumps([sorted(out), len(out['m']), 'pandas' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)  # fmt: skip
    columns, rows, pandas_loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert columns == ["m", "ra"]
    assert rows == int((table["psFlux_i"].to_numpy() > 5000).sum()) > 0
    assert pandas_loaded is False


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
