"""Analyses: pure functions from a Catalog (or image stack) to a typed result.

An analysis never opens files or starts clusters; it takes a :class:`skydask.Catalog`, runs
one-pass decomposable reductions (:mod:`.reduction`) on whatever dask scheduler is active, and
returns a result with ``.table()``, ``.plot()`` and ``.write(directory)``.

- :func:`stellar_locus`: principal-colour widths of the stellar locus (Ivezic et al. 2004).
- :func:`depth_map`: 5-sigma point-source depth per HEALPix pixel and band.
- :func:`light_curves`, :func:`photometric_repeatability` (PA1),
  :func:`astrometric_repeatability` (AM1): multi-epoch Source / ForcedSource tables.
"""

from skydask.analyses.depthmap import DepthMapConfig, DepthMapResult, depth_map
from skydask.analyses.multiepoch import (
    astrometric_repeatability,
    light_curves,
    photometric_repeatability,
)
from skydask.analyses.reduction import tree_reduce
from skydask.analyses.stellar_locus import StellarLocusConfig, StellarLocusResult, stellar_locus

__all__ = [
    "DepthMapConfig",
    "DepthMapResult",
    "StellarLocusConfig",
    "StellarLocusResult",
    "astrometric_repeatability",
    "depth_map",
    "light_curves",
    "photometric_repeatability",
    "stellar_locus",
    "tree_reduce",
]
