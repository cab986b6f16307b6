"""Cluster profiles: YAML files that say where and how to run the workers.

A profile is found by name in ``cluster_configs/`` (the package's ``profiles/`` folder, which
the repository's top-level ``cluster_configs`` points to), in the directories listed under the
dask-config key ``skydask.cluster.profile-paths``, or given as a path. Its keys:

``kind``
    ``local`` or ``slurm``.
``jobqueue``
    For SLURM: dask-jobqueue's own ``SLURMCluster`` keyword arguments (``cores``, ``memory``,
    ``processes``, ``walltime``, ``queue``, ``account``, ``job_extra_directives``,
    ``job_script_prologue``, ``worker_extra_args``, ``local_directory``, ``log_directory``,
    ``interface`` ...), passed through unchanged.
``local``
    For local: ``distributed.LocalCluster`` keyword arguments.
``jobs`` or ``minimum_jobs``/``maximum_jobs``
    How many SLURM jobs: a fixed number (kept up by ``adapt``, so a job SLURM kills is
    replaced) or an adaptive range.
``omp_threads``
    OpenMP/BLAS threads per worker process; default: the worker's share of the job's cores.
``security``
    ``tls`` (default for SLURM: temporary certificates, so another user of the login node
    cannot connect to the scheduler and run code on your workers) or ``none``.
``lost_worker_timeout``, ``lifetime_margin``
    How soon a silent worker is declared lost; how long before the walltime workers retire
    (staggered), so they leave cleanly instead of being killed mid-task.
``dashboard_address``
    Where the scheduler's dashboard listens (127.0.0.1 unless a profile says otherwise).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import dask.config
import yaml

from skydask.errors import SpecError

__all__ = ["Profile", "available_profiles", "load_profile", "parse_duration"]

_TOP_KEYS = {
    "kind",
    "description",
    "jobqueue",
    "local",
    "jobs",
    "minimum_jobs",
    "maximum_jobs",
    "omp_threads",
    "security",
    "lost_worker_timeout",
    "lifetime_margin",
    "dashboard_address",
}


def _jobqueue_keys() -> set[str]:
    """SLURMCluster's keyword arguments, read from dask-jobqueue itself."""
    from dask_jobqueue import SLURMCluster
    from dask_jobqueue.core import Job
    from dask_jobqueue.slurm import SLURMJob

    keys: set[str] = set()
    for obj in (SLURMCluster.__init__, SLURMJob.__init__, Job.__init__):
        keys |= {
            p
            for p in inspect.signature(obj).parameters
            if p not in {"self", "kwargs", "base_class_kwargs"}
        }
    # these are set by skydask from the profile's own keys
    return keys - {
        "security",
        "shared_temp_directory",
        "scheduler",
        "dashboard_address",
        "n_workers",
    }


def parse_duration(text: str | int | float) -> float:
    """Seconds in a SLURM walltime (``[D-]HH:MM:SS``, ``MM:SS``, ``MM``) or ``"30s"``, ``"5m"``.

    Examples
    --------
    >>> parse_duration("02:00:00"), parse_duration("1-00:00:00"), parse_duration("5m")
    (7200.0, 86400.0, 300.0)
    """
    if isinstance(text, int | float):
        return float(text)
    text = str(text).strip()
    unit = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd])", text)
    if unit:
        return float(unit.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit.group(2)]
    days = 0.0
    if "-" in text:
        d, text = text.split("-", 1)
        days = float(d)
    parts = [float(p) for p in text.split(":")]
    if len(parts) == 1:  # SLURM: a bare number is minutes
        seconds = parts[0] * 60
    elif len(parts) == 2:
        seconds = parts[0] * 60 + parts[1]
    elif len(parts) == 3:
        seconds = parts[0] * 3600 + parts[1] * 60 + parts[2]
    else:
        raise SpecError(
            f"cannot read the duration {text!r}: expected [D-]HH:MM:SS, MM:SS, MM or e.g. '5m'"
        )
    return days * 86400 + seconds


@dataclass(frozen=True)
class Profile:
    """A validated cluster profile."""

    name: str
    kind: str
    source: str
    description: str = ""
    jobqueue: dict[str, Any] = field(default_factory=dict)
    local: dict[str, Any] = field(default_factory=dict)
    minimum_jobs: int = 1
    maximum_jobs: int = 1
    omp_threads: int | None = None
    security: str = "tls"
    lost_worker_timeout: str = "60s"
    lifetime_margin: str = "5m"
    dashboard_address: str | None = "127.0.0.1:8787"

    def with_overrides(self, overrides: dict[str, Any]) -> Profile:
        """A copy with keyword overrides: profile keys, else jobqueue/local arguments."""
        data = {k: v for k, v in self.__dict__.items()}
        jobqueue, local = dict(self.jobqueue), dict(self.local)
        for key, value in overrides.items():
            if key == "jobs":
                data["minimum_jobs"] = data["maximum_jobs"] = int(value)
            elif key in data and key not in {"name", "kind", "source"}:
                data[key] = value
            elif self.kind == "slurm":
                jobqueue[key] = value
            else:
                local[key] = value
        data["jobqueue"], data["local"] = jobqueue, local
        profile = Profile(**data)
        _validate(profile)
        return profile

    @property
    def threads_per_worker(self) -> int:
        if self.kind == "local":
            return int(self.local.get("threads_per_worker", 1))
        cores = int(self.jobqueue.get("cores") or 1)
        processes = int(self.jobqueue.get("processes") or 1)
        return max(1, cores // processes)


def _validate(profile: Profile) -> None:
    where = f"cluster profile {profile.name!r} ({profile.source})"
    if profile.kind not in {"local", "slurm"}:
        raise SpecError(f"{where}: kind {profile.kind!r} is not one of 'local', 'slurm'")
    if profile.kind == "slurm":
        unknown = sorted(set(profile.jobqueue) - _jobqueue_keys())
        if unknown:
            raise SpecError(
                f"{where}: unknown jobqueue key(s) {unknown}; expected dask-jobqueue SLURMCluster "
                f"arguments such as cores, memory, processes, walltime, queue, account"
            )
        for key in ("cores", "memory"):
            if not profile.jobqueue.get(key):
                raise SpecError(f"{where}: jobqueue.{key} is required for a SLURM profile")
    if not 0 <= profile.minimum_jobs <= profile.maximum_jobs or profile.maximum_jobs < 1:
        raise SpecError(
            f"{where}: need 0 <= minimum_jobs <= maximum_jobs and maximum_jobs >= 1, "
            f"got {profile.minimum_jobs}, {profile.maximum_jobs}"
        )
    if profile.security not in {"tls", "none"}:
        raise SpecError(f"{where}: security {profile.security!r} is not 'tls' or 'none'")
    parse_duration(profile.lost_worker_timeout)
    parse_duration(profile.lifetime_margin)


def _search_dirs() -> list[Path]:
    extra = dask.config.get("skydask.cluster.profile-paths", default=None) or []
    dirs = [Path(p).expanduser() for p in extra]
    dirs.append(Path(str(resources.files("skydask.cluster").joinpath("profiles"))))
    return dirs


def available_profiles() -> dict[str, Path]:
    """Profile names and their files (later search directories do not override earlier)."""
    found: dict[str, Path] = {}
    for d in _search_dirs():
        for f in sorted(d.glob("*.yaml")) if d.is_dir() else []:
            found.setdefault(f.stem, f)
    return found


def load_profile(name_or_path: str | Path) -> Profile:
    """Read and validate a profile by name (``"local"``, ``"nersc-perlmutter"``) or path."""
    path = Path(name_or_path).expanduser()
    if not (path.suffix in {".yaml", ".yml"} and path.exists()):
        profiles = available_profiles()
        if str(name_or_path) not in profiles:
            raise SpecError(
                f"no cluster profile {str(name_or_path)!r}: expected a YAML path or one of "
                f"{sorted(profiles)}"
            )
        path = profiles[str(name_or_path)]
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SpecError(f"cluster profile {str(path)!r} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"cluster profile {str(path)!r}: expected a mapping of keys")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise SpecError(
            f"cluster profile {str(path)!r}: unknown key(s) {unknown}; allowed: {sorted(_TOP_KEYS)}"
        )
    kind = data.get("kind", "local")
    minimum = data.get("minimum_jobs", data.get("jobs", 1))
    maximum = data.get("maximum_jobs", data.get("jobs", max(1, int(minimum or 1))))
    profile = Profile(
        name=path.stem,
        kind=kind,
        source=str(path),
        description=str(data.get("description", "")),
        jobqueue=dict(data.get("jobqueue") or {}),
        local=dict(data.get("local") or {}),
        minimum_jobs=int(minimum or 0),
        maximum_jobs=int(maximum or 0),
        omp_threads=data.get("omp_threads"),
        security=str(data.get("security", "tls" if kind == "slurm" else "none")),
        lost_worker_timeout=str(data.get("lost_worker_timeout", "60s")),
        lifetime_margin=str(data.get("lifetime_margin", "5m")),
        dashboard_address=data.get("dashboard_address", "127.0.0.1:8787"),
    )
    _validate(profile)
    return profile
