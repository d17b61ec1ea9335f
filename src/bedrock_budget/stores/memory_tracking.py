"""The memory store's spend ledger: the Redis layout of ``stores.tracking`` as dictionaries.

Same keys, same exactly-once rule (a reservation id is applied once per dedupe hash) and same expiry as
the Lua script; expired keys are pruned every few thousand writes and never read. The memory store's lock
makes each settlement atomic. Top-N reads sort a bucket's values (``heapq.nlargest``): linear in the
values of a bucket, which a single process holds few of; Redis answers them from its sorted sets.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TypeVar

from bedrock_budget.stores.tracking import TrackEntry, fields_of, writes

_SWEEP_EVERY = 4096
T = TypeVar("T")


class MemoryTracks:
    """Tracking data of one memory store. Not thread-safe by itself: the store holds its lock."""

    def __init__(self) -> None:
        self._zsets: dict[str, dict[str, int]] = {}
        self._hashes: dict[str, dict[str, int]] = {}
        self._dedupe: dict[str, set[str]] = {}
        self._expires: dict[str, int] = {}
        self._writes = 0

    def apply(self, prefix: str, rid: str, entry: TrackEntry, tombstone_retention: int, now_ms: int) -> None:
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self.sweep(now_ms)
        fields = fields_of(entry)
        for write in writes(prefix, rid, entry, tombstone_retention):
            seen = self._live(self._dedupe, write.dedupe, now_ms)
            if seen is None:
                seen = self._dedupe[write.dedupe] = set()
            if rid in seen:
                continue
            seen.add(rid)
            self._expires[write.dedupe] = write.dedupe_at_ms
            for zkey, vkey, at_ms in write.buckets:
                zset = self._live(self._zsets, zkey, now_ms)
                if zset is None:
                    zset = self._zsets[zkey] = {}
                zset[write.value] = zset.get(write.value, 0) + entry.cost
                values = self._live(self._hashes, vkey, now_ms)
                if values is None:
                    values = self._hashes[vkey] = {}
                values["n"] = values.get("n", 0) + 1
                for name, amount in fields:
                    values[name] = values.get(name, 0) + amount
                self._expires[zkey] = self._expires[vkey] = at_ms

    def _live(self, table: dict[str, T], key: str, now_ms: int) -> T | None:
        found = table.get(key)
        if found is not None and self._expires.get(key, now_ms + 1) <= now_ms:
            del table[key]
            del self._expires[key]
            return None
        return found

    def sweep(self, now_ms: int) -> None:
        for key in [k for k, at in self._expires.items() if at <= now_ms]:
            del self._expires[key]
            self._zsets.pop(key, None)
            self._hashes.pop(key, None)
            self._dedupe.pop(key, None)

    def members(self, zsets: Sequence[str], top: int | None, now_ms: int) -> list[list[tuple[str, float]]]:
        found: list[list[tuple[str, float]]] = []
        for key in zsets:
            zset = self._live(self._zsets, key, now_ms) or {}
            items = zset.items()
            ranked = (
                heapq.nlargest(top, items, key=_rank)
                if top is not None
                else sorted(items, key=_rank, reverse=True)
            )
            found.append([(value, float(score)) for value, score in ranked])
        return found

    def values(self, keys: Sequence[str], now_ms: int) -> list[dict[str, int]]:
        found: list[dict[str, int]] = []
        for key in keys:
            values = self._live(self._hashes, key, now_ms)
            found.append(dict(values) if values is not None else {})
        return found

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]


def _rank(item: tuple[str, int]) -> tuple[int, str]:
    return item[1], item[0]
