"""The spend ledger: what every settled call adds to hourly and daily buckets, and where it lives.

A call is tracked under one *dimension* per tracked attribution key (``user``, ``app``, ``model``, ...),
one per key pair asked for (``app+model``, values joined by ``|`` after escaping, see :func:`join_pair`)
and ``_all`` (the total). Per bucket and value the store keeps the spend in integer nano-dollars, the call
count and the tokens by type, plus a sorted set of values by spend for top-N reads.

Buckets are UTC hours and UTC days. A call is bucketed by the time its settlement was made (when its last
stream event was read, its response returned, or its stream closed), never by when the store took it: a
settlement queued, batched or journalled through an outage keeps its time, so a replay lands in the
bucket it would have landed in.

Key layout (``P`` is the store prefix; ``S`` the shard, ``D`` the dimension, ``G`` ``h`` or ``d``, ``B`` the
bucket start in epoch seconds, ``V`` the percent-encoded value)::

    P t:{P t/S}:k:D:G:B:z     sorted set: value -> spend (nano-dollars) in the bucket (top-N)
    P t:{P t/S}:k:D:G:B:v:V   hash: c (nano-dollars), n (calls), input, output, cache_read, cache_write
    P t:{P t/S}:d:B           hash: reservation ids tracked in shard S during hour B (exactly once)

Sharding: a call's writes all go to one shard, ``crc32(D, value) % SHARDS`` of its first tracked
dimension (``user`` by default; by the call's id when it tracks only the total). So one call is one
write in one place (one script, one Redis Cluster slot, one exactly-once check: a field in the shard's
dedupe hash), a value of the first key lives in one shard, and the values every call carries (an app,
a model, the total) are spread over all shards instead of making one key, or one cluster slot, hot for
the whole fleet. A value of another key may be in several shards: reads sum them, and a top-N read
merges each shard's top-N and checks the result against what any value not yet seen could reach (see
``reporting.spend``). On Redis Cluster the hash tag ``{P t/S}`` makes each shard a slot: a batch of
settlements needs at most ``SHARDS`` script calls for its tracking however many calls it carries, and a
batch of one user's calls one. (Sharding each value by itself instead puts one call in up to one slot per
dimension and every call of an app in that app's slot: measured in ``bench/RESULTS.md``.)

Expiry: hourly keys expire ``hourly_days`` after their hour ends, daily keys ``daily_days`` after their
day ends, set by the store itself (Redis ``PEXPIREAT``; the memory store prunes). The dedupe hash lives for
the store's ``tombstone_retention`` past its hour, the same horizon as a budget's exactly-once guarantee.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from bedrock_budget._frozen import fast_builder
from bedrock_budget._memo import remember
from bedrock_budget.errors import ConfigurationError
from bedrock_budget.stores.keys import encode_part

SHARDS: Final = 16
TOTAL: Final = "_all"
TOTAL_VALUE: Final = "all"
#: The value of a tracked key a call does not carry (parentheses never appear in an attribution id).
UNATTRIBUTED: Final = "(none)"
PAIR_JOIN: Final = "|"
PAIR_ESCAPE: Final = "\\"
HOUR: Final = 3600
DAY: Final = 86400
DEFAULT_HOURLY_DAYS: Final = 8
DEFAULT_DAILY_DAYS: Final = 400
#: Keys always tracked by default, under ``(none)`` when a call does not carry them.
DEFAULT_KEYS: Final = ("user", "app")
#: Token types kept per value (the raw counts a settlement carries).
TOKEN_FIELDS: Final = ("input", "output", "cache_read", "cache_write")


@dataclass(frozen=True, slots=True)
class TrackEntry:
    """What one settled call adds to the spend ledger (journalled with its settlement)."""

    #: Settlement time, epoch seconds (UTC): picks the hour and day buckets.
    at: int
    cost: int
    tokens: tuple[tuple[str, int], ...]
    #: (dimension, value) pairs, ``("user", "u-17")``, ``("app+model", "chat|m")``, ``("_all", "all")``.
    dims: tuple[tuple[str, str], ...]
    hourly_days: int = DEFAULT_HOURLY_DAYS
    daily_days: int = DEFAULT_DAILY_DAYS
    #: How many calls the entry sums (more than one: the calls of a capacity lease, see :class:`TrackSums`).
    calls: int = 1


class TrackSums:
    """Calls summed per dimensions and hour: what a capacity lease tracks for the calls it admitted, sent as
    one entry per sum when it retires instead of one per call (``budgets.leases``).

    Summing never moves a call to another bucket: calls are summed only within one UTC hour (so one day), and
    the sum keeps the first call's time. Not thread-safe by itself: the lease book holds its lock."""

    __slots__ = ("_sums", "_tracking")

    def __init__(self, tracking: Tracking) -> None:
        self._tracking = tracking
        self._sums: dict[tuple[tuple[tuple[str, str], ...], int], _Sum] = {}

    def add(
        self, attribution: Mapping[str, str], model: str, cost: int, tokens: Mapping[str, int], at: float
    ) -> None:
        """Add one settled call (what :meth:`Tracking.entry` takes), without making its entry."""
        when = int(at)
        key = (self._tracking.dims(attribution, model), when - when % HOUR)
        found = self._sums.get(key)
        if found is None:
            self._sums[key] = _Sum(when, cost, 1, {kind: n for kind, n in tokens.items() if n})
            return
        found.cost += cost
        found.calls += 1
        summed = found.tokens
        for kind, n in tokens.items():
            if n:
                summed[kind] = summed.get(kind, 0) + n

    def __len__(self) -> int:
        return len(self._sums)

    def entries(self) -> list[TrackEntry]:
        """One entry per dimensions and hour, with the calls it sums."""
        tracking = self._tracking
        return [
            _build_entry(
                found.at,
                found.cost,
                tuple(found.tokens.items()),
                dims,
                tracking.hourly_days,
                tracking.daily_days,
                found.calls,
            )
            for (dims, _), found in self._sums.items()
        ]


@dataclass(slots=True)
class _Sum:
    at: int
    cost: int
    calls: int
    tokens: dict[str, int]


def dimension(keys: Sequence[str]) -> str:
    return "+".join(keys)


@dataclass(frozen=True, slots=True)
class Tracking:
    """Which keys are tracked and for how long.

    ``keys=None`` (the default) tracks ``user`` and ``app`` on every call (``(none)`` when absent), every
    other attribution key a call carries, and ``model``; a list names exactly the keys tracked (``model``
    included only when listed). ``pairs`` adds key pairs such as ``("app", "model")``.
    """

    keys: tuple[str, ...] | None = None
    pairs: tuple[tuple[str, ...], ...] = ()
    hourly_days: int = DEFAULT_HOURLY_DAYS
    daily_days: int = DEFAULT_DAILY_DAYS
    _dims_memo: dict[tuple[tuple[tuple[str, str], ...], str], tuple[tuple[str, str], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        from bedrock_budget.attribution import validate_key

        for key in (*(self.keys or ()), *(k for pair in self.pairs for k in pair)):
            validate_key(key)
        if any(len(pair) < 2 for pair in self.pairs):
            raise ConfigurationError("tracked key pairs need at least two keys, e.g. ('app', 'model')")
        if self.hourly_days < 1 or self.daily_days < 1:
            raise ConfigurationError("tracking retention must be at least one day")

    @classmethod
    def of(cls, track: object) -> Tracking | None:
        """``wrap(track=...)``: ``None``/``True`` (defaults), ``False`` (off), a :class:`Tracking`, or a list
        of keys and key tuples (``["user", "model", ("app", "model")]``)."""
        if track is None or track is True:
            return cls()
        if track is False:
            return None
        if isinstance(track, Tracking):
            return track
        if isinstance(track, str) or not isinstance(track, Iterable):
            raise ConfigurationError("track takes True, False, a Tracking or a list of keys and key tuples")
        keys: list[str] = []
        pairs: list[tuple[str, ...]] = []
        for item in track:
            if isinstance(item, str):
                keys.append(item)
            elif isinstance(item, tuple | list) and all(isinstance(k, str) for k in item):
                pairs.append(tuple(item))
            else:
                raise ConfigurationError(f"track items are keys or tuples of keys, not {item!r}")
        return cls(keys=tuple(keys), pairs=tuple(pairs))

    def entry(
        self, attribution: Mapping[str, str], model: str, cost: int, tokens: Mapping[str, int], at: float
    ) -> TrackEntry:
        return _build_entry(
            int(at),
            cost,
            tuple([(kind, n) for kind, n in tokens.items() if n]),
            self.dims(attribution, model),
            self.hourly_days,
            self.daily_days,
        )

    def dims(self, attribution: Mapping[str, str], model: str) -> tuple[tuple[str, str], ...]:
        """The (dimension, value) pairs a call is tracked under."""
        # The same attribution repeats for every call of a user: its dimensions are worked out once.
        key = (tuple(attribution.items()), model)
        found = self._dims_memo.get(key)
        if found is None:
            found = remember(self._dims_memo, key, _dims(self, key[0], model), _DIMS_MEMO)
        return found


_build_entry = fast_builder(TrackEntry)
#: Attributions and models whose dimensions each :class:`Tracking` remembers.
_DIMS_MEMO: Final = 4096


def _dims(
    tracking: Tracking, attribution: tuple[tuple[str, str], ...], model: str
) -> tuple[tuple[str, str], ...]:
    values = dict(attribution)
    values["model"] = model
    if tracking.keys is None:
        others = (k for k in sorted(values) if k not in DEFAULT_KEYS and k != "model")
        keys = [*DEFAULT_KEYS, *others, "model"]
    else:
        keys = list(tracking.keys)
    dims = [(key, values.get(key, UNATTRIBUTED)) for key in keys]
    for pair in tracking.pairs:
        dims.append((dimension(pair), join_pair(values.get(k, UNATTRIBUTED) for k in pair)))
    dims.append((TOTAL, TOTAL_VALUE))
    return tuple(dims)


def join_pair(values: Iterable[str]) -> str:
    """A key pair's values as one value: ``|`` between them, and ``\\`` / ``|`` inside one escaped with
    ``\\``, so any values split back as they were (:func:`split_pair`)."""
    return PAIR_JOIN.join(
        v.replace(PAIR_ESCAPE, PAIR_ESCAPE * 2).replace(PAIR_JOIN, PAIR_ESCAPE + PAIR_JOIN)
        if PAIR_ESCAPE in v or PAIR_JOIN in v
        else v
        for v in values
    )


def split_pair(joined: str) -> tuple[str, ...]:
    """The values :func:`join_pair` joined."""
    if PAIR_ESCAPE not in joined:
        return tuple(joined.split(PAIR_JOIN))
    values: list[str] = []
    current: list[str] = []
    chars = iter(joined)
    for char in chars:
        if char == PAIR_ESCAPE:
            current.append(next(chars, PAIR_ESCAPE))
        elif char == PAIR_JOIN:
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    values.append("".join(current))
    return tuple(values)


# -- layout ------------------------------------------------------------------------------------------------


def shard(dim: str, value: str) -> int:
    """The shard of the calls whose first tracked dimension has this value."""
    return zlib.crc32(f"{dim}\x00{value}".encode("utf-8", "surrogatepass")) % SHARDS


@lru_cache(maxsize=1024)
def tag(prefix: str, shard_no: int) -> str:
    return f"{prefix}t:{{{prefix}t/{shard_no}}}"


def bucket_start(at: int, granularity: str) -> int:
    size = HOUR if granularity == "h" else DAY
    return at - at % size


def zset_key(base: str, dim: str, granularity: str, start: int) -> str:
    return f"{base}:k:{_encoded(dim)}:{granularity}:{start}:z"


def value_key(base: str, dim: str, granularity: str, start: int, value: str) -> str:
    return f"{base}:k:{_encoded(dim)}:{granularity}:{start}:v:{_encoded(value)}"


def encode_value(value: str) -> str:
    """The last part of a value-hash key: ``value_key(..., "") + encode_value(value)`` is the key."""
    return _encoded(value)


@lru_cache(maxsize=65536)
def _encoded(value: str) -> str:
    return encode_part(value)


def dedupe_key(base: str, hour: int) -> str:
    return f"{base}:d:{hour}"


#: One dimension's value in one call: the member, and (sorted set, value hash, expire-at ms) for the hour
#: and the day bucket.
DimWrite = tuple[str, tuple[tuple[str, str, int], ...]]


@dataclass(frozen=True, slots=True)
class TrackWrite:
    """The part of one call's entry that lives in one shard (one or more of its dimensions)."""

    shard: int
    slot_key: str
    dedupe: str
    dedupe_at_ms: int
    dims: tuple[DimWrite, ...]


def writes(prefix: str, rid: str, entry: TrackEntry, tombstone_retention: int) -> tuple[TrackWrite, ...]:
    """An entry's writes, one per shard it touches (one, see the module docstring; laid out once per
    dimensions and hour: cached)."""
    at = entry.at
    dims = entry.dims
    spread = zlib.crc32(rid.encode()) % SHARDS if len(dims) == 1 else 0
    keep = (entry.hourly_days, entry.daily_days, tombstone_retention)
    return _layout(prefix, dims, at - at % HOUR, at - at % DAY, keep, spread)


@lru_cache(maxsize=2048)
def _layout(
    prefix: str,
    dims: tuple[tuple[str, str], ...],
    hour: int,
    day: int,
    keep: tuple[int, int, int],
    spread: int,
) -> tuple[TrackWrite, ...]:
    hourly_days, daily_days, tombstone_retention = keep
    hour_at = (hour + HOUR + hourly_days * DAY) * 1000
    day_at = (day + DAY + daily_days * DAY) * 1000
    home = next((shard(dim, value) for dim, value in dims if dim != TOTAL), spread)
    base = tag(prefix, home)
    laid_out: list[DimWrite] = []
    for dim, value in dims:
        buckets = (
            (zset_key(base, dim, "h", hour), value_key(base, dim, "h", hour, value), hour_at),
            (zset_key(base, dim, "d", day), value_key(base, dim, "d", day, value), day_at),
        )
        laid_out.append((value, buckets))
    return (
        TrackWrite(
            shard=home,
            slot_key=base,
            dedupe=dedupe_key(base, hour),
            dedupe_at_ms=(hour + HOUR + tombstone_retention) * 1000,
            dims=tuple(laid_out),
        ),
    )


def fields_of(entry: TrackEntry) -> list[tuple[str, int]]:
    """The hash increments of one call, besides its call count: its cost and non-zero tokens."""
    fields = [("c", entry.cost)] if entry.cost else []
    fields.extend(entry.tokens)
    return fields
