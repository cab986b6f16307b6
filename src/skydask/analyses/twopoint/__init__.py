"""Two-point correlations through TreeCorr, distributed by sky patch.

:func:`shear_shear` (xi+, xi-), :func:`galaxy_shear` (gamma_t, gamma_x), :func:`galaxy_galaxy`
(w(theta), Landy-Szalay) and :func:`two_point` (any of them, tomographic, in one go) take lazy
catalogues and return a :class:`TwoPointResult` with the TreeCorr objects, tables, the joint
jackknife covariance, figures, and files (TreeCorr FITS, DESC's SACC). :func:`randoms` draws
uniform random points inside a healsparse footprint; :mod:`.theory` gives pyccl predictions.

The numbers equal a single TreeCorr ``process()`` on the whole catalogues with the same
patches: the rows are split by patch in one pass, each Dask task computes the pairs of one
"anchor" patch (with itself and its neighbours further along a sweep of the sky) from those
patches' rows only, each worker sweeps its own stretch of sky with the patch catalogues it
needs placed on it up front, and the per-pair results are summed in TreeCorr's order
(:mod:`.measure`, :mod:`.pairs`, :mod:`.regions`).

The names are imported on first use (:mod:`skydask._lazy`): a worker unpickling a pair task
loads the pair code only, not the catalogue layer's dask.dataframe.

Modules: :mod:`.config` (parameters), :mod:`.cuts` (source and lens cut sets), :mod:`.samples`
(reading, checks, shape calibration), :mod:`.patches` (k-means, assignment, the shuffle),
:mod:`.pairs` (pair tasks and their sum), :mod:`.regions` (which worker runs which task),
:mod:`._treecorr` (TreeCorr internals used),
:mod:`.measure` (the passes), :mod:`.analysis` (the public functions), :mod:`.result`,
:mod:`.plots`, :mod:`.sacc_io`, :mod:`.theory`, :mod:`.randoms`.
"""

from typing import TYPE_CHECKING

from skydask._lazy import lazy_exports

if TYPE_CHECKING:
    from skydask.analyses.twopoint.analysis import (
        galaxy_galaxy,
        galaxy_shear,
        shear_shear,
        two_point,
    )
    from skydask.analyses.twopoint.config import ShearCalibration, TwoPointConfig
    from skydask.analyses.twopoint.cuts import CUT_SETS, Cut, CutSet, cut_set
    from skydask.analyses.twopoint.measure import Request
    from skydask.analyses.twopoint.randoms import randoms
    from skydask.analyses.twopoint.result import TwoPointResult
    from skydask.analyses.twopoint.samples import Calibration
    from skydask.analyses.twopoint.theory import DC2_COSMOLOGY, TheoryCurves, predict

__all__ = [
    "CUT_SETS",
    "DC2_COSMOLOGY",
    "Calibration",
    "Cut",
    "CutSet",
    "Request",
    "ShearCalibration",
    "TheoryCurves",
    "TwoPointConfig",
    "TwoPointResult",
    "cut_set",
    "galaxy_galaxy",
    "galaxy_shear",
    "predict",
    "randoms",
    "shear_shear",
    "two_point",
]

_EXPORTS = {
    "galaxy_galaxy": "skydask.analyses.twopoint.analysis",
    "galaxy_shear": "skydask.analyses.twopoint.analysis",
    "shear_shear": "skydask.analyses.twopoint.analysis",
    "two_point": "skydask.analyses.twopoint.analysis",
    "ShearCalibration": "skydask.analyses.twopoint.config",
    "TwoPointConfig": "skydask.analyses.twopoint.config",
    "CUT_SETS": "skydask.analyses.twopoint.cuts",
    "Cut": "skydask.analyses.twopoint.cuts",
    "CutSet": "skydask.analyses.twopoint.cuts",
    "cut_set": "skydask.analyses.twopoint.cuts",
    "Request": "skydask.analyses.twopoint.measure",
    "randoms": "skydask.analyses.twopoint.randoms",
    "TwoPointResult": "skydask.analyses.twopoint.result",
    "Calibration": "skydask.analyses.twopoint.samples",
    "DC2_COSMOLOGY": "skydask.analyses.twopoint.theory",
    "TheoryCurves": "skydask.analyses.twopoint.theory",
    "predict": "skydask.analyses.twopoint.theory",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
