"""The exceptions skydask raises.

One small family, so that callers can catch what they mean: a bad quantity name, a bad
filter string, a file that cannot be read, a run spec that does not validate. Every message
names the thing at fault (file, column, quantity, parameter) and what was expected.
"""

from __future__ import annotations

__all__ = [
    "CatalogReadError",
    "FilterSyntaxError",
    "SchemaError",
    "SkydaskError",
    "SpecError",
    "UnknownQuantityError",
]


class SkydaskError(Exception):
    """Base class of every error skydask raises on purpose."""


class SchemaError(SkydaskError, ValueError):
    """A schema does not fit the data: missing or mismatched columns, unknown flavour."""


class UnknownQuantityError(SchemaError, KeyError):
    """A quantity name that the catalogue's schema does not know.

    The message lists the nearest known names, so a typo is found at once.
    """

    def __str__(self) -> str:  # KeyError would quote the message; show it as written
        return str(self.args[0]) if self.args else ""


class FilterSyntaxError(SkydaskError, ValueError):
    """A filter or quantity expression that the whitelist grammar does not accept."""


class CatalogReadError(SkydaskError, OSError):
    """A file of a catalogue could not be read (missing, truncated, corrupt, inconsistent)."""


class SpecError(SkydaskError, ValueError):
    """A run specification or configuration file that does not validate."""
