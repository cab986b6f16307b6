"""The HTML pages: viewer, log-in and sign-up, tutorial, statistics, gallery, own reports, admin.

Pages are Jinja2 templates with autoescaping on, so user text (names, free labels) is shown as
text wherever it appears; the scripts of the viewer and of the other pages put user text into
the page with ``textContent`` only. No page has inline script or style (the
Content-Security-Policy of :mod:`.app` forbids them): data for the scripts travels in a
``<script type="application/json">`` block.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from skydask.checker import checks
from skydask.checker.auth import (
    UsernameTakenError,
    authenticate,
    create_session,
    create_user,
    end_session,
)
from skydask.checker.deps import (
    SESSION_COOKIE,
    CheckerState,
    csrf_token,
    current_user,
    get_state,
    require_csrf,
    set_session_cookie,
)
from skydask.checker.models import User
from skydask.checker.problems import RESERVED_KEYS, grouped
from skydask.checker.render import MASK_COLOURS
from skydask.checker.schemas import Credentials
from skydask.checker.stats import collect_stats, leaderboard

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
State = Annotated[CheckerState, Depends(get_state)]
_RELEASE = r"^[A-Za-z0-9_.\-]{1,64}$"


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    state = get_state(request)
    user = current_user(request)
    base = {
        "user": user,
        "csrf_token": csrf_token(request),
        "release": state.release,
        "title": "skydask exposure checker",
    }
    response: HTMLResponse = state.templates.TemplateResponse(
        request, name, {**base, **context}, status_code=status
    )
    return response


def _login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


def _after_login(request: Request, state: CheckerState, user: User) -> RedirectResponse:
    if user.username in state.config.admins and user.role != "admin":
        with state.db.write() as s:
            stored = s.get(User, user.id)
            if stored is not None:
                stored.role = "admin"
    token = create_session(state.db, user.id, days=state.config.session_days)
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, request, token)
    return response


@router.get("/", response_class=HTMLResponse)
def viewer(request: Request, state: State) -> Response:
    user = current_user(request)
    if user is None:
        return _login_redirect(request)
    config = {
        "groups": [{"name": g, "classes": [c.as_dict() for c in cs]} for g, cs in grouped()],
        "mask_colours": {k: list(v) for k, v in MASK_COLOURS.items()},
        "reserved_keys": sorted(RESERVED_KEYS),
        "counts": checks.user_counts(state.db, user.id),
    }
    return _page(request, "viewer.html", config=config, groups=grouped())


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return _page(request, "login.html", error=None)


@router.post("/login", dependencies=[Depends(require_csrf)])
def login_form(
    request: Request,
    state: State,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=200)],
) -> Response:
    try:
        creds = Credentials(username=username, password=password)
    except ValidationError:
        return _page(request, "login.html", 401, error="wrong user name or password")
    user = authenticate(state.db, creds.username, creds.password)
    if user is None:
        return _page(request, "login.html", 401, error="wrong user name or password")
    return _after_login(request, state, user)


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request) -> HTMLResponse:
    return _page(request, "signup.html", error=None)


@router.post("/signup", dependencies=[Depends(require_csrf)])
def signup_form(
    request: Request,
    state: State,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=200)],
) -> Response:
    try:
        creds = Credentials(username=username, password=password)
    except ValidationError:
        return _page(
            request,
            "signup.html",
            422,
            error="user names are 3-40 letters, digits, '_', '.' or '-'; passwords 8-128 "
            "characters",
        )
    try:
        user = create_user(
            state.db, creds.username, creds.password, admin=creds.username in state.config.admins
        )
    except UsernameTakenError:
        return _page(request, "signup.html", 409, error="that user name is taken")
    return _after_login(request, state, user)


@router.post("/logout", dependencies=[Depends(require_csrf)])
def logout_form(request: Request, state: State) -> Response:
    end_session(state.db, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    set_session_cookie(response, request, None)
    return response


@router.get("/tutorial", response_class=HTMLResponse)
def tutorial(request: Request) -> HTMLResponse:
    return _page(request, "tutorial.html", groups=grouped(), reserved=sorted(RESERVED_KEYS))


@router.get("/stats", response_class=HTMLResponse)
def stats_page(
    request: Request,
    state: State,
    release: Annotated[str | None, Query(pattern=_RELEASE)] = None,
) -> HTMLResponse:
    chosen = None if release == "all" else (release or state.release)
    return _page(
        request,
        "stats.html",
        stats=collect_stats(state.db, chosen),
        board=leaderboard(state.db, chosen),
        chosen=chosen or "all",
    )


@router.get("/gallery", response_class=HTMLResponse)
def gallery_page(request: Request) -> Response:
    if current_user(request) is None:
        return _login_redirect(request)
    return _page(request, "gallery.html", groups=grouped())


@router.get("/mine", response_class=HTMLResponse)
def mine_page(request: Request) -> Response:
    if current_user(request) is None:
        return _login_redirect(request)
    return _page(request, "mine.html")


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return _login_redirect(request)
    if user.role != "admin":
        return _page(request, "error.html", 403, message="this page is for admins")
    return _page(request, "admin.html")
