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

Requests: a hold with ``limit_requests`` also holds ``requests`` (1 per call) under a request-count limit,
checked like the other units; a settlement with ``Spend.requests`` turns them into requests made, and a
release or an expiry gives them back (a ``charge_on_expiry`` hold counts them as made). Counters without a
request limit count no requests and pay nothing for them.

Tombstones (expired and charged ids) are kept for ``tombstone_retention`` seconds; keys expire
``key_slack`` seconds after their window ends.
"""

from __future__ import annotations

import enum
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Final, Literal

from bedrock_budget.errors import StoreError
from bedrock_budget.stores.keys import check_prefix, counter_tag

# Re-exported: the tallies were defined here first, and stores import them from here.
from bedrock_budget.stores.tallies import Tallies as Tallies
from bedrock_budget.stores.tallies import add_call as add_call
from bedrock_budget.stores.tallies import call_tallies as call_tallies
from bedrock_budget.stores.tallies import parse_tallies as parse_tallies
from bedrock_budget.stores.tallies import tally_items as tally_items
from bedrock_budget.stores.tallies import tally_prefix as tally_prefix
from bedrock_budget.stores.tracking import TrackEntry

DEFAULT_PREFIX: Final = "bb:"
DEFAULT_KEY_SLACK: Final = 3600
DEFAULT_TOMBSTONE_RETENTION: Final = 86400
_EMPTY: Final[Mapping[str, Mapping[str, int]]] = MappingProxyType({})
#: The tallies of a settlement that adds none (no model, or a part of it in a slot without its spends).
NO_TALLIES: Final[Mapping[str, Mapping[str, int]]] = _EMPTY

Unit = Literal["usd", "tokens", "requests"]
#: The one-letter names of the units in stored alert markers (``u80``) and in script arguments.
UNIT_LETTERS: Final[Mapping[str, str]] = MappingProxyType({"usd": "u", "tokens": "t", "requests": "r"})
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
    #: Request-count limit (``None``: requests are not counted here, at no cost) and requests to hold.
    limit_requests: int | None = None
    requests: int = 1


@dataclass(frozen=True, slots=True)
class Mark:
    """An alert threshold: fires once per counter when spent in ``unit`` reaches ``amount``."""

    unit: Unit
    percent: int
    amount: int

    @property
    def name(self) -> str:
        return f"{UNIT_LETTERS[self.unit]}{self.percent}"


@dataclass(frozen=True, slots=True)
class Spend:
    """One counter of a settlement: actual amounts and the thresholds to test."""

    ref: CounterRef
    usd: int
    tokens: int
    marks: tuple[Mark, ...] = ()
    #: The counter's epoch as reserve reported it (``None``: unknown, e.g. spend journalled offline).
    epoch: str | None = None
    #: Requests to count as made (``None``: the counter counts no requests).
    requests: int | None = None


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
    #: Requests made and held (counted only while the budget has a request limit), and that limit.
    spent_requests: int = 0
    held_requests: int = 0
    limit_requests: int | None = None


@dataclass(frozen=True, slots=True)
class Check:
    """A counter as found by reserve (before this call's hold) and whether it refused in each unit."""

    state: CounterState
    refused_usd: bool = False
    refused_tokens: bool = False
    #: Refusal marks of the hold that this refusal reached first (see the module docstring).
    fired: tuple[Mark, ...] = ()
    epoch: str | None = None
    refused_requests: bool = False

    @property
    def refused(self) -> bool:
        return self.refused_usd or self.refused_tokens or self.refused_requests


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
    tallies: Tallies = field(default_factory=lambda: NO_TALLIES)
    charge: bool = False
    #: What the call adds to the spend ledger (``stores.tracking``), applied exactly once per reservation
    #: id in the same store operation as the spends; ``None``: not tracked.
    track: TrackEntry | None = None

    @property
    def cost_nanos(self) -> int:
        """The spend the settlement carries, in nano-USD: what it charges its counters (every counter of a
        settlement is charged the same), or, charging none, what it adds to the spend ledger."""
        if self.spends:
            return max(spend.usd for spend in self.spends)
        return 0 if self.track is None else self.track.cost

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
        tallies = NO_TALLIES if model is None else call_tallies(model, cost, tokens or {})
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


@dataclass(frozen=True, slots=True)
class PublishedDefinitions:
    """The budget definitions a fleet shares through its store (``budgets.published``): an opaque JSON
    document, the version it was published as (1, 2, ...; every publication adds one) and when."""

    version: int
    document: str
    published_ms: int


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

    def publish_definitions(self, document: str, *, now_ms: int, expected_version: int | None = None) -> int:
        """Store ``document`` as the fleet's budget definitions, atomically, as the next version, and return
        that version. With ``expected_version``, only if the stored version still is that one (0: none
        published yet); otherwise raise :class:`~bedrock_budget.errors.DefinitionsChangedError`."""
        raise NotImplementedError(f"{type(self).__name__} cannot hold budget definitions")

    def read_definitions(self) -> PublishedDefinitions | None:
        """The published budget definitions, or ``None`` when none were published."""
        raise NotImplementedError(f"{type(self).__name__} cannot hold budget definitions")

    def definitions_version(self) -> int:
        """The published definitions' version (0: none): one cheap read, made by every process that
        follows them about once a second."""
        raise NotImplementedError(f"{type(self).__name__} cannot hold budget definitions")

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
