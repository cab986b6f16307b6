"""The JSON API on a live checker_server, on SQLite and on PostgreSQL: accounts, next image, checks,
statistics, report editing, admin review, merge and export."""

from __future__ import annotations

import io
import secrets
import sys
from pathlib import Path

import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS

sys.path.insert(0, str(Path(__file__).parent))  # the helpers beside us (not on the pythonpath)
from checker_testdata import ApiUser, LiveServer

pytest_plugins = ["checker_fixtures"]


def _name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(3)}"


def test_signup_login_logout(checker_server: LiveServer) -> None:
    name = _name("ann")
    user = ApiUser(checker_server.url, name).signup()
    me = user.get("/api/session").json()["user"]
    assert me["username"] == name and me["checks"] == 0
    assert user.send("POST", "/api/logout").status_code == 204
    assert user.get("/api/session").json()["user"] is None
    assert user.get("/api/next").status_code == 401
    user.csrf = user.get("/api/session").json()["csrf_token"]
    user.password = "wrong-password"
    r = user.client.post(
        "/api/login",
        json={"username": name, "password": "wrong-password"},
        headers={"X-CSRF-Token": user.csrf},
    )
    assert r.status_code == 401
    user.password = "password-123"
    user.login()
    assert user.get("/api/session").json()["user"]["username"] == name
    again = ApiUser(checker_server.url, name)
    r = again.client.post(
        "/api/signup",
        json={"username": name, "password": "password-456"},
        headers={"X-CSRF-Token": again.csrf},
    )
    assert r.status_code == 409


def test_next_prefers_fewest_checks_and_never_repeats(checker_server: LiveServer) -> None:
    users = [ApiUser(checker_server.url, _name("nx")).signup() for _ in range(2)]
    n_images = checker_server.server.config.app.state.checker.store.__len__()
    seen = []
    while (image := users[0].next_image()) is not None:
        # a reload before checking shows the same image (the lease), not a new one
        assert users[0].next_image()["id"] == image["id"]
        assert image["id"] not in seen
        seen.append(image["id"])
        assert users[0].check(image["id"]).status_code == 201
    assert len(seen) == n_images
    # the other user's first image is one with the fewest checks
    first = users[1].next_image()
    assert first is not None
    counts = {
        i["id"]: i["n_checks"] for i in (users[1].get(f"/api/images/{k}").json() for k in seen)
    }
    assert counts[first["id"]] == min(counts.values())


def test_check_stores_reports_with_wcs_positions(
    checker_server: LiveServer, checker_fits_dir: Path
) -> None:
    user = ApiUser(checker_server.url, _name("wcs")).signup()
    image = user.next_image()
    assert image is not None
    marks = [
        {"x": 12.0, "y": 140.25, "problem": "satellite"},
        {"x": 100.5, "y": 7.0, "problem": "other", "label": "a ring", "false_positive": True},
    ]
    r = user.check(image["id"], marks)
    assert r.status_code == 201, r.text
    reports = r.json()["reports"]
    assert [x["problem"] for x in reports] == ["satellite", "other"]
    assert reports[1]["label"] == "a ring" and reports[1]["false_positive"] is True
    # the independent truth: astropy on the FITS file's own image header
    header = fits.getheader(checker_fits_dir / f"{image['key']}.fits", 1)
    for rep in reports:
        sky = WCS(header).pixel_to_world(rep["x"], rep["y"])
        assert abs(sky.ra.deg - rep["ra"]) < 1e-9 and abs(sky.dec.deg - rep["dec"]) < 1e-9
    assert user.check(image["id"], marks).status_code == 409


def test_bad_checks_are_refused(checker_server: LiveServer) -> None:
    user = ApiUser(checker_server.url, _name("bad")).signup()
    image = user.next_image()
    assert image is not None
    iid = image["id"]
    bad = [
        {"verdict": "fine", "marks": [{"x": 1, "y": 1, "problem": "ghost"}]},
        {"verdict": "problem", "marks": []},
        {"verdict": "problem", "marks": [{"x": 1, "y": 1, "problem": "unicorn"}]},
        {"verdict": "problem", "marks": [{"x": 1e6, "y": 1, "problem": "ghost"}]},
        {"verdict": "problem", "marks": [{"x": 1, "y": -3, "problem": "ghost"}]},
        {"verdict": "problem", "marks": [{"x": 1, "y": 1, "problem": "other"}]},
        {"verdict": "problem", "marks": [{"x": 1, "y": 1, "problem": "ghost", "label": "a\x00b"}]},
        {"verdict": "problem", "marks": [{"x": 1, "y": 1, "problem": "ghost", "extra": 1}]},
        {"verdict": "maybe"},
    ]
    for body in bad:
        r = user.send("POST", f"/api/images/{iid}/checks", body)
        assert r.status_code == 422, (body, r.status_code, r.text)
    r = user.client.post(
        f"/api/images/{iid}/checks",
        headers={"X-CSRF-Token": user.csrf, "Content-Type": "application/json"},
        content=b'{"verdict": "problem", "marks": [{"x": NaN, "y": 1, "problem": "ghost"}]}',
    )
    assert r.status_code == 422
    assert user.check(2**31 + 5).status_code == 422
    assert user.check(2**31 - 1).status_code == 404
    # nothing was stored
    assert user.get("/api/session").json()["user"]["checks"] == 0


def test_stats_and_leaderboard_change(checker_server: LiveServer) -> None:
    before = ApiUser(checker_server.url, _name("viewer")).get("/api/stats").json()
    user = ApiUser(checker_server.url, _name("lead")).signup()
    image = user.next_image()
    user.check(
        image["id"],
        [{"x": 5, "y": 5, "problem": "ghost"}, {"x": 9, "y": 9, "problem": "cosmic_ray"}],
    )
    image2 = user.next_image()
    user.check(image2["id"])
    after = user.get("/api/stats").json()
    assert after["checks"] == before["checks"] + 2
    assert after["checks_today"] == before["checks_today"] + 2
    assert after["images_checked_today"] >= before["images_checked_today"]
    assert after["images_checked_today"] <= after["images_checked"] <= after["images"]
    assert after["reports"] == before["reports"] + 2
    per = {c["code"]: c["count"] for c in after["per_class"]}
    per0 = {c["code"]: c["count"] for c in before["per_class"]}
    assert per["ghost"] == per0["ghost"] + 1 and per["cosmic_ray"] == per0["cosmic_ray"] + 1
    row = next(r for r in after["leaderboard"] if r["user"] == user.username)
    assert row["checks"] == 2 and row["reports"] == 2
    assert after == user.get(f"/api/stats?release={after['release']}").json()
    png = user.get("/api/stats/heatmap.png?kind=detector")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    html = user.get("/stats").text
    assert user.username in html


def test_edit_delete_review_merge_export(checker_server: LiveServer) -> None:
    admin = ApiUser(checker_server.url, "root_admin")
    if (
        admin.client.post(
            "/api/login",
            json={"username": "root_admin", "password": admin.password},
            headers={"X-CSRF-Token": admin.csrf},
        ).status_code
        != 200
    ):
        admin.signup()
    else:
        admin.login()
    assert admin.get("/api/session").json()["user"]["role"] == "admin"
    user = ApiUser(checker_server.url, _name("ed")).signup()
    image = user.next_image()
    r = user.check(
        image["id"],
        [
            {"x": 20, "y": 20, "problem": "ghost"},
            {"x": 22, "y": 21, "problem": "ghost"},
            {"x": 80, "y": 80, "problem": "airplane"},
        ],
    )
    ids = [rep["id"] for rep in r.json()["reports"]]
    patched = user.send(
        "PATCH", f"/api/reports/{ids[2]}", {"problem": "satellite", "label": "two dots"}
    )
    assert patched.status_code == 200
    assert patched.json()["problem"] == "satellite" and patched.json()["label"] == "two dots"
    assert user.send("PATCH", f"/api/reports/{ids[2]}", {"problem": "nope"}).status_code == 422
    # a plain user cannot reach the admin routes
    assert user.get("/api/admin/reports").status_code == 403
    assert (
        user.send("POST", "/api/admin/merge", {"into": ids[0], "others": [ids[1]]}).status_code
        == 403
    )
    assert user.get("/api/admin/export.parquet").status_code == 403
    # the admin merges the duplicate ghost and confirms the merged report
    merged = admin.send("POST", "/api/admin/merge", {"into": ids[0], "others": [ids[1]]})
    assert merged.status_code == 200 and merged.json() == {"merged": 1}
    assert (
        admin.send(
            "POST", f"/api/admin/reports/{ids[0]}/review", {"status": "confirmed"}
        ).status_code
        == 200
    )
    listing = admin.get("/api/admin/reports?status=merged").json()
    assert ids[1] in [x["id"] for x in listing["reports"]]
    # the author deletes the third report; the admin's export has the others with their states
    assert user.send("DELETE", f"/api/reports/{ids[2]}").status_code == 204
    assert user.get(f"/api/reports/{ids[2]}").status_code == 404
    export = admin.get("/api/admin/export.parquet")
    assert export.status_code == 200
    frame = pd.read_parquet(io.BytesIO(export.content)).set_index("report_id")
    assert frame.loc[ids[0], "status"] == "confirmed"
    assert frame.loc[ids[1], "status"] == "merged" and frame.loc[ids[1], "merged_into"] == ids[0]
    assert ids[2] not in frame.index
    assert frame.loc[ids[0], "user"] == user.username


def test_pages_render(checker_server: LiveServer) -> None:
    anon = ApiUser(checker_server.url, _name("page"))
    assert anon.get("/", follow_redirects=False).status_code == 303
    for path in ("/login", "/signup", "/tutorial", "/stats"):
        r = anon.get(path)
        assert r.status_code == 200 and "skydask exposure checker" in r.text, path
        assert "script-src 'self'" in r.headers["content-security-policy"]
    anon.signup()
    for path in ("/", "/gallery", "/mine"):
        assert anon.get(path).status_code == 200, path
    assert anon.get("/admin").status_code == 403
    spec = anon.get("/openapi.json").json()
    assert "/api/next" in spec["paths"] and "/api/images/{image_id}/checks" in spec["paths"]
