"""``skydask checker demo`` and ``serve`` as a user runs them: a process that serves on a port
(the default database beside the images), stopped with Ctrl-C."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helpers beside us (not on the pythonpath)

from skydask.checker.cli import free_port
from skydask.synth.images import ImageStackInfo

pytest_plugins = ["checker_fixtures"]

# until skydask.cli wires add_checker_commands, run the subcommands through a parser of our own
_RUNNER = (
    "import argparse, sys\n"
    "from skydask.checker.cli import add_checker_commands\n"
    "p = argparse.ArgumentParser(prog='skydask')\n"
    "add_checker_commands(p.add_subparsers(dest='command', required=True))\n"
    "a = p.parse_args(sys.argv[1:])\n"
    "sys.exit(a.func(a))\n"
)


def _command() -> list[str]:
    from skydask import cli

    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if "checker" in sub.choices:
        return [sys.executable, "-m", "skydask.cli"]
    return [sys.executable, "-c", _RUNNER]


def _start(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [*_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def _wait_healthy(proc: subprocess.Popen[str], url: str, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            r = httpx.get(url + "/api/health", timeout=2)
            if r.status_code == 200:
                health: dict = r.json()
                return health
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"no answer from {url} within {timeout} s")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


@pytest.mark.slow
def test_demo_serves_a_synthetic_stack() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start(["checker", "demo", "--port", str(port), "--nvisits", "3", "--size", "96"])
    try:
        health = _wait_healthy(proc, url)
        assert health["images"] == 3 and health["release"] == "demo"
    finally:
        out = _stop(proc)
    password = re.search(r"log in as admin / (\S+),", out)
    assert password, out
    tmp = re.search(r"sqlite:///(\S+)/checker\.db", out)
    assert tmp and not Path(tmp.group(1)).exists(), "the demo's temporary directory is left"


@pytest.mark.slow
def test_serve_keeps_its_database_beside_the_images(
    checker_stack_info: ImageStackInfo, tmp_path: Path
) -> None:
    images = tmp_path / "run2.2i"
    shutil.copytree(checker_stack_info.path, images)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start(
        [
            "checker",
            "serve",
            "--images",
            str(images / "visit_*.fits"),
            "--port",
            str(port),
            "--admin",
            "boss",
        ]
    )
    try:
        health = _wait_healthy(proc, url)
        assert health["release"] == "run2.2i" and health["images"] == 6
        client = httpx.Client(base_url=url)
        token = client.get("/api/session").json()["csrf_token"]
        client.post(
            "/api/signup",
            json={"username": "someone", "password": "password-123"},
            headers={"X-CSRF-Token": token},
        )
        token = client.get("/api/session").json()["csrf_token"]
        client.post("/api/logout", headers={"X-CSRF-Token": token})
        token = client.get("/api/session").json()["csrf_token"]
        r = client.post(
            "/api/signup",
            json={"username": "boss", "password": "password-123"},
            headers={"X-CSRF-Token": token},
        )
        assert r.json()["user"]["role"] == "admin"  # named with --admin, though not the first
    finally:
        _stop(proc)
    assert (images / "skydask-checker.db").exists()
