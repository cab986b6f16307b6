"""Property-based fuzzing of the API from its own OpenAPI description (schemathesis): valid and
invalid requests to every operation, logged in as an admin with the CSRF token, on SQLite and
PostgreSQL, must never get a server error (5xx). Operations that end the session (log-out) are
left out; they are tested in test_checker_api."""

from __future__ import annotations

import sys
from pathlib import Path

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

sys.path.insert(0, str(Path(__file__).parent))  # the helpers beside us (not on the pythonpath)
from checker_testdata import LiveServer

pytest_plugins = ["checker_fixtures"]

EXAMPLES = 6  # per operation and generation mode: ~20 operations x 2 modes


def _admin_session(checker_server: LiveServer) -> tuple[requests.Session, str]:
    session = requests.Session()
    token = session.get(checker_server.url + "/api/session", timeout=30).json()["csrf_token"]
    creds = {"username": "root_admin", "password": "fuzz-password-1"}
    r = session.post(
        checker_server.url + "/api/signup", json=creds, headers={"X-CSRF-Token": token}
    )
    if r.status_code == 409:
        r = session.post(
            checker_server.url + "/api/login", json=creds, headers={"X-CSRF-Token": token}
        )
    assert r.status_code in (200, 201), r.text
    return session, r.json()["csrf_token"]


def test_api_survives_fuzzing(checker_server: LiveServer) -> None:
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(checker_server.url + "/openapi.json")
    session, token = _admin_session(checker_server)
    # give the fuzzer an image and a report to hit besides the random ids
    image = session.get(checker_server.url + "/api/next", timeout=30).json()["image"]
    session.post(
        checker_server.url + f"/api/images/{image['id']}/checks",
        headers={"X-CSRF-Token": token},
        json={"verdict": "problem", "marks": [{"x": 1, "y": 1, "problem": "ghost"}]},
    )
    anon = requests.Session()
    anon_token = anon.get(checker_server.url + "/api/session", timeout=30).json()["csrf_token"]
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 18
    failures: list[str] = []
    for operation in operations:
        if operation.path == "/api/logout":
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            if "image_id" in operation.path or "report_id" in operation.path:
                known = {"image_id": image["id"], "report_id": 1}
                names = [n for n in known if "{" + n + "}" in operation.path]
                fixed = operation.as_strategy(
                    generation_mode=mode, path_parameters={n: known[n] for n in names}
                )
                strategy = st.one_of(strategy, fixed)

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: schemathesis.Case) -> None:
                if case.path in ("/api/signup", "/api/login"):
                    # a successful log-in would replace the admin's session: use another one
                    anon.cookies.pop("skydask_session", None)
                    use, csrf = anon, anon_token
                else:
                    use, csrf = session, token
                response = case.call(
                    base_url=checker_server.url,
                    session=use,
                    headers={"X-CSRF-Token": csrf},
                    timeout=30,
                )
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} "
                        f"{case.query} {case.body!r} -> {response.status_code}"
                    )

            try:
                run()
            except Unsatisfiable:
                # nothing invalid can be made for an operation without parameters or body
                assert mode == GenerationMode.NEGATIVE, operation.path
    assert failures == []
    # the session survived the fuzzing: the account still works
    me = session.get(checker_server.url + "/api/session", timeout=30).json()["user"]
    assert me is not None and me["role"] == "admin"
