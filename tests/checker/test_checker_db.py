"""Database: URLs, migrations equal to the models on SQLite and PostgreSQL, the secret key."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

sys.path.insert(0, str(Path(__file__).parent))  # the helpers beside us (not on the pythonpath)
from checker_testdata import fresh_postgres_db, need_postgres

from skydask.checker.db import Database, current_revision, head_revision, migrate, secret_key
from skydask.checker.models import Base
from skydask.errors import SpecError


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    with fresh_postgres_db(need_postgres()) as pg:
        yield pg


def test_migrations_make_the_models_schema(url: str) -> None:
    db = Database(url)
    assert current_revision(db) is None
    assert migrate(db) == head_revision() == current_revision(db)
    assert migrate(db) == head_revision()  # idempotent
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    assert diff == []
    assert {
        "users",
        "sessions",
        "settings",
        "images",
        "checks",
        "reports",
        "alembic_version",
    } <= tables
    first = secret_key(db)
    assert len(first) == 32 and secret_key(Database(url)) == first
    db.dispose()


def test_bad_urls_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="expected sqlite"):
        Database("mysql://u@h/db")
    with pytest.raises(SpecError, match="in-memory"):
        Database("sqlite://")
    assert Database(tmp_path / "x.db").is_sqlite
