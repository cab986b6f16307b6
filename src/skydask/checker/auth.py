"""Accounts and log-in sessions: argon2 password hashes, random session tokens.

* Passwords are hashed with argon2id (``argon2-cffi``, its default RFC 9106 low-memory
  parameters); a hash made with older parameters is upgraded at the next log-in.
* A session is a random 32-byte token in an HttpOnly, SameSite cookie; the database keeps only
  its SHA-256, so a copy of the database cannot be used to log in. Sessions expire after
  ``days`` and end at log-out.
* A log-in with an unknown name still verifies a hash, so the time taken does not tell whether
  the name exists.
* The first account made on an empty database, and every account named with ``--admin``, gets
  the ``admin`` role (see :func:`create_user`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from skydask.checker.db import Database
from skydask.checker.models import Session, User, utcnow
from skydask.errors import SkydaskError

__all__ = [
    "UsernameTakenError",
    "authenticate",
    "create_session",
    "create_user",
    "end_session",
    "hash_password",
    "session_user",
    "token_hash",
    "verify_password",
]

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


class UsernameTakenError(SkydaskError, ValueError):
    """Sign-up with a name that another account has."""


def hash_password(password: str) -> str:
    """The argon2id hash of a password.

    Examples
    --------
    >>> h = hash_password("correct horse")
    >>> h.startswith("$argon2id$"), verify_password(h, "correct horse"), verify_password(h, "x")
    (True, True, False)
    """
    return _HASHER.hash(password)


def verify_password(hashed: str, password: str) -> bool:
    """Whether ``password`` matches ``hashed`` (False for a malformed hash)."""
    try:
        return _HASHER.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> str:
    """SHA-256 (hex) of a session token: what the database stores."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(db: Database, username: str, password: str, *, admin: bool = False) -> User:
    """Make an account; the first account of a database is an admin.

    Raises
    ------
    UsernameTakenError
        If the name is taken.
    """
    hashed = hash_password(password)  # outside the transaction: it takes tens of ms
    try:
        with db.write() as s:
            first = s.scalar(select(User.id).limit(1)) is None
            user = User(
                username=username, password_hash=hashed, role="admin" if admin or first else "user"
            )
            s.add(user)
    except IntegrityError:
        raise UsernameTakenError(f"the user name {username!r} is taken") from None
    return user


def authenticate(db: Database, username: str, password: str) -> User | None:
    """The user if the name and password match, else None (in about the same time)."""
    with db.read() as s:
        user = s.scalar(select(User).where(User.username == username))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if _HASHER.check_needs_rehash(user.password_hash):
        with db.write() as s:
            stored = s.get(User, user.id)
            if stored is not None:
                stored.password_hash = hash_password(password)
    return user


def create_session(db: Database, user_id: int, *, days: float = 14.0) -> str:
    """Start a session for a user; return its token (the cookie's value)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with db.write() as s:
        s.add(
            Session(
                token_hash=token_hash(token),
                user_id=user_id,
                created_at=now,
                expires_at=now + timedelta(days=days),
            )
        )
    return token


def session_user(db: Database, token: str | None) -> User | None:
    """The user of a live session token, or None (unknown, malformed or expired)."""
    if not token or len(token) > 128:
        return None
    with db.read() as s:
        row = s.execute(
            select(User, Session.expires_at)
            .join(Session, Session.user_id == User.id)
            .where(Session.token_hash == token_hash(token))
        ).first()
    if row is None or row[1] < utcnow():
        return None
    user: User = row[0]
    return user


def end_session(db: Database, token: str | None) -> None:
    """Forget a session (log-out); unknown tokens are ignored."""
    if token and len(token) <= 128:
        with db.write() as s:
            s.execute(delete(Session).where(Session.token_hash == token_hash(token)))
