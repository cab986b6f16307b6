"""Depth maps: the point-source depth per HEALPix pixel and band, measured from the objects.

:func:`depth_map` takes a :class:`skydask.Catalog` and returns a :class:`DepthMapResult`
holding, per band, healsparse maps of the depth, of the number of objects used and of their
spread, a depth mask, a summary table against the LSST design depths, figures and files.
Parameters live in :class:`DepthMapConfig`.

Modules: :mod:`.config` (parameters and design depths), :mod:`.pixels` (the exact per-pixel
reduction over partitions), :mod:`.analysis` (``depth_map`` itself), :mod:`.result`.
"""

from skydask.analyses.depthmap.analysis import depth_map, depth_map_plan
from skydask.analyses.depthmap.config import (
    LSST_DESIGN_10YR,
    LSST_DESIGN_SINGLE_VISIT,
    METHODS,
    DepthMapConfig,
)
from skydask.analyses.depthmap.result import DepthMapResult

__all__ = [
    "LSST_DESIGN_10YR",
    "LSST_DESIGN_SINGLE_VISIT",
    "METHODS",
    "DepthMapConfig",
    "DepthMapResult",
    "depth_map",
    "depth_map_plan",
]
