"""One counter of the in-process store (``stores.memory``): the state a Lua script keeps in a counter's three
keys, and the purge, hold and expiry rules the scripts apply to them."""

from __future__ import annotations

from bedrock_budget.stores.base import CounterRef, CounterState, Hold, Mark

__all__ = ["Counter", "fits", "refusal_marks"]


class Counter:
    __slots__ = (
        "alerts",
        "epoch",
        "expires",
        "held_tokens",
        "held_usd",
        "holds",
        "limits",
        "live",
        "meta",
        "next_deadline",
        "oldest_tomb",
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
        # Held amounts and whether expiry charges them (``Hold.charge_on_expiry``).
        self.holds: dict[str, tuple[int, int, bool]] = {}
        self.live: dict[str, int] = {}
        self.tombs: dict[str, int] = {}
        self.alerts: dict[str, int] = {}
        self.tallies: dict[str, int] = {}
        self.meta: str | None = None
        self.epoch: str | None = None
        self.limits: tuple[int | None, int | None] = (None, None)
        self.expires: int | None = None
        # Lower bounds on the earliest live deadline and the oldest tombstone: purging scans only when
        # something can be due, so a busy shared counter costs O(1) per operation, not O(holds).
        self.next_deadline: int | None = None
        self.oldest_tomb: int | None = None

    def drop_hold(self, rid: str) -> bool:
        if self.live.pop(rid, None) is None:
            return False
        usd, tokens, _ = self.holds.pop(rid, (0, 0, False))
        self.held_usd -= usd
        self.held_tokens -= tokens
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
                usd, tokens, charge = self.holds.get(rid, (0, 0, False))
                self.drop_hold(rid)
                if charge:
                    # Charged at its worst case; the 'd' marker makes a later settlement a no-op.
                    self.spent_usd += usd
                    self.spent_tokens += tokens
                    self.tomb("d" + rid, now)
                else:
                    self.tomb("x" + rid, now)
            self.next_deadline = min(self.live.values(), default=None)
        if self.oldest_tomb is not None and self.oldest_tomb < trim_before:
            for member in [m for m, when in self.tombs.items() if when < trim_before]:
                del self.tombs[member]
            self.oldest_tomb = min(self.tombs.values(), default=None)

    def hold(self, rid: str, usd: int, tokens: int, deadline: int, charge: bool = False) -> None:
        self.held_usd += usd
        self.held_tokens += tokens
        self.holds[rid] = (usd, tokens, charge)
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
        )


def fits(spent: int, held: int, requested: int, limit: int | None) -> bool:
    return limit is None or spent + held + requested <= limit


def refusal_marks(
    counter: Counter, hold: Hold, refused_usd: bool, refused_tokens: bool, now_ms: int
) -> tuple[Mark, ...]:
    fired: list[Mark] = []
    for mark in hold.refusal_marks:
        refused, requested, limit = (
            (refused_usd, hold.usd, hold.limit_usd)
            if mark.unit == "usd"
            else (refused_tokens, hold.tokens, hold.limit_tokens)
        )
        if refused and fits(0, 0, requested, limit) and mark.name not in counter.alerts:
            counter.alerts[mark.name] = now_ms
            fired.append(mark)
    return tuple(fired)
