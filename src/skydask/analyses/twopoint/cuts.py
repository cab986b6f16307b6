"""Named, overridable cut sets for lensing sources and lenses, declared as data.

A cut set is an ordered table of named cuts, each a where-string in the catalogue's filter
language (parsed by :meth:`skydask.Catalog.where`, never evaluated as Python), each on or off
by default. :data:`CUT_SETS` holds DESC's defaults:

``source`` (the HSC first-year / DC2 shear selection that TXPipe applies): extended, clean,
centroid and shape flags unset, a finite i magnitude, cModel S/N above 10 and cModel
magnitude below 24.5 in i, HSM resolution at least 0.3, total distortion below 2, shape
uncertainty at most 0.4; optionally (off by default) blendedness below ``10**-0.375``.

``lens``: a magnitude-limited galaxy sample, ``mag_i < 24.1``, of extended, clean objects.

Override a cut by name (a new where-string), switch one on or off (True/False/None), or add a
new named cut::

    cuts = cut_set("source", blendedness=True, snr="snr_i_cModel > 20", mag=None)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from skydask.catalog.catalog import Catalog
from skydask.errors import SpecError

__all__ = ["CUT_SETS", "Cut", "CutSet", "cut_set"]


@dataclass(frozen=True)
class Cut:
    """One named cut: a where-string, whether it applies by default, and why it is there."""

    name: str
    where: str
    enabled: bool = True
    why: str = ""


def _table(*cuts: Cut) -> Mapping[str, Cut]:
    return MappingProxyType({c.name: c for c in cuts})


CUT_SETS: Mapping[str, Mapping[str, Cut]] = MappingProxyType(
    {
        "source": _table(
            Cut("extended", "extendedness > 0", why="galaxies, not stars"),
            Cut("clean", "clean", why="no flagged pixels, no failed deblend"),
            Cut("centroid", "xy_flag == 0", why="the centroid was measured"),
            Cut("shape_flag", "ext_shapeHSM_HsmShapeRegauss_flag == 0",
                why="the HSM shape was measured"),
            Cut("finite_mag", "isfinite(mag_i)", why="detected in i"),
            Cut("snr", "snr_i_cModel > 10", why="shape noise and biases grow at low S/N"),
            Cut("mag", "mag_i_cModel < 24.5", why="the photometric-redshift limit"),
            Cut("resolution", "ext_shapeHSM_HsmShapeRegauss_resolution >= 0.3",
                why="resolved well enough for the PSF correction"),
            Cut("etot", "shear_etot < 2", why="unphysical distortions"),
            Cut("sigma", "ext_shapeHSM_HsmShapeRegauss_sigma <= 0.4",
                why="too noisy shapes"),
            Cut("blendedness", "blendedness < 10**-0.375", enabled=False,
                why="strongly blended objects (optional in DESC's selection)"),
        ),
        "lens": _table(
            Cut("extended", "extendedness > 0", why="galaxies, not stars"),
            Cut("clean", "clean", why="no flagged pixels, no failed deblend"),
            Cut("mag", "mag_i < 24.1", why="the magnitude limit of the lens sample"),
        ),
    }
)  # fmt: skip


@dataclass(frozen=True)
class CutSet:
    """An ordered set of named cuts, some enabled.

    Examples
    --------
    >>> cuts = cut_set("lens")
    >>> cuts.expression()
    '(extendedness > 0) & (clean) & (mag_i < 24.1)'
    >>> cuts.with_cuts(mag="mag_i < 23", clean=False).expression()
    '(extendedness > 0) & (mag_i < 23)'
    >>> cut_set("source").with_cuts(blendedness=True).enabled_names[-1]
    'blendedness'
    """

    name: str
    cuts: Mapping[str, Cut]

    @property
    def enabled_names(self) -> list[str]:
        """Names of the cuts that apply, in order."""
        return [c.name for c in self.cuts.values() if c.enabled]

    @property
    def enabled(self) -> dict[str, str]:
        """The cuts that apply: name to where-string, in order."""
        return {c.name: c.where for c in self.cuts.values() if c.enabled}

    def with_cuts(self, **changes: str | bool | None) -> CutSet:
        """A copy with cuts replaced (a string), switched on (True) or off (False or None).

        A new name with a string adds a cut at the end.
        """
        table = dict(self.cuts)
        for name, change in changes.items():
            if isinstance(change, str):
                old = table.get(name)
                table[name] = Cut(name, change, True, old.why if old else "user cut")
            elif change is None or isinstance(change, bool):
                if name not in table:
                    raise SpecError(
                        f"cut set {self.name!r} has no cut {name!r} to switch "
                        f"{'on' if change else 'off'}; its cuts are {list(table)}"
                    )
                old = table[name]
                table[name] = Cut(name, old.where, bool(change), old.why)
            else:
                raise SpecError(
                    f"cut {name!r} of cut set {self.name!r} must be a where-string, True, False "
                    f"or None; got {change!r}"
                )
        return CutSet(self.name, MappingProxyType(table))

    def expression(self) -> str | None:
        """All enabled cuts ANDed into one where-string (None when none is enabled)."""
        parts = [f"({w})" for w in self.enabled.values()]
        return " & ".join(parts) if parts else None

    def apply(self, catalog: Catalog) -> Catalog:
        """The catalogue with every enabled cut applied (checked before anything is read)."""
        for name, where in self.enabled.items():
            try:
                catalog = catalog.where(where)
            except SpecError:
                raise
            except (KeyError, ValueError) as exc:
                # name the cut, so that a missing quantity points at the cut set to change
                raise type(exc)(f"cut {name!r} of cut set {self.name!r} ({where!r}): {exc}") \
                    from exc  # fmt: skip
        return catalog

    def to_dict(self) -> dict[str, str]:
        return dict(self.enabled)


def cut_set(name: str, **changes: str | bool | None) -> CutSet:
    """The named cut set of :data:`CUT_SETS`, with optional changes (see :meth:`CutSet.with_cuts`).

    Examples
    --------
    >>> cut_set("source").enabled_names  # doctest: +NORMALIZE_WHITESPACE
    ['extended', 'clean', 'centroid', 'shape_flag', 'finite_mag', 'snr', 'mag', 'resolution',
     'etot', 'sigma']
    """
    if name not in CUT_SETS:
        raise SpecError(f"no cut set {name!r}; expected one of {sorted(CUT_SETS)}")
    base = CutSet(name, CUT_SETS[name])
    return base.with_cuts(**changes) if changes else base
