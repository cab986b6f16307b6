"""Exposure-checker benchmark: "next image" and "submit report" under 20 users, and the time to
render one 4k x 4k image to the browser.

Run (numbers go to benchmarks/README.md by hand, with this command line):

    bash scripts/postgres-up.sh
    .venv/bin/python benchmarks/bench_checker.py --data bench-data/checker

Setup: the checker is served by uvicorn (one process, as ``skydask checker serve`` runs it) in
a subprocess on 127.0.0.1; the load comes from this process: ``--users`` simulated users
(asyncio, one httpx client and cookie jar each, all signed up before timing), on loopback
only, each phase bounded by ``--seconds``. Both share the machine's 2 cores, so the numbers
are a floor for a server with a machine of its own.

Phases, per database (SQLite file in WAL mode; PostgreSQL of ``scripts/postgres-up.sh``, a
fresh database each run):

* ``next``: every user asks for the next image again and again (each call is a write
  transaction: the lease is renewed);
* ``check``: every user loops next image -> submit (alternately "fine" and a check with two
  marks), the work of a real checker; requests per second of each kind and latency
  percentiles.

Images: ``--nimages`` synthetic 64 x 64 visits (rendering is not measured here, and every user
must have unchecked images left for the whole phase). Render: one synthetic 4096 x 4096 visit;
(a) in process, :meth:`ImageStore.png` cold, split into read, stretch and PNG encoding; (b)
over HTTP, the first (cold: read, stretch, encode, send) and a cached asinh request; (c) in
Debian's chromium (when installed), from setting the viewer's image to the decoded picture
(``load``, ``decode()`` and one animation frame), for the zscale render the server has not
made yet (cold) and again (cached; the browser's own cache is bypassed by the URL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from skydask.checker.cli import free_port
from skydask.checker.render import ImageStore, encode_png, stretch_to_uint8
from skydask.synth.images import generate_image_stack

RUNNER = (
    "import argparse, sys\n"
    "from skydask.checker.cli import add_checker_commands\n"
    "p = argparse.ArgumentParser(prog='skydask')\n"
    "add_checker_commands(p.add_subparsers(dest='command', required=True))\n"
    "a = p.parse_args(sys.argv[1:])\n"
    "sys.exit(a.func(a))\n"
)
PG_DEFAULT = "postgresql://skydask:skydask@127.0.0.1:55432/skydask_test"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def serve(images: Path, db: str, release: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUNNER,
            "checker",
            "serve",
            "--images",
            str(images),
            "--db",
            db,
            "--release",
            release,
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the checker did not start on {url}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


class User:
    def __init__(self, url: str, name: str) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=60)
        self.name = name
        self.csrf = ""

    async def signup(self) -> None:
        self.csrf = (await self.client.get("/api/session")).json()["csrf_token"]
        r = await self.client.post(
            "/api/signup",
            headers={"X-CSRF-Token": self.csrf},
            json={"username": self.name, "password": "bench-password"},
        )
        r.raise_for_status()
        self.csrf = r.json()["csrf_token"]


def _summary(latencies: list[float], seconds: float) -> dict[str, float]:
    if not latencies:
        return {"requests": 0, "per_second": 0.0}
    q = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(1e3 * q[49], 1),
        "p95_ms": round(1e3 * q[94], 1),
        "max_ms": round(1e3 * max(latencies), 1),
    }


async def load(url: str, users: int, seconds: float) -> dict[str, Any]:
    crowd = [User(url, f"bench_{i}_{secrets.token_hex(3)}") for i in range(users)]
    await asyncio.gather(*(u.signup() for u in crowd))
    lat: dict[str, list[float]] = {"next_only": [], "next": [], "submit": []}
    errors: dict[str, int] = {}

    async def timed(kind: str, coro: Any) -> httpx.Response:
        t0 = time.perf_counter()
        r = await coro
        lat[kind].append(time.perf_counter() - t0)
        if r.status_code >= 400:
            errors[f"{kind} {r.status_code}"] = errors.get(f"{kind} {r.status_code}", 0) + 1
        return r

    async def next_only(u: User, until: float) -> None:
        while time.perf_counter() < until:
            await timed("next_only", u.client.get("/api/next"))

    async def checker(u: User, until: float) -> None:
        k = 0
        while time.perf_counter() < until:
            image = (await timed("next", u.client.get("/api/next"))).json()["image"]
            if image is None:
                errors["ran out of images"] = errors.get("ran out of images", 0) + 1
                return
            k += 1
            marks = (
                []
                if k % 2
                else [
                    {"x": 10.0, "y": 20.0, "problem": "satellite"},
                    {"x": 30.0, "y": 40.0, "problem": "cosmic_ray"},
                ]
            )
            body = {"verdict": "problem" if marks else "fine", "marks": marks}
            await timed(
                "submit",
                u.client.post(
                    f"/api/images/{image['id']}/checks", json=body, headers={"X-CSRF-Token": u.csrf}
                ),
            )

    t0 = time.perf_counter()
    await asyncio.gather(*(next_only(u, t0 + seconds) for u in crowd))
    next_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    await asyncio.gather(*(checker(u, t0 + seconds) for u in crowd))
    check_seconds = time.perf_counter() - t0
    stats = (await crowd[0].client.get("/api/stats")).json()
    for u in crowd:
        await u.client.aclose()
    return {
        "users": users,
        "next (next only)": _summary(lat["next_only"], next_seconds),
        "next (in the check loop)": _summary(lat["next"], check_seconds),
        "submit (in the check loop)": _summary(lat["submit"], check_seconds),
        "errors": errors,
        "stored checks": stats["checks"],
        "submits answered 201": len(lat["submit"])
        - sum(v for k, v in errors.items() if k.startswith("submit")),
    }


def fresh_pg(base: str) -> tuple[str, str] | None:
    try:
        import psycopg

        with psycopg.connect(base, autocommit=True, connect_timeout=3) as conn:
            name = f"skydask_bench_{secrets.token_hex(4)}"
            conn.execute(f"CREATE DATABASE {name}")
        return base.rsplit("/", 1)[0] + "/" + name, name
    except Exception as exc:  # a missing server is reported, not fatal
        print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
        return None


def drop_pg(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def render_timings(stack: Path, use_browser: bool) -> dict[str, Any]:
    store = ImageStore.open(stack)
    key = store.keys()[0]
    t0 = time.perf_counter()
    pixels = store.read(key, ("image",))["image"]
    t1 = time.perf_counter()
    grey = stretch_to_uint8(pixels, "asinh")[::-1]
    t2 = time.perf_counter()
    png = encode_png(grey)
    t3 = time.perf_counter()
    out: dict[str, Any] = {
        "image": f"{pixels.shape[1]} x {pixels.shape[0]}",
        "png_mb": round(len(png) / 2**20, 1),
        "in_process_s": {
            "read": round(t1 - t0, 3),
            "stretch": round(t2 - t1, 3),
            "encode": round(t3 - t2, 3),
            "total": round(t3 - t0, 3),
        },
    }
    proc, url = serve(
        stack, "sqlite:///" + str(stack.parent / f"r{secrets.token_hex(3)}.db"), "bench4k"
    )
    try:
        client = httpx.Client(base_url=url, timeout=120)
        csrf = client.get("/api/session").json()["csrf_token"]
        client.post(
            "/api/signup",
            json={"username": "render", "password": "bench-password"},
            headers={"X-CSRF-Token": csrf},
        ).raise_for_status()
        image = client.get("/api/next").json()["image"]
        http = {}
        for label in ("cold", "cached"):
            t0 = time.perf_counter()
            r = client.get(image["image_url"] + "?stretch=asinh")
            r.raise_for_status()
            http[label] = round(time.perf_counter() - t0, 3)
        out["http_s (asinh)"] = http
        if use_browser and Path("/usr/bin/chromium").exists():
            out["browser_s (zscale)"] = browser_timing(url, client.cookies)
    finally:
        stop(proc)
    return out


def browser_timing(url: str, cookies: httpx.Cookies) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        context.add_cookies(
            [{"name": c.name, "value": c.value or "", "url": url} for c in cookies.jar]
        )
        page = context.new_page()
        page.goto(url + "/")
        page.wait_for_function("() => document.body.dataset.loaded")
        # time from asking for the image to the decoded picture on screen; "cold" is the
        # zscale render, which the server has not made yet (the page loaded the asinh one)
        for label in ("cold", "cached"):
            ms = page.evaluate(
                """() => new Promise((done) => {
                    const img = document.getElementById('image');
                    const base = img.src.split('?')[0];
                    const t0 = performance.now();
                    img.addEventListener('load', () => img.decode().then(
                        () => requestAnimationFrame(() => done(performance.now() - t0))),
                        { once: true });
                    img.src = base + '?stretch=zscale&t=' + Math.random();
                })"""
            )
            out[label] = round(ms / 1e3, 3)
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="bench-data/checker")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--nimages", type=int, default=600)
    parser.add_argument(
        "--postgres", default=os.environ.get("SKYDASK_TEST_POSTGRES_URL", PG_DEFAULT)
    )
    parser.add_argument("--no-render", action="store_true")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    data = Path(args.data)
    small = generate_image_stack(
        data / f"small{args.nimages}",
        nvisits=args.nimages,
        size=64,
        seed=3,
        bands="r",
        stars_per_arcmin2=10.0,
        galaxies_per_arcmin2=0.0,
    )
    results: dict[str, Any] = {}
    backends = {"sqlite": ("sqlite:///" + str(data / f"bench-{secrets.token_hex(3)}.db"), None)}
    pg = fresh_pg(args.postgres.replace("postgresql+psycopg", "postgresql"))
    if pg is not None:
        backends["postgresql"] = pg
    for name, (url, pg_name) in backends.items():
        proc, server = serve(small.path, url, "bench")
        try:
            results[name] = asyncio.run(load(server, args.users, args.seconds))
        finally:
            stop(proc)
            if pg_name is not None:
                drop_pg(args.postgres.replace("postgresql+psycopg", "postgresql"), pg_name)
            elif url.startswith("sqlite:///"):
                for suffix in ("", "-wal", "-shm"):
                    Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    if not args.no_render:
        big = generate_image_stack(
            data / "big4096",
            nvisits=1,
            size=4096,
            seed=4,
            bands="r",
            stars_per_arcmin2=20.0,
            galaxies_per_arcmin2=20.0,
        )
        results["render 4k"] = render_timings(big.path, not args.no_browser)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
