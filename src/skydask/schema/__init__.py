"""Quantities: the DC2 and Rubin DP1 object columns mapped onto one set of names.

Quantities are declared as data (``quantities.yaml``) and expanded per band; derived ones are
expressions in the same whitelist language as catalogue filters (:mod:`.expressions`).
"""

from skydask.schema.definitions import BANDS, QuantityDefinition, definitions, native_dtypes
from skydask.schema.schema import QuantityInfo, Schema, detect_flavour

__all__ = [
    "BANDS",
    "QuantityDefinition",
    "QuantityInfo",
    "Schema",
    "definitions",
    "detect_flavour",
    "native_dtypes",
]
