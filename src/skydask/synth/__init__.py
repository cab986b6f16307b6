"""Deterministic synthetic DC2-like data with known truth.

:func:`generate_object_catalog` writes an object catalogue in DC2's per-tract Parquet layout
(columns exactly the schema's native quantities) together with its truth: stars on the Covey
et al. (2007) stellar locus, galaxies sheared by a known field (Gaussian random convergence
plus isothermal halos), and a depth and PSF that vary over the sky with the dithered LSST
pointings. The readers return the truth: per object (:func:`read_truth`), per HEALPix pixel
(:func:`read_depth_truth`) and every parameter (:func:`read_synth_params`).

Each module states its numbers in its docstring: :mod:`.sky` (tracts, patches),
:mod:`.survey` (pointings, depth, seeing), :mod:`.shear` (shear field, halos), :mod:`.shapes`
(ellipticities), :mod:`.stars`, :mod:`.galaxies`, :mod:`.measure` (noise, flags, moments),
:mod:`.objects` (per-patch assembly), :mod:`.generate` (tasks, atomic writing, cache);
:mod:`.images` and :mod:`.images_render`: synthetic image stacks (LSST Exposure FITS files with
known PSF, noise, zeropoints, bad columns and cosmic rays).
"""

from skydask.synth.generate import SynthInfo, generate_object_catalog
from skydask.synth.images import ImageStackInfo, generate_image_stack, read_image_stack_info
from skydask.synth.io import read_depth_truth, read_synth_params, read_truth
from skydask.synth.sources import (
    SourceSynthInfo,
    generate_source_tables,
    read_variables,
    read_visits,
)

__all__ = [
    "ImageStackInfo",
    "SourceSynthInfo",
    "SynthInfo",
    "generate_image_stack",
    "generate_object_catalog",
    "generate_source_tables",
    "read_depth_truth",
    "read_image_stack_info",
    "read_synth_params",
    "read_truth",
    "read_variables",
    "read_visits",
]
