"""Budget stores, chosen by URI.

``from_uri("memory://")`` (the default), ``from_uri("redis://localhost:6379/0", prefix="app:")``,
``rediss://``, ``redis+sentinel://``, ``redis+cluster://`` (``valkey://`` and ``valkeys://`` are other names
for ``redis://`` and ``rediss://``). Backends are imported on first use, so importing this package never
loads redis-py. Third parties add schemes with :func:`register_store`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import urlsplit

from bedrock_budget.errors import ConfigurationError
from bedrock_budget.stores.base import (
    CounterRef,
    CounterState,
    Hold,
    Mark,
    ReserveResult,
    SettleOutcome,
    SettleRequest,
    SettleStatus,
    Spend,
    Store,
)
from bedrock_budget.stores.memory import MemoryStore

__all__ = [
    "CounterRef",
    "CounterState",
    "Hold",
    "Mark",
    "MemoryStore",
    "ReserveResult",
    "SettleOutcome",
    "SettleRequest",
    "SettleStatus",
    "Spend",
    "Store",
    "from_uri",
    "register_store",
    "schemes",
]

StoreFactory = Callable[..., Store]

# The built-in backends and the schemes each serves: the same tuples as the classes' ``schemes`` (a test
# holds them equal). They are spelled out here because choosing a backend must not import it: reading the
# classes would load redis-py for ``memory://``, for a mistyped scheme and for :func:`schemes`.
_BUILTIN_STORES: Final[Mapping[str, tuple[str, ...]]] = {
    "bedrock_budget.stores.memory:MemoryStore": ("memory",),
    "bedrock_budget.stores.redis:RedisStore": ("redis", "rediss", "unix"),
    "bedrock_budget.stores.redis:RedisSentinelStore": ("redis+sentinel", "rediss+sentinel"),
    "bedrock_budget.stores.redis:RedisClusterStore": ("redis+cluster", "rediss+cluster"),
}
# Other names for a scheme: the store is chosen by the alias, the URI reaches it with the scheme's name.
_SCHEME_ALIASES: Final[Mapping[str, str]] = {"valkey": "redis", "valkeys": "rediss"}

_REGISTRY: dict[str, StoreFactory | str] = {
    scheme: target for target, served in _BUILTIN_STORES.items() for scheme in served
}
_REGISTRY.update({alias: _REGISTRY[scheme] for alias, scheme in _SCHEME_ALIASES.items()})


def register_store(scheme: str, factory: StoreFactory | str) -> None:
    """Serve ``scheme://`` URIs with ``factory(uri, **options)`` (or a ``"module:Class"`` whose
    ``from_uri`` does that)."""
    _REGISTRY[scheme.lower()] = factory


def schemes() -> list[str]:
    return sorted(_REGISTRY)


def _resolve(target: StoreFactory | str) -> StoreFactory:
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    factory: StoreFactory = cls.from_uri
    return factory


def from_uri(uri: str = "memory://", **options: Any) -> Store:
    """A store for ``uri``; ``options`` (``prefix``, ``key_slack``, ``tombstone_retention``,
    ``socket_timeout``, ``connect_timeout``, ``retries``, ``parallel``) go to the backend."""
    if not isinstance(uri, str) or "://" not in uri:
        raise ConfigurationError(
            f"store URI {uri!r} must look like scheme://..., e.g. memory:// or redis://host"
        )
    scheme = urlsplit(uri).scheme.lower()
    target = _REGISTRY.get(scheme)
    if target is None:
        raise ConfigurationError(f"unknown store scheme {scheme!r}; known: {', '.join(schemes())}")
    uri = _SCHEME_ALIASES.get(scheme, scheme) + uri[len(scheme) :]
    with configuration_errors(scheme):
        return _resolve(target)(uri, **options)


@contextmanager
def configuration_errors(scheme: str) -> Iterator[None]:
    """Report a store that cannot be made from its URI and options (an unknown option, a bad prefix) as a
    :class:`ConfigurationError`, whichever backend (sync or async) was being made."""
    try:
        yield
    except TypeError as exc:
        raise ConfigurationError(f"bad option for {scheme}:// store: {exc}") from exc
    except ValueError as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"bad {scheme}:// store configuration: {exc}") from exc
