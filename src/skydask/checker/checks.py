"""The checking workflow: register images, hand out the next one, store a check, edit reports.

Which image comes next (:func:`next_image`), for user ``u`` in release ``r``:

1. never one that ``u`` has checked;
2. the image ``u`` holds a lease on, if any (a reload shows the same image);
3. else the image with the fewest checks (then the lowest id) that nobody else holds a live
   lease on; ``u`` takes a lease on it for ``lease_seconds`` and gives up any other. Taking it is
   one conditional ``UPDATE ... WHERE lease is free`` (and on PostgreSQL the candidate row is
   read ``FOR UPDATE SKIP LOCKED``), so two users asking at once get different images;
4. only when every unchecked image is leased to someone else is one shared (fewest checks,
   oldest lease): with more users than images there is no other way.

A check (:func:`submit_check`) is one transaction: the ``checks`` row (unique per user and
image, so a second submit is refused by the database, whichever server process gets it), its
reports with RA/Dec through the image's WCS, and ``n_checks + 1`` done in SQL (never
read-modify-write, so two users submitting together both count).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from astropy.wcs import WCS
from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skydask.checker.db import Database
from skydask.checker.models import Check, Image, Report, User, utcnow
from skydask.checker.problems import problem_codes
from skydask.checker.render import ImageStore
from skydask.errors import SkydaskError, SpecError
from skydask.images.wcs import wcs_from_string

__all__ = [
    "AlreadyCheckedError",
    "ForbiddenError",
    "Mark",
    "NotFoundError",
    "delete_report",
    "merge_reports",
    "next_image",
    "pixel_to_sky",
    "register_images",
    "review_report",
    "submit_check",
    "update_report",
    "visible_report",
]


class NotFoundError(SkydaskError, LookupError):
    """An image or report id that does not exist."""


class ForbiddenError(SkydaskError, PermissionError):
    """A user acting on another user's report without the admin role."""


class AlreadyCheckedError(SkydaskError, ValueError):
    """A second check of one image by one user."""


@dataclass(frozen=True)
class Mark:
    """One problem marked on an image: pixel position (astropy 0-based), class, label, flag."""

    x: float
    y: float
    problem: str
    label: str | None = None
    false_positive: bool = False


@functools.lru_cache(maxsize=4096)
def _wcs(header: str) -> WCS:
    return wcs_from_string(header)


def pixel_to_sky(wcs_header: str, x: float, y: float) -> tuple[float, float]:
    """RA, Dec (deg) of 0-based pixel ``(x, y)`` through a WCS header (SIP/TPV included)."""
    ra, dec = _wcs(wcs_header).all_pix2world([x], [y], 0)
    return float(ra[0]), float(dec[0])


def register_images(db: Database, store: ImageStore, release: str) -> int:
    """Add the store's images to the database under ``release`` (existing ones are kept).

    Returns the number of new images.
    """
    with db.read() as s:
        known = set(s.scalars(select(Image.key).where(Image.release == release)))
    new = [store.entry(k) for k in store if k not in known]
    if new:
        with db.write() as s:
            s.add_all(
                Image(
                    release=release,
                    key=e.key,
                    file=e.file,
                    hdu=e.hdu,
                    visit=e.visit[:64],
                    detector=e.detector[:64],
                    band=e.band[:16],
                    mjd=e.mjd,
                    nx=e.nx,
                    ny=e.ny,
                    wcs_header=e.wcs_header,
                    n_checks=0,
                )
                for e in new
            )
    return len(new)


def _unchecked_by(user_id: int) -> Any:
    mine = exists().where(and_(Check.image_id == Image.id, Check.user_id == user_id))
    return ~mine


def next_image(
    db: Database, user_id: int, release: str, *, lease_seconds: float = 600.0
) -> Image | None:
    """The image ``user_id`` should check next (see the module docstring), or None if none."""
    now = utcnow()
    until = now + timedelta(seconds=lease_seconds)
    mine_live = and_(Image.lease_user_id == user_id, Image.lease_until >= now)
    free = or_(Image.lease_until.is_(None), Image.lease_until < now, Image.lease_user_id == user_id)
    with db.write() as s:
        for _ in range(20):  # each pass loses only to a user who took another image
            candidate = s.scalar(
                select(Image.id)
                .where(Image.release == release, _unchecked_by(user_id), free)
                .order_by(case((mine_live, 0), else_=1), Image.n_checks, Image.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if candidate is None:
                break
            taken = s.execute(
                update(Image)
                .where(Image.id == candidate, free)
                .values(lease_user_id=user_id, lease_until=until)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                s.execute(
                    update(Image)
                    .where(Image.lease_user_id == user_id, Image.id != candidate)
                    .values(lease_user_id=None, lease_until=None)
                )
                return s.get(Image, candidate)
        # every unchecked image is leased to someone else: share the least-checked one
        shared = s.scalar(
            select(Image)
            .where(Image.release == release, _unchecked_by(user_id))
            .order_by(Image.n_checks, Image.lease_until, Image.id)
            .limit(1)
        )
        return shared


def _validate_marks(image: Image, marks: Sequence[Mark]) -> None:
    codes = problem_codes()
    for i, m in enumerate(marks):
        where = f"mark {i} on image {image.id}"
        if m.problem not in codes:
            raise SpecError(f"{where}: unknown problem class {m.problem!r}")
        if not (math.isfinite(m.x) and math.isfinite(m.y)):
            raise SpecError(f"{where}: position ({m.x}, {m.y}) is not finite")
        if not (-0.5 <= m.x <= image.nx - 0.5 and -0.5 <= m.y <= image.ny - 0.5):
            raise SpecError(
                f"{where}: pixel ({m.x}, {m.y}) is outside the image "
                f"(x in [-0.5, {image.nx - 0.5}], y in [-0.5, {image.ny - 0.5}])"
            )
        if m.problem == "other" and not (m.label or "").strip():
            raise SpecError(f"{where}: class 'other' needs a label")


def submit_check(
    db: Database, user_id: int, image_id: int, verdict: str, marks: Sequence[Mark]
) -> tuple[Check, list[Report]]:
    """Store one user's check of one image (see the module docstring).

    Raises
    ------
    NotFoundError
        If the image does not exist.
    AlreadyCheckedError
        If this user has checked this image before.
    SpecError
        For a verdict that does not agree with the marks, or a bad mark.
    """
    if verdict not in ("fine", "problem"):
        raise SpecError(f"parameter 'verdict' must be 'fine' or 'problem'; got {verdict!r}")
    if (verdict == "fine") != (len(marks) == 0):
        raise SpecError(
            f"verdict {verdict!r} with {len(marks)} marks: 'fine' has no marks, "
            "'problem' at least one"
        )
    try:
        with db.write() as s:
            image = s.get(Image, image_id)
            if image is None:
                raise NotFoundError(f"image {image_id} does not exist")
            _validate_marks(image, marks)
            check = Check(image_id=image_id, user_id=user_id, verdict=verdict, created_at=utcnow())
            s.add(check)
            s.flush()  # the unique (image, user) constraint fires here
            reports = []
            for m in marks:
                ra, dec = pixel_to_sky(image.wcs_header, m.x, m.y)
                reports.append(
                    Report(
                        check_id=check.id,
                        image_id=image_id,
                        user_id=user_id,
                        problem=m.problem,
                        label=(m.label or None),
                        x=m.x,
                        y=m.y,
                        ra=ra,
                        dec=dec,
                        false_positive=m.false_positive,
                        status="open",
                        created_at=check.created_at,
                    )
                )
            s.add_all(reports)
            mine = Image.lease_user_id == user_id
            s.execute(
                update(Image)
                .where(Image.id == image_id)
                .values(
                    n_checks=Image.n_checks + 1,
                    lease_user_id=case((mine, None), else_=Image.lease_user_id),
                    lease_until=case((mine, None), else_=Image.lease_until),
                )
            )
            s.flush()
    except IntegrityError as exc:
        if "uq_checks_image_user" in str(exc) or "UNIQUE" in str(exc).upper():
            raise AlreadyCheckedError(
                f"user {user_id} has already checked image {image_id}"
            ) from None
        raise
    return check, reports


def visible_report(db: Database, user: User, report_id: int) -> Report:
    """A report its author or an admin may see.

    Raises
    ------
    NotFoundError, ForbiddenError
    """
    with db.read() as s:
        return _owned_report(s, user, report_id)


def _owned_report(session: Session, user: User, report_id: int) -> Report:
    """Report ``report_id`` from ``session``, if it exists and ``user`` wrote it or is admin."""
    report = session.get(Report, report_id)
    if report is None:
        raise NotFoundError(f"report {report_id} does not exist")
    if report.user_id != user.id and user.role != "admin":
        raise ForbiddenError(f"report {report_id} belongs to another user")
    return report


def update_report(db: Database, user: User, report_id: int, changes: dict[str, Any]) -> Report:
    """Change the class, label or false-positive flag of one's own report (or any, as admin).

    Raises
    ------
    NotFoundError, ForbiddenError, SpecError
    """
    allowed = {"problem", "label", "false_positive"}
    if set(changes) - allowed:
        raise SpecError(f"only {sorted(allowed)} of a report can change; got {sorted(changes)}")
    if "problem" in changes and changes["problem"] not in problem_codes():
        raise SpecError(f"unknown problem class {changes['problem']!r}")
    with db.write() as s:
        report = _owned_report(s, user, report_id)
        for name, value in changes.items():
            setattr(report, name, value)
        if report.problem == "other" and not (report.label or "").strip():
            raise SpecError(f"report {report_id}: class 'other' needs a label")
    return report


def delete_report(db: Database, user: User, report_id: int) -> None:
    """Delete one's own report (or any, as admin).

    Raises
    ------
    NotFoundError, ForbiddenError
    """
    with db.write() as s:
        report = _owned_report(s, user, report_id)
        s.delete(report)


def review_report(db: Database, report_id: int, status: str) -> Report:
    """Set the review state of a report (admins only; the caller checks the role).

    Raises
    ------
    NotFoundError, SpecError
    """
    if status not in ("open", "confirmed", "rejected"):
        raise SpecError(f"status must be 'open', 'confirmed' or 'rejected'; got {status!r}")
    with db.write() as s:
        report = s.get(Report, report_id)
        if report is None:
            raise NotFoundError(f"report {report_id} does not exist")
        report.status = status
        report.merged_into = None
    return report


def merge_reports(db: Database, into: int, others: Sequence[int]) -> int:
    """Mark ``others`` as duplicates merged into report ``into`` (admins only).

    The reports must be on the same image. Returns the number merged.

    Raises
    ------
    NotFoundError, SpecError
    """
    ids = sorted(set(others) - {into})
    if not ids:
        raise SpecError("merge needs at least one report other than the one merged into")
    with db.write() as s:
        target = s.get(Report, into)
        if target is None:
            raise NotFoundError(f"report {into} does not exist")
        rows = list(s.scalars(select(Report).where(Report.id.in_(ids))))
        missing = sorted(set(ids) - {r.id for r in rows})
        if missing:
            raise NotFoundError(f"reports {missing} do not exist")
        wrong = [r.id for r in rows if r.image_id != target.image_id]
        if wrong:
            raise SpecError(
                f"reports {wrong} are not on image {target.image_id} of report {into}; "
                "only reports of one image can be merged"
            )
        for r in rows:
            r.status, r.merged_into = "merged", into
        if target.status == "merged":
            target.status, target.merged_into = "confirmed", None
    return len(rows)


def user_counts(db: Database, user_id: int) -> dict[str, int]:
    """How many images and reports a user has checked and made."""
    with db.read() as s:
        checks = s.scalar(select(func.count()).select_from(Check).where(Check.user_id == user_id))
        reports = s.scalar(
            select(func.count()).select_from(Report).where(Report.user_id == user_id)
        )
    return {"checks": int(checks or 0), "reports": int(reports or 0)}
