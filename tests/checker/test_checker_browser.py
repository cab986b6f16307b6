"""The checker in a real headless browser (Debian's chromium driven by Playwright), on SQLite
and on PostgreSQL: sign up, log in, see an image, mark two problems of different classes at
clicked positions, mark one image fine, see the leaderboard and counts change; a label with a
script shown as text; two browsers checking at once. Screenshots go to the test's tmp_path."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))  # the helpers beside us (not on the pythonpath)
from checker_testdata import LiveServer, need_browser, open_browser

from skydask.checker import Database
from skydask.checker.models import Report, User

pytest_plugins = ["checker_fixtures"]
pytestmark = pytest.mark.browser

PASSWORD = "browser-pass-1"


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def _wait_image(page: Any, previous: str | None = None) -> str:
    """Wait until the viewer shows a loaded image other than ``previous``; return its id.

    (Functions, not expressions: Playwright evaluates an expression string with ``eval``,
    which the checker's Content-Security-Policy forbids.)"""
    page.wait_for_function(
        "prev => document.body.dataset.loaded && document.body.dataset.loaded !== prev "
        "&& document.getElementById('image').complete",
        arg=previous or "",
        timeout=30_000,
    )
    image_id: str = page.evaluate("document.body.dataset.imageId")
    return image_id


def _signup(page: Any, url: str, name: str) -> None:
    page.goto(url + "/signup")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("#signup-submit")
    page.wait_for_url(url + "/")


def _click_pixel(page: Any, x: float, y: float) -> None:
    """Click image pixel (x, y) (astropy 0-based, y up) wherever the image is on screen."""
    nx, ny = page.evaluate(
        "[document.getElementById('image').naturalWidth, "
        "document.getElementById('image').naturalHeight]"
    )
    box = page.locator("#image").bounding_box()
    page.mouse.click(
        box["x"] + (x + 0.5) / nx * box["width"], box["y"] + (ny - y - 0.5) / ny * box["height"]
    )


def _stats(page: Any, url: str) -> dict[str, Any]:
    page.goto(url + "/stats")
    board = {
        row.locator(".user").text_content(): int(row.locator(".checks").text_content())
        for row in page.locator("#leaderboard tbody tr").all()
        if row.locator(".user").count()
    }
    per_class = {
        row.get_attribute("data-code"): int(row.locator(".count").text_content())
        for row in page.locator("#per-class tbody tr[data-code]").all()
    }
    return {
        "checks": int(page.text_content("#n-checks")),
        "reports": int(page.text_content("#n-reports")),
        "board": board,
        "per_class": per_class,
    }


def test_check_images_in_the_browser(
    checker_server: LiveServer, checker_db_url: str, playwright: Any, tmp_path: Path
) -> None:
    name = f"web_{secrets.token_hex(3)}"
    context = open_browser(playwright, tmp_path / "profile")
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    before = _stats(page, checker_server.url)
    assert name not in before["board"]

    _signup(page, checker_server.url, name)
    page.click("#logout")
    page.wait_for_url(checker_server.url + "/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(checker_server.url + "/")
    assert page.text_content("#who") == name

    # see an image: the PNG of the image the API assigned, with band, visit and detector shown
    first = _wait_image(page)
    assert page.evaluate("document.getElementById('image').naturalWidth") == 192
    assert page.text_content("#image-band") in ("g", "r", "i")
    assert page.text_content("#image-key").startswith("visit_")
    page.select_option("#stretch", "zscale")
    page.wait_for_function("() => document.getElementById('image').src.includes('zscale')")
    page.check("#mask-toggle")
    page.click("#zoom-in")
    page.click("#zoom-reset")

    # two problems of different classes at clicked positions: one by button, one by key
    page.click("#cls-satellite")
    _click_pixel(page, 40.0, 120.0)
    page.keyboard.press("r")
    _click_pixel(page, 150.0, 30.0)
    assert page.locator("#marks li").count() == 2
    page.screenshot(path=str(tmp_path / "1-marked.png"))
    page.click("#submit")
    second = _wait_image(page, first)
    assert second != first
    assert page.text_content("#my-checks") == "1" and page.text_content("#my-reports") == "2"

    # the next image is fine: the "n" key
    page.screenshot(path=str(tmp_path / "2-next.png"))
    page.keyboard.press("n")
    third = _wait_image(page, second)
    assert third not in (first, second)
    assert page.text_content("#my-checks") == "2"

    after = _stats(page, checker_server.url)
    page.screenshot(path=str(tmp_path / "3-stats.png"), full_page=True)
    assert after["board"][name] == 2
    assert after["checks"] == before["checks"] + 2
    assert after["reports"] == before["reports"] + 2
    for code in ("satellite", "cosmic_ray"):
        assert after["per_class"].get(code, 0) == before["per_class"].get(code, 0) + 1

    # the clicked positions are the stored pixels (to a fraction of a pixel)
    db = Database(checker_db_url)
    with db.read() as s:
        rows = s.execute(
            select(Report.problem, Report.x, Report.y, Report.image_id)
            .join(User, User.id == Report.user_id)
            .where(User.username == name)
            .order_by(Report.id)
        ).all()
    db.dispose()
    assert [r[0] for r in rows] == ["satellite", "cosmic_ray"]
    assert [str(r[3]) for r in rows] == [first, first]
    for (_, x, y, _), (tx, ty) in zip(rows, [(40.0, 120.0), (150.0, 30.0)], strict=True):
        assert abs(x - tx) < 0.5 and abs(y - ty) < 0.5, (x, y, tx, ty)
    assert dialogs == []
    context.close()
    for shot in ("1-marked.png", "2-next.png", "3-stats.png"):
        assert (tmp_path / shot).stat().st_size > 10_000


def test_script_in_a_label_is_shown_as_text(
    checker_server: LiveServer, playwright: Any, tmp_path: Path
) -> None:
    evil = '<img src=x onerror="alert(document.cookie)"><script>alert(2)</script>'
    context = open_browser(playwright, tmp_path / "profile")
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    _signup(page, checker_server.url, f"xss_{secrets.token_hex(3)}")
    _wait_image(page)
    page.fill("#label", evil)
    page.click("#cls-other")
    _click_pixel(page, 20.0, 20.0)
    assert evil in page.text_content("#marks")
    page.click("#submit")
    page.wait_for_function("() => document.getElementById('my-reports').textContent === '1'")
    for path, cell in (("/mine", "#my-table tbody td"), ("/gallery", "#gallery figcaption")):
        page.goto(checker_server.url + path)
        page.wait_for_selector(cell)
        texts = page.locator(cell).all_text_contents()
        assert any(evil in t for t in texts), (path, texts)
        assert page.locator("img[src='x']").count() == 0
    page.screenshot(path=str(tmp_path / "gallery.png"), full_page=True)
    assert dialogs == []
    context.close()


def test_two_browsers_at_once(checker_server: LiveServer, playwright: Any, tmp_path: Path) -> None:
    pages, contexts, names = [], [], []
    for who in ("a", "b"):
        ctx = open_browser(playwright, tmp_path / f"profile-{who}")  # a browser of its own
        page = ctx.new_page()
        names.append(f"duo{who}_{secrets.token_hex(3)}")
        _signup(page, checker_server.url, names[-1])
        contexts.append(ctx)
        pages.append(page)
    api = contexts[0].request  # the counts through the API: the stats page is tested above
    before = api.get(checker_server.url + "/api/stats").json()
    shown = [_wait_image(p) for p in pages]
    rounds = 0
    while rounds < 2:
        assert shown[0] != shown[1], f"round {rounds}: both browsers show image {shown[0]}"
        # both press "No problem" at once: the clicks only start the requests
        for p in pages:
            p.evaluate("document.getElementById('fine').click()")
        shown = [_wait_image(p, prev) for p, prev in zip(pages, shown, strict=True)]
        rounds += 1
    pages[0].screenshot(path=str(tmp_path / "browser-a.png"))
    pages[1].screenshot(path=str(tmp_path / "browser-b.png"))
    after = api.get(checker_server.url + "/api/stats").json()
    assert after["checks"] == before["checks"] + 2 * rounds
    board = {row["user"]: row["checks"] for row in after["leaderboard"]}
    assert [board[n] for n in names] == [rounds, rounds]
    for ctx in contexts:
        ctx.close()
