"""The checker's database tables (SQLAlchemy 2 declarative models).

* ``users`` — accounts: a unique name, an argon2 hash of the password, a role (``user`` or
  ``admin``).
* ``sessions`` — log-in sessions: the SHA-256 of the cookie's random token (a stolen database
  does not give working cookies), the user, the expiry.
* ``settings`` — key/value pairs of the installation (the secret key that signs CSRF tokens).
* ``images`` — the images to check: release and key (the stack's ``visit`` name) identify one;
  visit, detector, band, date, size and the WCS header are copied from the stack so exports
  and statistics need no FITS file; ``n_checks`` counts the checks (the "fewer checks first"
  order) and ``lease_user_id``/``lease_until`` say to whom it is being shown (so two users
  checking at once are not shown the same image).
* ``checks`` — one per user and image (a unique constraint: nobody checks an image twice, and
  a double submit is refused by the database itself): the verdict ``fine`` or ``problem``.
* ``reports`` — the problems marked in a check: pixel position and its RA/Dec through the
  image's WCS, class, free label, false-positive flag, and the review state an admin sets
  (``open``, ``confirmed``, ``rejected``, ``merged`` into another report).

Times are naive UTC (SQLite keeps no time zone; PostgreSQL columns are ``timestamp``).
The schema is created and changed only by the migrations in ``migrations/versions``; a test
checks that they and these models agree.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ROLES",
    "STATUSES",
    "VERDICTS",
    "Base",
    "Check",
    "Image",
    "Report",
    "Session",
    "Setting",
    "User",
    "utcnow",
]

ROLES = ("user", "admin")
VERDICTS = ("fine", "problem")
STATUSES = ("open", "confirmed", "rejected", "merged")


def utcnow() -> datetime:
    """The current UTC time, naive (as stored)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base of the checker's tables."""


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(10), default="user")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Session(Base):
    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class Setting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("release", "key", name="uq_images_release_key"),
        Index("ix_images_release_checks", "release", "n_checks"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    file: Mapped[str] = mapped_column(String(1024))
    hdu: Mapped[int] = mapped_column(Integer)
    visit: Mapped[str] = mapped_column(String(64))
    detector: Mapped[str] = mapped_column(String(64))
    band: Mapped[str] = mapped_column(String(16))
    mjd: Mapped[float | None] = mapped_column(Float, nullable=True)
    nx: Mapped[int] = mapped_column(Integer)
    ny: Mapped[int] = mapped_column(Integer)
    wcs_header: Mapped[str] = mapped_column(Text)
    n_checks: Mapped[int] = mapped_column(Integer, default=0)
    lease_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    lease_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Check(Base):
    __tablename__ = "checks"
    __table_args__ = (UniqueConstraint("image_id", "user_id", name="uq_checks_image_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    verdict: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Report(Base):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("checks.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    problem: Mapped[str] = mapped_column(String(32), index=True)
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    ra: Mapped[float] = mapped_column(Float)
    dec: Mapped[float] = mapped_column(Float)
    false_positive: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="open")
    merged_into: Mapped[int | None] = mapped_column(
        ForeignKey("reports.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
