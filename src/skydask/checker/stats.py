"""Statistics of the checks: counts, the leaderboard per release, problems per class, heat maps.

"Today" is the current UTC date. The heat maps are matplotlib figures made as everywhere in
skydask (a new ``Figure``, never pyplot state, returned not shown):

* the **sky** map: a 2-D histogram of the RA/Dec of every report that says the pixels are bad
  (false positives and "awesome!" left out), RA increasing to the left as on the sky;
* the **detector** map: the same reports at their pixel position, every detector stacked on
  one detector's frame (with DC2's single-detector images this is the focal plane of one
  sensor: bad columns show as columns, edge effects as edges).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sqlalchemy import distinct, func, select

from skydask.checker.db import Database
from skydask.checker.models import Check, Image, Report, User, utcnow
from skydask.checker.problems import problem_class, problem_classes

__all__ = ["Stats", "collect_stats", "heatmap_figure", "heatmap_png", "leaderboard"]


@dataclass
class Stats:
    """Counts of the checker (see :func:`collect_stats`)."""

    images: int
    images_checked: int
    images_checked_today: int
    checks: int
    checks_today: int
    reports: int
    users: int
    per_class: list[dict[str, Any]] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "images_checked": self.images_checked,
            "images_checked_today": self.images_checked_today,
            "checks": self.checks,
            "checks_today": self.checks_today,
            "reports": self.reports,
            "users": self.users,
            "per_class": self.per_class,
            "releases": self.releases,
        }


def _today() -> datetime:
    return datetime.combine(utcnow().date(), time())


def collect_stats(db: Database, release: str | None = None) -> Stats:
    """Images (total, checked at least once, checked today), checks (total, today), reports,
    users and reports per class, of one release or of all."""
    with db.read() as s:
        images = select(func.count()).select_from(Image)
        checked = select(func.count()).select_from(Image).where(Image.n_checks > 0)
        checks = select(func.count()).select_from(Check).join(Image, Image.id == Check.image_id)
        reports = select(Report.problem, func.count()).join(Image, Image.id == Report.image_id)
        users = select(func.count(distinct(Check.user_id))).join(Image, Image.id == Check.image_id)
        if release is not None:
            images = images.where(Image.release == release)
            checked = checked.where(Image.release == release)
            checks = checks.where(Image.release == release)
            reports = reports.where(Image.release == release)
            users = users.where(Image.release == release)
        today = checks.where(Check.created_at >= _today())
        images_today = (
            select(func.count(distinct(Check.image_id)))
            .join(Image, Image.id == Check.image_id)
            .where(Check.created_at >= _today())
        )
        if release is not None:
            images_today = images_today.where(Image.release == release)
        counts = {str(k): int(v) for k, v in s.execute(reports.group_by(Report.problem)).all()}
        releases = sorted(s.scalars(select(Image.release).distinct()))
        out = Stats(
            images=int(s.scalar(images) or 0),
            images_checked=int(s.scalar(checked) or 0),
            images_checked_today=int(s.scalar(images_today) or 0),
            checks=int(s.scalar(checks) or 0),
            checks_today=int(s.scalar(today) or 0),
            reports=int(sum(counts.values())),
            users=int(s.scalar(users) or 0),
            releases=releases,
        )
    out.per_class = [
        {"code": c.code, "label": c.label, "group": c.group, "count": int(counts.get(c.code, 0))}
        for c in problem_classes()
    ]
    return out


def leaderboard(db: Database, release: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """Users by images checked (then reports made, then name), of one release or all."""
    with db.read() as s:
        checks = (
            select(Check.user_id, func.count().label("n"))
            .join(Image, Image.id == Check.image_id)
            .group_by(Check.user_id)
        )
        reports = (
            select(Report.user_id, func.count().label("n"))
            .join(Image, Image.id == Report.image_id)
            .group_by(Report.user_id)
        )
        if release is not None:
            checks = checks.where(Image.release == release)
            reports = reports.where(Image.release == release)
        c, r = checks.subquery(), reports.subquery()
        rows = s.execute(
            select(User.username, c.c.n, func.coalesce(r.c.n, 0))
            .join(c, c.c.user_id == User.id)
            .outerjoin(r, r.c.user_id == User.id)
            .order_by(c.c.n.desc(), func.coalesce(r.c.n, 0).desc(), User.username)
            .limit(limit)
        ).all()
    return [
        {"rank": i + 1, "user": name, "checks": int(n), "reports": int(m)}
        for i, (name, n, m) in enumerate(rows)
    ]


def _bad_positions(db: Database, release: str | None) -> dict[str, np.ndarray]:
    flagging = [c.code for c in problem_classes() if c.plane is not None]
    with db.read() as s:
        q = (
            select(Report.ra, Report.dec, Report.x, Report.y, Image.nx, Image.ny)
            .join(Image, Image.id == Report.image_id)
            .where(Report.false_positive.is_(False), Report.problem.in_(flagging))
            .where(Report.status != "rejected")
        )
        if release is not None:
            q = q.where(Image.release == release)
        rows = np.array(s.execute(q).all(), dtype=np.float64).reshape(-1, 6)
    names = ("ra", "dec", "x", "y", "nx", "ny")
    return {n: rows[:, i] for i, n in enumerate(names)}


def heatmap_figure(db: Database, kind: str = "sky", release: str | None = None) -> Figure:
    """The sky or detector heat map of reported problems (see the module docstring).

    Raises
    ------
    ValueError
        For a ``kind`` other than ``"sky"`` and ``"detector"``.
    """
    if kind not in ("sky", "detector"):
        raise ValueError(f"parameter 'kind' must be 'sky' or 'detector'; got {kind!r}")
    pos = _bad_positions(db, release)
    fig = Figure(figsize=(5.0, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    n = len(pos["ra"])
    where = f"release {release}" if release else "all releases"
    if kind == "sky":
        if n:
            pad = 1e-3
            ra_range = (pos["ra"].min() - pad, pos["ra"].max() + pad)
            dec_range = (pos["dec"].min() - pad, pos["dec"].max() + pad)
            h = ax.hist2d(pos["ra"], pos["dec"], bins=30, range=[ra_range, dec_range], cmin=1)
            fig.colorbar(h[3], ax=ax, label="reports")
            ax.invert_xaxis()
        ax.set_xlabel("RA (deg)")
        ax.set_ylabel("Dec (deg)")
    else:
        nx = float(pos["nx"].max()) if n else 1.0
        ny = float(pos["ny"].max()) if n else 1.0
        if n:
            h = ax.hist2d(
                pos["x"], pos["y"], bins=32, range=[[-0.5, nx - 0.5], [-0.5, ny - 0.5]], cmin=1
            )
            fig.colorbar(h[3], ax=ax, label="reports")
        ax.set_xlim(-0.5, nx - 0.5)
        ax.set_ylim(-0.5, ny - 0.5)
        ax.set_aspect("equal")
        ax.set_xlabel("x (pixel)")
        ax.set_ylabel("y (pixel)")
    ax.ticklabel_format(useOffset=False)
    ax.set_title(f"{n} reported problems, {where}", fontsize=9)
    fig.tight_layout()
    return fig


def heatmap_png(db: Database, kind: str = "sky", release: str | None = None) -> bytes:
    """:func:`heatmap_figure` as PNG bytes."""
    buf = io.BytesIO()
    heatmap_figure(db, kind, release).savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def class_label(code: str) -> str:
    """The display label of a class code (the code itself if unknown)."""
    try:
        return problem_class(code).label
    except (KeyError, ValueError):
        return code
