"""The hold keeper (``budgets.keeper``) on the memory store with an injected clock: holds of calls in flight
are renewed in one store operation per period, holds of finished, forgotten or overdue calls are not, and a
renewal the store cannot take is retried at the next period."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from decimal import Decimal

import pytest

from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.errors import ConfigurationError, StoreUnavailableError
from bedrock_budget.stores.base import Renewal
from bedrock_budget.stores.memory import MemoryStore

from .conftest import FakeClock

TTL = 300.0
USD = 1_000_000_000


class CountingStore(MemoryStore):
    """Counts renewals and can fail the next ones, as a store in an outage would."""

    def __init__(self) -> None:
        super().__init__()
        self.renew_calls: list[int] = []
        self.fail_next = 0

    def renew(self, renewals: Sequence[Renewal], *, now_ms: int, deadline_ms: int) -> tuple[bool, ...]:
        if self.fail_next:
            self.fail_next -= 1
            raise StoreUnavailableError("counting", "connection refused")
        self.renew_calls.append(len(renewals))
        return super().renew(renewals, now_ms=now_ms, deadline_ms=deadline_ms)


def budgets() -> list[Budget]:
    return [
        Budget("org", window="lifetime", limit_usd="1"),
        Budget("per-user", window="lifetime", scope={"user": "*"}, limit_usd="1"),
    ]


def make(clock: FakeClock, store: MemoryStore, **options: object) -> Ledger:
    return Ledger(store, budgets(), reservation_ttl=TTL, clock=clock, **options)  # type: ignore[arg-type]


def test_one_store_operation_renews_every_call_in_flight(clock: FakeClock) -> None:
    store = CountingStore()
    ledger = make(clock, store)
    calls = [ledger.reserve({"user": f"u{i}"}, "m", None, USD // 100, {}) for i in range(40)]
    assert ledger._keeper.tick() == 0  # nothing is due yet: every hold was just made
    assert store.renew_calls == []
    for call in calls[:10]:
        ledger.settle(call, USD // 200, {})
    clock.advance(TTL / 2)
    assert ledger._keeper.tick() == 60  # 30 calls in flight, two counters each, one store operation
    assert store.renew_calls == [60]
    clock.advance(TTL * 0.75)  # past the first deadline
    (status,) = ledger.status("org")
    assert status.reserved_usd == Decimal("0.30")
    assert status.active_reservations == 30
    ledger._keeper.tick()
    clock.advance(TTL * 0.75)
    assert ledger.read("org").reserved_usd == Decimal("0.30")
    for call in calls[10:]:
        ledger.settle(call, USD // 200, {})
    assert ledger.read("org").spent_usd == Decimal("0.20")
    assert len(ledger._keeper) == 0
    ledger.close()


def test_a_renewal_the_store_cannot_take_is_retried_at_the_next_period(clock: FakeClock) -> None:
    store = CountingStore()
    ledger = make(clock, store)
    call = ledger.reserve({"user": "u1"}, "m", None, USD // 10, {})
    clock.advance(TTL / 2)
    store.fail_next = 1
    assert ledger._keeper.tick() == 0
    assert ledger.renewal_failures == 1
    clock.advance(TTL / 4)
    assert ledger._keeper.tick() == 2
    clock.advance(TTL * 0.9)  # past the first deadline, within the renewed one
    assert ledger.read("org").reserved_usd == Decimal("0.1")
    ledger.settle(call, USD // 10, {})
    ledger.close()


def test_an_outage_longer_than_the_ttl_lets_the_hold_expire_and_the_settlement_still_counts(
    clock: FakeClock,
) -> None:
    store = CountingStore()
    ledger = make(clock, store)
    call = ledger.reserve({"user": "u1"}, "m", None, USD // 10, {})
    store.fail_next = 10
    for _ in range(5):
        clock.advance(TTL / 4)
        ledger._keeper.tick()
    assert ledger.renewal_failures == 5
    assert ledger.read("org").reserved_usd == 0  # expired in the store
    ledger.settle(call, USD // 20, {})
    assert ledger.read("org").spent_usd == Decimal("0.05")  # charged once, as a late settlement
    ledger.close()


def test_a_reservation_nobody_can_settle_is_not_renewed(clock: FakeClock) -> None:
    store = CountingStore()
    ledger = make(clock, store)
    ledger.reserve({"user": "u1"}, "m", None, USD // 10, {})  # dropped at once
    gc.collect()
    clock.advance(TTL / 2)
    assert ledger._keeper.tick() == 0
    assert len(ledger._keeper) == 0
    clock.advance(TTL / 2)
    assert ledger.read("org").reserved_usd == 0
    ledger.close()


def test_an_overdue_call_is_no_longer_renewed(clock: FakeClock) -> None:
    store = CountingStore()
    ledger = make(clock, store, max_call_seconds=TTL * 2)
    call = ledger.reserve({"user": "u1"}, "m", None, USD // 10, {})
    for _ in range(7):
        clock.advance(TTL / 4)
        ledger._keeper.tick()
    assert ledger.read("org").reserved_usd == Decimal("0.1")  # 1.75 TTL in, still renewed
    clock.advance(TTL / 4)
    ledger._keeper.tick()  # 2 TTL: overdue
    assert ledger.overdue_calls == 1
    clock.advance(TTL)
    assert ledger.read("org").reserved_usd == 0
    ledger.settle(call, USD // 10, {})  # a late settlement still counts once
    assert ledger.read("org").spent_usd == Decimal("0.1")
    ledger.close()


def test_an_overdue_call_with_a_callback_is_settled_by_it(clock: FakeClock) -> None:
    ledger = make(clock, CountingStore(), max_call_seconds=60)
    call = ledger.reserve({"user": "u1"}, "m", None, USD // 10, {})
    ledger.on_overdue(call, lambda: ledger.settle(call, USD // 10, {}))
    clock.advance(59)
    ledger._keeper.tick()
    assert call.state == "held"
    clock.advance(1)
    ledger._keeper.tick()
    assert call.state == "settled"
    status = ledger.read("org")
    assert (status.spent_usd, status.reserved_usd) == (Decimal("0.1"), 0)
    ledger.close()


def test_a_lease_stays_held_while_a_call_it_admitted_runs_long(clock: FakeClock) -> None:
    store = CountingStore()
    ledger = make(clock, store, lease_fraction=0.1, lease_seconds=1.0)
    call = ledger.reserve({"user": "u1"}, "m", None, USD // 100, {})
    assert call.leases
    held = ledger.store.read([lease.ref for lease in call.leases], now_ms=int(clock() * 1000))
    assert all(state.held_usd == USD // 10 for state in held)
    for _ in range(8):  # two TTLs: the lease's own deadline was 1 s + TTL
        clock.advance(TTL / 4)
        ledger._keeper.tick()
    held = ledger.store.read([lease.ref for lease in call.leases], now_ms=int(clock() * 1000))
    assert all(state.held_usd == USD // 10 for state in held)
    ledger.settle(call, USD // 100, {})
    ledger.flush()  # retires the lease, which closes now that its call has settled
    assert len(ledger._keeper) == 0
    status = ledger.read("org")
    assert (status.spent_usd, status.reserved_usd) == (Decimal("0.01"), 0)
    ledger.close()


def test_max_call_seconds_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="max_call_seconds"):
        Ledger("memory://", [], max_call_seconds=0)


def test_an_overdue_call_admitted_from_a_lease_is_settled_by_its_callback(clock: FakeClock) -> None:
    ledger = make(clock, CountingStore(), lease_fraction=0.1, lease_seconds=1.0, max_call_seconds=60)
    plain = ledger.reserve({"user": "u1"}, "m", None, USD // 100, {})
    leaked = ledger.reserve({"user": "u1"}, "m", None, USD // 100, {})
    assert plain.leases
    assert leaked.leases
    assert len(ledger._keeper) == len(plain.leases) == 2  # the leases; their calls are not tracked
    ledger.settle(plain, USD // 100, {})
    ledger.on_overdue(leaked, lambda: ledger.settle(leaked, USD // 100, {}))
    clock.advance(59)
    ledger._keeper.tick()
    assert leaked.state == "held"
    clock.advance(1)
    ledger._keeper.tick()
    assert leaked.state == "settled"
    status = ledger.read("org")
    assert (status.spent_usd, status.reserved_usd) == (Decimal("0.02"), 0)
    ledger.close()


def test_a_store_that_cannot_renew_is_asked_once(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    class Unrenewable(MemoryStore):
        asked = 0

        def renew(self, renewals: Sequence[Renewal], *, now_ms: int, deadline_ms: int) -> tuple[bool, ...]:
            Unrenewable.asked += 1
            raise NotImplementedError

    ledger = make(clock, Unrenewable())
    call = ledger.reserve({"user": "u1"}, "m", None, USD // 10, {})
    for _ in range(3):
        clock.advance(TTL / 4)
        ledger._keeper.tick()
    assert Unrenewable.asked == 1
    assert "cannot renew holds" in caplog.text
    clock.advance(TTL)
    assert ledger.read("org").reserved_usd == 0  # as before renewal existed: the hold expired
    ledger.settle(call, USD // 10, {})
    ledger.close()
