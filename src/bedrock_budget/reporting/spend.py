"""Reading the spend ledger: spend, calls and tokens per value of a tracked key (or key pair), over a range
of hourly or daily UTC buckets, from any store (``stores.tracking`` has the layout).

``bb.spend(store, by=("user",), since=..., until=..., granularity="day", top=20)`` sums the buckets whose
start lies in ``[since, until)`` (``since`` rounded down to its bucket). ``top`` reads each shard's
highest values from its sorted set when the range is one bucket (cheap on a million users); over several
buckets every value of the range is summed first. Money is exact: integer nano-dollars from the store,
``Decimal`` dollars here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

from bedrock_budget.errors import ConfigurationError
from bedrock_budget.pricing.money import nanos_to_usd
from bedrock_budget.stores.base import Store
from bedrock_budget.stores.tracking import (
    DAY,
    HOUR,
    SHARDS,
    TOTAL,
    dimension,
    encode_value,
    split_pair,
    tag,
    value_key,
    zset_key,
)

Granularity = Literal["hour", "day"]
When = datetime | date | float | int
#: The most buckets one read may span (400 days of daily buckets, or about 17 days of hourly ones).
MAX_BUCKETS = 401


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One value of a tracked key (``values`` has one entry per key of ``by``) over the range read, or
    over one bucket (``bucket``, its UTC start) when read per bucket."""

    by: tuple[str, ...]
    values: tuple[str, ...]
    cost_nanos: int
    calls: int
    tokens: Mapping[str, int] = field(default_factory=dict)
    bucket: datetime | None = None

    @property
    def cost_usd(self) -> Decimal:
        return nanos_to_usd(self.cost_nanos)


def spend(
    store: Store,
    by: str | Sequence[str] = ("user",),
    *,
    since: When | None = None,
    until: When | None = None,
    granularity: Granularity = "day",
    top: int | None = None,
    per_bucket: bool = False,
    now: float | None = None,
) -> list[SpendRow]:
    """Spend per value of ``by`` (a key, a key pair such as ``("app", "model")``, or ``()`` for the total),
    highest first. ``since`` defaults to the start of the current bucket, ``until`` to now."""
    keys = (by,) if isinstance(by, str) else tuple(by)
    dim = dimension(keys) if keys else TOTAL
    if granularity not in ("hour", "day"):
        raise ConfigurationError(f"granularity must be 'hour' or 'day', not {granularity!r}")
    if top is not None and top < 1:
        raise ConfigurationError(f"top must be at least 1, not {top}")
    size, code = (HOUR, "h") if granularity == "hour" else (DAY, "d")
    clock = time.time() if now is None else now
    end = int(clock) + 1 if until is None else _seconds(until)
    start = end - 1 if since is None else _seconds(since)
    buckets = list(range(start - start % size, end, size))
    if len(buckets) > MAX_BUCKETS:
        raise ConfigurationError(f"the range spans {len(buckets)} {granularity}s; read at most {MAX_BUCKETS}")
    now_ms = int(clock * 1000)
    bases = [tag(store.prefix, s) for s in range(SHARDS)]
    zsets = [zset_key(base, dim, code, b) for base in bases for b in buckets]
    if top is not None and len(buckets) == 1:
        hashes = [value_key(base, dim, code, buckets[0], "") for base in bases]
        places, read = _top(store, zsets, hashes, buckets[0], top, now_ms)
    else:
        # Every value of the range: its spend is the sum of its scores (exact below 2^53 nano-dollars), so
        # only the chosen values' hashes are read.
        scores: dict[str, float] = {}
        shards: dict[str, set[int]] = {}
        for index, found in enumerate(store.track_members(zsets, top=None, now_ms=now_ms)):
            for value, score in found:
                scores[value] = scores.get(value, 0.0) + score
                shards.setdefault(value, set()).add(index // len(buckets))
        chosen = sorted(scores, key=lambda v: (-scores[v], v))[:top]
        places = [(v, s, b) for v in chosen for s in sorted(shards[v]) for b in buckets]
        read = store.track_values([value_key(bases[s], dim, code, b, v) for v, s, b in places], now_ms=now_ms)
    sums: dict[tuple[str, int | None], dict[str, int]] = {}
    for (value, _, bucket), fields in zip(places, read, strict=True):
        if not fields:
            continue
        total = sums.setdefault((value, bucket if per_bucket else None), {})
        for name, amount in fields.items():
            total[name] = total.get(name, 0) + amount
    if top is not None:
        spent: dict[str, int] = {}
        for (value, _), fields in sums.items():
            spent[value] = spent.get(value, 0) + fields.get("c", 0)
        best = set(sorted(spent, key=lambda v: (-spent[v], v))[:top])
        sums = {place: fields for place, fields in sums.items() if place[0] in best}
    rows = [_row(keys, value, bucket, fields) for (value, bucket), fields in sums.items()]
    rows.sort(key=lambda r: (r.bucket or _EPOCH, -r.cost_nanos, r.values))
    return rows


Place = tuple[str, int, int]


def _top(
    store: Store, zsets: Sequence[str], hash_bases: Sequence[str], bucket: int, top: int, now_ms: int
) -> tuple[list[Place], list[dict[str, int]]]:
    """The ``top`` values of one bucket (one sorted set per shard) without reading every value: each
    shard's highest ``depth`` values, then the exact totals of those (a value may be in several shards),
    accepted once the ``top``-th total beats what a value outside every shard's list could reach (the sum
    of each full list's lowest score); otherwise each list is read four times deeper (Fagin's threshold
    algorithm). ``hash_bases`` are the shards' value-hash keys without the value."""
    depth = top
    while True:
        lists = store.track_members(zsets, top=depth, now_ms=now_ms)
        full = [index for index, found in enumerate(lists) if len(found) >= depth]
        reach = sum(lists[index][-1][1] for index in full)
        seen: dict[str, set[int]] = {}
        for index, found in enumerate(lists):
            for value, _ in found:
                seen.setdefault(value, set()).add(index)
        # A seen value's spend in a full shard whose list it is not in is unknown: read it there too.
        places = [(v, s, bucket) for v in sorted(seen) for s in sorted(seen[v].union(full))]
        read = store.track_values([hash_bases[s] + encode_value(v) for v, s, _ in places], now_ms=now_ms)
        totals: dict[str, int] = {}
        for (value, _, _), fields in zip(places, read, strict=True):
            totals[value] = totals.get(value, 0) + fields.get("c", 0)
        ranked = sorted(totals.values(), reverse=True)
        if not full or (len(ranked) >= top and ranked[top - 1] > reach):
            return places, read
        depth *= 4


_EPOCH = datetime.fromtimestamp(0, UTC)


def _row(keys: tuple[str, ...], value: str, bucket: int | None, fields: Mapping[str, int]) -> SpendRow:
    values = split_pair(value) if len(keys) > 1 else (value,)
    return SpendRow(
        by=keys,
        values=values,
        cost_nanos=fields.get("c", 0),
        calls=fields.get("n", 0),
        tokens={k: v for k, v in sorted(fields.items()) if k not in ("c", "n")},
        bucket=None if bucket is None else datetime.fromtimestamp(bucket, UTC),
    )


def _seconds(value: When) -> int:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int(aware.timestamp())
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"since/until take a datetime, a date or epoch seconds, not {value!r}")
    return int(value)
