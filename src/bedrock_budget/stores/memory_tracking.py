"""The memory store's spend ledger: the Redis layout of ``stores.tracking`` as dictionaries.

Same keys, same exactly-once rule (a call's writes are applied together, once per reservation id, checked
in the dedupe hash of its first shard) and same expiry as
the Lua script; expired keys are pruned every few thousand writes and never read. The memory store's lock
makes each settlement atomic. A bucket (one sorted set in Redis) holds its values' hashes, which expire
with it, so a write checks one expiry per bucket. Top-N reads sort a bucket's values
(``heapq.nlargest``): linear in the values of a bucket, which a single process holds few of; Redis
answers them from its sorted sets.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from bedrock_budget.stores.tracking import TrackEntry, TrackWrite, fields_of, writes

_SWEEP_EVERY = 4096
_RESOLVED = 4096


class _Bucket:
    """One bucket of one dimension in one shard: each value's fields (``c`` is its sorted-set score)."""

    __slots__ = ("expires_ms", "keys", "values")

    def __init__(self, expires_ms: int) -> None:
        self.expires_ms = expires_ms
        self.values: dict[str, dict[str, int]] = {}
        #: The value-hash key of each value, for reads by key and for pruning.
        self.keys: list[str] = []


class MemoryTracks:
    """Tracking data of one memory store. Not thread-safe by itself: the store holds its lock."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        #: Value-hash key -> (its bucket, its fields).
        self._hashes: dict[str, tuple[_Bucket, dict[str, int]]] = {}
        #: Dedupe key -> (expires at ms, reservation ids).
        self._dedupe: dict[str, tuple[int, set[str]]] = {}
        self._writes = 0
        #: id(layout) -> (the layout, when its first bucket expires, its value hashes): see ``apply``.
        self._resolved: dict[int, tuple[TrackWrite, int, list[dict[str, int]]]] = {}

    def apply(self, prefix: str, rid: str, entry: TrackEntry, tombstone_retention: int, now_ms: int) -> None:
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self.sweep(now_ms)
        fields = fields_of(entry)
        laid_out = writes(prefix, rid, entry, tombstone_retention)
        if not laid_out:
            return
        first = laid_out[0]
        found = self._dedupe.get(first.dedupe)
        if found is None or found[0] <= now_ms:
            found = self._dedupe[first.dedupe] = (first.dedupe_at_ms, set())
        seen = found[1]
        if rid in seen:
            return
        seen.add(rid)
        calls = entry.calls
        for write in laid_out:
            # A busy user's calls repeat one layout: its value hashes are looked up once while they live.
            held = self._resolved.get(id(write))
            if held is None or held[0] is not write or held[1] <= now_ms:
                held = self._resolved[id(write)] = self._resolve(write, now_ms)
                if len(self._resolved) > _RESOLVED:
                    self._resolved.clear()
                    self._resolved[id(write)] = held
            for counts in held[2]:
                counts["n"] += calls
                for name, amount in fields:
                    counts[name] = counts.get(name, 0) + amount

    def _resolve(self, write: TrackWrite, now_ms: int) -> tuple[TrackWrite, int, list[dict[str, int]]]:
        """The value hashes a write adds to (made where missing), and when the first of them expires."""
        buckets = self._buckets
        found: list[dict[str, int]] = []
        until = None
        for value, places in write.dims:
            for zkey, vkey, at_ms in places:
                bucket = buckets.get(zkey)
                if bucket is None or bucket.expires_ms <= now_ms:
                    if bucket is not None:
                        self._drop(zkey, bucket)
                    bucket = buckets[zkey] = _Bucket(at_ms)
                counts = bucket.values.get(value)
                if counts is None:
                    counts = bucket.values[value] = {"c": 0, "n": 0}
                    bucket.keys.append(vkey)
                    self._hashes[vkey] = (bucket, counts)
                found.append(counts)
                until = bucket.expires_ms if until is None else min(until, bucket.expires_ms)
        return write, until if until is not None else now_ms, found

    def _drop(self, zkey: str, bucket: _Bucket) -> None:
        del self._buckets[zkey]
        for vkey in bucket.keys:
            held = self._hashes.get(vkey)
            if held is not None and held[0] is bucket:
                del self._hashes[vkey]

    def sweep(self, now_ms: int) -> None:
        for zkey, bucket in [(k, b) for k, b in self._buckets.items() if b.expires_ms <= now_ms]:
            self._drop(zkey, bucket)
        for key in [k for k, (at, _) in self._dedupe.items() if at <= now_ms]:
            del self._dedupe[key]

    def members(self, zsets: Sequence[str], top: int | None, now_ms: int) -> list[list[tuple[str, float]]]:
        found: list[list[tuple[str, float]]] = []
        for key in zsets:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.expires_ms <= now_ms:
                found.append([])
                continue
            items = [(value, counts["c"]) for value, counts in bucket.values.items()]
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
            held = self._hashes.get(key)
            if held is None or held[0].expires_ms <= now_ms:
                found.append({})
            else:
                found.append({name: amount for name, amount in held[1].items() if amount or name == "n"})
        return found

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]


def _rank(item: tuple[str, int]) -> tuple[int, str]:
    return item[1], item[0]
