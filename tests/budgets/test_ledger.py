"""Ledger semantics on the memory store with an injected clock: block, downgrade, warn, exactly-once
settlement, expiry, per-value budgets, limit changes, window resets, alerts and the outage policy."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from bedrock_budget.alerts import Alert
from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.errors import (
    BudgetBlockedError,
    BudgetExceededError,
    DowngradeRequiredError,
    StoreError,
    StoreUnavailableError,
)
from bedrock_budget.stores import CounterRef, Hold, ReserveResult, SettleOutcome, Spend, Store
from bedrock_budget.stores.base import CounterState, SettleRequest, Tallies
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.stores.tracking import TrackEntry

from .conftest import FakeClock

USD = 1_000_000_000
CALL = {"user": "u-17", "app": "chat"}


class FlakyStore(Store):
    """Delegates to a real store; raises while ``down`` and counts calls."""

    def __init__(self, inner: Store) -> None:
        super().__init__()
        self.inner = inner
        self.down = False
        self.calls: list[str] = []

    def _check(self, op: str) -> None:
        self.calls.append(op)
        if self.down:
            raise StoreUnavailableError("flaky://", "connection refused")

    def reserve(
        self, reservation_id: str, holds: Sequence[Hold], *, now_ms: int, deadline_ms: int
    ) -> ReserveResult:
        self._check("reserve")
        return self.inner.reserve(reservation_id, holds, now_ms=now_ms, deadline_ms=deadline_ms)

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
        self._check("settle-charge" if charge else "settle")
        return self.inner.settle(
            reservation_id,
            spends,
            now_ms=now_ms,
            model=model,
            tokens=tokens,
            charge=charge,
            tallies=tallies,
            track=track,
        )

    def settle_many(
        self, requests: Sequence[SettleRequest], *, now_ms: int
    ) -> list[tuple[SettleOutcome, ...] | StoreError]:
        results: list[tuple[SettleOutcome, ...] | StoreError] = []
        for request in requests:
            try:
                self._check("settle-charge" if request.charge else "settle")
            except StoreError as exc:
                results.append(exc)
                continue
            results.extend(self.inner.settle_many([request], now_ms=now_ms))
        return results

    def release(self, reservation_id: str, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[bool, ...]:
        self._check("release")
        return self.inner.release(reservation_id, refs, now_ms=now_ms)

    def read(self, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[CounterState, ...]:
        return self.inner.read(refs, now_ms=now_ms)

    def reset(self, refs: Sequence[CounterRef]) -> int:
        return self.inner.reset(refs)

    def forget_spend(self, refs: Sequence[CounterRef], *, now_ms: int) -> int:
        return self.inner.forget_spend(refs, now_ms=now_ms)

    def list(self, *, now_ms: int, budget: str | None = None) -> list[CounterState]:
        return self.inner.list(now_ms=now_ms, budget=budget)

    def ping(self) -> None:
        self._check("ping")


def ledger_for(store: Store, clock: FakeClock, *budgets: Budget, **options: Any) -> Ledger:
    return Ledger(store, budgets, clock=clock, **options)


def spent(ledger: Ledger, name: str, scope: Mapping[str, str] | None = None) -> tuple[Decimal, Decimal]:
    status = ledger.read(name, scope)
    return status.spent_usd, status.reserved_usd


def test_block_refuses_with_everything_the_error_needs(memory_store: MemoryStore, clock: FakeClock) -> None:
    clock.set("2025-06-10T21:30:00+00:00")
    budget = Budget("chat-daily", scope={"app": "chat"}, timezone="Europe/Berlin", limit_usd="1.00")
    ledger = ledger_for(memory_store, clock, budget)
    first = ledger.reserve(CALL, "m", None, 600_000_000, {"input": 10})
    ledger.settle(first, 600_000_000, {"input": 10})
    held = ledger.reserve(CALL, "m", None, 300_000_000, {"input": 10})
    with pytest.raises(BudgetBlockedError) as info:
        ledger.reserve(CALL, "m", None, 100_000_001, {"input": 10})
    error = info.value
    assert isinstance(error, BudgetExceededError)
    assert (error.budget, error.scope, error.window, error.unit) == (
        "chat-daily",
        {"app": "chat"},
        "day",
        "usd",
    )
    assert (error.limit, error.spent, error.reserved, error.requested) == (
        Decimal(1),
        Decimal("0.6"),
        Decimal("0.3"),
        Decimal("0.100000001"),
    )
    # 21:30 UTC is already 23:30 in Berlin (CEST): the window is the Berlin calendar day.
    assert error.window_start == datetime.fromisoformat("2025-06-10T00:00:00+02:00")
    assert error.resets_at == datetime.fromisoformat("2025-06-11T00:00:00+02:00")
    assert error.resets_at is not None
    assert error.resets_at.utcoffset() is not None
    assert "resets at 2025-06-11T00:00:00+02:00" in str(error)
    assert [r.budget.name for r in error.refusals] == ["chat-daily"]
    assert spent(ledger, "chat-daily") == (Decimal("0.6"), Decimal("0.3"))  # the refused call holds nothing
    ledger.release(held)
    assert ledger.reserve(CALL, "m", None, 400_000_000, {}).budgets == ("chat-daily",)


def test_a_worst_case_above_the_limit_says_so(memory_store: MemoryStore, clock: FakeClock) -> None:
    ledger = ledger_for(memory_store, clock, Budget("small", limit_usd="0.05"))
    with pytest.raises(BudgetBlockedError) as info:
        ledger.reserve(CALL, "m", None, 60_000_000, {"output": 4096})
    assert "worst case alone ($0.06) exceeds the budget's limit ($0.05)" in info.value.reason
    assert "maximum output tokens" in info.value.reason
    assert info.value.spent == 0


def test_token_limits_with_weights(memory_store: MemoryStore, clock: FakeClock) -> None:
    budget = Budget("tokens", limit_tokens=1000, token_weights={"cache_read": "0.1"})
    ledger = ledger_for(memory_store, clock, budget)
    first = ledger.reserve(CALL, "m", None, 0, {"input": 500, "cache_read": 4000})  # 500 + 400
    ledger.settle(first, 0, {"input": 500, "cache_read": 4000})
    with pytest.raises(BudgetBlockedError) as info:
        ledger.reserve(CALL, "m", None, 0, {"input": 50, "cache_read": 600})  # 50 + 60 > 100 left
    assert (info.value.unit, info.value.limit, info.value.spent, info.value.requested) == (
        "tokens",
        Decimal(1000),
        Decimal(900),
        Decimal(110),
    )
    assert "tokens" in str(info.value)
    ledger.reserve(CALL, "m", None, 0, {"input": 50, "cache_read": 500})  # exactly 100


def test_every_refusing_budget_is_listed_in_configuration_order(
    memory_store: MemoryStore, clock: FakeClock
) -> None:
    ledger = ledger_for(
        memory_store, clock,
        Budget("global", limit_usd="10"),
        Budget("users", scope={"user": "*"}, limit_usd="1", limit_tokens=10),
        Budget("apps", scope={"app": "*"}, limit_usd="2"),
    )  # fmt: skip
    with pytest.raises(BudgetBlockedError) as info:
        ledger.reserve(CALL, "m", None, 3 * USD, {"input": 11})
    assert info.value.budget == "users"
    assert info.value.unit == "usd"
    assert [(r.budget.name, r.unit, dict(r.scope)) for r in info.value.refusals] == [
        ("users", "usd", {"user": "u-17"}),
        ("users", "tokens", {"user": "u-17"}),
        ("apps", "usd", {"app": "chat"}),
    ]
    assert spent(ledger, "global") == (0, 0)


def test_downgrade_signals_the_cheaper_model(memory_store: MemoryStore, clock: FakeClock) -> None:
    ledger = ledger_for(
        memory_store, clock,
        Budget("hard", limit_usd="5"),
        Budget("premium", model="big", limit_usd="1", action="downgrade", downgrade_to="small"),
    )  # fmt: skip
    ledger.settle(ledger.reserve(CALL, "big", None, 900_000_000, {}), 900_000_000, {})
    with pytest.raises(DowngradeRequiredError) as info:
        ledger.reserve(CALL, "big", None, 200_000_000, {})
    assert info.value.downgrade_to == "small"
    assert info.value.budget == "premium"
    assert isinstance(info.value, BudgetExceededError)
    assert "retry with the cheaper model small" in str(info.value)
    cheaper = ledger.reserve(CALL, "small", None, 20_000_000, {})  # the premium budget does not cover it
    assert cheaper.budgets == ("hard",)


def test_downgrade_wins_over_block_but_not_for_its_own_target(
    memory_store: MemoryStore, clock: FakeClock
) -> None:
    ledger = ledger_for(
        memory_store, clock,
        Budget("hard", limit_usd="1"),
        Budget("soft", limit_usd="1", action="downgrade", downgrade_to="small"),
    )  # fmt: skip
    with pytest.raises(DowngradeRequiredError) as info:
        ledger.reserve(CALL, "big", None, 2 * USD, {})
    assert [r.budget.name for r in info.value.refusals] == ["hard", "soft"]
    with pytest.raises(BudgetBlockedError) as blocked:
        ledger.reserve(CALL, "small", None, 2 * USD, {})
    assert not isinstance(blocked.value, DowngradeRequiredError)
    assert blocked.value.budget == "hard"


def test_warn_budgets_never_refuse_but_report_and_record(memory_store: MemoryStore, clock: FakeClock) -> None:
    ledger = ledger_for(memory_store, clock, Budget("shadow", limit_usd="1", action="warn"))
    quiet = ledger.reserve(CALL, "m", None, USD, {})
    assert quiet.warnings == ()
    loud = ledger.reserve(CALL, "m", None, USD, {})
    (warning,) = loud.warnings
    assert (warning.budget.name, warning.action, warning.spent, warning.reserved, warning.requested) == (
        "shadow",
        "warn",
        0,
        Decimal(1),
        Decimal(1),
    )
    ledger.settle(quiet, USD, {})
    ledger.settle(loud, USD, {})
    assert spent(ledger, "shadow") == (Decimal(2), 0)


def test_calls_no_budget_covers_do_not_touch_the_store(clock: FakeClock) -> None:
    store = FlakyStore(MemoryStore())
    ledger = ledger_for(store, clock, Budget("other-app", scope={"app": "search"}, limit_usd="1"))
    reservation = ledger.reserve(CALL, "m", None, 10 * USD, {})
    ledger.settle(reservation, 10 * USD, {})
    ledger.release(reservation)
    assert reservation.budgets == ()
    assert store.calls == []


def test_settle_and_release_happen_once(memory_store: MemoryStore, clock: FakeClock) -> None:
    ledger = ledger_for(memory_store, clock, Budget("b", limit_usd="10"))
    reservation = ledger.reserve(CALL, "m", None, 3 * USD, {})
    ledger.settle(reservation, 2 * USD, {})
    ledger.settle(reservation, 2 * USD, {})
    ledger.release(reservation)
    assert reservation.state == "settled"
    assert spent(ledger, "b") == (Decimal(2), 0)
    released = ledger.reserve(CALL, "m", None, 3 * USD, {})
    assert spent(ledger, "b") == (Decimal(2), Decimal(3))
    ledger.release(released)
    ledger.settle(released, 3 * USD, {})
    assert released.state == "released"
    assert spent(ledger, "b") == (Decimal(2), 0)


def test_expired_holds_come_back_and_late_settles_still_count(
    memory_store: MemoryStore, clock: FakeClock
) -> None:
    ledger = ledger_for(memory_store, clock, Budget("b", limit_usd="1"), reservation_ttl=300)
    crashed = ledger.reserve(CALL, "m", None, 700_000_000, {})
    slow = ledger.reserve(CALL, "m", None, 300_000_000, {})
    with pytest.raises(BudgetBlockedError):
        ledger.reserve(CALL, "m", None, 1, {})
    clock.advance(299.999)
    with pytest.raises(BudgetBlockedError):
        ledger.reserve(CALL, "m", None, 1, {})
    clock.advance(0.001)
    after = ledger.reserve(CALL, "m", None, 900_000_000, {})  # both holds expired at their deadline
    ledger.settle(slow, 250_000_000, {})  # a stream that finished after the TTL: counted once
    assert spent(ledger, "b") == (Decimal("0.25"), Decimal("0.9"))
    ledger.release(after)
    assert crashed.state == "held"  # a crashed process never settles; its hold is simply gone


def test_wildcard_scopes_cap_each_value(memory_store: MemoryStore, clock: FakeClock) -> None:
    ledger = ledger_for(memory_store, clock, Budget("per-user", scope={"user": "*"}, limit_usd="5"))
    for _ in range(5):
        ledger.settle(ledger.reserve({"user": "u1"}, "m", None, USD, {}), USD, {})
    with pytest.raises(BudgetBlockedError) as info:
        ledger.reserve({"user": "u1"}, "m", None, 1, {})
    assert info.value.scope == {"user": "u1"}
    ledger.settle(ledger.reserve({"user": "u2"}, "m", None, 5 * USD, {}), 5 * USD, {})
    # A call without a user is capped too: all such calls share one counter, "(none)", at the same limit.
    with pytest.raises(BudgetBlockedError) as pooled:
        ledger.reserve({"app": "no-user"}, "m", None, 100 * USD, {})
    assert pooled.value.scope == {"user": "(none)"}
    ledger.settle(ledger.reserve({"app": "no-user"}, "m", None, 2 * USD, {}), 2 * USD, {})
    statuses = {s.scope["user"]: s.spent_usd for s in ledger.status("per-user")}
    assert statuses == {"u1": Decimal(5), "u2": Decimal(5), "(none)": Decimal(2)}


def test_model_and_family_budgets(memory_store: MemoryStore, clock: FakeClock) -> None:
    ledger = ledger_for(
        memory_store, clock,
        Budget("opus", model="anthropic.claude-opus", limit_usd="1"),
        Budget("anthropic", model_family="anthropic", limit_usd="2"),
        Budget("per-model", model="*", limit_usd="3"),
    )  # fmt: skip
    r = ledger.reserve(CALL, "anthropic.claude-opus", "anthropic", USD, {})
    assert r.budgets == ("opus", "anthropic", "per-model")
    assert ledger.reserve(CALL, "amazon.nova-pro", "nova", USD, {}).budgets == ("per-model",)
    assert [dict(line.ref.scope) for line in r.lines] == [
        {"model": "anthropic.claude-opus"},
        {"model_family": "anthropic"},
        {"model": "anthropic.claude-opus"},
    ]


def test_changing_a_limit_mid_window_keeps_the_spend(memory_store: MemoryStore, clock: FakeClock) -> None:
    budget = Budget("b", scope={"app": "chat"}, limit_usd="10")
    ledger = ledger_for(memory_store, clock, budget)
    ledger.settle(ledger.reserve(CALL, "m", None, 8 * USD, {}), 8 * USD, {})
    ledger.set_budgets([budget.replace(limit_usd="9")])
    with pytest.raises(BudgetBlockedError) as info:
        ledger.reserve(CALL, "m", None, 2 * USD, {})
    assert (info.value.limit, info.value.spent) == (Decimal(9), Decimal(8))
    ledger.set_budgets([budget.replace(limit_usd="20", action="warn", thresholds=(90,))])
    assert spent(ledger, "b") == (Decimal(8), 0)
    ledger.reserve(CALL, "m", None, 12 * USD, {})


def test_windows_reset_at_local_midnight(memory_store: MemoryStore, clock: FakeClock) -> None:
    ledger = ledger_for(memory_store, clock, Budget("daily", timezone="America/New_York", limit_usd="1"))
    clock.set("2024-11-03T23:59:59.999-05:00")  # the 25-hour day
    ledger.settle(ledger.reserve(CALL, "m", None, USD, {}), USD, {})
    (today,) = ledger.status()
    assert today.window_start == datetime.fromisoformat("2024-11-03T00:00:00-04:00")
    assert today.resets_at == datetime.fromisoformat("2024-11-04T00:00:00-05:00")
    with pytest.raises(BudgetBlockedError):
        ledger.reserve(CALL, "m", None, 1, {})
    clock.set("2024-11-04T00:00:00-05:00")
    ledger.reserve(CALL, "m", None, USD, {})
    (tomorrow,) = ledger.status()
    assert (tomorrow.spent_usd, tomorrow.reserved_usd) == (0, Decimal(1))


def test_threshold_alerts(memory_store: MemoryStore, clock: FakeClock) -> None:
    received: list[Alert] = []

    def broken(alert: Alert) -> None:
        raise RuntimeError("sink down")

    clock.set("2025-03-05T10:00:00+00:00")
    budget = Budget("b", scope={"app": "chat"}, limit_usd="10", window="month")
    ledger = ledger_for(memory_store, clock, budget, alert_sinks=[broken, received.append])
    for amount in (4, 1, 2, 2, 1, 5):
        ledger.settle(ledger.reserve(CALL, "m", None, 0, {}), amount * USD, {})
    assert [(a.threshold, a.spent, a.percentage) for a in received] == [
        (50, Decimal(5), Decimal("50.00")),
        (80, Decimal(9), Decimal("90.00")),
        (100, Decimal(10), Decimal("100.00")),
    ]
    alert = received[0]
    assert (alert.budget, dict(alert.scope), alert.window, alert.unit, alert.limit) == (
        "b",
        {"app": "chat"},
        "month",
        "usd",
        Decimal(10),
    )
    assert alert.window_start == datetime.fromisoformat("2025-03-01T00:00:00+00:00")
    assert alert.resets_at == datetime.fromisoformat("2025-04-01T00:00:00+00:00")
    assert alert.to_dict()["spent"] == "5"
    assert "50.00%" in alert.message
    assert ledger.alerts_fired == 3


def test_deny_policy_raises_typed_errors(clock: FakeClock) -> None:
    store = FlakyStore(MemoryStore())
    ledger = ledger_for(store, clock, Budget("b", limit_usd="1"))
    store.down = True
    with pytest.raises(StoreUnavailableError) as info:
        ledger.reserve(CALL, "m", None, 1, {})
    assert info.value.store == "flaky://"
    assert "deny" in str(info.value)
    assert ledger.store_errors == 1


def test_allow_policy_journals_and_replays_exactly_once(clock: FakeClock) -> None:
    inner = MemoryStore()
    store = FlakyStore(inner)
    ledger = ledger_for(store, clock, Budget("b", limit_usd="10"), on_store_error="allow")
    online = ledger.reserve(CALL, "m", None, 3 * USD, {})
    store.down = True
    offline = ledger.reserve(CALL, "m", None, 2 * USD, {})
    assert offline.offline
    assert not online.offline
    ledger.settle(offline, 2 * USD, {"input": 5})
    ledger.settle(online, USD, {})
    assert ledger.journal_depth == 2
    assert ledger.flush() == 2  # still down: nothing lost, nothing applied
    store.down = False
    ledger.reserve(CALL, "m", None, 0, {})  # a successful operation replays the journal
    assert ledger.journal_depth == 0
    assert spent(ledger, "b") == (Decimal(3), 0)
    assert store.calls.count("settle-charge") >= 1
    assert store.calls.count("settle") >= 1
    # Replaying again (as after a lost reply) changes nothing.
    for entry_id in (offline.id, online.id):
        ref = online.lines[0].ref
        inner.settle(
            entry_id, [Spend(ref, USD, 0)], now_ms=int(clock() * 1000), charge=entry_id == offline.id
        )
    assert spent(ledger, "b") == (Decimal(3), 0)


def test_a_full_journal_is_loud(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore(MemoryStore())
    ledger = ledger_for(store, clock, Budget("b", limit_usd="10"), on_store_error="allow", journal_size=1)
    first, second = (ledger.reserve(CALL, "m", None, USD, {}) for _ in range(2))
    store.down = True
    ledger.settle(first, USD, {})
    with pytest.raises(StoreUnavailableError, match="journal is full"):
        ledger.reserve(CALL, "m", None, USD, {})
    with caplog.at_level(logging.ERROR, logger="bedrock_budget.journal"):
        ledger.settle(second, 7 * USD, {})
    assert (ledger.journal_depth, ledger.journal_dropped, ledger.journal_dropped_nanos) == (1, 1, 7 * USD)
    assert "journal is full" in caplog.text


def test_a_full_journal_counts_the_spend_of_lost_tracking(caplog: pytest.LogCaptureFixture) -> None:
    from bedrock_budget.budgets.journal import Journal
    from bedrock_budget.stores.tracking import Tracking, TrackSums

    sums = TrackSums(Tracking())
    for _ in range(3):
        sums.add({"user": "u"}, "m", 5 * USD, {"input": 1}, 1_764_806_400.0)
    (summed,) = sums.entries()
    journal = Journal(capacity=0)
    with caplog.at_level(logging.ERROR, logger="bedrock_budget.journal"):
        assert not journal.append(SettleRequest("sums-1", (), track=summed))
    assert (journal.dropped, journal.dropped_nanos) == (1, 15 * USD)
    assert "15000000000 nano-USD, 3 calls" in caplog.text


def test_release_never_raises(clock: FakeClock) -> None:
    store = FlakyStore(MemoryStore())
    ledger = ledger_for(store, clock, Budget("b", limit_usd="10"))
    reservation = ledger.reserve(CALL, "m", None, USD, {})
    store.down = True
    ledger.release(reservation)
    assert reservation.state == "released"
    assert ledger.store_errors == 1


def test_other_store_errors_follow_the_policy(clock: FakeClock) -> None:
    class Broken(FlakyStore):
        def _check(self, op: str) -> None:
            raise StoreError("script failed")

    ledger = ledger_for(Broken(MemoryStore()), clock, Budget("b", limit_usd="1"))
    with pytest.raises(StoreUnavailableError, match="script failed"):
        ledger.reserve(CALL, "m", None, 1, {})


@pytest.mark.parametrize(
    ("cost", "tokens", "error"),
    [
        (-1, {}, ValueError),
        (1.5, {}, TypeError),
        (True, {}, TypeError),
        (1, {"input": -3}, ValueError),
        (1, {"output": True}, TypeError),
        (1, {"output": 2.0}, TypeError),
        (1, {"cache_read": 2**63}, ValueError),
    ],
)
def test_amounts_are_validated(memory_store: MemoryStore, clock: FakeClock, cost: Any, tokens: Any,
                               error: type[Exception]) -> None:  # fmt: skip
    ledger = ledger_for(memory_store, clock, Budget("b", limit_usd="1"))
    with pytest.raises(error) as raised:
        ledger.reserve(CALL, "m", None, cost, tokens)
    for kind in tokens:
        assert f"tokens[{kind!r}]" in str(raised.value)  # the error names the token type


def test_status_read_and_reset(memory_store: MemoryStore, clock: FakeClock) -> None:
    ledger = ledger_for(
        memory_store, clock,
        Budget("fixed", scope={"app": "chat"}, limit_usd="10", limit_tokens=100),
        Budget("users", scope={"user": "*"}, limit_usd="1"),
    )  # fmt: skip
    (fresh,) = ledger.status("fixed")  # listed before any call
    assert (fresh.spent_usd, fresh.utilisation, fresh.limit_usd) == (0, 0, Decimal(10))
    reservation = ledger.reserve(CALL, "anthropic.x", "anthropic", USD, {"input": 20})
    ledger.settle(reservation, USD // 2, {"input": 20, "output": 5})
    fixed, users = ledger.status()
    assert (fixed.spent_usd, fixed.spent_tokens, fixed.utilisation) == (Decimal("0.5"), 25, Decimal("0.25"))
    assert dict(fixed.models["anthropic.x"]) == {"calls": 1, "cost": USD // 2, "input": 20, "output": 5}
    assert dict(users.scope) == {"user": "u-17"}
    assert users.spent_usd == Decimal("0.5")
    assert ledger.read("users", {"user": "u-17"}).spent_usd == Decimal("0.5")
    assert ledger.read("users", {"user": "nobody"}).spent_usd == 0
    with pytest.raises(Exception, match="wildcard"):
        ledger.read("users")
    with pytest.raises(Exception, match="no budget named"):
        ledger.read("missing")
    assert ledger.reset("users") == 1
    assert ledger.status("users") == []
    assert ledger.reset("fixed", {"app": "chat"}) == 1


def test_close_flushes_closes_sinks_and_owned_stores(clock: FakeClock) -> None:
    closed: list[str] = []

    class Sink:
        def send(self, alert: Alert) -> None:
            return None

        def close(self) -> None:
            closed.append("sink")

    with Ledger("memory://", [Budget("b", limit_usd="1")], clock=clock, alert_sinks=[Sink()]) as ledger:
        ledger.settle(ledger.reserve(CALL, "m", None, 1, {}), 1, {})
    assert closed == ["sink"]
    ledger.close()
    assert closed == ["sink"]


def test_configuration_errors() -> None:
    with pytest.raises(Exception, match="on_store_error"):
        Ledger("memory://", on_store_error="maybe")  # type: ignore[arg-type]
    with pytest.raises(Exception, match="two budgets are named 'a'"):
        Ledger("memory://", [Budget("a", limit_usd="1"), Budget("a", limit_usd="2")])
    with pytest.raises(Exception, match="reservation_ttl"):
        Ledger("memory://", reservation_ttl=0)


def test_a_refusal_alert_reaches_working_sinks_and_never_replaces_the_refusal(
    memory_store: MemoryStore, clock: FakeClock
) -> None:
    received: list[Alert] = []

    def broken(alert: Alert) -> None:
        raise RuntimeError("sink down")

    clock.set("2025-03-05T10:00:00+00:00")
    budget = Budget("b", limit_usd="10", window="month")
    ledger = ledger_for(memory_store, clock, budget, alert_sinks=[broken, received.append])
    ledger.settle(ledger.reserve(CALL, "m", None, 7 * USD, {}), 7 * USD, {})
    held = ledger.reserve(CALL, "m", None, 2 * USD, {})
    with pytest.raises(BudgetBlockedError):
        ledger.reserve(CALL, "m", None, 2 * USD, {})  # 7 spent + 2 held + 2 > 10
    refusal = received[-1]
    assert (refusal.threshold, refusal.refused) == (100, True)
    assert (refusal.spent, refusal.held, refusal.requested) == (Decimal(7), Decimal(2), Decimal(2))
    assert ledger.alerts_fired == 2  # 50% from the settle, then the refusal
    ledger.release(held)
