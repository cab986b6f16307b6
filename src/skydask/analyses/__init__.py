"""Analyses: pure functions from a Catalog (or image stack) to a typed result.

An analysis never opens files or starts clusters; it takes a :class:`skydask.Catalog`, runs
one-pass decomposable reductions (:mod:`.reduction`) on whatever dask scheduler is active, and
returns a result with ``.table()``, ``.plot()`` and ``.write(directory)``.

- :func:`stellar_locus`: principal-colour widths of the stellar locus (Ivezic et al. 2004).
- :func:`depth_map`: 5-sigma point-source depth per HEALPix pixel and band.
- :func:`shear_shear`, :func:`galaxy_shear`, :func:`galaxy_galaxy`, :func:`two_point`:
  TreeCorr correlations distributed by sky patch; :func:`randoms` inside a healsparse footprint.
- :func:`scan_together`: several analyses on one scan of a catalogue, from their plans
  (:func:`stellar_locus_plan`, :func:`depth_map_plan`).
- :func:`light_curves`, :func:`photometric_repeatability` (PA1),
  :func:`astrometric_repeatability` (AM1): multi-epoch Source / ForcedSource tables.

The names, and the analyses' subpackages, are imported on first use (PEP 562): a Dask worker
unpickling one analysis's task loads that analysis only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from skydask._lazy import lazy_exports

if TYPE_CHECKING:
    from skydask.analyses.depthmap import DepthMapConfig, DepthMapResult, depth_map, depth_map_plan
    from skydask.analyses.multiepoch import (
        astrometric_repeatability,
        light_curves,
        photometric_repeatability,
    )
    from skydask.analyses.reduction import tree_reduce
    from skydask.analyses.scan import ScanPlan, scan_together
    from skydask.analyses.stellar_locus import (
        StellarLocusConfig,
        StellarLocusResult,
        stellar_locus,
        stellar_locus_plan,
    )
    from skydask.analyses.twopoint import (
        CutSet,
        ShearCalibration,
        TwoPointConfig,
        TwoPointResult,
        cut_set,
        galaxy_galaxy,
        galaxy_shear,
        randoms,
        shear_shear,
        two_point,
    )

__all__ = [
    "CutSet",
    "DepthMapConfig",
    "DepthMapResult",
    "ScanPlan",
    "ShearCalibration",
    "StellarLocusConfig",
    "StellarLocusResult",
    "TwoPointConfig",
    "TwoPointResult",
    "astrometric_repeatability",
    "cut_set",
    "depth_map",
    "depth_map_plan",
    "galaxy_galaxy",
    "galaxy_shear",
    "light_curves",
    "photometric_repeatability",
    "randoms",
    "scan_together",
    "shear_shear",
    "stellar_locus",
    "stellar_locus_plan",
    "tree_reduce",
    "two_point",
]

_EXPORTS = {
    "DepthMapConfig": "skydask.analyses.depthmap",
    "DepthMapResult": "skydask.analyses.depthmap",
    "depth_map": "skydask.analyses.depthmap",
    "depth_map_plan": "skydask.analyses.depthmap",
    "astrometric_repeatability": "skydask.analyses.multiepoch",
    "light_curves": "skydask.analyses.multiepoch",
    "photometric_repeatability": "skydask.analyses.multiepoch",
    "tree_reduce": "skydask.analyses.reduction",
    "ScanPlan": "skydask.analyses.scan",
    "scan_together": "skydask.analyses.scan",
    "StellarLocusConfig": "skydask.analyses.stellar_locus",
    "StellarLocusResult": "skydask.analyses.stellar_locus",
    "stellar_locus": "skydask.analyses.stellar_locus",
    "stellar_locus_plan": "skydask.analyses.stellar_locus",
    "CutSet": "skydask.analyses.twopoint",
    "ShearCalibration": "skydask.analyses.twopoint",
    "TwoPointConfig": "skydask.analyses.twopoint",
    "TwoPointResult": "skydask.analyses.twopoint",
    "cut_set": "skydask.analyses.twopoint",
    "galaxy_galaxy": "skydask.analyses.twopoint",
    "galaxy_shear": "skydask.analyses.twopoint",
    "randoms": "skydask.analyses.twopoint",
    "shear_shear": "skydask.analyses.twopoint",
    "two_point": "skydask.analyses.twopoint",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
