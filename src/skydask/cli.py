"""The ``skydask`` command: ``demo``, ``synth``, ``run``, ``report``, ``info``, ``catalogs``,
``cluster-info``, ``checker``.

Thin by design: each subcommand parses its arguments and calls the library.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from skydask.checker.cli import add_checker_commands
from skydask.errors import SkydaskError

__all__ = ["main"]


def _cmd_demo(args: argparse.Namespace) -> int:
    from skydask.catalog.open import open_catalog
    from skydask.cluster import connect
    from skydask.demo import default_catalog_dir, summarise, write_plots, write_summary
    from skydask.synth import generate_object_catalog

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    catalog_dir = Path(args.catalog) if args.catalog else default_catalog_dir(args.rows, args.seed)
    catalog_dir.parent.mkdir(parents=True, exist_ok=True)
    with connect(args.cluster) as client:
        print(
            f"cluster:   {client.scheduler.address}  "
            f"({len(client.scheduler_info()['workers'])} workers)"
        )
        print(f"dashboard: {client.dashboard_link}")
        t0 = time.perf_counter()
        reused = (catalog_dir / "synth.json").exists()
        print(
            f"catalogue: {catalog_dir} "
            f"({'cached' if reused else f'generating {args.rows:,} objects'})"
        )
        generate_object_catalog(catalog_dir, rows=args.rows, seed=args.seed, progress=True)
        if not reused:
            print(f"           generated in {time.perf_counter() - t0:.1f} s")
        catalog = open_catalog(catalog_dir)
        print(f"summarising {catalog.npartitions} partitions ...")
        summary, hist = summarise(catalog)
    print(summary.text())
    written = [*write_plots(hist, out), write_summary(summary, out)]
    for path in written:
        print(f"wrote {path}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from skydask.synth import generate_object_catalog
    from skydask.synth.shear import ShearModel

    shear = None  # the default model: power-law Gaussian field plus halos
    n_halos = 0 if args.no_halos else ShearModel().n_halos
    if args.shear_from_theory:
        from skydask.analyses.twopoint.theory import shear_model

        try:
            shear = shear_model(n_halos=n_halos)  # DC2 cosmology, LSST SRD year-10 sources
        except ImportError as exc:
            print(f"skydask: error: --shear-from-theory: {exc}", file=sys.stderr)
            return 2
    elif args.no_halos:
        shear = ShearModel(n_halos=0)
    info = generate_object_catalog(
        args.out,
        rows=args.rows,
        seed=args.seed,
        shear=shear,
        npartitions=args.npartitions,
        overwrite=args.overwrite,
        progress=True,
    )
    print(f"wrote {info.rows:,} objects in {len(info.files)} files to {info.path}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from skydask.catalog.open import open_catalog

    catalog = open_catalog(args.path, schema=args.schema)
    print(repr(catalog))
    print(f"columns ({len(catalog.schema.stored)}): {', '.join(catalog.schema.stored)}")
    return 0


def _cmd_catalogs(args: argparse.Namespace) -> int:
    from skydask.catalog.registry import available_catalogs

    for name, entry in sorted(available_catalogs().items()):
        exists = "" if Path(entry.path).exists() else "  (not on this machine)"
        print(
            f"{name}\n    {entry.description}\n    {entry.path} [{entry.schema or 'auto'}]{exists}"
        )
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from skydask.run import run

    outcome = run(args.spec, out=args.out, cluster=args.cluster, force=args.force)
    metrics = outcome.metrics
    state = "cache hit, " if outcome.cache_hit else ""
    verdict = "PASS" if outcome.passed else "FAIL"
    print(
        f"{verdict}: {metrics.get('n_failed', 0)} of {metrics.get('n_thresholds', 0)} thresholds "
        f"failed ({state}results in {outcome.directory})"
    )
    for analysis, entries in metrics.get("analyses", {}).items():
        for name, m in entries.items():
            if "verdict" in m:
                print(
                    f"  {m['verdict']:4s}  {analysis}.{name} = {m['value']} {m['unit']}"
                    f"  ({m['threshold']})"
                )
    return outcome.exit_code


def _cmd_report(args: argparse.Namespace) -> int:
    from skydask.run.report import write_report

    out = args.out or str(Path(args.runs[0]) / "report.html")
    print(f"wrote {write_report(args.runs, out)}")
    return 0


def _cmd_cluster_info(args: argparse.Namespace) -> int:
    from skydask.cluster import available_profiles, job_script, load_profile
    from skydask.cluster.slurm import log_directory_warning

    if args.profile is None:
        for name, path in sorted(available_profiles().items()):
            print(f"{name:20s} {load_profile(path).description}  ({path})")
        return 0
    profile = load_profile(args.profile)
    print(f"# profile {profile.name} ({profile.source}): {profile.description}")
    if profile.kind == "local":
        print(f"# a LocalCluster on this machine with {profile.local or 'default'} arguments")
        return 0
    jobs = (
        f"{profile.minimum_jobs}"
        if profile.minimum_jobs == profile.maximum_jobs
        else f"{profile.minimum_jobs}-{profile.maximum_jobs}"
    )
    print(f"# {jobs} job(s) of this script, security={profile.security}; nothing is submitted")
    if "account" in profile.jobqueue and not profile.jobqueue["account"]:
        print("# WARNING: 'account' is empty in this profile; this site needs one (see the file)")
    if profile.kind == "slurm" and (problem := log_directory_warning(profile)):
        print(f"# WARNING: {problem}; shown without it")
    print(job_script(profile.source))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skydask", description="Parallel analysis of LSST/DESC catalogues"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo", help="generate a synthetic catalogue, summarise and plot it on a cluster"
    )
    demo.add_argument(
        "--rows", type=int, default=2_000_000, help="objects to generate (default 2,000,000)"
    )
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--out", default="skydask-demo", help="directory for plots and summary")
    demo.add_argument(
        "--catalog", default=None, help="where to cache the catalogue (default ~/.cache/skydask)"
    )
    demo.add_argument("--cluster", default="local", help="cluster profile (default: local)")
    demo.set_defaults(func=_cmd_demo)

    synth = sub.add_parser("synth", help="write a synthetic DC2-like object catalogue")
    synth.add_argument("--rows", type=int, default=2_000_000)
    synth.add_argument("--seed", type=int, default=42)
    synth.add_argument("--out", required=True)
    synth.add_argument("--npartitions", type=int, default=None)
    synth.add_argument("--overwrite", action="store_true")
    synth.add_argument(
        "--shear-from-theory",
        action="store_true",
        help="draw the Gaussian shear field from pyccl's shear C_ell (DC2 cosmology, LSST SRD "
        "year-10 sources; needs skydask[theory])",
    )
    synth.add_argument(
        "--no-halos", action="store_true", help="no isothermal halos: the Gaussian field alone"
    )
    synth.set_defaults(func=_cmd_synth)

    info = sub.add_parser(
        "info", help="describe a catalogue: flavour, partitions, rows, columns, area"
    )
    info.add_argument("path")
    info.add_argument("--schema", default=None, help="schema flavour (default: detect)")
    info.set_defaults(func=_cmd_info)

    run = sub.add_parser(
        "run", help="run a validation spec (analyses/*.yaml); exit 1 if a threshold fails"
    )
    run.add_argument("spec")
    run.add_argument(
        "--cluster", default=None, help="cluster profile (default: the spec's, else local threads)"
    )
    run.add_argument("--out", default=None, help="output directory (default runs/<name>/<key>)")
    run.add_argument("--force", action="store_true", help="recompute even if a cached run exists")
    run.set_defaults(func=_cmd_run)

    report = sub.add_parser(
        "report", help="write one HTML page for run directories (two: compared)"
    )
    report.add_argument("runs", nargs="+")
    report.add_argument("--out", default=None, help="HTML file (default <first run>/report.html)")
    report.set_defaults(func=_cmd_report)

    cluster_info = sub.add_parser(
        "cluster-info", help="list cluster profiles, or print the job script a profile would submit"
    )
    cluster_info.add_argument("profile", nargs="?", default=None)
    cluster_info.set_defaults(func=_cmd_cluster_info)

    catalogs = sub.add_parser("catalogs", help="list registered catalogues")
    catalogs.set_defaults(func=_cmd_catalogs)

    add_checker_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # distributed sets its own loggers to INFO when it is imported; import it first, then
    # lower them: a terminal wants warnings only unless -v
    import distributed  # noqa: F401

    for name in ("distributed", "dask_jobqueue"):
        logging.getLogger(name).setLevel(level)
    try:
        return int(args.func(args))
    except SkydaskError as exc:
        print(f"skydask: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
