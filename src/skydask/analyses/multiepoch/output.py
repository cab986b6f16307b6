"""Writing results: metrics as JSON-ready records, figures as PNG files."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import astropy.units as u

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["metrics_record", "write_figures", "write_json", "write_result"]


def metrics_record(metrics: Mapping[str, u.Quantity]) -> dict[str, dict[str, Any]]:
    """``{name: {"value": v, "unit": "mmag"}}`` with NaN as None (JSON has no NaN).

    Examples
    --------
    >>> metrics_record({"PA1_r": 7.4 * u.mmag, "PA1_i": float("nan") * u.mmag})
    {'PA1_r': {'value': 7.4, 'unit': 'mmag'}, 'PA1_i': {'value': None, 'unit': 'mmag'}}
    """
    out = {}
    for name, quantity in metrics.items():
        value = float(quantity.value)
        out[name] = {
            "value": value if math.isfinite(value) else None,
            "unit": quantity.unit.to_string(),
        }
    return out


def write_json(path: Path, record: Mapping[str, Any]) -> Path:
    """Write a JSON record (NaN refused: callers pass None)."""
    path.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    return path


def write_figures(figures: Mapping[str, Figure], directory: Path) -> dict[str, Path]:
    """Save figures as ``<name>.png``; returns the files by file name."""
    written = {}
    for name, fig in figures.items():
        path = directory / f"{name}.png"
        fig.savefig(path, dpi=110)
        written[path.name] = path
    return written


def write_result(
    directory: str | Path,
    *,
    analysis: str,
    tables: Mapping[str, pd.DataFrame],
    metrics_file: str,
    metrics: Mapping[str, u.Quantity],
    config: Mapping[str, Any],
    reduction: Mapping[str, Any],
    figures: Mapping[str, Figure],
) -> dict[str, Path]:
    """Write a result's tables (``.csv`` or ``.parquet`` by file name, no index), its metrics
    record as JSON and its figures as PNG into ``directory``; returns the files by name."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, table in tables.items():
        path = out / name
        if path.suffix == ".csv":
            table.to_csv(path, index=False)
        else:
            table.to_parquet(path, index=False)
        written[path.name] = path
    record = {
        "analysis": analysis,
        "metrics": metrics_record(metrics),
        "config": dict(config),
        "reduction": dict(reduction),
    }
    path = write_json(out / metrics_file, record)
    written[path.name] = path
    written.update(write_figures(figures, out))
    return written
