"""Alembic environment: migrations run on the connection that :func:`.db.migrate` hands in.

There is no ``alembic.ini``: the checker runs its migrations itself when it starts, inside one
transaction on the connection it passes as ``config.attributes["connection"]``. To write a new
revision, add a module to ``versions/`` by hand (``down_revision`` the previous one) and check
it with ``tests/checker/test_checker_db.py``, which compares the migrated schema with
:mod:`skydask.checker.models`.
"""

from __future__ import annotations

from alembic import context

from skydask.checker.models import Base


def run_migrations() -> None:
    """Run the revisions on the connection handed in by :func:`skydask.checker.db.migrate`."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "skydask.checker migrations need a connection in config.attributes['connection']; "
            "run them through skydask.checker.db.migrate(engine)"
        )
    # batch mode lets later revisions alter columns on SQLite (which has almost no ALTER TABLE)
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


# alembic runs this file with its context set up; a plain import (doctest collection) does not
if hasattr(context, "config"):
    run_migrations()
