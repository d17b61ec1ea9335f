"""Refusing a Redis that may evict budget data.

Budget counters carry TTLs (their window's end plus ``key_slack``), so under memory pressure a server with
an evicting ``maxmemory-policy`` drops them: ``volatile-*`` policies pick keys with a TTL, which is every
counter, and ``allkeys-*`` any key. An evicted counter starts again at $0: the budget silently resets and
its holds vanish. Managed services often ship such a policy (ElastiCache defaults to ``volatile-lru``).

The store reads the policy before its first operation (``CONFIG GET maxmemory-policy``, or ``INFO memory``
where ``CONFIG`` is renamed or not permitted, as on managed services) and again after an outage; an
evicting policy raises :class:`~bedrock_budget.errors.EvictionPolicyError` unless the store was made with
``allow_eviction=True`` (``?allow_eviction=1``). A server that answers neither is accepted with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Final

from redis.exceptions import ResponseError

from bedrock_budget.errors import EvictionPolicyError

log = logging.getLogger("bedrock_budget.store")

#: Policies that never evict a key.
SAFE_POLICIES: Final = frozenset({"noeviction"})


def policy_of(client: Any) -> str | None:
    """The server's ``maxmemory-policy``: from ``CONFIG GET``, else from ``INFO memory``; ``None`` when
    neither is allowed."""
    try:
        reply = client.config_get("maxmemory-policy")
        value = reply.get("maxmemory-policy") if isinstance(reply, dict) else None
        if value is not None:
            return _text(value)
    except ResponseError:
        pass  # CONFIG renamed, disabled or not permitted to this user
    try:
        info = client.info("memory")
    except ResponseError:
        return None
    value = info.get("maxmemory_policy") if isinstance(info, dict) else None
    return None if value is None else _text(value)


def check_policies(store: str, clients: Iterable[Any], *, allow_eviction: bool) -> None:
    """Raise :class:`EvictionPolicyError` when any server may evict keys (unless ``allow_eviction``)."""
    for client in clients:
        judge(store, policy_of(client), allow_eviction=allow_eviction)


def judge(store: str, policy: str | None, *, allow_eviction: bool) -> None:
    """One server's ``maxmemory-policy`` (``None``: unreadable): raise or warn as the module says."""
    if policy is None:
        log.warning(
            "budget store %s: cannot read maxmemory-policy (CONFIG and INFO refused); make sure it is "
            "noeviction, or budget counters may be evicted and restart at $0",
            store,
        )
        return
    if policy in SAFE_POLICIES:
        return
    if allow_eviction:
        log.warning(
            "budget store %s has maxmemory-policy %s: budget counters may be evicted (allowed)",
            store,
            policy,
        )
        return
    raise EvictionPolicyError(store, policy)


def evicted_keys(clients: Iterable[Any]) -> int:
    """Keys the servers have evicted since they started (``INFO stats``), summed."""
    total = 0
    for client in clients:
        total += int(client.info("stats").get("evicted_keys", 0))
    return total


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
