"""Fixtures of the skydask.checker tests, loaded with ``pytest_plugins`` (not a conftest).

``checker_backend`` is ``"sqlite"`` or ``"postgres"``; ``checker_server`` is a live checker on
the shared synthetic stack with a database of its own for the test module (a SQLite file, or a fresh
PostgreSQL database dropped afterwards).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helpers beside us (not on the pythonpath)
from checker_testdata import LiveServer, checker_stack, fresh_postgres_db, need_postgres

from skydask.checker import CheckerConfig, Database, ImageStore, create_app
from skydask.synth.images import ImageStackInfo

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def checker_stack_info(tmp_path_factory: pytest.TempPathFactory) -> ImageStackInfo:
    return checker_stack(tmp_path_factory)


@pytest.fixture(scope="session")
def checker_store(checker_stack_info: ImageStackInfo) -> ImageStore:
    return ImageStore.open(checker_stack_info.path)


@pytest.fixture(scope="module", params=BACKENDS)
def checker_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def checker_db_url(checker_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if checker_backend == "sqlite":
        yield "sqlite:///" + str(tmp_path_factory.mktemp("db") / "checker.db")
        return
    with fresh_postgres_db(need_postgres()) as url:
        yield url


def start_server(
    checker_stack_info: ImageStackInfo, checker_store: ImageStore, checker_db_url: str, **cfg: Any
) -> Any:
    config = CheckerConfig(images=os.fspath(checker_stack_info.path), db_url=checker_db_url, **cfg)
    db = Database(checker_db_url, pool_size=5)
    app = create_app(config, store=checker_store, db=db)
    return LiveServer(app).start(), db


@pytest.fixture(scope="module")
def checker_server(
    checker_stack_info: ImageStackInfo, checker_store: ImageStore, checker_db_url: str
) -> Iterator[LiveServer]:
    live, db = start_server(
        checker_stack_info, checker_store, checker_db_url, admins=("root_admin",)
    )
    yield live
    live.stop()
    db.dispose()


@pytest.fixture
def checker_fits_dir(checker_stack_info: ImageStackInfo) -> Path:
    return checker_stack_info.path
