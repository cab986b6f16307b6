"""Assemble the objects of one patch: positions, populations, shear, measurements, truth.

Every random number of a patch comes from ``np.random.default_rng([seed, tract, patch_index])``
in a fixed order, and the global fields (depth truth, shear field) from ``seed`` alone, so a
patch's rows do not depend on how the work is split into tasks.

Identity: ``objectId = tract * 2**32 + patch_index * 2**24 + i`` (``i`` the row in the patch).
A fraction 0.05 of objects are deblended children: their ``parentObjectId`` is
``tract * 2**32 + 2**31 + patch_index * 2**24 + j`` with ``j`` drawn among ``n_children // 2``
parents (families of about two), an id range that never holds an objectId, because the table,
like DC2's, keeps children and isolated objects but not the parents. All others have 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from skydask.errors import SchemaError
from skydask.schema.definitions import BANDS
from skydask.synth.config import SynthConfig
from skydask.synth.galaxies import draw_galaxies
from skydask.synth.io import object_schema
from skydask.synth.measure import measure
from skydask.synth.shapes import apply_shear, distortion_from_ellipticity
from skydask.synth.shear import shear_at, shear_field
from skydask.synth.sky import Patch, Tract, uniform_in_box
from skydask.synth.stars import draw_star_magnitudes
from skydask.synth.survey import DepthTruth

__all__ = ["make_patch", "object_id"]


def object_id(tract: int, patch_index: int, row: NDArray[np.int64]) -> NDArray[np.int64]:
    """``tract * 2**32 + patch_index * 2**24 + row``.

    Examples
    --------
    >>> object_id(3, 1, np.arange(2)).tolist()
    [12901679104, 12901679105]
    """
    return np.int64(tract) * 2**32 + np.int64(patch_index) * 2**24 + row.astype(np.int64)


def _local_depth(m5: NDArray[np.float64], band: str, config: SynthConfig) -> NDArray[np.float64]:
    # a pixel with no visit in the band still needs a magnitude range: use one visit's depth
    single = config.survey.single_visit_m5[band]
    row = m5[BANDS.index(band)]
    return np.where(np.isfinite(row), row, single)


def make_patch(
    tract: Tract, patch: Patch, nrows: int, config: SynthConfig, depth: DepthTruth
) -> tuple[pa.Table, pa.Table]:
    """Generate one patch: its object table (the native schema) and its truth table."""
    rng = np.random.default_rng([config.seed, tract.tract, patch.index])
    n = nrows
    ra, dec = uniform_in_box(rng, n, patch)
    is_star = rng.random(n) < config.stars.fraction
    is_child = rng.random(n) < config.measurement.child_fraction
    idx = depth.index(ra, dec)
    m5 = depth.m5[:, idx]

    star_mags, _ = draw_star_magnitudes(
        rng, _local_depth(m5, config.stars.anchor_band, config)[is_star], config.stars
    )
    gals = draw_galaxies(
        rng, _local_depth(m5, config.galaxies.anchor_band, config)[~is_star], config.galaxies
    )
    mags = np.empty((n, len(BANDS)), dtype=np.float64)
    mags[is_star] = star_mags
    mags[~is_star] = gals.mags
    size = np.zeros(n)
    size[~is_star] = gals.sigma_arcsec
    is_red = np.zeros(n, dtype=bool)
    is_red[~is_star] = gals.is_red

    g, kappa = shear_at(ra, dec, shear_field(config.footprint, config.seed, config.shear))
    e_int = np.zeros(n, dtype=np.complex128)
    e_true = np.zeros(n, dtype=np.complex128)
    e_int[~is_star] = distortion_from_ellipticity(gals.eps_int)
    e_true[~is_star] = distortion_from_ellipticity(apply_shear(gals.eps_int, g[~is_star]))

    psf = (depth.psf_xx[:, idx], depth.psf_yy[:, idx], depth.psf_xy[:, idx])
    cols: dict[str, Any] = measure(rng, mags, size, e_true, is_child, m5, psf, config.measurement)

    row = np.arange(n, dtype=np.int64)
    n_child = int(is_child.sum())
    parent = np.zeros(n, dtype=np.int64)
    family = rng.integers(0, max(1, n_child // 2), n_child)
    parent[is_child] = object_id(tract.tract, patch.index, family) + 2**31
    x, y = tract.pixel_xy(ra, dec)
    cols.update(
        objectId=object_id(tract.tract, patch.index, row),
        parentObjectId=parent,
        tract=np.full(n, tract.tract),
        patch=np.full(n, patch.name, dtype=object),
        ra=ra, dec=dec, x=x, y=y,
    )  # fmt: skip
    objects = _to_table(cols, object_schema())

    truth: dict[str, NDArray[Any]] = {
        "objectId": cols["objectId"],
        "is_star": is_star,
        "is_red": is_red,
        "pixel": depth.pixels[idx],
    }
    fwhm = depth.psf_fwhm[:, idx]
    for k, b in enumerate(BANDS):
        truth[f"mag_true_{b}"] = mags[:, k].astype(np.float32)
    truth.update(
        g1_true=g.real.astype(np.float32), g2_true=g.imag.astype(np.float32),
        kappa_true=kappa.astype(np.float32),
        e1_int=e_int.real.astype(np.float32), e2_int=e_int.imag.astype(np.float32),
        e1_true=e_true.real.astype(np.float32), e2_true=e_true.imag.astype(np.float32),
        size_true=size.astype(np.float32),
    )  # fmt: skip
    for k, b in enumerate(BANDS):
        truth[f"psf_fwhm_{b}"] = fwhm[k].astype(np.float32)
    return objects, pa.table(truth)


def _to_table(cols: dict[str, Any], schema: pa.Schema) -> pa.Table:
    missing = [f.name for f in schema if f.name not in cols]
    extra = sorted(set(cols) - set(schema.names))
    if missing or extra:
        raise SchemaError(
            f"skydask.synth builds columns that do not match the native schema "
            f"(quantities.yaml): missing {missing}, unexpected {extra}"
        )
    arrays = []
    for f in schema:
        values = cols[f.name]
        if f.type != pa.string():
            values = np.asarray(values).astype(f.type.to_pandas_dtype(), copy=False)
        arrays.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)
