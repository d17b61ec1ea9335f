"""Capacity leases (``Ledger(lease_fraction=...)``) over every backend: no store round trip per call once
leased, exact accounting and per-model tallies, never overshooting, tapering near a limit, retirement by
time and by the keeper thread, release, warn budgets, limit changes, alerts, close, outages and
exactly-once settlement."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

import bedrock_budget as bb
from backends import Backend
from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.errors import ConfigurationError, StoreUnavailableError
from bedrock_budget.stores import Store
from polling import wait_until

USD = 1_000_000_000
CENT = USD // 100
CALL = {"user": "u-1", "app": "chat"}

pytestmark = pytest.mark.backends("all")


class Clock:
    """A settable clock starting at the real time (Redis keys get their usual TTLs)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def usd(nanos: int) -> Decimal:
    return Decimal(nanos) / USD


def count_reserves(store: Store) -> list[tuple[str, bool]]:
    """Record every reservation the store is asked to hold, and whether it was granted (an instance-level
    spy)."""
    seen: list[tuple[str, bool]] = []
    inner = store.reserve

    def reserve(reservation_id: str, holds: Any, **kwargs: Any) -> Any:
        result = inner(reservation_id, holds, **kwargs)
        seen.append((reservation_id, result.granted))
        return result

    store.reserve = reserve  # type: ignore[method-assign]
    return seen


def take_down(store: Store, *ops: str) -> Callable[[], None]:
    """Make the named store operations raise StoreUnavailableError; returns a function that restores them."""
    originals = {op: getattr(store, op) for op in ops}

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailableError("test://", "connection refused")

    for op in ops:
        setattr(store, op, down)

    def restore() -> None:
        for op, original in originals.items():
            setattr(store, op, original)

    return restore


def org_and_user(org: str = "100", user: str = "10") -> list[Budget]:
    return [
        Budget("org", window="lifetime", limit_usd=org),
        Budget("per-user", scope={"user": "*"}, window="lifetime", limit_usd=user),
    ]


# -- 1. no round trip once leased ---------------------------------------------------------------------------


def test_calls_after_the_first_make_no_store_reservation(backend: Backend) -> None:
    store = backend.make()
    reserves = count_reserves(store)
    ledger = Ledger(store, org_and_user(), lease_fraction=0.1, clock=Clock())
    first = ledger.reserve(CALL, "m", None, CENT, {"input": 10})
    assert len(reserves) == 1  # both leases in one store operation
    assert ledger.leases_live == 2
    assert len(first.leases) == 2
    ledger.settle(first, CENT, {"input": 10})
    for _ in range(30):
        reservation = ledger.reserve(CALL, "m", None, CENT, {"input": 10})
        assert reservation.leases
        ledger.settle(reservation, CENT, {"input": 10})
    assert len(reserves) == 1
    # Another user needs a lease on its own counter only; the org-wide lease keeps admitting.
    other = ledger.reserve({"user": "u-2", "app": "chat"}, "m", None, CENT, {})
    assert len(reserves) == 2
    assert other.leases[0] is first.leases[0]
    ledger.settle(other, CENT, {})
    ledger.reserve({"user": "u-2", "app": "chat"}, "m", None, CENT, {})
    assert len(reserves) == 2
    ledger.close()


# -- 2. exact accounting and per-model tallies --------------------------------------------------------------


def test_spend_and_per_model_tallies_are_exact(backend: Backend) -> None:
    ledger = Ledger(backend.make(), org_and_user(), lease_fraction=0.1, clock=Clock())
    a, b = "anthropic.claude-3-haiku-20240307-v1:0", "arn:aws:bedrock:us-east-1::foundation-model/m b%"
    calls = [
        (a, 7_000_003, 5_123_457, {"input": 100, "output": 20}),
        (b, 3_000_001, 2_999_999, {"input": 7, "output": 0}),
        (a, 7_000_003, 6_000_001, {"input": 50, "output": 31}),
        (b, 3_000_001, 1, {"input": 1, "output": 2}),
        (a, 7_000_003, 0, {"input": 0, "output": 0}),
    ] * 4
    expected: dict[str, dict[str, int]] = {}
    for model, worst, actual, tokens in calls:
        reservation = ledger.reserve(CALL, model, None, worst, tokens)
        assert reservation.leases
        ledger.settle(reservation, actual, tokens)
        tally = expected.setdefault(model, {"calls": 0, "cost": 0, "input": 0, "output": 0})
        tally["calls"] += 1
        tally["cost"] += actual
        tally["input"] += tokens["input"]
        tally["output"] += tokens["output"]
    total = sum(actual for _, _, actual, _ in calls)
    assert ledger.flush() == 0
    assert ledger.leases_live == 0
    fresh = Ledger(backend.make(), org_and_user())
    for reader in (ledger, fresh):
        for status in (reader.read("org"), reader.read("per-user", {"user": "u-1"})):
            assert status.spent_usd == usd(total)
            assert status.reserved_usd == 0
            assert status.active_reservations == 0
            models = {name: {k: v for k, v in counts.items() if v} for name, counts in status.models.items()}
            assert models == {name: {k: v for k, v in t.items() if v} for name, t in expected.items()}
    (org,) = ledger.status("org")
    assert org.models[a]["calls"] == 12
    assert org.models[b]["cost"] == 4 * (2_999_999 + 1)


def test_token_budget_leases_count_weighted_tokens_exactly(backend: Backend) -> None:
    budget = Budget("tokens", window="lifetime", limit_tokens=10_000, token_weights={"output": 4})
    ledger = Ledger(backend.make(), [budget], lease_fraction=0.2, clock=Clock())
    spent = 0
    for n in range(1, 11):
        tokens = {"input": 10 * n, "output": n}
        reservation = ledger.reserve(CALL, "m", None, 0, {"input": 200, "output": 50})
        assert reservation.leases
        ledger.settle(reservation, 0, tokens)
        spent += 10 * n + 4 * n
    status = ledger.read("tokens")
    assert status.spent_tokens == spent
    assert status.reserved_tokens == 0


# -- 3. never overshoot -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "background"])
def test_threads_with_leases_never_overshoot(backend: Backend, mode: Any) -> None:
    cost, limit = 7_000_003, 300_000_000
    ledger = Ledger(
        backend.make(),
        [Budget("shared", window="lifetime", limit_usd=usd(limit))],
        lease_fraction=0.2,
        settle_mode=mode,
    )
    granted: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        mine = 0
        try:
            for _ in range(15):
                try:
                    reservation = ledger.reserve(CALL, "m", None, cost, {})
                except bb.BudgetExceededError:
                    continue
                mine += 1
                ledger.settle(reservation, cost, {})
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        granted.append(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert ledger.flush() == 0
    status = ledger.read("shared")
    assert status.spent_usd <= usd(limit)
    assert status.spent_usd == usd(sum(granted) * cost)
    assert status.reserved_usd == 0
    assert sum(granted) > 0
    ledger.close()


def test_a_call_that_fits_beside_another_ledgers_lease_is_granted(backend: Backend) -> None:
    budget = Budget("team", window="lifetime", limit_usd="10")
    clock = Clock()
    a = Ledger(backend.make(), [budget], lease_fraction=0.5, clock=clock)
    b = Ledger(backend.make(), [budget], lease_fraction=0.6, clock=clock)
    a.settle(a.reserve(CALL, "m", None, USD, {}), USD, {})  # A leases $5, spends $1 of it
    assert a.leases_live == 1
    # B's $6 lease does not fit beside A's $5: B falls back to an exact $4 reservation, which does.
    held = b.reserve(CALL, "m", None, 4 * USD, {})
    assert not held.leases
    # $5 (A's lease) + $4 (B's call) + $2 > $10: refused by the ordinary path.
    with pytest.raises(bb.BudgetExceededError):
        b.reserve(CALL, "m", None, 2 * USD, {})
    a.flush()  # A's lease closes: $1 spent, $4 of it back
    assert a.leases_live == 0
    extra = b.reserve(CALL, "m", None, 2 * USD, {})
    b.settle(held, 4 * USD, {})
    b.settle(extra, 2 * USD, {})
    b.flush()
    status = b.read("team")
    assert (status.spent_usd, status.reserved_usd) == (Decimal(7), 0)


# -- 4. tapering near the limit -----------------------------------------------------------------------------


@pytest.mark.parametrize("cost", [70_000_000, 33_333_337, 190_000_000])
def test_leases_taper_off_and_strand_nothing_near_the_limit(backend: Backend, cost: int) -> None:
    limit = USD
    store = backend.make()
    reserves = count_reserves(store)
    ledger = Ledger(
        store, [Budget("cap", window="lifetime", limit_usd="1")], lease_fraction=0.2, clock=Clock()
    )
    granted = 0
    while granted < 1000:
        try:
            reservation = ledger.reserve(CALL, "m", None, cost, {})
        except bb.BudgetExceededError:
            break
        ledger.settle(reservation, cost, {})
        granted += 1
    assert granted == limit // cost
    assert granted * cost >= limit - cost
    # Lease requests were sized to the free capacity: the store refused nothing but the last call.
    assert [ok for _, ok in reserves].count(False) == 1
    assert reserves[-1][1] is False
    status = ledger.read("cap")
    assert status.spent_usd == usd(granted * cost)
    assert status.reserved_usd == 0


# -- 5. retirement ------------------------------------------------------------------------------------------


def test_a_lease_retires_after_its_seconds_and_others_see_the_spend(backend: Backend) -> None:
    clock = Clock()
    budget = Budget("team", window="lifetime", limit_usd="10")
    a = Ledger(backend.make(), [budget], lease_fraction=0.2, lease_seconds=0.2, clock=clock)
    b = Ledger(backend.make(), [budget], clock=clock)
    for _ in range(3):
        a.settle(a.reserve(CALL, "m", None, 10 * CENT, {}), 10 * CENT, {})
    seen = b.read("team")
    assert (seen.spent_usd, seen.reserved_usd) == (0, Decimal(2))  # only the lease is visible
    clock.advance(0.2)
    # The keeper (or the next call) closes the expired lease.
    wait_until(
        lambda: b.read("team").spent_usd == Decimal("0.3"),
        2.0,
        message=lambda: f"the other ledger to see the retired lease's spend (it sees {b.read('team')})",
    )
    after = a.reserve(CALL, "m", None, 10 * CENT, {})
    a.settle(after, 10 * CENT, {})
    assert a.read("team").spent_usd == Decimal("0.4")
    a.close()


def test_the_keeper_closes_an_idle_ledgers_leases(backend: Backend) -> None:
    budget = Budget("team", window="lifetime", limit_usd="1")
    a = Ledger(backend.make(), [budget], lease_fraction=0.5, lease_seconds=0.05)
    b = Ledger(backend.make(), [budget])
    a.settle(a.reserve(CALL, "m", None, 10 * CENT, {}), 10 * CENT, {})

    def settled() -> bool:
        status = b.read("team")
        return status.reserved_usd == 0 and status.spent_usd == Decimal("0.1")

    wait_until(
        settled, 2.0, message=lambda: f"the keeper to close the idle lease (the store has {b.read('team')})"
    )
    assert a.leases_live == 0
    # The capacity is back: B can hold all that is left.
    b.settle(b.reserve(CALL, "m", None, 90 * CENT, {}), 90 * CENT, {})
    assert b.read("team").spent_usd == 1


# -- 6. release ---------------------------------------------------------------------------------------------


def test_release_gives_the_worst_case_back_to_the_lease(backend: Backend) -> None:
    store = backend.make()
    reserves = count_reserves(store)
    ledger = Ledger(
        store, [Budget("team", window="lifetime", limit_usd="1")], lease_fraction=0.5, clock=Clock()
    )
    first = ledger.reserve(CALL, "model-a", None, 30 * CENT, {"input": 5})
    assert first.leases
    ledger.release(first)
    second = ledger.reserve(CALL, "model-b", None, 30 * CENT, {"input": 5})
    assert second.leases
    assert second.leases[0] is first.leases[0]
    assert len(reserves) == 1
    ledger.settle(second, 10 * CENT, {"input": 5})
    ledger.release(second)  # no-op after settle
    assert ledger.flush() == 0
    status = ledger.read("team")
    assert (status.spent_usd, status.reserved_usd) == (Decimal("0.1"), 0)
    assert set(status.models) == {"model-b"}
    assert status.models["model-b"]["calls"] == 1


def test_releasing_the_last_call_of_a_retired_lease_closes_it_with_zero(backend: Backend) -> None:
    ledger = Ledger(
        backend.make(), [Budget("team", window="lifetime", limit_usd="1")], lease_fraction=0.5, clock=Clock()
    )
    held = ledger.reserve(CALL, "m", None, 30 * CENT, {})
    assert held.leases
    ledger.set_budgets([Budget("team", window="lifetime", limit_usd="1")])  # retires the lease
    assert ledger.leases_live == 0
    other = Ledger(backend.make(), [Budget("team", window="lifetime", limit_usd="1")])
    assert other.read("team").reserved_usd == Decimal("0.5")  # still in flight: not closed
    ledger.release(held)
    status = other.read("team")
    assert (status.spent_usd, status.reserved_usd, status.active_reservations) == (0, 0, 0)


# -- 7. warn budgets ----------------------------------------------------------------------------------------


def test_a_call_crossing_a_warn_budget_still_reports_its_warning(backend: Backend) -> None:
    ledger = Ledger(
        backend.make(),
        [Budget("shadow", window="lifetime", limit_usd="1", action="warn")],
        lease_fraction=0.5,
        clock=Clock(),
    )
    warned_at = None
    for n in range(1, 10):
        reservation = ledger.reserve(CALL, "m", None, 30 * CENT, {})
        ledger.settle(reservation, 30 * CENT, {})
        if reservation.warnings:
            assert not reservation.leases
            assert reservation.warnings[0].budget.name == "shadow"
            warned_at = n
            break
    assert warned_at == 4  # $0.90 spent: the fourth $0.30 would cross $1
    assert ledger.read("shadow").spent_usd == Decimal("1.2")


# -- 8. limit changes ---------------------------------------------------------------------------------------


def test_lowering_a_limit_retires_leases(backend: Backend) -> None:
    clock = Clock()
    ledger = Ledger(
        backend.make(), [Budget("team", window="lifetime", limit_usd="10")], lease_fraction=0.5, clock=clock
    )
    observer = Ledger(backend.make(), [Budget("team", window="lifetime", limit_usd="10")], clock=clock)
    ledger.settle(ledger.reserve(CALL, "m", None, USD, {}), USD, {})
    assert observer.read("team").reserved_usd == 5
    ledger.set_budgets([Budget("team", window="lifetime", limit_usd="2")])
    assert ledger.leases_live == 0
    status = observer.read("team")
    assert (status.spent_usd, status.reserved_usd) == (1, 0)
    with pytest.raises(bb.BudgetExceededError):
        ledger.reserve(CALL, "m", None, 15 * USD // 10, {})
    fits = ledger.reserve(CALL, "m", None, USD, {})
    ledger.settle(fits, USD, {})
    assert ledger.read("team").spent_usd == 2


def test_a_reset_by_another_ledger_does_not_let_leased_calls_overshoot(backend: Backend) -> None:
    budget = Budget("team", window="lifetime", limit_usd="10")
    clock = Clock()
    admin = Ledger(backend.make(), [budget], clock=clock)
    leased = Ledger(backend.make(), [budget], lease_fraction=0.5, lease_seconds=60, clock=clock)
    leased.settle(leased.reserve(CALL, "m", None, USD, {}), USD, {})  # a $5 lease, $1 of it spent
    admin.reset("team")  # the lease's hold survives the reset: its calls are charged to the new window
    admin.settle(admin.reserve(CALL, "m", None, 5 * USD, {}), 5 * USD, {})  # with the lease: full
    admitted = 0
    for _ in range(5):
        try:
            leased.settle(leased.reserve(CALL, "m", None, USD, {}), USD, {})
        except bb.BudgetExceededError:
            break
        admitted += 1
    leased.flush()
    assert admitted == 4  # what is left of the lease, and no more
    assert admin.read("team").spent_usd == 10


# -- 9. alerts ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "background"])
def test_thresholds_fire_once_when_a_lease_closes(backend: Backend, mode: Any) -> None:
    received: list[tuple[str, int, Decimal]] = []
    budget = Budget("team", window="lifetime", limit_usd="10", thresholds=(50, 100))
    clock = Clock()
    ledgers = {
        name: Ledger(
            backend.make(),
            [budget],
            lease_fraction=0.3,
            clock=clock,
            settle_mode=mode,
            alert_sinks=[lambda a, name=name: received.append((name, a.threshold, a.spent))],
        )
        for name in ("A", "B")
    }
    a, b = ledgers["A"], ledgers["B"]
    for _ in range(3):
        a.settle(a.reserve(CALL, "m", None, USD, {}), USD, {})
    a.flush()
    assert received == []  # 30%
    for _ in range(3):
        b.settle(b.reserve(CALL, "m", None, USD, {}), USD, {})
    assert received == []  # the spend is still inside B's lease
    b.flush()
    assert received == [("B", 50, Decimal(6))]
    a.settle(a.reserve(CALL, "m", None, USD, {}), USD, {})
    a.flush()
    b.flush()
    assert received == [("B", 50, Decimal(6))]
    assert a.alerts_fired + b.alerts_fired == 1


# -- 10. close ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "background"])
def test_close_settles_every_lease(backend: Backend, mode: Any) -> None:
    ledger = Ledger(backend.make(), org_and_user(), lease_fraction=0.2, settle_mode=mode)
    total = 0
    for n in range(25):
        user = {"user": f"u-{n % 3}", "app": "chat"}
        cost = 1_000_003 * (n + 1)
        ledger.settle(ledger.reserve(user, "m", None, 2 * cost, {"output": n}), cost, {"output": n})
        total += cost
    assert ledger.leases_live == 4
    ledger.close()
    assert ledger.leases_live == 0
    fresh = Ledger(backend.make(), org_and_user())
    org = fresh.read("org")
    assert (org.spent_usd, org.reserved_usd, org.active_reservations) == (usd(total), 0, 0)
    users = fresh.status("per-user")
    assert sum(s.spent_usd for s in users) == usd(total)
    assert all(s.reserved_usd == 0 for s in users)


def test_a_call_in_flight_at_close_is_recorded_when_it_settles(backend: Backend) -> None:
    ledger = Ledger(backend.make(), org_and_user(), lease_fraction=0.2)
    in_flight = ledger.reserve(CALL, "m", None, 2 * CENT, {})
    assert in_flight.leases
    ledger.close()
    ledger.settle(in_flight, CENT, {})
    fresh = Ledger(backend.make(), org_and_user())
    org = fresh.read("org")
    assert (org.spent_usd, org.reserved_usd) == (Decimal("0.01"), 0)
    fresh.close()


# -- 11. outages --------------------------------------------------------------------------------------------


def test_an_outage_while_leasing_is_denied(backend: Backend) -> None:
    store = backend.make()
    restore = take_down(store, "reserve")
    ledger = Ledger(store, org_and_user(), lease_fraction=0.2, on_store_error="deny", clock=Clock())
    with pytest.raises(bb.StoreUnavailableError):
        ledger.reserve(CALL, "m", None, CENT, {})
    assert ledger.leases_live == 0
    restore()
    ledger.settle(ledger.reserve(CALL, "m", None, CENT, {}), CENT, {})
    assert ledger.read("org").spent_usd == Decimal("0.01")


def test_an_outage_while_leasing_is_allowed_and_journalled(backend: Backend) -> None:
    store = backend.make()
    restore = take_down(store, "reserve", "settle", "settle_many")
    ledger = Ledger(store, org_and_user(), lease_fraction=0.2, on_store_error="allow", clock=Clock())
    reservation = ledger.reserve(CALL, "m", None, 2 * CENT, {"input": 3})
    assert reservation.offline
    assert not reservation.leases
    assert ledger.leases_live == 0
    ledger.settle(reservation, CENT, {"input": 3})
    assert ledger.journal_depth == 1
    restore()
    assert ledger.flush() == 0
    for status in (ledger.read("org"), ledger.read("per-user", {"user": "u-1"})):
        assert (status.spent_usd, status.reserved_usd) == (Decimal("0.01"), 0)
        assert status.models["m"]["calls"] == 1


def test_a_lease_closing_during_an_outage_is_journalled_and_replayed(backend: Backend) -> None:
    store = backend.make()
    ledger = Ledger(store, org_and_user(), lease_fraction=0.2, clock=Clock(), track=False)
    for model in ("model-a", "model-b", "model-a"):
        ledger.settle(ledger.reserve(CALL, model, None, 2 * CENT, {"input": 4}), CENT, {"input": 4})
    restore = take_down(store, "settle", "settle_many")
    assert ledger.flush() == 2  # one closing settlement per lease
    restore()
    assert ledger.flush() == 0
    for status in (ledger.read("org"), ledger.read("per-user", {"user": "u-1"})):
        assert (status.spent_usd, status.reserved_usd) == (Decimal("0.03"), 0)
        assert status.models["model-a"]["calls"] == 2
        assert status.models["model-b"]["input"] == 4


# -- 12. exactly once ---------------------------------------------------------------------------------------


def test_a_leased_reservation_settled_twice_is_charged_once(backend: Backend) -> None:
    ledger = Ledger(backend.make(), org_and_user(), lease_fraction=0.2, clock=Clock())
    reservation = ledger.reserve(CALL, "m", None, 2 * CENT, {})
    assert reservation.leases
    ledger.settle(reservation, CENT, {"output": 2})
    ledger.settle(reservation, CENT, {"output": 2})
    ledger.settle(reservation, 5 * CENT, {"output": 9})
    ledger.release(reservation)
    ledger.flush()
    ledger.flush()
    status = ledger.read("org")
    assert (status.spent_usd, status.reserved_usd) == (Decimal("0.01"), 0)
    assert dict(status.models["m"]) == {"calls": 1, "cost": CENT, "output": 2}


# -- 13. configuration --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"lease_fraction": 0},
        {"lease_fraction": 1.5},
        {"lease_fraction": -0.2},
        {"lease_fraction": float("nan")},
        {"lease_fraction": 0.2, "lease_seconds": -1},
        {"lease_fraction": 0.2, "lease_seconds": 0},
        {"lease_fraction": 0.2, "lease_seconds": 3601},
        {"lease_fraction": 0.2, "lease_seconds": float("inf")},
    ],
)
def test_bad_lease_options_are_configuration_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Ledger("memory://", org_and_user(), **options)
    assert issubclass(ConfigurationError, bb.ConfigurationError)


def test_a_whole_budget_lease_is_allowed() -> None:
    ledger = Ledger("memory://", org_and_user(), lease_fraction=1)
    ledger.settle(ledger.reserve(CALL, "m", None, CENT, {}), CENT, {})
    assert ledger.read("org").spent_usd == Decimal("0.01")
    ledger.close()


def test_a_fault_while_closing_a_lease_journals_its_spend(backend: Backend) -> None:
    store = backend.make()
    ledger = Ledger(store, org_and_user(), lease_fraction=0.1)
    for _ in range(3):
        ledger.settle(ledger.reserve(CALL, "m", None, 2 * CENT, {"output": 7}), CENT, {"output": 7})
    inner = store.settle
    faults: list[str] = []

    def faulty(*args: Any, **kwargs: Any) -> Any:
        if not faults:
            faults.append("once")
            raise RuntimeError("a bug in the store, not an outage")
        return inner(*args, **kwargs)

    store.settle = faulty  # type: ignore[method-assign]
    # Closes both leases: the first settlement fails and is journalled, the second one succeeds and
    # replays the journal behind it.
    ledger._leases.retire()  # type: ignore[union-attr]
    assert faults == ["once"]
    assert ledger.flush() == 0
    for budget, scope in (("org", None), ("per-user", {"user": "u-1"})):
        status = ledger.read(budget, scope)
        assert (status.spent_usd, status.reserved_usd) == (usd(3 * CENT), 0)
        assert status.models["m"]["calls"] == 3
    ledger.close()
