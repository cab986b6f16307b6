"""Image stacks: lazy xarray Datasets over FITS exposures, cut-outs, coadds, depth.

:func:`open_stack` opens LSST Exposures (calexps), DECam community-pipeline exposures or plain
FITS images as one dask-backed ``xarray.Dataset`` (``image``, ``variance``, ``mask`` over
``visit, y, x``, per-visit band, date, zeropoint, seeing and WCS); :func:`cutouts` cuts
postage stamps at (RA, Dec) in every visit, one task per visit; :func:`coadd` resamples the
visits onto a common tangent-plane grid and combines them; :func:`image_quality` measures sky,
noise, PSF FWHM and 5-sigma depth per visit; :mod:`.plots` draws stamps and coadds.

Each module's docstring states its choices: :mod:`.stack` (padding, laziness), :mod:`.layouts`
and ``read_*`` (one reader per layout), :mod:`.metadata` (header keys, calibration tables),
:mod:`.masks` (one bit mask for every layout), :mod:`.planes` (memory-mapped reads and byte
counting), :mod:`.cutouts`, :mod:`.coadd`, :mod:`.quality`, :mod:`.psf`, :mod:`.plots`.
"""

from skydask.images.coadd import coadd, coadd_grid
from skydask.images.cutouts import cutouts, stamp_wcs
from skydask.images.masks import DEFAULT_BAD_PLANES, MASK_PLANES
from skydask.images.plots import plot_coadd, plot_quality, plot_stamps
from skydask.images.quality import ImageQuality, image_quality, m5_depth
from skydask.images.stack import open_stack

__all__ = [
    "DEFAULT_BAD_PLANES",
    "MASK_PLANES",
    "ImageQuality",
    "coadd",
    "coadd_grid",
    "cutouts",
    "image_quality",
    "m5_depth",
    "open_stack",
    "plot_coadd",
    "plot_quality",
    "plot_stamps",
    "stamp_wcs",
]
