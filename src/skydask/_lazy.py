"""Lazy exports for skydask's packages (PEP 562).

A package lists the names it exports and the module each comes from; :func:`lazy_exports`
gives it the module-level ``__getattr__`` and ``__dir__`` that import a name's module on first
use and keep the value, so ``import skydask`` (or a Dask worker unpickling one task) loads
only what is used. Type checkers see the names through the package's ``if TYPE_CHECKING:``
imports.

Examples
--------
>>> import skydask
>>> skydask.open_catalog is skydask.catalog.open_catalog
True
"""

from __future__ import annotations

import pkgutil
import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from types import ModuleType
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a name to its module; the
    package's modules and subpackages are reachable as attributes too (imported on first use,
    as eager imports made them before).

    A name exported from a module of the same name (``skydask.analyses.stellar_locus``, the
    function) stays the exported value when that module is imported later: Python binds a
    newly imported submodule to its package's attribute, which eager imports used to hide.
    """
    module = sys.modules[package]
    namespace = vars(module)
    subs = frozenset(info.name for info in pkgutil.iter_modules(module.__path__))

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(import_module(exports[name]), name)
        elif name in subs:
            value = import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports) | subs)

    shadowed = frozenset(name for name in exports if exports[name] == f"{package}.{name}")
    if shadowed:
        module.__class__ = _keeping(shadowed)
    return __getattr__, __dir__


def _keeping(names: frozenset[str]) -> type[ModuleType]:
    """A module type that does not let a submodule import rebind the given names."""

    class _Package(ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            if name in names and isinstance(value, ModuleType):
                return
            super().__setattr__(name, value)

    return _Package
