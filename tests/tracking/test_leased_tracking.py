"""The spend ledger for calls admitted from capacity leases: a lease sums its calls' entries per dimensions
and hour while it is live and sends the sums when it retires, so each call is still tracked exactly once,
in the hour it settled in, but a busy lease is a few store entries rather than one per call. A call that
settles after its lease retired is tracked by itself, and one never settled holds back nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.budgets.durable import decode, encode
from bedrock_budget.errors import StoreUnavailableError
from bedrock_budget.stores.base import SettleRequest
from bedrock_budget.stores.tracking import HOUR, TrackSums

from .conftest import Target
from .test_spend_rules import ELEVEN, TOKENS, Clock


def count_tracked_entries(monkeypatch: pytest.MonkeyPatch, store: bb.stores.Store) -> list[int]:
    """How many spend-ledger entries reach the store (one list item per entry, its call count)."""
    sent: list[int] = []
    settle_many: Callable[..., Any] = store.settle_many
    settle: Callable[..., Any] = store.settle

    def counting_many(requests: Sequence[SettleRequest], **kwargs: Any) -> Any:
        sent.extend(r.track.calls for r in requests if r.track is not None)
        return settle_many(requests, **kwargs)

    def counting_one(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("track") is not None:
            sent.append(kwargs["track"].calls)
        return settle(*args, **kwargs)

    monkeypatch.setattr(store, "settle_many", counting_many)
    monkeypatch.setattr(store, "settle", counting_one)
    return sent


@pytest.mark.parametrize("settle_mode", ["sync", "background"])
def test_a_lease_tracks_its_calls_once_per_user_and_hour(
    target: Target, monkeypatch: pytest.MonkeyPatch, settle_mode: str
) -> None:
    sent = count_tracked_entries(monkeypatch, target.store)
    clock = Clock(ELEVEN - 60)  # 10:59:00: the lease's calls straddle 11:00
    budgets = [bb.Budget(name="org", window="month", limit_usd="10")]
    ledger = Ledger(
        target.store, budgets, lease_fraction=0.5, lease_seconds=3600, clock=clock,
        settle_mode=settle_mode,  # type: ignore[arg-type]
    )  # fmt: skip
    costs: dict[tuple[str, int], int] = {}
    for i in range(40):
        if i == 20:
            clock.now = ELEVEN + 1
        user = f"u{i % 4}"
        cost = 1_000_003 * (i + 1)
        ledger.settle(ledger.reserve({"user": user, "app": "chat"}, "m", None, 10**8, TOKENS), cost, TOKENS)
        hour = int(clock.now) - int(clock.now) % HOUR
        costs[user, hour] = costs.get((user, hour), 0) + cost
    assert sent == []  # nothing tracked while the lease is open: its calls are summed in memory
    assert ledger.flush() == 0  # retires the lease: its settlement and its sums go out
    # 4 users x 2 hours: 8 entries of 5 calls each, not 40 entries.
    assert sorted(sent) == [5] * 8
    rows = bb.spend(
        target.store, by="user", since=ELEVEN - HOUR, until=ELEVEN + HOUR, granularity="hour",
        per_bucket=True, now=ELEVEN,
    )  # fmt: skip
    got = {(r.values[0], int(r.bucket.timestamp()) if r.bucket else 0): r.cost_nanos for r in rows}
    assert got == costs
    assert {r.calls for r in rows} == {5}
    (total,) = bb.spend(target.store, by=(), since=ELEVEN - HOUR, now=ELEVEN)
    assert (total.calls, total.cost_nanos, total.tokens["input"]) == (40, sum(costs.values()), 400)
    (app,) = bb.spend(target.store, by="app", since=ELEVEN - HOUR, now=ELEVEN)
    assert (app.calls, app.cost_nanos) == (40, sum(costs.values()))
    assert ledger.read("org").spent_usd * 10**9 == sum(costs.values())
    ledger.close()


def test_a_call_admitted_by_two_leases_is_tracked_once(target: Target) -> None:
    clock = Clock(ELEVEN)
    budgets = [
        bb.Budget(name="org", window="day", limit_usd="10"),
        bb.Budget(name="per-user", scope={"user": "*"}, window="day", limit_usd="5"),
    ]
    ledger = Ledger(target.store, budgets, lease_fraction=0.5, clock=clock)
    for i in range(12):
        reservation = ledger.reserve({"user": f"u{i % 2}"}, "m", None, 10**6, TOKENS)
        assert len(reservation.leases) == 2
        ledger.settle(reservation, 1000 + i, TOKENS)
    assert ledger.flush() == 0
    (total,) = bb.spend(target.store, by=(), now=ELEVEN)
    assert (total.calls, total.cost_nanos) == (12, sum(1000 + i for i in range(12)))
    users = {r.values[0]: (r.calls, r.cost_nanos) for r in bb.spend(target.store, by="user", now=ELEVEN)}
    assert users == {
        "u0": (6, sum(1000 + i for i in range(0, 12, 2))),
        "u1": (6, sum(1000 + i for i in range(1, 12, 2))),
    }
    ledger.close()


def test_a_released_leased_call_is_not_tracked(target: Target) -> None:
    clock = Clock(ELEVEN)
    budgets = [bb.Budget(name="org", window="day", limit_usd="10")]
    ledger = Ledger(target.store, budgets, lease_fraction=0.5, clock=clock)
    ledger.settle(ledger.reserve({"user": "a"}, "m", None, 10**6, TOKENS), 700, TOKENS)
    ledger.release(ledger.reserve({"user": "b"}, "m", None, 10**6, TOKENS))
    assert ledger.flush() == 0
    rows = bb.spend(target.store, by="user", now=ELEVEN)
    assert [(r.values, r.calls, r.cost_nanos) for r in rows] == [(("a",), 1, 700)]
    ledger.close()


def test_a_call_never_settled_holds_back_no_other_calls_tracking(target: Target) -> None:
    # A reservation dropped without settle or release keeps its lease from closing (its spend waits for the
    # lease's hold to lapse), but the calls the lease saw settle are tracked when it retires.
    clock = Clock(ELEVEN)
    budgets = [bb.Budget(name="org", window="day", limit_usd="10")]
    ledger = Ledger(target.store, budgets, lease_fraction=0.5, clock=clock)
    leaked = ledger.reserve({"user": "lost"}, "m", None, 10**6, TOKENS)
    assert leaked.leases
    for i in range(10):
        ledger.settle(ledger.reserve({"user": f"u{i % 2}"}, "m", None, 10**6, TOKENS), 5000, TOKENS)
    assert ledger.flush() == 0
    (total,) = bb.spend(target.store, by=(), now=ELEVEN)
    assert (total.calls, total.cost_nanos) == (10, 50_000)
    ledger.close()


def test_a_call_settled_after_its_lease_retired_is_tracked_by_itself(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(ELEVEN)
    budgets = [bb.Budget(name="org", window="day", limit_usd="10")]
    ledger = Ledger(target.store, budgets, lease_fraction=0.5, lease_seconds=60, clock=clock)
    early = ledger.reserve({"user": "a"}, "m", None, 10**6, TOKENS)
    long_call = ledger.reserve({"user": "b"}, "m", None, 10**6, TOKENS)
    ledger.settle(early, 700, TOKENS)
    assert ledger.flush() == 0  # retires the lease with a call still running: the sum of "a" goes now
    (first,) = bb.spend(target.store, by="user", now=ELEVEN)
    assert (first.values, first.calls, first.cost_nanos) == (("a",), 1, 700)
    sent = count_tracked_entries(monkeypatch, target.store)
    clock.now = ELEVEN + HOUR  # settles an hour later: tracked in that hour, by itself
    ledger.settle(long_call, 900, TOKENS)
    assert ledger.flush() == 0
    assert sent == [1]
    rows = bb.spend(
        target.store, by="user", since=ELEVEN, until=ELEVEN + 2 * HOUR, granularity="hour", per_bucket=True,
        now=ELEVEN + HOUR,
    )  # fmt: skip
    got = {(r.values[0], int(r.bucket.timestamp()) if r.bucket else 0): r.cost_nanos for r in rows}
    assert got == {("a", int(ELEVEN)): 700, ("b", int(ELEVEN) + HOUR): 900}
    assert ledger.read("org").spent_usd * 10**9 == 1600
    ledger.close()


def test_a_lease_settled_through_lost_replies_is_tracked_once(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store applies each settlement but its reply is lost: the lease's settlement and its sums are
    # journalled and sent again, more than once, and must count once.
    replies_lost = [True]

    def losing(operation: Callable[..., Any]) -> Callable[..., Any]:
        def send(*args: Any, **kwargs: Any) -> Any:
            result = operation(*args, **kwargs)
            if replies_lost[0]:
                raise StoreUnavailableError("lossy://", "connection reset by peer")
            return result

        return send

    monkeypatch.setattr(target.store, "settle_many", losing(target.store.settle_many))
    monkeypatch.setattr(target.store, "settle", losing(target.store.settle))
    clock = Clock(ELEVEN)
    budgets = [bb.Budget(name="org", window="day", limit_usd="10")]
    ledger = Ledger(target.store, budgets, lease_fraction=0.5, clock=clock, on_store_error="allow")
    for i in range(9):
        ledger.settle(ledger.reserve({"user": f"u{i % 3}"}, "m", None, 10**6, TOKENS), 5000 + i, TOKENS)
    assert ledger.flush() > 0  # the lease's settlement and 3 sums, all journalled, sent twice by now
    assert ledger.flush() > 0
    replies_lost[0] = False
    assert ledger.flush() == 0
    (total,) = bb.spend(target.store, by=(), now=ELEVEN)
    assert (total.calls, total.cost_nanos) == (9, sum(5000 + i for i in range(9)))
    users = {r.values[0]: r.calls for r in bb.spend(target.store, by="user", now=ELEVEN)}
    assert users == {"u0": 3, "u1": 3, "u2": 3}
    assert ledger.read("org").spent_usd * 10**9 == sum(5000 + i for i in range(9))
    ledger.close()


def test_summed_entries_keep_their_calls_through_the_journal_file() -> None:
    sums = TrackSums(bb.Tracking())
    for i in range(5):
        sums.add({"user": "u"}, "m", 10**15 + i, {"input": 3, "output": i}, ELEVEN + i)
    sums.add({"user": "u"}, "m", 1, {"input": 1, "output": 0}, ELEVEN + HOUR)  # the next hour
    first, second = sums.entries()
    assert (first.calls, first.cost, dict(first.tokens), first.at) == (
        5, 5 * 10**15 + 10, {"input": 15, "output": 10}, int(ELEVEN)
    )  # fmt: skip
    assert (second.calls, second.cost, second.at) == (1, 1, int(ELEVEN + HOUR))
    for entry in (first, second):
        request = SettleRequest("lease-t", (), track=entry)
        assert decode(encode(request)) == request
