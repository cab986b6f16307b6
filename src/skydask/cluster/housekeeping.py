"""distributed's housekeeping intervals on the clusters skydask starts.

Besides running tasks, every part of a Dask cluster wakes up on timers: each worker's event
loop every 20 ms (``distributed.admin.tick.interval``, which only measures how late the loop
is), each nanny and worker reads its process' memory every 100 ms
(``distributed.worker.memory.monitor-interval``) and the scheduler and workers sample CPU,
memory and network every 500 ms (``distributed.admin.system-monitor.interval``). On a
LocalCluster the scheduler and the nannies live in the client's process. Measured on the
two-core benchmark machine, an idle two-worker cluster spent about 1 CPU-second in that
process and 0.6-1 in each worker every 10 s: with both cores busy with analysis tasks, those
cycles are taken from them.

skydask therefore starts its clusters with the settings of ``skydask.cluster.housekeeping``
(``tick-interval``, ``memory-monitor-interval``, ``system-monitor-interval``; defaults in
``skydask.yaml``): the tick every 100 ms (a blocked loop is still reported after
``distributed.admin.tick.limit``, 3 s), memory checked every 500 ms, the system monitor every
1 s. Two-point shear-shear on two workers (1 million sources, 16 patches, 1-100 arcmin; five
alternating rounds): median 8.37 -> 8.01 s and 7.55 -> 7.29 s in two series, faster in seven
rounds of ten and equal in one, and the client's process (scheduler and nannies) 0.95 -> 0.73
and 0.76 -> 0.56 CPU-s. The cost: the spill, pause and terminate thresholds
(``distributed.worker.memory.*``) are checked twice a second instead of ten times, and the
dashboard's system plots update once a second. Set one of them to ``null`` (``None``) to keep
distributed's own value (or the one your own dask configuration gives);
``dask.config.set({"skydask.cluster.housekeeping": None})`` keeps all three. (In a YAML file or
a ``DASK_`` variable a null for the whole key is replaced by skydask's defaults when they are
registered, as is a ``{}``: name the entries.)

On a LocalCluster the settings apply to the scheduler, nannies and workers (the nannies pass
their configuration to the worker processes they start); on SLURM to the scheduler, which
runs in the client's process, and to the workers, through ``DASK_...`` variables exported by
the job script (:func:`housekeeping_environ`). A cluster joined by address keeps its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask.config
from dask.utils import parse_timedelta

from skydask.errors import SpecError

__all__ = ["housekeeping_config", "housekeeping_environ"]

_KEY = "skydask.cluster.housekeeping"

# skydask's name for each setting -> distributed's key
SETTINGS = {
    "tick-interval": "distributed.admin.tick.interval",
    "memory-monitor-interval": "distributed.worker.memory.monitor-interval",
    "system-monitor-interval": "distributed.admin.system-monitor.interval",
}


def housekeeping_config() -> dict[str, Any]:
    """The distributed settings of ``skydask.cluster.housekeeping``, by distributed's dotted
    key, for ``dask.config.set``.

    Examples
    --------
    >>> import skydask
    >>> housekeeping_config()["distributed.admin.tick.interval"]
    '100ms'
    >>> with dask.config.set({"skydask.cluster.housekeeping.tick-interval": None}):
    ...     sorted(housekeeping_config())
    ['distributed.admin.system-monitor.interval', 'distributed.worker.memory.monitor-interval']
    >>> with dask.config.set({"skydask.cluster.housekeeping": None}):
    ...     housekeeping_config()
    {}
    """
    found = dask.config.get(_KEY, None) or {}
    if not isinstance(found, Mapping):
        raise SpecError(
            f"{_KEY} must be a mapping of {sorted(SETTINGS)} to durations, got {found!r}"
        )
    out: dict[str, Any] = {}
    for name, value in found.items():
        key = SETTINGS.get(str(name).replace("_", "-"))
        if key is None:
            raise SpecError(f"{_KEY}: unknown setting {name!r}; expected one of {sorted(SETTINGS)}")
        if value is None:  # this one stays as distributed (or the user's own config) has it
            continue
        try:
            seconds = parse_timedelta(value)
        except (TypeError, ValueError, KeyError):
            seconds = None
        if seconds is None or seconds <= 0:
            raise SpecError(
                f"{_KEY}.{name} must be a positive duration such as '100ms', got {value!r}"
            )
        out[key] = value
    return out


def housekeeping_environ() -> dict[str, str]:
    """The same settings as the environment variables dask reads at import, for processes
    that skydask does not start itself (the workers of a SLURM job).

    Examples
    --------
    >>> import skydask
    >>> housekeeping_environ()["DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL"]
    '100ms'
    """
    return {
        "DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value)
        for key, value in housekeeping_config().items()
    }
