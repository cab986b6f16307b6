"""Peak resident memory of one benchmark method, measured in a fresh interpreter.

VmHWM of ``/proc/self/status``, not ``ru_maxrss``: Linux carries ``ru_maxrss`` across exec, so
a child started from a large benchmark process would report the parent's peak.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["peak_memory_mb"]

_HERE = Path(__file__).resolve().parent


def peak_memory_mb(
    module: str, method: str | None, path: Path, *, scheduler: str | None = None
) -> float:
    """Peak memory (MB) of ``<module>.METHODS[method](path)`` run alone in a new interpreter.

    ``method=None`` measures the imports only (the interpreter's floor). ``scheduler`` sets
    dask's default scheduler first (e.g. ``"threads"``).
    """
    setup = f"import dask; dask.config.set(scheduler={scheduler!r}); " if scheduler else ""
    call = f"b.METHODS[{method!r}](pathlib.Path({str(path)!r})); " if method else ""
    code = (
        f"import sys, pathlib; sys.path.insert(0, {str(_HERE)!r}); import {module} as b; "
        f"{setup}{call}"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]; "
        "print(int(hwm.split()[1]) / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])
