"""Alembic migrations of the checker's schema (run by :func:`skydask.checker.db.migrate`)."""
