"""The exposure checker: crowd inspection of survey images in a web page, with a real database.

Collaborators look at images one after another (:mod:`.render` draws them from the FITS
through :mod:`skydask.images`), click the artefacts the pipeline missed and pick a problem
class (:mod:`.problems`: the DES Exposure Checker's classes plus DC2's simulated effects), or
say the image is fine. Their reports go to a database (SQLite by default, PostgreSQL through
the same URL scheme; :mod:`.db`, :mod:`.models`, alembic migrations) and come back out as an
ordinary catalogue (:mod:`.export`, opened by :func:`skydask.open_catalog`) and as a mask layer
that coadds and cut-outs honour (:mod:`.masklayer`).

The web application (:func:`create_app`) is FastAPI: a JSON API described at
``/openapi.json`` (:mod:`.routes_api`) and HTML pages (:mod:`.routes_pages`), with accounts
(:mod:`.auth`: argon2 hashes, HttpOnly SameSite session cookies), CSRF tokens on every
state-changing request (:mod:`.csrf`) and statistics (:mod:`.stats`). ``skydask checker serve
| export | demo`` run it (:mod:`.cli`).

Layering: the checker sits at the top beside :mod:`skydask.run`; it uses ``images``,
``catalog`` and (for the demo) ``synth``, and nothing below uses it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skydask.checker.app import create_app
    from skydask.checker.config import CheckerConfig
    from skydask.checker.db import Database, migrate
    from skydask.checker.export import export_reports, reports_frame
    from skydask.checker.masklayer import CHECKER_BAD_PLANES, flag_mask, hide_flagged
    from skydask.checker.problems import ProblemClass, problem_classes
    from skydask.checker.render import ImageStore

# The public names are imported on first use (PEP 562): `skydask.cli` imports
# `skydask.checker.cli` for every command, and importing FastAPI, SQLAlchemy and the image
# stack there would add about a second to `skydask info` or `skydask run`.
_EXPORTS = {
    "create_app": "app",
    "CheckerConfig": "config",
    "Database": "db",
    "migrate": "db",
    "export_reports": "export",
    "reports_frame": "export",
    "CHECKER_BAD_PLANES": "masklayer",
    "flag_mask": "masklayer",
    "hide_flagged": "masklayer",
    "ProblemClass": "problems",
    "problem_classes": "problems",
    "ImageStore": "render",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'skydask.checker' has no attribute {name!r}")
    return getattr(importlib.import_module(f"skydask.checker.{module}"), name)


__all__ = [
    "CHECKER_BAD_PLANES",
    "CheckerConfig",
    "Database",
    "ImageStore",
    "ProblemClass",
    "create_app",
    "export_reports",
    "flag_mask",
    "hide_flagged",
    "migrate",
    "problem_classes",
    "reports_frame",
]
