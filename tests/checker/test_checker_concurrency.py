"""Users checking at once, on SQLite and PostgreSQL: never the same image handed to two of them
in a row, no report lost when they submit together, a double submit stored once."""

from __future__ import annotations

import secrets
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))  # the helpers beside us (not on the pythonpath)
from checker_testdata import ApiUser, LiveServer

pytest_plugins = ["checker_fixtures"]


def _together(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run the jobs in threads released by one barrier; return their results in order."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = jobs[i]()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def test_two_checkers_never_share_an_image_and_lose_nothing(checker_server: LiveServer) -> None:
    a, b = (ApiUser(checker_server.url, f"pair_{secrets.token_hex(3)}").signup() for _ in range(2))
    before = a.get("/api/stats").json()
    marks = [{"x": 10, "y": 10, "problem": "ghost"}, {"x": 30, "y": 40, "problem": "satellite"}]
    rounds = 0
    while True:
        shown = _together([a.next_image, b.next_image])
        if shown[0] is None or shown[1] is None:
            break
        assert shown[0]["id"] != shown[1]["id"], f"round {rounds}: both were shown {shown[0]}"
        results = _together(
            [
                lambda u=u, im=im: u.check(im["id"], marks)
                for u, im in zip((a, b), shown, strict=True)
            ]
        )
        assert [r.status_code for r in results] == [201, 201]
        rounds += 1
    assert rounds >= 2
    after = a.get("/api/stats").json()
    assert after["checks"] - before["checks"] == 2 * rounds
    assert after["reports"] - before["reports"] == 4 * rounds
    for user in (a, b):
        me = user.get("/api/session").json()["user"]
        assert me["checks"] == rounds and me["reports"] == 2 * rounds


def test_many_submits_at_once_are_all_stored(checker_server: LiveServer) -> None:
    users = [
        ApiUser(checker_server.url, f"crowd{i}_{secrets.token_hex(2)}").signup() for i in range(6)
    ]
    images = [u.next_image() for u in users]
    before = users[0].get("/api/stats").json()
    # everybody submits at the same moment, some on the same image (it is shared when every
    # free image is leased): each check and each of its three reports must be there
    marks = [{"x": float(i), "y": float(i), "problem": "cosmic_ray"} for i in (3, 5, 7)]
    results = _together(
        [lambda u=u, im=im: u.check(im["id"], marks) for u, im in zip(users, images, strict=True)]
    )
    assert [r.status_code for r in results] == [201] * len(users)
    after = users[0].get("/api/stats").json()
    assert after["checks"] - before["checks"] == len(users)
    assert after["reports"] - before["reports"] == 3 * len(users)
    checked = {im["id"]: 0 for im in images}
    for im in images:
        checked[im["id"]] += 1
    for iid, n in checked.items():
        info = users[0].get(f"/api/images/{iid}").json()
        assert info["n_checks"] >= n


def test_a_double_submit_is_stored_once(checker_server: LiveServer) -> None:
    user = ApiUser(checker_server.url, f"twice_{secrets.token_hex(3)}").signup()
    image = user.next_image()
    body = [{"x": 1.0, "y": 2.0, "problem": "bright_defect"}]
    results = _together([lambda: user.check(image["id"], body) for _ in range(4)])
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409]
    me = user.get("/api/session").json()["user"]
    assert me["checks"] == 1 and me["reports"] == 1
