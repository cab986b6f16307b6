"""Database connection: one URL scheme for SQLite and PostgreSQL, migrations, transactions.

* URLs are SQLAlchemy's: ``sqlite:///path/to/checker.db`` (the embedded default, a file next
  to the user's data) or ``postgresql://user:password@host:port/db``; a plain path is taken as
  a SQLite file, and ``postgresql://`` is given the psycopg (version 3) driver.
* SQLite is put in WAL mode (readers do not wait for the writer) with a 30 s busy timeout, and
  every write transaction starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads
  and then writes fails at once with "database is locked" when another writer got in between,
  which is exactly the case of two users submitting together. Reads use a plain ``BEGIN``.
  Within one process, write transactions also queue on a lock before ``BEGIN IMMEDIATE``:
  SQLite's busy handler waits by sleeping (up to 100 ms a try), which under 20 concurrent
  users gave a p95 of ~0.9 s for "next image"; the lock hands the database over at once.
  Other processes (a second server) still meet the busy timeout.
* PostgreSQL runs at READ COMMITTED; the races that matter (two users leasing the same image,
  two submits of the same check) are settled by conditional ``UPDATE`` s and unique
  constraints, which are atomic at that level.
* Migrations are alembic revisions shipped in ``migrations/`` and applied by :func:`migrate`
  when the application starts (``alembic_version`` holds the revision).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from skydask.checker.models import Setting
from skydask.errors import SpecError

__all__ = [
    "Database",
    "head_revision",
    "migrate",
    "normalise_url",
    "secret_key",
]

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).with_name("migrations")
_IMMEDIATE = "skydask_write"


def normalise_url(url: str | os.PathLike[str]) -> str:
    """A SQLAlchemy URL for a database argument (see the module docstring).

    Raises
    ------
    SpecError
        If the URL is neither SQLite nor PostgreSQL.

    Examples
    --------
    >>> normalise_url("postgresql://u:p@127.0.0.1:5432/db")
    'postgresql+psycopg://u:p@127.0.0.1:5432/db'
    >>> normalise_url("/data/checker.db")
    'sqlite:////data/checker.db'
    >>> normalise_url("mysql://x/y")
    Traceback (most recent call last):
    ...
    skydask.errors.SpecError: database URL 'mysql://x/y': expected sqlite:///FILE or postgresql://...
    """
    text = os.fspath(url)
    if "://" not in text:
        return "sqlite:///" + str(Path(text).expanduser().absolute())
    try:
        parsed = make_url(text)
    except ArgumentError as exc:
        raise SpecError(f"database URL {text!r} cannot be parsed: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite":
        return text
    raise SpecError(f"database URL {text!r}: expected sqlite:///FILE or postgresql://...")


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite would defer it)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """An engine and its two kinds of transaction: :meth:`read` and :meth:`write`.

    Parameters
    ----------
    url
        Database URL or SQLite path (:func:`normalise_url`).
    pool_size
        Connections kept open (PostgreSQL; SQLite files use a pool of the same size).
    """

    def __init__(self, url: str | os.PathLike[str], *, pool_size: int = 10) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"pool_pre_ping": not self.is_sqlite}
        if self.is_sqlite:
            if parsed.database in (None, "", ":memory:"):
                raise SpecError(
                    f"database URL {self.url!r}: the checker needs a SQLite file (the server's "
                    "threads share it), not an in-memory database"
                )
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30.0}
        kwargs.update(pool_size=pool_size, max_overflow=2 * pool_size)
        self.engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            _sqlite_setup(self.engine)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(
            self.engine.execution_options(**{_IMMEDIATE: True}), expire_on_commit=False
        )
        # SQLite has one writer at a time anyway: queue this process's writers without sleeps
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self.is_sqlite else nullcontext()
        )

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading (rolled back at the end)."""
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in one write transaction, committed at the end (rolled back on error)."""
        with self._write_lock, self._write() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)})"


def _alembic_config(connection: Any = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision of the shipped migrations."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # only if the package lost its migrations
        raise SpecError(f"no migration found in {_MIGRATIONS}")
    return head


def current_revision(db: Database) -> str | None:
    """The revision the database is at (None before the first migration)."""
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(db: Database) -> str:
    """Bring the schema to the newest revision (idempotent); return that revision."""
    before = current_revision(db)
    head = head_revision()
    if before != head:
        with db.engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "head")
        log.info("migrated %r from revision %s to %s", db, before, head)
    return head


def secret_key(db: Database) -> bytes:
    """The installation's secret (signs CSRF tokens), made on first use and kept in the db.

    Several server processes on one database agree on it: the first insert wins, the others
    read it back.
    """
    with db.read() as s:
        row = s.scalar(select(Setting.value).where(Setting.key == "secret_key"))
    if row is None:
        try:
            with db.write() as s:
                s.add(Setting(key="secret_key", value=secrets.token_hex(32)))
        except IntegrityError:
            pass  # another process stored it first
        with db.read() as s:
            row = s.scalar(select(Setting.value).where(Setting.key == "secret_key"))
    if row is None:  # pragma: no cover - the insert above or another one succeeded
        raise SpecError("could not store the checker's secret key")
    return bytes.fromhex(row)
