"""Multi-epoch analyses of Source and ForcedSource tables: light curves and repeatability.

- :func:`light_curves`: per-object light curves and variability statistics (epochs per band,
  mean and weighted-mean flux, chi^2 about the mean), computed out of core.
- :func:`photometric_repeatability`: Rubin faro's PA1 (mmag) of bright stars.
- :func:`astrometric_repeatability`: faro's AM1 (mas), star pairs about 5 arcmin apart.

All three group the measurements by object without loading the table
(:func:`skydask.catalog.colocation.by_object`): partition-wise when the layout keeps each
object's rows together (tract or patch partitions), else with a shuffle by objectId.
Modules: :mod:`.config` (parameters, LSST requirements), :mod:`.kernels` and
:mod:`.selection` (per-partition reductions), :mod:`.pairs` (AM1's pairs), :mod:`.lightcurves`,
:mod:`.photometric`, :mod:`.astrometric`.
"""

from skydask.analyses.multiepoch.astrometric import (
    AstrometricRepeatabilityResult,
    astrometric_repeatability,
)
from skydask.analyses.multiepoch.config import (
    AM1_REQUIREMENT_MAS,
    PA1_REQUIREMENT_MMAG,
    AstrometricRepeatabilityConfig,
    LightCurveConfig,
    PhotometricRepeatabilityConfig,
)
from skydask.analyses.multiepoch.lightcurves import LightCurveResult, light_curves
from skydask.analyses.multiepoch.photometric import (
    PhotometricRepeatabilityResult,
    photometric_repeatability,
)

__all__ = [
    "AM1_REQUIREMENT_MAS",
    "PA1_REQUIREMENT_MMAG",
    "AstrometricRepeatabilityConfig",
    "AstrometricRepeatabilityResult",
    "LightCurveConfig",
    "LightCurveResult",
    "PhotometricRepeatabilityConfig",
    "PhotometricRepeatabilityResult",
    "astrometric_repeatability",
    "light_curves",
    "photometric_repeatability",
]
