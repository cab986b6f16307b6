"""A small synthetic catalogue and spec texts for the runner tests."""

from __future__ import annotations

from pathlib import Path

SPEC = """\
name: small-suite
catalog: {catalog}
cuts: "mag_i < 26"
seed: 7
analyses:
  - name: locus
    analysis: stellar_locus
    params: {{min_stars: 7}}
    thresholds:
      w_sigmaMAD: {{min: {w_min}, max: 40}}
      w_median: {{abs_max: 10}}
  - name: depth
    analysis: depth_map
    params: {{nside: 256, bands: gri}}
    thresholds:
      i_depth_median: {{min: 20}}
"""


def spec_text(catalog: Path, w_min: float = 5.0) -> str:
    return SPEC.format(catalog=catalog, w_min=w_min)
