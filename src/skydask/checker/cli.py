"""``skydask checker serve | export | demo``: the command-line side of the exposure checker.

:func:`add_checker_commands` adds the ``checker`` subcommand to the ``skydask`` parser; each
sub-subcommand sets ``func`` to a function of the parsed arguments that returns the exit code,
as the other subcommands of :mod:`skydask.cli` do.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import tempfile
from pathlib import Path
from typing import Any

from skydask.errors import SpecError

__all__ = ["add_checker_commands", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _run(app: Any, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def _cmd_serve(args: argparse.Namespace) -> int:
    from skydask.checker.app import create_app
    from skydask.checker.config import CheckerConfig

    config = CheckerConfig(
        images=args.images,
        db_url=args.db,
        release=args.release,
        admins=tuple(args.admin or ()),
        lease_seconds=args.lease_seconds,
        secure_cookies=args.secure_cookies,
        cache_mb=args.cache_mb,
    )
    app = create_app(config)
    state = app.state.checker
    print(f"images:   {len(state.store)} of release {state.release}")
    print(f"database: {state.db!r}")
    print(f"checker:  http://{args.host}:{args.port}/   (API description: /openapi.json)")
    _run(app, args.host, args.port)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from skydask.checker.db import Database, migrate
    from skydask.checker.export import export_reports

    db = Database(args.db)
    migrate(db)
    path = export_reports(db, args.out, release=args.release)
    import pyarrow.parquet as pq

    print(f"wrote {pq.ParquetFile(path).metadata.num_rows} reports to {path}")
    if args.mask_out:
        if not args.images:
            raise SpecError("skydask checker export: --mask-out needs --images")
        from skydask.checker.masklayer import flag_mask
        from skydask.images import open_stack

        stack = open_stack(args.images)
        layer = flag_mask(stack, path).astype("int32").compute()
        layer.attrs = {k: str(v) for k, v in layer.attrs.items()}
        layer.to_dataset(name="checker_mask").to_netcdf(args.mask_out, engine="scipy")
        print(f"wrote the mask layer ({layer.sizes['visit']} visits) to {args.mask_out}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from skydask.checker.app import create_app
    from skydask.checker.auth import create_user
    from skydask.checker.config import CheckerConfig
    from skydask.checker.db import Database, migrate
    from skydask.synth.images import generate_image_stack

    with tempfile.TemporaryDirectory(prefix="skydask-checker-demo-") as tmp:
        root = Path(args.dir) if args.dir else Path(tmp)
        print(f"making a synthetic image stack of {args.nvisits} visits in {root / 'stack'} ...")
        info = generate_image_stack(
            root / "stack",
            nvisits=args.nvisits,
            size=args.size,
            seed=args.seed,
            bands="ugrizy"[: min(6, args.nvisits)] or "r",
            n_cosmic_rays=12,
            n_bad_columns=3,
        )
        db = Database(root / "checker.db")
        migrate(db)
        password = secrets.token_urlsafe(9)
        try:
            create_user(db, "admin", password, admin=True)
            login = f"log in as admin / {password}, or sign up"
        except ValueError:
            login = "log in with your account, or sign up"
        app = create_app(CheckerConfig(images=os.fspath(info.path), release="demo"), db=db)
        print(f"database: {db!r} (temporary: deleted when you stop the demo)")
        print(f"checker:  http://{args.host}:{args.port}/   ({login})")
        print("stop with Ctrl-C")
        _run(app, args.host, args.port)
    return 0


def add_checker_commands(subparsers: Any) -> None:
    """Add ``checker serve | export | demo`` to the ``skydask`` command's subparsers."""
    checker = subparsers.add_parser(
        "checker", help="the exposure checker: mark image artefacts in a web page"
    )
    sub = checker.add_subparsers(dest="checker_command", required=True)

    serve = sub.add_parser("serve", help="serve the checker on a set of images")
    serve.add_argument(
        "--images",
        required=True,
        help="images: a glob, a directory (e.g. a synthetic stack) or a file",
    )
    serve.add_argument(
        "--db",
        default=None,
        help="database URL: sqlite:///FILE (default: skydask-checker.db beside "
        "the images) or postgresql://user:password@host:port/db",
    )
    serve.add_argument(
        "--release", default=None, help="data release name (default: the images' directory name)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--admin",
        action="append",
        metavar="USER",
        help="give this user the admin role (repeatable)",
    )
    serve.add_argument(
        "--lease-seconds",
        type=float,
        default=600.0,
        help="how long an image shown to one user is kept from others",
    )
    serve.add_argument(
        "--secure-cookies", action="store_true", help="mark cookies Secure (behind HTTPS)"
    )
    serve.add_argument("--cache-mb", type=int, default=256, help="rendered-PNG cache size")
    serve.set_defaults(func=_cmd_serve)

    export = sub.add_parser("export", help="write every report as a Parquet catalogue")
    export.add_argument("--db", required=True, help="database URL or SQLite file")
    export.add_argument("--out", required=True, help="Parquet file to write")
    export.add_argument("--release", default=None, help="only this release (default: all)")
    export.add_argument("--images", default=None, help="images of the mask layer (--mask-out)")
    export.add_argument(
        "--mask-out", default=None, help="also write the mask layer over --images as netCDF"
    )
    export.set_defaults(func=_cmd_export)

    demo = sub.add_parser("demo", help="serve the checker on a synthetic stack, temporary db")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--nvisits", type=int, default=12)
    demo.add_argument("--size", type=int, default=512, help="image side in pixels")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--dir",
        default=None,
        help="keep the stack and database here (default: a temporary directory)",
    )
    demo.set_defaults(func=_cmd_demo)
