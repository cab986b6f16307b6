"""What every request needs: the server's state, the user of the session, the CSRF check.

The FastAPI dependencies here are the only place where cookies are read:

* ``skydask_session`` — the log-in session token (:mod:`.auth`): HttpOnly, SameSite=Lax
  (a link from elsewhere still opens the checker logged in; a cross-site POST carries no
  cookie), Secure when ``secure_cookies`` is set;
* ``skydask_anon`` — a random value every browser gets on its first request, HttpOnly,
  SameSite=Strict: what CSRF tokens are bound to before log-in (:mod:`.csrf`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.templating import Jinja2Templates

from skydask.checker import csrf
from skydask.checker.auth import session_user
from skydask.checker.config import CheckerConfig
from skydask.checker.db import Database
from skydask.checker.models import User
from skydask.checker.render import ImageStore

__all__ = [
    "ANON_COOKIE",
    "SESSION_COOKIE",
    "CheckerState",
    "csrf_token",
    "current_user",
    "get_state",
    "require_admin",
    "require_csrf",
    "require_user",
    "set_session_cookie",
]

SESSION_COOKIE = "skydask_session"
ANON_COOKIE = "skydask_anon"
_ANON_LENGTH = 32


@dataclass
class CheckerState:
    """What the application keeps between requests (``app.state.checker``)."""

    config: CheckerConfig
    db: Database
    store: ImageStore
    release: str
    secret: bytes
    templates: Jinja2Templates


def get_state(request: Request) -> CheckerState:
    state: CheckerState = request.app.state.checker
    return state


def anon_value(request: Request) -> str:
    """The browser's anonymous cookie, or the new one this response will set."""
    value = request.cookies.get(ANON_COOKIE, "")
    if (
        len(value) == _ANON_LENGTH
        and value.isascii()
        and value.replace("-", "").replace("_", "").isalnum()
    ):
        return value
    new: str | None = getattr(request.state, "new_anon", None)
    if new is None:
        new = secrets.token_urlsafe(24)
        request.state.new_anon = new
    return new


def current_user(request: Request) -> User | None:
    """The logged-in user, or None (looked up once per request)."""
    if not hasattr(request.state, "user"):
        token = request.cookies.get(SESSION_COOKIE)
        request.state.user = session_user(get_state(request).db, token) if token else None
    user: User | None = request.state.user
    return user


def require_user(request: Request) -> User:
    """The logged-in user; 401 without a live session."""
    user = current_user(request)
    if user is None:
        raise HTTPException(status_code=401, detail="log in first: no live session cookie")
    return user


def require_admin(request: Request) -> User:
    """The logged-in admin; 401 without a session, 403 for a user who is not an admin."""
    user = require_user(request)
    if user.role != "admin":
        raise HTTPException(status_code=403, detail=f"user {user.username!r} is not an admin")
    return user


def _binding(request: Request) -> str:
    if current_user(request) is not None:
        return "s:" + request.cookies.get(SESSION_COOKIE, "")
    return "a:" + anon_value(request)


def csrf_token(request: Request) -> str:
    """The CSRF token that pages and ``/api/session`` hand to this browser."""
    return csrf.token_for(get_state(request).secret, _binding(request))


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


async def require_csrf(request: Request) -> None:
    """Refuse (403) a state-changing request without the right CSRF token or from another
    origin (the ``Origin`` header, when the browser sends one)."""
    if not _same_origin(request):
        raise HTTPException(status_code=403, detail="cross-origin request refused")
    supplied = request.headers.get(csrf.CSRF_HEADER)
    if supplied is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(csrf.CSRF_FIELD)
        supplied = value if isinstance(value, str) else None
    if not csrf.valid(get_state(request).secret, _binding(request), supplied):
        raise HTTPException(
            status_code=403,
            detail=f"missing or wrong CSRF token: send the {csrf.CSRF_HEADER} header "
            f"(or the {csrf.CSRF_FIELD} form field) given by GET /api/session",
        )


def set_session_cookie(response: Response, request: Request, token: str | None) -> None:
    """Set (or with ``None`` delete) the session cookie."""
    secure = get_state(request).config.secure_cookies
    if token is None:
        response.delete_cookie(
            SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure
        )
        return
    days = get_state(request).config.session_days
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(days * 86400),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def set_anon_cookie(response: Response, request: Request) -> None:
    """Set the anonymous cookie if this request made a new one."""
    new: Any = getattr(request.state, "new_anon", None)
    if new:
        response.set_cookie(
            ANON_COOKIE,
            new,
            max_age=365 * 86400,
            path="/",
            httponly=True,
            samesite="strict",
            secure=get_state(request).config.secure_cookies,
        )
