"""Test helpers of skydask.checker: a synthetic stack, live servers, databases, a browser.

* :func:`checker_stack` — a small synthetic image stack (bad columns, cosmic rays), made once
  per session.
* :class:`LiveServer` — uvicorn serving an app in a thread on a free 127.0.0.1 port; stopped
  by the fixture that started it.
* :func:`postgres_url` — the PostgreSQL of ``scripts/postgres-up.sh``
  (``$SKYDASK_TEST_POSTGRES_URL``, default its known test database), or None when it does not
  answer; :func:`fresh_postgres_db` makes a database of its own for one test module and drops
  it afterwards. Tests skip without it unless ``SKYDASK_REQUIRE_POSTGRES=1``.
* :func:`chromium_executable` and :data:`CHROMIUM_ARGS` — Debian's chromium, driven by
  Playwright through its executable path (Playwright cannot download its own browsers here).
  Tests skip without it unless ``SKYDASK_REQUIRE_BROWSER=1``.
* :class:`ApiUser` — an httpx client that signs up or logs in and sends the CSRF token.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from skydask.checker.cli import free_port
from skydask.synth.images import ImageStackInfo, generate_image_stack

POSTGRES_URL = os.environ.get(
    "SKYDASK_TEST_POSTGRES_URL", "postgresql://skydask:skydask@127.0.0.1:55432/skydask_test"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Three bands, six visits of 192 x 160 pixels: small PNGs, bad columns and cosmic rays.
STACK = {"nvisits": 6, "size": (160, 192), "seed": 21, "bands": "gri", "n_cosmic_rays": 6}
_CACHE: dict[str, ImageStackInfo] = {}


def checker_stack(factory: pytest.TempPathFactory, **params: Any) -> ImageStackInfo:
    """A synthetic stack (``STACK`` updated by ``params``), made at most once per session."""
    merged = {**STACK, **params}
    key = repr(sorted(merged.items()))
    if key not in _CACHE:
        _CACHE[key] = generate_image_stack(factory.mktemp("checker") / "stack", **merged)
    return _CACHE[key]


class LiveServer:
    """An ASGI app served by uvicorn in a daemon thread on 127.0.0.1."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 30.0) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the test server on {self.url} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@contextmanager
def live(app: Any) -> Iterator[LiveServer]:
    server = LiveServer(app).start()
    try:
        yield server
    finally:
        server.stop()


def _require(var: str) -> bool:
    return os.environ.get(var, "0") == "1"


def postgres_url() -> str | None:
    """The test PostgreSQL's URL if it answers, else None."""
    try:
        import psycopg
    except ImportError:
        return None
    try:
        with psycopg.connect(
            POSTGRES_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=3
        ):
            return POSTGRES_URL
    except psycopg.Error:
        return None


def need_postgres() -> str:
    """The test PostgreSQL's URL; skip (or fail with SKYDASK_REQUIRE_POSTGRES=1) without it."""
    url = postgres_url()
    if url is None:
        msg = f"no PostgreSQL at {POSTGRES_URL} (start it with scripts/postgres-up.sh)"
        if _require("SKYDASK_REQUIRE_POSTGRES"):
            pytest.fail(msg)
        pytest.skip(msg)
    return url


@contextmanager
def fresh_postgres_db(base_url: str) -> Iterator[str]:
    """A new, empty database on the test server; dropped afterwards."""
    import psycopg

    plain = base_url.replace("postgresql+psycopg", "postgresql")
    name = f"skydask_t_{secrets.token_hex(5)}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield plain.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def chromium_executable() -> str | None:
    """Debian's chromium, if installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    return found


def need_browser() -> str:
    """Chromium's path and a working Playwright; skip (or fail with
    SKYDASK_REQUIRE_BROWSER=1) without them."""
    path = chromium_executable()
    problem = None
    if path is None:
        problem = "chromium is not installed (scripts/install-browser.sh)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed"
    if problem is not None:
        if _require("SKYDASK_REQUIRE_BROWSER"):
            pytest.fail(problem)
        pytest.skip(problem)
    assert path is not None
    return path


class ApiUser:
    """A user of the JSON API: an httpx client with its cookies and CSRF token."""

    def __init__(self, base_url: str, username: str, password: str = "password-123") -> None:
        self.client = httpx.Client(base_url=base_url, timeout=60.0)
        self.username = username
        self.password = password
        self.csrf = self.client.get("/api/session").json()["csrf_token"]

    def _auth(self, path: str) -> httpx.Response:
        r = self.client.post(
            path,
            json={"username": self.username, "password": self.password},
            headers={"X-CSRF-Token": self.csrf},
        )
        if r.status_code in (200, 201):
            self.csrf = r.json()["csrf_token"]
        return r

    def signup(self) -> ApiUser:
        r = self._auth("/api/signup")
        assert r.status_code == 201, r.text
        return self

    def login(self) -> ApiUser:
        r = self._auth("/api/login")
        assert r.status_code == 200, r.text
        return self

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def send(self, method: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf, **kwargs.pop("headers", {})}
        return self.client.request(method, path, json=body, headers=headers, **kwargs)

    def next_image(self) -> dict[str, Any] | None:
        r = self.get("/api/next")
        assert r.status_code == 200, r.text
        image: dict[str, Any] | None = r.json()["image"]
        return image

    def check(self, image_id: int, marks: list[dict[str, Any]] | None = None) -> httpx.Response:
        body = {"verdict": "problem" if marks else "fine", "marks": marks or []}
        return self.send("POST", f"/api/images/{image_id}/checks", body)

    def close(self) -> None:
        self.client.close()


def open_browser(playwright: Any, profile: Path) -> Any:
    """A headless chromium (Debian's) with a fresh profile directory, as a Playwright context."""
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=need_browser(),
        args=CHROMIUM_ARGS,
        headless=True,
        viewport={"width": 1280, "height": 860},
    )
