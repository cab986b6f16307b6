"""The problem classes a checker can report, read once from ``problems.yaml`` and validated.

The classes are data, not code: the groups of the DES Exposure Checker (masking, sky, flat
field and sensor, reflections, tracks, saturation, defects, other) extended with DC2's
simulated effects. Each class says which keyboard key selects it in the viewer and what one
click of it flags in the mask layer (:mod:`.masklayer`): a canonical mask plane of
:mod:`skydask.images.masks` and a region (a disc, a column, a row or the whole image).

Examples
--------
>>> problem_class("satellite").plane, problem_class("satellite").group
('STREAK', 'Tracks')
>>> problem_class("awesome").plane is None
True
>>> [g for g, _ in grouped()][:3]
['Masking', 'Sky', 'Flat field and sensor']
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from skydask.errors import SchemaError
from skydask.images.masks import MASK_PLANES

__all__ = [
    "RESERVED_KEYS",
    "ProblemClass",
    "grouped",
    "problem_class",
    "problem_classes",
    "problem_codes",
]

_FILE = Path(__file__).with_name("problems.yaml")
_REGIONS = ("disc", "column", "row", "image")
#: Keys the viewer uses for actions (fine, submit, mask, stretch, zoom, false positive, undo).
RESERVED_KEYS = frozenset("nmzfu+-0?")


@dataclass(frozen=True)
class ProblemClass:
    """One problem class (see ``problems.yaml`` for the meaning of each field)."""

    code: str
    label: str
    group: str
    key: str | None
    plane: str | None
    region: str
    size: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the API and the viewer."""
        return {
            "code": self.code,
            "label": self.label,
            "group": self.group,
            "key": self.key,
            "plane": self.plane,
            "region": self.region,
            "size": self.size,
        }


def _parse(record: dict[str, Any], group: str) -> ProblemClass:
    where = f"{_FILE.name}: class {record.get('code')!r}"
    missing = {"code", "label", "key", "plane", "region", "size"} - set(record)
    if missing:
        raise SchemaError(f"{where} lacks the fields {sorted(missing)}")
    plane, region = record["plane"], record["region"]
    if plane is not None and plane not in MASK_PLANES:
        raise SchemaError(f"{where}: plane {plane!r} is not a canonical mask plane")
    if region not in _REGIONS:
        raise SchemaError(f"{where}: region {region!r} must be one of {_REGIONS}")
    key = record["key"]
    if key is not None and (len(str(key)) != 1 or str(key) in RESERVED_KEYS):
        raise SchemaError(f"{where}: key {key!r} must be one character not in {RESERVED_KEYS}")
    return ProblemClass(
        code=str(record["code"]),
        label=str(record["label"]),
        group=group,
        key=None if key is None else str(key),
        plane=plane,
        region=region,
        size=int(record["size"]),
    )


@functools.cache
def problem_classes() -> tuple[ProblemClass, ...]:
    """Every problem class, in the order of the file.

    Raises
    ------
    SchemaError
        If ``problems.yaml`` has a duplicate code or key, an unknown plane or region.
    """
    data = yaml.safe_load(_FILE.read_text())
    out = [_parse(rec, str(g["name"])) for g in data["groups"] for rec in g["classes"]]
    for attr in ("code", "key"):
        values = [getattr(c, attr) for c in out if getattr(c, attr) is not None]
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise SchemaError(f"{_FILE.name}: duplicate {attr}s {dupes}")
    return tuple(out)


@functools.cache
def problem_codes() -> frozenset[str]:
    """The codes of :func:`problem_classes`."""
    return frozenset(c.code for c in problem_classes())


def problem_class(code: str) -> ProblemClass:
    """The class of one code.

    Raises
    ------
    SchemaError
        If ``code`` is not a known class; the message lists the known codes.
    """
    for c in problem_classes():
        if c.code == code:
            return c
    raise SchemaError(f"unknown problem class {code!r}; expected one of {sorted(problem_codes())}")


def grouped() -> list[tuple[str, list[ProblemClass]]]:
    """The classes by group, groups in the order of the file."""
    out: dict[str, list[ProblemClass]] = {}
    for c in problem_classes():
        out.setdefault(c.group, []).append(c)
    return list(out.items())
