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

from skydask.checker.app import create_app
from skydask.checker.config import CheckerConfig
from skydask.checker.db import Database, migrate
from skydask.checker.export import export_reports, reports_frame
from skydask.checker.masklayer import CHECKER_BAD_PLANES, flag_mask, hide_flagged
from skydask.checker.problems import ProblemClass, problem_classes
from skydask.checker.render import ImageStore

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
