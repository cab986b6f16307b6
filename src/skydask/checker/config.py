"""The settings of one checker server, and where its default database lives."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from skydask.errors import SpecError
from skydask.images.layouts import expand_paths

__all__ = ["CheckerConfig", "default_db_url", "default_release"]

_RELEASE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


@dataclass(frozen=True)
class CheckerConfig:
    """Settings of :func:`skydask.checker.create_app`.

    Attributes
    ----------
    images
        The images to check: a glob, a directory (a synthetic stack's), a file or a list.
    db_url
        Database URL (``sqlite:///FILE``, ``postgresql://...``) or SQLite path; default
        :func:`default_db_url` (a file next to the images).
    release
        The data release these images belong to (leaderboards are per release); default
        :func:`default_release`.
    admins
        User names that get the admin role when they sign up or log in.
    lease_seconds
        How long an image shown to one user is kept from the others.
    session_days
        Lifetime of a log-in session.
    secure_cookies
        Mark cookies ``Secure`` (set it behind HTTPS).
    cache_mb
        Budget of the rendered-PNG cache.
    pool_size
        Database connections kept open.
    """

    images: str | Sequence[str]
    db_url: str | None = None
    release: str | None = None
    admins: tuple[str, ...] = ()
    lease_seconds: float = 600.0
    session_days: float = 14.0
    secure_cookies: bool = False
    cache_mb: int = 256
    pool_size: int = 10

    def resolved_db_url(self) -> str:
        return self.db_url or default_db_url(self.images)

    def resolved_release(self) -> str:
        release = self.release or default_release(self.images)
        if not _RELEASE_RE.match(release):
            raise SpecError(
                f"parameter 'release' must be 1-64 letters, digits, '_', '.' or '-'; "
                f"got {release!r}"
            )
        return release


def _first_dir(images: str | Sequence[str]) -> Path:
    first = expand_paths(images)[0]
    return Path(first).parent


def default_db_url(images: str | Sequence[str]) -> str:
    """``sqlite:///<directory of the first image>/skydask-checker.db``."""
    return "sqlite:///" + str(_first_dir(images) / "skydask-checker.db")


def default_release(images: str | Sequence[str]) -> str:
    """The name of the directory of the first image, cleaned to a release name.

    Examples
    --------
    >>> from skydask.synth.images import generate_image_stack
    >>> info = generate_image_stack(getfixture("tmp_path") / "run2.1i dr", nvisits=1, size=16)
    >>> default_release(str(info.path))
    'run2.1i_dr'
    """
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", _first_dir(images).name).strip("_")
    return name[:64] or "default"
