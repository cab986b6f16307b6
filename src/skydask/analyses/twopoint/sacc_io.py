"""The two-point data vector in DESC's SACC format, as TXPipe writes it.

Data types are SACC's standard names: ``galaxy_shear_xi_plus`` / ``galaxy_shear_xi_minus``
(tracers: the two source bins), ``galaxy_shearDensity_xi_t`` (tracers: source bin, then lens
bin, SACC's order for this type) and ``galaxy_density_xi``. Each point carries the tags
TXPipe writes: ``theta`` (arcmin, ``exp(<log r>)`` of its pairs), ``theta_nom`` (the bin
centre), ``error`` (jackknife), ``npair`` and ``weight``. The covariance is the joint
jackknife covariance, in the same order as the points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import sacc

    from skydask.analyses.twopoint.result import TwoPointResult

__all__ = ["SACC_TYPES", "to_sacc"]

SACC_TYPES = {
    "xip": "galaxy_shear_xi_plus",
    "xim": "galaxy_shear_xi_minus",
    "gamma_t": "galaxy_shearDensity_xi_t",
    "w_theta": "galaxy_density_xi",
}
"""SACC data type of each quantity of the data vector."""


def to_sacc(result: TwoPointResult, nz: Mapping[str, tuple[Any, Any]] | None = None) -> sacc.Sacc:
    """A :class:`sacc.Sacc` of the result's data vector and covariance (module docstring)."""
    import sacc

    from skydask.analyses.twopoint.result import arcmin_factor

    s = sacc.Sacc()
    nz = dict(nz or {})
    bins = list(dict.fromkeys(b for r in result.requests for b in (r.bin1, r.bin2)))
    for b in bins:
        if b in nz:
            z, n = nz[b]
            s.add_tracer("NZ", b, np.asarray(z, dtype=float), np.asarray(n, dtype=float))
        else:
            s.add_tracer("Misc", b)
    to_arcmin = arcmin_factor(result.config.sep_units)
    rows: list[dict[Any, Any]] = result.data_vector().to_dict(orient="records")
    for row in rows:
        q = str(row["quantity"])
        b1, b2 = str(row["bin1"]), str(row["bin2"])
        s.add_data_point(
            SACC_TYPES[q],
            (b2, b1) if q == "gamma_t" else (b1, b2),
            float(row["value"]),
            theta=math.exp(float(row["meanlogr"])) * to_arcmin,
            theta_nom=float(row["r_nom"]) * to_arcmin,
            error=float(row["sigma"]),
            npair=float(row["npairs"]),
            weight=float(row["weight"]),
        )
    s.add_covariance(np.asarray(result.covariance, dtype=float))
    s.metadata["creator"] = "skydask.analyses.twopoint"
    s.metadata["theta_units"] = "arcmin"
    s.metadata["covariance"] = f"jackknife, {result.reduction.get('npatch', '?')} patches, " \
                               f"cross_patch_weight={result.config.cross_patch_weight}"  # fmt: skip
    for name, cal in result.calibrations.items():
        s.metadata[f"shear_calibration_{name}"] = f"{cal.convention}; e_rms={cal.e_rms:.5f}; " \
            f"weights {cal.weights}; flip_g1={cal.flip_g1}; flip_g2={cal.flip_g2}"  # fmt: skip
    return s
