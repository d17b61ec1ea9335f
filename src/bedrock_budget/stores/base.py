"""The store contract.

A store keeps one *counter* per budget window (:class:`CounterRef`): spent and held amounts in integer
nano-dollars and milli-tokens, the live reservations with their deadlines, tombstones, alert markers and
per-model tallies. Every operation below is atomic per counter and purges the counter's expired
reservations first, so a crashed process's holds come back once their deadline passes.

Reservation lifecycle (ids are chosen by the caller, unique per call):

- :meth:`Store.reserve` checks ``spent + held + requested <= limit`` for every counter and holds the
  request in all of them or in none. Counters with ``enforce=False`` (warn/shadow budgets) are checked and
  held but never refuse. Reserving an id that is already live is a no-op that reports success, so a retry
  after a lost reply never holds twice.
- :meth:`Store.settle` replaces the hold with the actual amounts. A live reservation is settled
  (``SETTLED``); one whose deadline passed is still charged its actual amounts, once (``LATE``; its hold was
  already dropped, so nothing counts twice); anything else is a no-op (``NOOP``). With ``charge=True`` an
  unknown id is charged too (``CHARGED``) and remembered, which is how spend journalled during an outage is
  replayed exactly once.
- Epochs: reserve reports each counter's *epoch*, a name for the life of its data (the id of the first
  reservation held there). A settle that carries it and finds neither its hold nor a tombstone under a
  different epoch is charged (``CHARGED``, once): the counter's data was lost since the reservation (a
  Redis restart without persistence, a failover to a replica that had not seen the hold), so the call's
  spend is recorded instead of vanishing with the hold. Under the same epoch it is a settlement already
  applied (a retry after a lost reply) and stays a no-op.
- Refusal marks: a hold may name the thresholds (the 100% ones) to report when its counter refuses a
  call that would fit the empty budget; they fire once per counter, like the thresholds settle reports.
  A ``block`` budget refuses the call that would cross its limit, so its spend rarely lands on 100%:
  the refusal is what says the limit was reached.
- :meth:`Store.release` drops a hold without charging (the call failed before inference).
- :meth:`Store.renew` moves the deadline of holds that are still live later (never earlier), all in one
  operation: a process renews the holds of its calls in flight so a call longer than the TTL keeps its
  hold, while a killed process's holds still expire, since nothing renews them any more. A hold that has
  already expired is never revived: it stays expired (its late settlement is charged as ``LATE``).
- :meth:`Store.settle_many` is the one write of settlements: each :class:`SettleRequest` is applied under the
  rules above, a batch in one round trip where the backend can; :meth:`Store.settle` is a batch of one.
- :meth:`Store.forget_spend` starts a counter afresh (a budget reset) without dropping live holds: it
  forgets the spend, fired alert markers and per-model tallies but keeps the live holds, the epoch and the
  tombstones, so calls and leases in flight keep their capacity held and their settlements still apply
  exactly once, charged to the fresh spend. A counter left without live holds is deleted outright, as
  :meth:`Store.reset` does. (``reset`` drops the holds too, like a loss of the store's data.)

Expiry: a hold whose deadline passes is given back and leaves an ``x`` tombstone, so a late settlement is
still charged once (``LATE``). A hold made with ``charge_on_expiry`` is charged its held amounts instead
and leaves the ``d`` marker of a charged id, so a settlement arriving later is a no-op: the worst case
already stands in for it.

Tombstones (expired and charged ids) are kept for ``tombstone_retention`` seconds; keys expire
``key_slack`` seconds after their window ends.
"""

from __future__ import annotations

import enum
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType, TracebackType
from typing import Final, Literal
from urllib.parse import unquote

from bedrock_budget.errors import StoreError
from bedrock_budget.stores.keys import check_prefix, counter_tag, encode_part
from bedrock_budget.stores.tracking import TrackEntry

DEFAULT_PREFIX: Final = "bb:"
DEFAULT_KEY_SLACK: Final = 3600
DEFAULT_TOMBSTONE_RETENTION: Final = 86400
_EMPTY: Final[Mapping[str, Mapping[str, int]]] = MappingProxyType({})
_NO_TALLIES: Final[Mapping[str, Mapping[str, int]]] = _EMPTY

Unit = Literal["usd", "tokens"]
#: Per-model tally increments: model id -> {"calls": n, "cost": nano-USD, token type: count}.
Tallies = Mapping[str, Mapping[str, int]]
#: Spend ledger reads (``stores.tracking``): values with scores per sorted set; fields per value hash.
TrackMembers = list[list[tuple[str, float]]]
TrackValues = list[dict[str, int]]


@dataclass(frozen=True, slots=True)
class CounterRef:
    """One budget window: budget name, concrete scope values, window kind/zone and bounds (epoch s)."""

    budget: str
    scope: tuple[tuple[str, str], ...]
    window: str
    timezone: str
    start: int
    end: int | None
    tag: str = field(init=False, repr=False, compare=False)
    _meta: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tag", counter_tag(self.budget, self.scope, self.window, self.start))
        object.__setattr__(self, "_meta", self._dump())

    def meta(self) -> str:
        """The raw identity as JSON, stored with the counter so listings can show real names."""
        return self._meta

    def _dump(self) -> str:
        return json.dumps(
            {
                "budget": self.budget,
                "scope": [list(p) for p in self.scope],
                "window": self.window,
                "timezone": self.timezone,
                "start": self.start,
                "end": self.end,
            },
            separators=(",", ":"),
            ensure_ascii=True,
        )

    @classmethod
    def from_meta(cls, text: str | bytes) -> CounterRef:
        data = json.loads(text)
        return cls(
            budget=data["budget"],
            scope=tuple((str(k), str(v)) for k, v in data["scope"]),
            window=data["window"],
            timezone=data["timezone"],
            start=int(data["start"]),
            end=None if data["end"] is None else int(data["end"]),
        )

    def ttl_ms(self, now_ms: int, slack: int) -> int:
        """Milliseconds the counter's keys should live from ``now_ms``: until ``slack`` seconds after the
        window ends (0: never expire). Never below 1, so a write to a long-gone window vanishes at once."""
        if self.end is None:
            return 0
        return max(1, (self.end + slack) * 1000 - now_ms)


@dataclass(frozen=True, slots=True)
class Hold:
    """One counter of a reservation: limits (``None``: no limit in that unit), the amounts to hold and
    whether a refusal here refuses the whole reservation."""

    ref: CounterRef
    limit_usd: int | None
    limit_tokens: int | None
    usd: int
    tokens: int
    enforce: bool = True
    refusal_marks: tuple[Mark, ...] = ()
    #: What expiry does with this hold: give it back (False) or charge it as spent (True).
    charge_on_expiry: bool = False


@dataclass(frozen=True, slots=True)
class Mark:
    """An alert threshold: fires once per counter when spent in ``unit`` reaches ``amount``."""

    unit: Unit
    percent: int
    amount: int

    @property
    def name(self) -> str:
        return f"{'u' if self.unit == 'usd' else 't'}{self.percent}"


@dataclass(frozen=True, slots=True)
class Spend:
    """One counter of a settlement: actual amounts and the thresholds to test."""

    ref: CounterRef
    usd: int
    tokens: int
    marks: tuple[Mark, ...] = ()
    #: The counter's epoch as reserve reported it (``None``: unknown, e.g. spend journalled offline).
    epoch: str | None = None


@dataclass(frozen=True, slots=True)
class CounterState:
    ref: CounterRef
    spent_usd: int = 0
    held_usd: int = 0
    spent_tokens: int = 0
    held_tokens: int = 0
    active: int = 0
    models: Mapping[str, Mapping[str, int]] = field(default_factory=lambda: _EMPTY)
    alerted: tuple[str, ...] = ()
    #: The limits of the last reservation made (for reports without the configuration; never enforced).
    limit_usd: int | None = None
    limit_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Check:
    """A counter as found by reserve (before this call's hold) and whether it refused in each unit."""

    state: CounterState
    refused_usd: bool = False
    refused_tokens: bool = False
    #: Refusal marks of the hold that this refusal reached first (see the module docstring).
    fired: tuple[Mark, ...] = ()
    epoch: str | None = None

    @property
    def refused(self) -> bool:
        return self.refused_usd or self.refused_tokens


@dataclass(frozen=True, slots=True)
class ReserveResult:
    granted: bool
    checks: tuple[Check, ...]
    repeated: bool = False


@dataclass(frozen=True, slots=True)
class SettleRequest:
    """One settlement: what :meth:`Store.settle_many` applies, what the settle queue batches and what the
    ledger's journal keeps. ``tallies`` are the per-model increments it adds (:func:`call_tallies`,
    :func:`add_call`), computed once by whoever builds the request; ``charge`` records it even when the
    store holds no reservation under its id (spend journalled during an outage)."""

    reservation_id: str
    spends: tuple[Spend, ...]
    tallies: Tallies = field(default_factory=lambda: _NO_TALLIES)
    charge: bool = False
    #: What the call adds to the spend ledger (``stores.tracking``), applied exactly once per reservation
    #: id in the same store operation as the spends; ``None``: not tracked.
    track: TrackEntry | None = None

    @property
    def cost_nanos(self) -> int:
        """What the settlement charges in USD (every counter of a settlement is charged the same)."""
        return max((spend.usd for spend in self.spends), default=0)

    @classmethod
    def of_call(
        cls,
        reservation_id: str,
        spends: Sequence[Spend],
        model: str | None,
        tokens: Mapping[str, int] | None,
        *,
        charge: bool = False,
    ) -> SettleRequest:
        """The settlement of one call of ``model`` with raw token ``tokens`` (no tallies without a model)."""
        cost = spends[0].usd if spends else 0
        tallies = _NO_TALLIES if model is None else call_tallies(model, cost, tokens or {})
        return cls(reservation_id, tuple(spends), tallies, charge)


@dataclass(frozen=True, slots=True)
class Renewal:
    """One hold to keep alive: a reservation id in one counter (see :meth:`Store.renew`)."""

    reservation_id: str
    ref: CounterRef


class SettleStatus(enum.Enum):
    SETTLED = "settled"
    LATE = "late"
    CHARGED = "charged"
    NOOP = "noop"


_STATUS_CODES: Final = {
    0: SettleStatus.NOOP,
    1: SettleStatus.SETTLED,
    2: SettleStatus.LATE,
    3: SettleStatus.CHARGED,
}


def settle_status(code: int) -> SettleStatus:
    return _STATUS_CODES[code]


@dataclass(frozen=True, slots=True)
class SettleOutcome:
    """Truthy only when a live reservation was settled; ``LATE``/``CHARGED`` still recorded the spend."""

    status: SettleStatus
    state: CounterState
    fired: tuple[Mark, ...] = ()

    def __bool__(self) -> bool:
        return self.status is SettleStatus.SETTLED

    @property
    def recorded(self) -> bool:
        return self.status is not SettleStatus.NOOP


class Store(ABC):
    """Abstract budget store. Amounts are integers: nano-dollars and milli-tokens. Times are epoch
    milliseconds passed in by the caller, so one injected clock drives windows and reservation expiry."""

    #: URI schemes this class serves. The registry in ``bedrock_budget.stores`` lists the built-in stores
    #: with the same schemes (a test holds them equal), so it can choose a backend without importing it.
    schemes: tuple[str, ...] = ()
    #: Whether the spend-ledger entries of settlements made synchronously go in batches of their own (a
    #: network store: one batch sums a busy user's calls into one write per key, and on a cluster the
    #: entries' slots cost the caller nothing) rather than in each settlement (the memory store).
    batch_tracking: bool = False

    def __init__(
        self,
        *,
        prefix: str = DEFAULT_PREFIX,
        key_slack: int = DEFAULT_KEY_SLACK,
        tombstone_retention: int = DEFAULT_TOMBSTONE_RETENTION,
    ) -> None:
        self.prefix = check_prefix(prefix)
        if key_slack < 0 or tombstone_retention < 0:
            raise ValueError("key_slack and tombstone_retention must not be negative")
        self.key_slack = int(key_slack)
        self.tombstone_retention = int(tombstone_retention)

    @property
    def name(self) -> str:
        """A printable name for errors and logs (never containing credentials)."""
        return type(self).__name__

    def key(self, ref: CounterRef) -> str:
        return f"{self.prefix}{ref.tag}"

    @abstractmethod
    def reserve(
        self, reservation_id: str, holds: Sequence[Hold], *, now_ms: int, deadline_ms: int
    ) -> ReserveResult:
        """Hold every counter or none (see the module docstring)."""

    @abstractmethod
    def settle_many(
        self, requests: Sequence[SettleRequest], *, now_ms: int
    ) -> list[tuple[SettleOutcome, ...] | StoreError]:
        """Settle (or with ``charge`` record) each reservation in each of its counters exactly once, adding
        its tallies. Each result is the outcomes of one request or the
        :class:`~bedrock_budget.errors.StoreError` it failed with. A failed request may or may not have been
        applied; settling it again is safe, because a store applies a reservation id's settlement at most
        once per counter. Backends do the whole batch in as few round trips as they can."""

    def settle(
        self,
        reservation_id: str,
        spends: Sequence[Spend],
        *,
        now_ms: int,
        model: str | None = None,
        tokens: Mapping[str, int] | None = None,
        charge: bool = False,
        tallies: Tallies | None = None,
        track: TrackEntry | None = None,
    ) -> tuple[SettleOutcome, ...]:
        """One settlement (:meth:`settle_many` with one request); raises its ``StoreError``. ``model`` and
        ``tokens`` (raw counts by type) make the tallies of one call; ``tallies`` gives them ready made;
        ``track`` is what the call adds to the spend ledger."""
        if tallies is None:
            request = SettleRequest.of_call(reservation_id, spends, model, tokens, charge=charge)
        else:
            request = SettleRequest(reservation_id, tuple(spends), tallies, charge)
        if track is not None:
            request = SettleRequest(request.reservation_id, request.spends, request.tallies, charge, track)
        (result,) = self.settle_many([request], now_ms=now_ms)
        if isinstance(result, StoreError):
            raise result
        return result

    def renew(self, renewals: Sequence[Renewal], *, now_ms: int, deadline_ms: int) -> tuple[bool, ...]:
        """Move each live hold's deadline to ``deadline_ms`` unless it is already later, purging expired
        holds first (an expired hold is not revived); True where the hold was live. One round trip per
        store (one per slot on a cluster). Stores that predate renewal raise ``NotImplementedError``: the
        ledger then logs once and lets holds expire after their TTL, as before."""
        raise NotImplementedError(f"{type(self).__name__} cannot renew holds")

    @abstractmethod
    def release(self, reservation_id: str, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[bool, ...]:
        """Drop the hold in each counter; True where one was dropped."""

    @abstractmethod
    def read(self, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[CounterState, ...]:
        """Current state of each counter (purging expired holds first)."""

    @abstractmethod
    def reset(self, refs: Sequence[CounterRef]) -> int:
        """Forget the counters entirely; returns how many existed."""

    @abstractmethod
    def forget_spend(self, refs: Sequence[CounterRef], *, now_ms: int) -> int:
        """Forget each counter's spend, alert markers and tallies but keep its live holds (purging expired
        ones first), or delete the counter when no hold is live (see the module docstring); returns how
        many counters existed."""

    @abstractmethod
    def list(self, *, now_ms: int, budget: str | None = None) -> list[CounterState]:
        """Every stored counter (optionally of one budget), in no particular order."""

    def track_members(self, zsets: Sequence[str], *, top: int | None, now_ms: int) -> TrackMembers:
        """The spend ledger's sorted sets (``stores.tracking``): each one's ``top`` values by spend (all when
        ``None``), highest first, with their scores."""
        raise NotImplementedError(f"{type(self).__name__} does not track spend")

    def track_values(self, keys: Sequence[str], *, now_ms: int) -> TrackValues:
        """The spend ledger's value hashes (``stores.tracking``), empty where a key does not exist."""
        raise NotImplementedError(f"{type(self).__name__} does not track spend")

    @abstractmethod
    def ping(self) -> None:
        """Raise :class:`~bedrock_budget.errors.StoreUnavailableError` when the store cannot be reached."""

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections and threads. Idempotent."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} prefix={self.prefix!r}>"


def add_call(tallies: dict[str, dict[str, int]], model: str, cost: int, counts: Mapping[str, int]) -> None:
    """Add one call to per-model tallies: a call, its cost (nano-USD) and each non-zero token count. The one
    place tallies are computed, for a single settlement and for a lease's running total alike."""
    tally = tallies.get(model)
    if tally is None:
        tally = tallies[model] = {}
    tally["calls"] = tally.get("calls", 0) + 1
    tally["cost"] = tally.get("cost", 0) + cost
    for kind, count in counts.items():
        if count:
            tally[kind] = tally.get(kind, 0) + count


def call_tallies(model: str, cost: int, counts: Mapping[str, int]) -> Tallies:
    """The tallies of a settlement for one call."""
    tallies: dict[str, dict[str, int]] = {}
    add_call(tallies, model, cost, counts)
    return tallies


def tally_items(tallies: Tallies) -> list[tuple[str, int]]:
    """Stored field names (``m:<model>:<kind>``) and increments of a settlement's tallies."""
    return [
        (tally_prefix(name) + kind, value)
        for name, counts in tallies.items()
        for kind, value in counts.items()
        if value
    ]


def parse_tallies(items: Mapping[str, str] | Sequence[tuple[str, str]]) -> Mapping[str, Mapping[str, int]]:
    pairs = items.items() if isinstance(items, Mapping) else items
    models: dict[str, dict[str, int]] = {}
    for name, value in pairs:
        if not name.startswith("m:"):
            continue
        model, _, kind = name[2:].rpartition(":")
        models.setdefault(unquote(model), {})[kind] = int(value)
    return MappingProxyType({k: MappingProxyType(v) for k, v in models.items()})


@lru_cache(maxsize=1024)
def tally_prefix(model: str) -> str:
    # Percent-encoding the model id costs microseconds and every settlement of a model repeats it.
    return f"m:{encode_part(model)}:"
