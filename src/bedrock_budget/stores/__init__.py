"""Budget stores, chosen by URI.

``from_uri("memory://")`` (the default), ``from_uri("redis://localhost:6379/0", prefix="app:")``,
``rediss://``, ``redis+sentinel://``, ``redis+cluster://``. Backends are imported on first use, so importing
this package never loads redis-py. Third parties add schemes with :func:`register_store`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any
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

_REGISTRY: dict[str, StoreFactory | str] = {
    "memory": "bedrock_budget.stores.memory:MemoryStore",
    "redis": "bedrock_budget.stores.redis:RedisStore",
    "rediss": "bedrock_budget.stores.redis:RedisStore",
    "unix": "bedrock_budget.stores.redis:RedisStore",
    "redis+sentinel": "bedrock_budget.stores.redis:RedisSentinelStore",
    "rediss+sentinel": "bedrock_budget.stores.redis:RedisSentinelStore",
    "redis+cluster": "bedrock_budget.stores.redis:RedisClusterStore",
    "rediss+cluster": "bedrock_budget.stores.redis:RedisClusterStore",
    "valkey": "bedrock_budget.stores.redis:RedisStore",
    "valkeys": "bedrock_budget.stores.redis:RedisStore",
}


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
    uri = scheme + uri[len(scheme) :]
    if scheme.startswith("valkey"):
        uri = "redis" + uri[len("valkey") :]
    try:
        return _resolve(target)(uri, **options)
    except TypeError as exc:
        raise ConfigurationError(f"bad option for {scheme}:// store: {exc}") from exc
    except ValueError as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"bad {scheme}:// store configuration: {exc}") from exc
