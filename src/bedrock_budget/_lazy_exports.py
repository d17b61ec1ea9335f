"""Module-level ``__getattr__`` for packages whose public names load on first use.

A package lists each lazily exported name once, with the module it lives in, and repeats it only in an
``if TYPE_CHECKING:`` import (``from home import name as name``: the alias marks it re-exported for mypy's
strict mode and for IDEs, which do not run ``__getattr__``)::

    _EXPORTS: Final = {"PrometheusListener": "bedrock_budget.metrics.listener"}
    __all__ = sorted(_EXPORTS)
    __getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

    if TYPE_CHECKING:
        from bedrock_budget.metrics.listener import PrometheusListener as PrometheusListener

``tests/structure/test_lazy_exports.py`` holds the mapping, ``__all__`` and those imports equal.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    namespace: dict[str, Any], exports: Mapping[str, str], *, submodules: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the package whose globals are ``namespace``.

    ``exports`` maps a name to the module it is imported from, absolute or relative to the package (``.x``).
    A name is imported on first access and then stored in ``namespace``, so later reads are plain global
    lookups. ``submodules`` are names of subpackages returned, imported, on first access.
    """
    package: str = namespace["__name__"]
    homes = dict(exports)
    children = frozenset(submodules)

    def load(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            if name in children:
                return importlib.import_module(f"{package}.{name}")
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, package), name)
        namespace[name] = value
        return value

    def listing() -> list[str]:
        return sorted({*namespace, *homes})

    return load, listing
