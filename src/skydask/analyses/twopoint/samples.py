"""The samples of a measurement: what is read, what is checked, and how shapes become shears.

A :class:`Sample` is one bin of sources, lenses or randoms as a lazy dask DataFrame with
canonical column names (``ra``, ``dec`` in degrees; ``e1``, ``e2``, ``sigma`` for sources;
``wq`` for a weight quantity). The functions here work on one partition's or one patch's
columns:

* :func:`value_arrays` takes the columns a sample needs out of a partition, as numpy arrays
  in their stored precision (float32 stays float32 until :func:`convert`, which gives the
  same float64 numbers as converting first, with half the bytes to hold and move);
* :func:`summarise` / :func:`summarise_arrays`: rows, rows with a non-finite value, the sums
  that give ``e_rms``, and every ``every_nth`` position for the k-means;
* :func:`convert`, applied to a whole patch once the calibration is known: turn distortions
  into shears, apply the sign flips, compute the weights, and give the TreeCorr-ready columns
  ``ra, dec, [g1, g2], [w]`` (float64). Being element-wise, it gives the same numbers
  whether applied per partition or per patch, so a measurement with given patch centres
  reads its samples once: the shape calibration is decided from the same pass that groups
  the rows by patch.

All are module-level functions so that Dask workers can import them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
from numpy.typing import NDArray

from skydask.analyses.twopoint.config import WEIGHTS_INVERSE_VARIANCE, ShearCalibration
from skydask.errors import SchemaError

__all__ = [
    "Calibration",
    "Columns",
    "Sample",
    "SampleSummary",
    "calibrate",
    "combine_summaries",
    "convert",
    "finite_rows",
    "summarise",
    "summarise_arrays",
    "value_arrays",
]

ROLES = ("source", "lens", "random")

Columns = Mapping[str, Any]
"""A partition's columns: a dict of NumPy arrays (the catalogue's samples) or a pandas
DataFrame (the partitions of ``randoms()``)."""


@dataclass(frozen=True)
class Rows:
    """A sample's lazy rows: one reader per partition (:meth:`skydask.Catalog.
    partition_readers` with ``arrays=True``), each giving a dict of NumPy arrays by the
    canonical ``columns``.

    Like a dask DataFrame for what the passes use (``columns``, ``to_delayed()``), so that
    the tasks need neither dask.dataframe nor pandas (which would add 40 MB to every
    worker); the split of :mod:`.measure` calls the ``readers`` itself, several in one task.
    """

    columns: tuple[str, ...]
    readers: tuple[Callable[[], Columns], ...]

    def to_delayed(self) -> list[Any]:
        """One delayed read per partition. Random keys: a reader carries the read plan, slow
        to tokenize (see :meth:`skydask.Catalog.to_delayed`)."""
        return [dask.delayed(read, pure=False)() for read in self.readers]


@dataclass(frozen=True)
class Sample:
    """One bin: a name, a role, the lazy rows, and (sources) the shape calibration.

    ``frame`` has canonical columns: ``ra``, ``dec``; sources also ``e1``, ``e2`` and, if the
    calibration names them, ``sigma`` and ``wq`` (weights); lenses and randoms may have ``wq``.
    ``description`` says where the rows come from (the cuts), for the result.
    """

    name: str
    role: str
    frame: Any  # Rows, or a dask DataFrame (randoms())
    calibration: ShearCalibration | None = None
    description: str = ""

    @property
    def field(self) -> str:
        """TreeCorr field letter: ``"G"`` for sources, ``"N"`` for lenses and randoms."""
        return "G" if self.role == "source" else "N"

    @property
    def value_columns(self) -> list[str]:
        """The canonical columns that must be finite on a usable row."""
        cols = ["ra", "dec"]
        if self.role == "source":
            cols += ["e1", "e2"]
            assert self.calibration is not None
            cal = self.calibration
            if cal.sigma is not None and (
                (cal.needs_e_rms and cal.e_rms is None) or cal.weights == WEIGHTS_INVERSE_VARIANCE
            ):
                cols.append("sigma")
        if "wq" in self.frame.columns:
            cols.append("wq")
        return cols


@dataclass
class SampleSummary:
    """First-pass summary of a sample (partial sums, mergeable in any order)."""

    rows: int = 0
    nonfinite: int = 0
    n_shape: int = 0
    sum_e2: float = 0.0
    sum_sigma2: float = 0.0
    sub_ra: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    sub_dec: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))


def _column(frame: Columns, name: str) -> NDArray[np.floating[Any]]:
    column = frame[name]
    if isinstance(column, np.ndarray):  # the reader's arrays: missing values are already NaN
        return column if column.dtype.kind == "f" else column.astype(np.float64)
    values = column.to_numpy()
    if values.dtype.kind == "f":
        return values
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def value_arrays(frame: Columns, columns: list[str]) -> dict[str, NDArray[np.floating[Any]]]:
    """The named columns of a partition (a dict of NumPy arrays, or a pandas DataFrame) as
    NumPy arrays (floats keep their precision; other types, and missing values, become float64
    and NaN)."""
    return {c: _column(frame, c) for c in columns}


def finite_rows(
    arrays: dict[str, NDArray[np.floating[Any]]], columns: list[str]
) -> NDArray[np.bool_]:
    """Rows whose values in ``columns`` are all finite."""
    n = len(next(iter(arrays.values()))) if arrays else 0
    ok = np.ones(n, dtype=bool)
    for c in columns:
        ok &= np.isfinite(arrays[c])
    return ok


def summarise_arrays(
    arrays: dict[str, NDArray[np.floating[Any]]],
    columns: list[str],
    shapes: bool,
    sigma: bool,
    every_nth: int,
    ok: NDArray[np.bool_] | None = None,
) -> SampleSummary:
    """:func:`summarise` of a partition's :func:`value_arrays` (``ok``: its finite rows)."""
    if ok is None:
        ok = finite_rows(arrays, columns)
    out = SampleSummary(rows=len(ok), nonfinite=int((~ok).sum()))
    if shapes:
        e1 = arrays["e1"].astype(np.float64)[ok]
        e2 = arrays["e2"].astype(np.float64)[ok]
        out.n_shape = len(e1)
        out.sum_e2 = float(np.sum(0.5 * (e1 * e1 + e2 * e2)))
        if sigma:
            s = arrays["sigma"].astype(np.float64)[ok]
            out.sum_sigma2 = float(np.sum(s * s))
    if every_nth:
        idx = np.flatnonzero(ok)[::every_nth]
        out.sub_ra = arrays["ra"].astype(np.float64)[idx]
        out.sub_dec = arrays["dec"].astype(np.float64)[idx]
    return out


def summarise(
    frame: Columns, columns: list[str], shapes: bool, sigma: bool, every_nth: int
) -> SampleSummary:
    """Summary of one partition (see :class:`SampleSummary`); ``every_nth = 0`` skips the
    k-means subsample."""
    return summarise_arrays(value_arrays(frame, columns), columns, shapes, sigma, every_nth)


def combine_summaries(parts: list[SampleSummary]) -> SampleSummary:
    """Merge partial summaries (subsamples concatenated in the given order)."""
    return SampleSummary(
        rows=sum(p.rows for p in parts),
        nonfinite=sum(p.nonfinite for p in parts),
        n_shape=sum(p.n_shape for p in parts),
        sum_e2=math.fsum(p.sum_e2 for p in parts),
        sum_sigma2=math.fsum(p.sum_sigma2 for p in parts),
        sub_ra=np.concatenate([p.sub_ra for p in parts]) if parts else np.empty(0),
        sub_dec=np.concatenate([p.sub_dec for p in parts]) if parts else np.empty(0),
    )


@dataclass(frozen=True)
class Calibration:
    """The conversion applied to one source bin, recorded in the result.

    ``responsivity`` is ``R = 1 - e_rms**2`` for distortions (1 for shears), and the shear is
    ``g = e / (2 R)`` (``e`` for shears), with ``flip_g1``/``flip_g2`` applied afterwards.
    """

    kind: str
    e_rms: float
    e_rms_source: str
    responsivity: float
    weights: str
    flip_g1: bool
    flip_g2: bool
    convention: str

    @property
    def factor(self) -> float:
        """The multiplier from the measured shape to the shear."""
        return 1.0 / (2.0 * self.responsivity) if self.kind == "distortion" else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "convention": self.convention,
            "e_rms": self.e_rms,
            "e_rms_source": self.e_rms_source,
            "responsivity": self.responsivity,
            "shear_factor": self.factor,
            "weights": self.weights,
            "flip_g1": self.flip_g1,
            "flip_g2": self.flip_g2,
        }


def calibrate(name: str, cal: ShearCalibration, summary: SampleSummary) -> Calibration:
    """Decide ``e_rms`` (given, or estimated from the summary) and the responsivity.

    Examples
    --------
    >>> s = SampleSummary(rows=4, n_shape=4, sum_e2=4 * 0.13, sum_sigma2=4 * 0.01)
    >>> c = calibrate("source_0", ShearCalibration(), s)
    >>> round(c.e_rms, 4), round(c.responsivity, 4), round(c.factor, 4)
    (0.3464, 0.88, 0.5682)
    """
    e_rms = math.nan
    source = "not used"
    if cal.needs_e_rms:
        if cal.e_rms is not None:
            e_rms, source = float(cal.e_rms), "given"
        else:
            if summary.n_shape == 0:
                raise SchemaError(f"source bin {name!r} has no usable shapes to estimate e_rms")
            var = (summary.sum_e2 - summary.sum_sigma2) / summary.n_shape
            noise = " - sigma^2" if cal.sigma is not None else " (measurement noise included)"
            if not var > 0:
                raise SchemaError(
                    f"source bin {name!r}: the estimated intrinsic shape variance "
                    f"<(e1^2+e2^2)/2{noise}> = {var:.4g} is not positive; give e_rms explicitly"
                )
            e_rms = math.sqrt(var)
            source = f"estimated from {summary.n_shape} sources: <(e1^2+e2^2)/2{noise}>"
    if cal.kind == "distortion":
        responsivity = 1.0 - e_rms**2
        convention = ("HSC Y1 (Mandelbaum et al. 2018): g = e / (2R), R = 1 - e_rms^2, "
                      "e = HSM re-Gaussianization distortion")  # fmt: skip
    else:
        responsivity = 1.0
        convention = "shapes used as shear estimates (g = e)"
    if cal.weights == WEIGHTS_INVERSE_VARIANCE:
        weights = "1 / (sigma^2 + e_rms^2)"
    elif cal.weights is None:
        weights = "uniform"
    else:
        weights = f"quantity {cal.weights!r}"
    return Calibration(
        cal.kind, e_rms, source, responsivity, weights, cal.flip_g1, cal.flip_g2, convention
    )


def convert(
    arrays: dict[str, NDArray[np.floating[Any]]],
    role: str,
    calibration: Calibration | None,
    inverse_variance: bool,
) -> dict[str, NDArray[np.float64]]:
    """TreeCorr-ready columns of a set of rows: ``ra, dec, [g1, g2], [w]`` (float64).

    Examples
    --------
    >>> cal = Calibration("shear", float("nan"), "not used", 1.0, "uniform", False, True, "")
    >>> out = convert({"ra": np.array([1.0]), "dec": np.array([2.0]),
    ...                "e1": np.array([0.1], dtype=np.float32), "e2": np.array([0.2])},
    ...               "source", cal, inverse_variance=False)
    >>> sorted(out), out["g1"].dtype, out["g2"].tolist()
    (['dec', 'g1', 'g2', 'ra'], dtype('float64'), [-0.2])
    """
    out = {
        "ra": arrays["ra"].astype(np.float64),
        "dec": arrays["dec"].astype(np.float64),
    }
    if role == "source":
        assert calibration is not None
        factor = calibration.factor
        g1 = arrays["e1"].astype(np.float64) * factor
        g2 = arrays["e2"].astype(np.float64) * factor
        out["g1"] = -g1 if calibration.flip_g1 else g1
        out["g2"] = -g2 if calibration.flip_g2 else g2
        if inverse_variance:
            sigma = arrays["sigma"].astype(np.float64)
            out["w"] = 1.0 / (sigma * sigma + calibration.e_rms**2)
    if "wq" in arrays:
        out["w"] = arrays["wq"].astype(np.float64)
    return out
