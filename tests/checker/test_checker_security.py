"""Security on a live server, SQLite and PostgreSQL: sessions, CSRF, other users' reports, SQL
and script injection, path traversal, cookie attributes."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helpers beside us (not on the pythonpath)
from checker_testdata import ApiUser, LiveServer

from skydask.checker import Database
from skydask.checker.render import ImageStore

pytest_plugins = ["checker_fixtures"]

INJECTIONS = [
    "'); DROP TABLE reports; --",
    "x' OR '1'='1",
    '" OR ""="',
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">',
    "{{ 7*7 }} ${7*7} %s %n",
    "ünïcödé ✓ 🛰",
]


def _user(checker_server: LiveServer, prefix: str = "sec") -> ApiUser:
    return ApiUser(checker_server.url, f"{prefix}_{secrets.token_hex(3)}").signup()


def test_no_session_is_refused(checker_server: LiveServer) -> None:
    anon = httpx.Client(base_url=checker_server.url)
    token = anon.get("/api/session").json()["csrf_token"]  # a valid anonymous token
    headers = {"X-CSRF-Token": token}
    for method, path, body in [
        ("GET", "/api/next", None),
        ("GET", "/api/images/1", None),
        ("GET", "/api/images/1/image.png", None),
        ("GET", "/api/images/1/mask.png", None),
        ("POST", "/api/images/1/checks", {"verdict": "fine", "marks": []}),
        ("GET", "/api/reports", None),
        ("GET", "/api/reports/1", None),
        ("PATCH", "/api/reports/1", {"label": "x"}),
        ("DELETE", "/api/reports/1", None),
        ("GET", "/api/reports/1/stamp.png", None),
        ("GET", "/api/gallery", None),
        ("POST", "/api/logout", None),
        ("GET", "/api/admin/reports", None),
        ("POST", "/api/admin/merge", {"into": 1, "others": [2]}),
        ("POST", "/api/admin/reports/1/review", {"status": "confirmed"}),
        ("GET", "/api/admin/export.parquet", None),
    ]:
        r = anon.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (method, path, r.status_code, r.text)


def test_csrf_is_required_on_every_change(checker_server: LiveServer) -> None:
    user = _user(checker_server)
    other = _user(checker_server)
    image = user.next_image()
    path = f"/api/images/{image['id']}/checks"
    body = {"verdict": "fine", "marks": []}
    assert user.client.post(path, json=body).status_code == 403  # no token
    assert user.send("POST", path, body, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    assert user.send("POST", path, body, headers={"X-CSRF-Token": other.csrf}).status_code == 403
    assert (
        user.send(
            "POST", path, body, headers={"X-CSRF-Token": "é".encode("latin-1") * 64}
        ).status_code
        == 403
    )
    evil = {"Origin": "http://evil.example"}
    assert user.send("POST", path, body, headers=evil).status_code == 403
    # sign-up and log-in need the anonymous token too (no login CSRF)
    fresh = httpx.Client(base_url=checker_server.url)
    fresh.get("/api/session")
    creds = {"username": f"nocsrf_{secrets.token_hex(3)}", "password": "password-123"}
    assert fresh.post("/api/signup", json=creds).status_code == 403
    assert fresh.post("/login", data={**creds, "csrf_token": "1" * 64}).status_code == 403
    # nothing above was stored; the right token works
    assert user.get("/api/session").json()["user"]["checks"] == 0
    assert user.send("POST", path, body).status_code == 201


def test_cookies_are_httponly_and_samesite(checker_server: LiveServer) -> None:
    client = httpx.Client(base_url=checker_server.url)
    r = client.get("/api/session")
    anon = r.headers["set-cookie"].lower()
    assert "httponly" in anon and "samesite=strict" in anon
    token = r.json()["csrf_token"]
    name = f"ck_{secrets.token_hex(3)}"
    r = client.post(
        "/api/signup",
        json={"username": name, "password": "password-123"},
        headers={"X-CSRF-Token": token},
    )
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith("skydask_session=")
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie


def test_other_users_reports_are_refused(checker_server: LiveServer) -> None:
    owner = _user(checker_server, "own")
    intruder = _user(checker_server, "int")
    image = owner.next_image()
    rid = owner.check(image["id"], [{"x": 4, "y": 4, "problem": "ghost"}]).json()["reports"][0][
        "id"
    ]
    assert intruder.get(f"/api/reports/{rid}").status_code == 403
    assert intruder.send("PATCH", f"/api/reports/{rid}", {"label": "mine now"}).status_code == 403
    assert intruder.send("DELETE", f"/api/reports/{rid}").status_code == 403
    assert rid not in [r["id"] for r in intruder.get("/api/reports").json()]
    mine = owner.get(f"/api/reports/{rid}").json()
    assert mine["label"] is None and mine["problem"] == "ghost"


def test_injection_in_labels_is_stored_as_text(checker_server: LiveServer) -> None:
    user = _user(checker_server, "inj")
    image = user.next_image()
    marks = [{"x": 3 + i, "y": 3, "problem": "other", "label": t} for i, t in enumerate(INJECTIONS)]
    r = user.check(image["id"], marks)
    assert r.status_code == 201, r.text
    ids = [rep["id"] for rep in r.json()["reports"]]
    for rid, text in zip(ids, INJECTIONS, strict=True):
        assert user.get(f"/api/reports/{rid}").json()["label"] == text
        patched = user.send("PATCH", f"/api/reports/{rid}", {"label": text + "!"})
        assert patched.json()["label"] == text + "!"
    # the tables are all there and still count
    assert user.get("/api/stats").json()["reports"] >= len(INJECTIONS)
    shown = {g["label"] for g in user.get("/api/gallery?limit=200").json()}
    assert {t + "!" for t in INJECTIONS} <= shown


def test_injection_in_parameters_is_refused_or_harmless(checker_server: LiveServer) -> None:
    user = _user(checker_server, "par")
    for text in INJECTIONS[:3]:
        for path in (
            f"/api/stats?release={text}",
            f"/api/gallery?problem={text}",
            f"/stats?release={text}",
            f"/api/stats/heatmap.png?kind={text}",
        ):
            assert user.get(path).status_code == 422, path
        r = user.client.post(
            "/api/login",
            json={"username": text, "password": text + "12345"},
            headers={"X-CSRF-Token": user.csrf},
        )
        assert r.status_code == 422
    assert user.get("/api/stats").status_code == 200
    assert user.get("/api/session").json()["user"]["username"] == user.username


def test_error_pages_escape_what_they_echo(checker_server: LiveServer) -> None:
    user = _user(checker_server, "esc")
    r = user.send("PATCH", "/api/reports/1", {"problem": "<script>x</script>"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/json")
    page = user.client.get("/<script>alert(1)</script>", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "<script>alert" not in page.text


@pytest.fixture(scope="module")
def traveller(checker_server: LiveServer) -> ApiUser:
    return _user(checker_server, "pt")


@pytest.mark.parametrize(
    "path",
    [
        "/api/images/..%2F..%2F..%2Fetc%2Fpasswd/image.png",
        "/api/images/%2e%2e/image.png",
        "/api/images/1%2F..%2F..%2Fpyproject.toml/image.png",
        "/api/images/-1/image.png",
        "/api/images/0/mask.png",
        "/api/images/99999/image.png",
        "/static/../pyproject.toml",
        "/static/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
        "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/static//etc/passwd",
    ],
)
def test_path_traversal_is_refused(traveller: ApiUser, path: str) -> None:
    r = traveller.client.get(path)
    assert r.status_code in (404, 422), (path, r.status_code)
    assert b"root:" not in r.content and b"[project]" not in r.content


def test_images_of_another_release_are_not_served(
    checker_server: LiveServer, checker_db_url: str
) -> None:
    from skydask.checker.models import Image

    db = Database(checker_db_url)
    with db.write() as s:
        s.add(
            Image(
                release="elsewhere",
                key="../../../etc/passwd",
                file="/etc/passwd",
                hdu=0,
                visit="1",
                detector="",
                band="r",
                mjd=None,
                nx=10,
                ny=10,
                wcs_header="",
                n_checks=0,
            )
        )
    with db.read() as s:
        from sqlalchemy import select

        iid = s.scalar(select(Image.id).where(Image.release == "elsewhere"))
    db.dispose()
    user = _user(checker_server, "rel")
    for suffix in ("", "/image.png", "/mask.png"):
        assert user.get(f"/api/images/{iid}{suffix}").status_code == 404
    assert user.check(iid).status_code == 404


def test_store_keys_are_not_paths(checker_store: ImageStore) -> None:
    for key in ("../../etc/passwd", "/etc/passwd", checker_store.keys()[0] + "/.."):
        with pytest.raises(KeyError):
            checker_store.png(key, "image")
