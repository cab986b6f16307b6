"""Reproducible validation runs: specs, the runner, and HTML reports.

``skydask run SPEC`` validates a spec (:mod:`.spec`), runs its analyses (:mod:`.registry`) into
one output directory written atomically with ``metrics.json`` and ``provenance.json``
(:mod:`.runner`), and ``skydask report`` turns run directories into one HTML page
(:mod:`.report`).
"""

from skydask.run.runner import RunOutcome, run, validate
from skydask.run.spec import RunSpec, load_spec, parse_spec

__all__ = ["RunOutcome", "RunSpec", "load_spec", "parse_spec", "run", "validate"]
