"""The application factory: :func:`create_app` builds the FastAPI app of one checker server.

Starting it opens the images (headers only), connects to the database, applies the migrations,
registers the images under their release and makes (once per database) the secret that signs
CSRF tokens. Every response gets security headers: a Content-Security-Policy that allows only
this server's own scripts, styles and images (no inline script, so an injected ``<script>``
would not run even if it got through the escaping), ``X-Content-Type-Options: nosniff``,
``X-Frame-Options: DENY`` and ``Referrer-Policy: same-origin``. FastAPI's interactive
``/docs`` page loads its scripts from a CDN, so it gets no CSP; ``/openapi.json`` is the
description itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from skydask.checker.checks import (
    AlreadyCheckedError,
    ForbiddenError,
    NotFoundError,
    register_images,
)
from skydask.checker.config import CheckerConfig
from skydask.checker.db import Database, migrate, secret_key
from skydask.checker.deps import CheckerState, anon_value, set_anon_cookie
from skydask.checker.render import ImageStore
from skydask.checker.routes_api import router as api_router
from skydask.checker.routes_pages import router as pages_router
from skydask.errors import SkydaskError, SpecError

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent
_CSP = (
    "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_STATUS = {
    NotFoundError: 404,
    ForbiddenError: 403,
    AlreadyCheckedError: 409,
    SpecError: 422,
}


def _status_of(exc: SkydaskError) -> int:
    for kind, status in _STATUS.items():
        if isinstance(exc, kind):
            return status
    return 400


def create_app(
    config: CheckerConfig, *, store: ImageStore | None = None, db: Database | None = None
) -> FastAPI:
    """The checker's FastAPI application (see the module docstring).

    Parameters
    ----------
    config
        The server's settings.
    store, db
        An image store and database already open (tests, benchmarks); made from ``config``
        when omitted.

    Raises
    ------
    CatalogReadError
        If the images cannot be opened.
    SpecError
        For a bad database URL or release name.
    """
    release = config.resolved_release()
    store = store or ImageStore.open(config.images, cache_bytes=config.cache_mb << 20)
    db = db or Database(config.resolved_db_url(), pool_size=config.pool_size)
    migrate(db)
    added = register_images(db, store, release)
    log.info("serving %d images of release %s (%d new) from %r", len(store), release, added, db)
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    app = FastAPI(
        title="skydask exposure checker",
        version="1",
        description="Crowd inspection of survey images: mark the artefacts the pipeline "
        "missed. All state-changing requests need a session cookie and the CSRF token of "
        "GET /api/session in the X-CSRF-Token header.",
    )
    app.state.checker = CheckerState(
        config=config,
        db=db,
        store=store,
        release=release,
        secret=secret_key(db),
        templates=templates,
    )
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")
    app.include_router(api_router)
    app.include_router(pages_router)

    @app.middleware("http")
    async def _headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        anon_value(request)  # decide the anonymous cookie before the endpoint renders a token
        response = await call_next(request)
        set_anon_cookie(response, request)
        if not request.url.path.startswith(("/docs", "/redoc")):
            response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    def _wants_html(request: Request) -> bool:
        return not request.url.path.startswith("/api") and "text/html" in request.headers.get(
            "accept", ""
        )

    def _error(request: Request, status: int, detail: object) -> Response:
        if _wants_html(request):
            return templates.TemplateResponse(
                request,
                "error.html",
                {"message": str(detail), "user": None, "csrf_token": "", "release": release},
                status_code=status,
            )
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(SkydaskError)
    async def _skydask_error(request: Request, exc: SkydaskError) -> Response:
        return _error(request, _status_of(exc), str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        response = _error(request, exc.status_code, exc.detail)
        for k, v in (exc.headers or {}).items():
            response.headers[k] = v
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if _wants_html(request):
            return _error(request, 422, "invalid request")
        errors = [{k: e.get(k) for k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    return app
