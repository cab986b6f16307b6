"""SLURM clusters through dask-jobqueue, with TLS, replacement of lost jobs and clean retirement.

What skydask adds to a plain ``SLURMCluster``:

- **TLS by default.** The scheduler, workers and client authenticate each other with
  temporary credentials (``distributed.Security.temporary()``: a fresh key and self-signed
  certificate, which needs the ``cryptography`` package). Left to itself, dask-jobqueue would
  dump the workers' copy into ``shared_temp_directory`` — by default the current directory,
  possibly readable by others. skydask instead writes the key and certificate itself, mode
  0600, into a fresh private directory (0700) under ``skydask.cluster.tls-directory`` (default
  ``~/.cache/skydask/tls``; it must be on a file system the compute nodes see), passes every
  role file paths, and deletes the directory when the cluster closes. Another user of the
  login node can neither connect to the scheduler nor run code on the workers.
- **Lost jobs are replaced.** The cluster is adaptive between ``minimum_jobs`` and
  ``maximum_jobs`` (equal for a fixed size), so when SLURM kills or preempts a job, the
  scheduler notices (``worker_ttl`` = the profile's ``lost_worker_timeout``), reschedules its
  tasks, and a new job is submitted.
- **Workers retire before the walltime.** Each worker gets ``--lifetime`` = walltime minus
  ``lifetime_margin`` with a stagger, so workers hand their data over and leave cleanly instead
  of being killed mid-task; adapt then submits fresh jobs.
- **Threads follow cores.** OpenMP/BLAS threads per worker are the worker's share of the job's
  cores (:mod:`skydask.cluster.threads`).
- **Quieter timers.** distributed's housekeeping intervals as ``skydask.cluster.housekeeping``
  sets them (:mod:`skydask.cluster.housekeeping`).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import dask.config
from distributed.security import Security

from skydask.cluster.housekeeping import housekeeping_config, housekeeping_environ
from skydask.cluster.profile import Profile, parse_duration
from skydask.cluster.threads import pre_spawn_environ
from skydask.errors import SpecError

__all__ = ["SlurmSetup", "start_slurm_cluster"]

log = logging.getLogger(__name__)


class SlurmSetup:
    """A started SLURMCluster and what must be cleaned up with it."""

    def __init__(self, cluster: Any, tls_directory: Path | None) -> None:
        self.cluster = cluster
        self.tls_directory = tls_directory

    def close(self) -> None:
        try:
            self.cluster.close()
        finally:
            if self.tls_directory is not None:
                shutil.rmtree(self.tls_directory, ignore_errors=True)


def _private_tls_directory() -> Path:
    base = Path(str(dask.config.get("skydask.cluster.tls-directory"))).expanduser()
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = base / f"cluster-{uuid.uuid4().hex[:12]}"
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask; make sure
    return path


def temporary_security(directory: Path) -> Security:
    """Fresh TLS credentials written to ``directory`` (0600), as a file-based Security.

    Every role (scheduler, worker, client) uses the same temporary key and certificate, which
    is also the only trusted CA: only holders of this key can join or connect.
    """
    memory = Security.temporary()
    key_file, cert_file = directory / "key.pem", directory / "cert.pem"
    for path, text in ((key_file, memory.tls_client_key), (cert_file, memory.tls_client_cert)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(str(text))
    key, cert = str(key_file), str(cert_file)
    return Security(
        tls_ca_file=cert,
        tls_client_cert=cert,
        tls_client_key=key,
        tls_scheduler_cert=cert,
        tls_scheduler_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
        require_encryption=True,
    )


def slurm_arguments(profile: Profile, preview: bool = False) -> dict[str, Any]:
    """The SLURMCluster keyword arguments for a profile (without security).

    ``preview``: for showing the job script only; a log directory naming an unset variable
    is then left out (:func:`log_directory_warning` says so) instead of raising."""
    if profile.kind != "slurm":
        raise SpecError(
            f"cluster profile {profile.name!r} is of kind {profile.kind!r}, not 'slurm'"
        )
    args = dict(profile.jobqueue)
    if args.get("log_directory"):
        try:
            args["log_directory"] = _log_directory(profile.name, str(args["log_directory"]))
        except SpecError:
            if not preview:
                raise
            args["log_directory"] = None
    if args.get("local_directory") and not str(args["local_directory"]).startswith("$"):
        # a variable ($TMPDIR) is left to the job's shell, on the node that runs the worker
        args["local_directory"] = str(Path(str(args["local_directory"])).expanduser())
    walltime = parse_duration(args.get("walltime") or dask.config.get("jobqueue.slurm.walltime"))
    margin = parse_duration(profile.lifetime_margin)
    lifetime = max(60.0, walltime - margin)
    stagger = max(1.0, min(margin / 2, lifetime / 10))
    args["worker_extra_args"] = [
        *(args.get("worker_extra_args") or []),
        "--lifetime",
        f"{int(lifetime)}s",
        "--lifetime-stagger",
        f"{int(stagger)}s",
    ]
    threads = profile.omp_threads or profile.threads_per_worker
    env = repr(pre_spawn_environ(threads))
    args["job_script_prologue"] = [
        *(args.get("job_script_prologue") or []),
        # read by the nanny (dask config from the environment) for the worker processes it starts
        f'export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON="{env}"',
        f"export OMP_NUM_THREADS={threads}",
        # distributed's timers (skydask.cluster.housekeeping), read by dask at import
        *(f"export {name}={value}" for name, value in housekeeping_environ().items()),
    ]
    args["scheduler_options"] = {
        **(args.get("scheduler_options") or {}),
        "dashboard_address": profile.dashboard_address,
        "worker_ttl": f"{int(parse_duration(profile.lost_worker_timeout))}s",
    }
    return args


def _log_directory(profile: str, value: str) -> str:
    """A profile's ``log_directory`` with ``~`` and environment variables expanded here.

    It ends up in ``#SBATCH -o`` / ``-e`` lines, which SLURM does not expand, and
    dask-jobqueue creates it on the submitting host: ``$SCRATCH/...`` left as it is made a
    directory literally named ``$SCRATCH`` in the working directory, where the logs went.
    """
    expanded = os.path.expandvars(os.path.expanduser(value))
    if "$" in expanded:
        raise SpecError(
            f"cluster profile {profile!r}: log_directory {value!r} names an environment "
            f"variable that is not set here ({expanded!r} after expansion); SLURM does not "
            "expand variables in #SBATCH lines, so set it or give the directory as a path"
        )
    return expanded


def log_directory_warning(profile: Profile) -> str | None:
    """Why a profile's job could not start from this machine because of its log directory
    (an unset environment variable), or None."""
    value = profile.jobqueue.get("log_directory")
    if not value:
        return None
    try:
        _log_directory(profile.name, str(value))
    except SpecError as err:
        return str(err)
    return None


def start_slurm_cluster(profile: Profile) -> SlurmSetup:
    """Start a SLURMCluster for a profile and scale it (adaptively) to its jobs."""
    from dask_jobqueue import SLURMCluster

    args = slurm_arguments(profile)
    if args.get("log_directory"):
        Path(args["log_directory"]).mkdir(parents=True, exist_ok=True)
    tls_dir: Path | None = None
    if profile.security == "tls":
        tls_dir = _private_tls_directory()
        args["security"] = temporary_security(tls_dir)
        args["shared_temp_directory"] = str(tls_dir)
        args["protocol"] = "tls://"
    try:
        # the scheduler runs here, in this process, and reads its timers as it starts
        with dask.config.set(housekeeping_config()):
            cluster = SLURMCluster(**args)
    except Exception:
        if tls_dir is not None:
            shutil.rmtree(tls_dir, ignore_errors=True)
        raise
    # adapt even for a fixed size: it resubmits a job that SLURM killed
    cluster.adapt(
        minimum_jobs=profile.minimum_jobs,
        maximum_jobs=profile.maximum_jobs,
        interval="1s",
        wait_count=3,
    )
    log.info(
        "SLURMCluster %s: %d-%d jobs, scheduler %s", profile.name, profile.minimum_jobs,
        profile.maximum_jobs, cluster.scheduler_address,
    )  # fmt: skip
    return SlurmSetup(cluster, tls_dir)


def render_job_script(profile: Profile) -> str:
    """The job script a SLURM profile submits, rendered without starting a scheduler.

    The scheduler address is a placeholder (it is only known once a scheduler runs), so this
    works on any machine, including one without the site's network interface.
    """
    from dask_jobqueue.slurm import SLURMJob

    args = slurm_arguments(profile, preview=True)
    for key in ("scheduler_options", "n_workers"):
        args.pop(key, None)
    protocol = "tls://" if profile.security == "tls" else "tcp://"
    if profile.security == "tls":
        # show where the credentials will be, without creating any
        placeholder = "<private TLS directory>"
        args["security"] = Security(
            tls_ca_file=f"{placeholder}/cert.pem",
            tls_worker_cert=f"{placeholder}/cert.pem",
            tls_worker_key=f"{placeholder}/key.pem",
            require_encryption=True,
        )
        args["protocol"] = protocol
    job = SLURMJob(scheduler=f"{protocol}<scheduler-address>:8786", name="skydask-worker", **args)
    script: str = job.job_script()
    return script
