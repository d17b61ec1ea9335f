"""One counter of the in-process store (``stores.memory``): the state a Lua script keeps in a counter's three
keys, and the purge, hold and expiry rules the scripts apply to them."""

from __future__ import annotations

from bedrock_budget.stores.base import CounterRef, CounterState, Hold, Mark, Spend

__all__ = ["Counter", "fits", "refusal_marks", "spent_in"]


class Counter:
    __slots__ = (
        "alerts",
        "epoch",
        "expires",
        "held_requests",
        "held_tokens",
        "held_usd",
        "holds",
        "limits",
        "live",
        "meta",
        "next_deadline",
        "oldest_tomb",
        "spent_requests",
        "spent_tokens",
        "spent_usd",
        "tallies",
        "tombs",
    )

    def __init__(self) -> None:
        self.spent_usd = 0
        self.held_usd = 0
        self.spent_tokens = 0
        self.held_tokens = 0
        # Requests made and held: counted only under a request limit (``Hold.limit_requests``).
        self.spent_requests = 0
        self.held_requests = 0
        # Held amounts, whether expiry charges them (``Hold.charge_on_expiry``) and held requests.
        self.holds: dict[str, tuple[int, int, bool, int]] = {}
        self.live: dict[str, int] = {}
        self.tombs: dict[str, int] = {}
        self.alerts: dict[str, int] = {}
        self.tallies: dict[str, int] = {}
        self.meta: str | None = None
        self.epoch: str | None = None
        self.limits: tuple[int | None, int | None, int | None] = (None, None, None)
        self.expires: int | None = None
        # Lower bounds on the earliest live deadline and the oldest tombstone: purging scans only when
        # something can be due, so a busy shared counter costs O(1) per operation, not O(holds).
        self.next_deadline: int | None = None
        self.oldest_tomb: int | None = None

    def drop_hold(self, rid: str) -> bool:
        if self.live.pop(rid, None) is None:
            return False
        usd, tokens, _, requests = self.holds.pop(rid, (0, 0, False, 0))
        self.held_usd -= usd
        self.held_tokens -= tokens
        self.held_requests -= requests
        if not self.live:
            # A dict keeps its grown table after its last key goes; most counters sit idle between calls
            # (one per user for a per-user budget), so give the table back.
            self.live = {}
            self.holds = {}
        return True

    def purge(self, now: int, trim_before: int) -> None:
        if self.next_deadline is not None and self.next_deadline <= now:
            expired = [rid for rid, deadline in self.live.items() if deadline <= now]
            for rid in expired:
                usd, tokens, charge, requests = self.holds.get(rid, (0, 0, False, 0))
                self.drop_hold(rid)
                if charge:
                    # Charged at its worst case; the 'd' marker makes a later settlement a no-op.
                    self.spent_usd += usd
                    self.spent_tokens += tokens
                    self.spent_requests += requests
                    self.tomb("d" + rid, now)
                else:
                    self.tomb("x" + rid, now)
            self.next_deadline = min(self.live.values(), default=None)
        if self.oldest_tomb is not None and self.oldest_tomb < trim_before:
            for member in [m for m, when in self.tombs.items() if when < trim_before]:
                del self.tombs[member]
            self.oldest_tomb = min(self.tombs.values(), default=None)

    def hold(
        self, rid: str, usd: int, tokens: int, deadline: int, charge: bool = False, requests: int = 0
    ) -> None:
        self.held_usd += usd
        self.held_tokens += tokens
        self.held_requests += requests
        self.holds[rid] = (usd, tokens, charge, requests)
        self.live[rid] = deadline
        if self.next_deadline is None or deadline < self.next_deadline:
            self.next_deadline = deadline

    def tomb(self, member: str, now: int) -> None:
        self.tombs[member] = now
        if self.oldest_tomb is None or now < self.oldest_tomb:
            self.oldest_tomb = now

    def touch(self, ttl: int, now: int) -> None:
        if ttl:
            self.expires = now + ttl

    def state(self, ref: CounterRef) -> CounterState:
        return CounterState(
            ref=ref,
            spent_usd=max(self.spent_usd, 0),
            held_usd=max(self.held_usd, 0),
            spent_tokens=max(self.spent_tokens, 0),
            held_tokens=max(self.held_tokens, 0),
            active=len(self.live),
            # Never negative: only what a hold added is given back.
            spent_requests=self.spent_requests,
            held_requests=self.held_requests,
        )


def fits(spent: int, held: int, requested: int, limit: int | None) -> bool:
    return limit is None or spent + held + requested <= limit


def refusal_marks(
    counter: Counter, hold: Hold, refused: tuple[bool, bool, bool], now_ms: int
) -> tuple[Mark, ...]:
    """The refusal marks a refused hold fires here (once per counter; see ``stores.base``); ``refused``
    says which units refused: USD, tokens, requests."""
    fired: list[Mark] = []
    by_unit = {
        "usd": (refused[0], hold.usd, hold.limit_usd),
        "tokens": (refused[1], hold.tokens, hold.limit_tokens),
        "requests": (refused[2], hold.requests, hold.limit_requests),
    }
    for mark in hold.refusal_marks:
        unit_refused, requested, limit = by_unit[mark.unit]
        if unit_refused and fits(0, 0, requested, limit) and mark.name not in counter.alerts:
            counter.alerts[mark.name] = now_ms
            fired.append(mark)
    return tuple(fired)


def spent_in(counter: Counter, spend: Spend, mark: Mark) -> tuple[int, int]:
    """What a settlement adds in a threshold's unit, and the counter's total spent in it."""
    if mark.unit == "usd":
        return spend.usd, counter.spent_usd
    if mark.unit == "tokens":
        return spend.tokens, counter.spent_tokens
    return spend.requests or 0, counter.spent_requests
