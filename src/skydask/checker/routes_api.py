"""The JSON API (``/api``), described by the OpenAPI document at ``/openapi.json``.

Reading statistics and the problem classes needs no account; everything else needs a live
session, and every request that changes something also needs the CSRF token
(:mod:`.csrf`). Errors are JSON ``{"detail": ...}``: 401 without a session, 403 for a wrong
CSRF token, another user's report or a non-admin on admin routes, 404 for an unknown id, 409
for a second check of one image, 422 for an invalid body or parameter.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import func, select
from starlette.background import BackgroundTask

from skydask.checker import checks, csrf
from skydask.checker.auth import (
    UsernameTakenError,
    authenticate,
    create_session,
    create_user,
    end_session,
)
from skydask.checker.checks import Mark
from skydask.checker.deps import (
    SESSION_COOKIE,
    CheckerState,
    csrf_token,
    current_user,
    get_state,
    require_admin,
    require_csrf,
    require_user,
    set_session_cookie,
)
from skydask.checker.export import export_reports
from skydask.checker.models import Image, Report, User
from skydask.checker.problems import grouped
from skydask.checker.render import MASK_COLOURS, STRETCHES
from skydask.checker.schemas import (
    MAX_ID,
    CheckIn,
    CheckOut,
    Credentials,
    ImageOut,
    MergeIn,
    NextOut,
    ReportOut,
    ReportPatch,
    ReviewIn,
    SessionOut,
    UserOut,
    report_out,
)
from skydask.checker.stats import collect_stats, heatmap_png, leaderboard

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["api"])

State = Annotated[CheckerState, Depends(get_state)]
LoggedIn = Annotated[User, Depends(require_user)]
Admin = Annotated[User, Depends(require_admin)]
Csrf = Depends(require_csrf)
ImageId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
ReportId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
Release = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
_PNG_HEADERS = {"Cache-Control": "private, max-age=3600"}


def _user_out(state: CheckerState, user: User) -> UserOut:
    counts = checks.user_counts(state.db, user.id)
    return UserOut(username=user.username, role=user.role, **counts)


def image_out(image: Image) -> ImageOut:
    """The API form of an image, with the URLs of its renders."""
    return ImageOut(
        id=image.id,
        key=image.key,
        release=image.release,
        visit=image.visit,
        detector=image.detector,
        band=image.band,
        mjd=image.mjd,
        nx=image.nx,
        ny=image.ny,
        n_checks=image.n_checks,
        image_url=f"/api/images/{image.id}/image.png",
        mask_url=f"/api/images/{image.id}/mask.png",
    )


@router.get("/health")
def health(state: State) -> dict[str, Any]:
    """Liveness: the number of images served and the release."""
    return {"status": "ok", "images": len(state.store), "release": state.release}


@router.get("/session")
def session_info(request: Request, state: State) -> SessionOut:
    """The logged-in user (or null) and the CSRF token for this browser."""
    user = current_user(request)
    return SessionOut(user=_user_out(state, user) if user else None, csrf_token=csrf_token(request))


def _logged_in_response(
    request: Request, state: CheckerState, user: User, status: int
) -> JSONResponse:
    if user.username in state.config.admins and user.role != "admin":
        with state.db.write() as s:
            stored = s.get(User, user.id)
            if stored is not None:
                stored.role = "admin"
                user = stored
    token = create_session(state.db, user.id, days=state.config.session_days)
    body = SessionOut(
        user=_user_out(state, user), csrf_token=csrf.token_for(state.secret, "s:" + token)
    )
    response = JSONResponse(body.model_dump(mode="json"), status_code=status)
    set_session_cookie(response, request, token)
    return response


@router.post("/signup", status_code=201, dependencies=[Csrf], response_model=SessionOut)
def signup(body: Credentials, request: Request, state: State) -> JSONResponse:
    """Make an account and log in (the first account of a database is an admin)."""
    try:
        user = create_user(
            state.db, body.username, body.password, admin=body.username in state.config.admins
        )
    except UsernameTakenError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    return _logged_in_response(request, state, user, 201)


@router.post("/login", dependencies=[Csrf], response_model=SessionOut)
def login(body: Credentials, request: Request, state: State) -> JSONResponse:
    """Log in: sets the session cookie; returns the new CSRF token."""
    user = authenticate(state.db, body.username, body.password)
    if user is None:
        raise HTTPException(status_code=401, detail="wrong user name or password")
    return _logged_in_response(request, state, user, 200)


@router.post("/logout", status_code=204, dependencies=[Csrf])
def logout(request: Request, state: State, user: LoggedIn) -> Response:
    """End the session."""
    end_session(state.db, request.cookies.get(SESSION_COOKIE))
    response = Response(status_code=204)
    set_session_cookie(response, request, None)
    return response


@router.get("/problems")
def problems() -> dict[str, Any]:
    """The problem classes by group, the stretches and the mask-overlay colours."""
    return {
        "groups": [{"name": g, "classes": [c.as_dict() for c in cs]} for g, cs in grouped()],
        "stretches": list(STRETCHES),
        "mask_colours": {k: list(v) for k, v in MASK_COLOURS.items()},
    }


@router.get("/next")
def next_image(state: State, user: LoggedIn) -> NextOut:
    """The next image for this user: fewest checks first, never one already checked, not one
    another user is being shown."""
    image = checks.next_image(
        state.db, user.id, state.release, lease_seconds=state.config.lease_seconds
    )
    if image is None:
        return NextOut(image=None, message="you have checked every image of this release")
    return NextOut(image=image_out(image))


def _served_image(state: CheckerState, image_id: int) -> Image:
    with state.db.read() as s:
        image = s.get(Image, image_id)
    if image is None or image.release != state.release or image.key not in state.store:
        raise HTTPException(status_code=404, detail=f"image {image_id} is not served here")
    return image


@router.get("/images/{image_id}")
def image_info(image_id: ImageId, state: State, user: LoggedIn) -> ImageOut:
    """One image's metadata."""
    return image_out(_served_image(state, image_id))


@router.get(
    "/images/{image_id}/image.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def image_png(
    image_id: ImageId,
    state: State,
    user: LoggedIn,
    stretch: Annotated[Literal["asinh", "zscale"], Query()] = "asinh",
) -> Response:
    """The image, stretched, as 8-bit PNG, north up (row 0 is the last image row)."""
    image = _served_image(state, image_id)
    png = state.store.png(image.key, "image", stretch)
    return Response(png, media_type="image/png", headers=_PNG_HEADERS)


@router.get(
    "/images/{image_id}/mask.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def mask_png(image_id: ImageId, state: State, user: LoggedIn) -> Response:
    """The mask planes as a transparent RGBA overlay of the image PNG."""
    image = _served_image(state, image_id)
    return Response(
        state.store.png(image.key, "mask"), media_type="image/png", headers=_PNG_HEADERS
    )


@router.post("/images/{image_id}/checks", status_code=201, dependencies=[Csrf])
def submit(image_id: ImageId, body: CheckIn, state: State, user: LoggedIn) -> CheckOut:
    """Store this user's check of an image: ``fine`` without marks, or ``problem`` with the
    marks (pixel position, class, optional label, false-positive flag)."""
    _served_image(state, image_id)
    marks = [Mark(m.x, m.y, m.problem, m.label or None, m.false_positive) for m in body.marks]
    check, reports = checks.submit_check(state.db, user.id, image_id, body.verdict, marks)
    return CheckOut(
        check_id=check.id,
        image_id=image_id,
        verdict=check.verdict,
        reports=[report_out(r, user.username) for r in reports],
    )


@router.get("/reports")
def my_reports(
    state: State,
    user: LoggedIn,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[ReportOut]:
    """This user's reports, newest first."""
    with state.db.read() as s:
        rows = s.scalars(
            select(Report)
            .where(Report.user_id == user.id)
            .order_by(Report.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
    return [report_out(r, user.username) for r in rows]


@router.get("/reports/{report_id}")
def get_report(report_id: ReportId, state: State, user: LoggedIn) -> ReportOut:
    """One report: its author's or, for an admin, anyone's."""
    return report_out(checks.visible_report(state.db, user, report_id))


@router.patch("/reports/{report_id}", dependencies=[Csrf])
def patch_report(report_id: ReportId, body: ReportPatch, state: State, user: LoggedIn) -> ReportOut:
    """Change the class, label or false-positive flag of one's own report."""
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    changes = {k: v for k, v in changes.items() if v is not None or k == "label"}
    return report_out(checks.update_report(state.db, user, report_id, changes))


@router.delete("/reports/{report_id}", status_code=204, dependencies=[Csrf])
def remove_report(report_id: ReportId, state: State, user: LoggedIn) -> Response:
    """Delete one's own report."""
    checks.delete_report(state.db, user, report_id)
    return Response(status_code=204)


@router.get(
    "/reports/{report_id}/stamp.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def report_stamp(report_id: ReportId, state: State, user: LoggedIn) -> Response:
    """A 64 x 64 zscale stamp around a report (any logged-in user: the gallery shows them)."""
    with state.db.read() as s:
        row = s.execute(
            select(Report.x, Report.y, Image.key, Image.release)
            .join(Image, Image.id == Report.image_id)
            .where(Report.id == report_id)
        ).first()
    if row is None or row[3] != state.release or row[2] not in state.store:
        raise HTTPException(status_code=404, detail=f"report {report_id} is not on an image here")
    png = state.store.stamp_png(row[2], row[0], row[1])
    return Response(png, media_type="image/png", headers=_PNG_HEADERS)


@router.get("/gallery")
def gallery(
    state: State,
    user: LoggedIn,
    problem: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 48,
) -> list[ReportOut]:
    """Recent reports of this release that are not rejected or merged (for the gallery)."""
    with state.db.read() as s:
        q = (
            select(Report, User.username)
            .join(Image, Image.id == Report.image_id)
            .join(User, User.id == Report.user_id)
            .where(Image.release == state.release, Report.status.in_(["open", "confirmed"]))
            .order_by(Report.id.desc())
            .limit(limit)
        )
        if problem is not None:
            q = q.where(Report.problem == problem)
        rows = s.execute(q).all()
    return [report_out(r, name) for r, name in rows]


@router.get("/stats")
def stats(state: State, release: Release = None) -> dict[str, Any]:
    """Images checked (total and today), reports per class, and the leaderboard, of one
    release (default: the one served here) or of ``release=all``."""
    chosen = None if release == "all" else (release or state.release)
    out = collect_stats(state.db, chosen).as_dict()
    out["release"] = chosen or "all"
    out["leaderboard"] = leaderboard(state.db, chosen)
    return out


@router.get(
    "/stats/heatmap.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def heatmap(
    state: State,
    kind: Annotated[Literal["sky", "detector"], Query()] = "sky",
    release: Release = None,
) -> Response:
    """Heat map of reported positions on the sky or on the detector."""
    chosen = None if release == "all" else (release or state.release)
    return Response(
        heatmap_png(state.db, kind, chosen),
        media_type="image/png",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/admin/reports")
def admin_reports(
    state: State,
    admin: Admin,
    status: Annotated[Literal["open", "confirmed", "rejected", "merged"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> dict[str, Any]:
    """Every user's reports for review, newest first, with the total count."""
    with state.db.read() as s:
        q = select(Report, User.username).join(User, User.id == Report.user_id)
        count = select(func.count()).select_from(Report)
        if status is not None:
            q = q.where(Report.status == status)
            count = count.where(Report.status == status)
        rows = s.execute(q.order_by(Report.id.desc()).limit(limit).offset(offset)).all()
        total = int(s.scalar(count) or 0)
    return {"total": total, "reports": [report_out(r, n).model_dump(mode="json") for r, n in rows]}


@router.post("/admin/reports/{report_id}/review", dependencies=[Csrf])
def review(report_id: ReportId, body: ReviewIn, state: State, admin: Admin) -> ReportOut:
    """Confirm or reject a report (or reopen it)."""
    return report_out(checks.review_report(state.db, report_id, body.status))


@router.post("/admin/merge", dependencies=[Csrf])
def merge(body: MergeIn, state: State, admin: Admin) -> dict[str, int]:
    """Merge duplicate reports of one image into one."""
    return {"merged": checks.merge_reports(state.db, body.into, body.others)}


@router.get(
    "/admin/export.parquet",
    response_class=FileResponse,
    responses={200: {"content": {"application/vnd.apache.parquet": {}}}},
)
def export(state: State, admin: Admin, release: Release = None) -> FileResponse:
    """Every report as the Parquet table of ``skydask checker export``."""
    tmpdir = Path(tempfile.mkdtemp(prefix="skydask-export-"))
    path = export_reports(state.db, tmpdir / "reports.parquet", release=release)

    def cleanup() -> None:
        path.unlink(missing_ok=True)
        tmpdir.rmdir()

    return FileResponse(
        path,
        media_type="application/vnd.apache.parquet",
        filename="skydask-checker-reports.parquet",
        background=BackgroundTask(cleanup),
    )
