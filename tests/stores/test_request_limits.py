"""Request-count limits in the store contract, on every backend: a hold counts its requests under the limit
in the same operation as the amounts, a settlement turns them into requests made, a release or an expiry
gives them back, and a counter without a request limit counts nothing."""

from __future__ import annotations

from typing import Any

import pytest

from backends import Backend
from bedrock_budget.stores import CounterRef, Hold, Mark, Spend, Store

T0 = 1_700_000_000_000
START = T0 // 1000
DEADLINE = T0 + 300_000
R100 = Mark("requests", 100, 3)

pytestmark = pytest.mark.backends("all")


def ref(budget: str = "rq") -> CounterRef:
    return CounterRef(budget=budget, scope=(), window="day", timezone="UTC", start=START, end=START + 86400)


def hold(r: CounterRef, limit: int | None = 3, **changes: Any) -> Hold:
    options: dict[str, Any] = {"limit_usd": 10_000, "limit_tokens": None, "usd": 10, "tokens": 0}
    return Hold(ref=r, limit_requests=limit, **{**options, **changes})


def requests(store: Store, r: CounterRef, now: int = T0) -> tuple[int, int, int | None]:
    (state,) = store.read([r], now_ms=now)
    return state.spent_requests, state.held_requests, state.limit_requests


def test_the_request_limit_is_exact_and_refuses_alone(store: Store) -> None:
    r = ref()
    for n in range(3):
        result = store.reserve(f"c{n}", [hold(r)], now_ms=T0, deadline_ms=DEADLINE)
        assert result.granted
        assert result.checks[0].state.held_requests == n  # the state before this hold
    refused = store.reserve("c3", [hold(r)], now_ms=T0, deadline_ms=DEADLINE)
    assert not refused.granted
    check = refused.checks[0]
    assert (check.refused_requests, check.refused_usd, check.refused_tokens) == (True, False, False)
    assert check.refused
    assert (check.state.spent_requests, check.state.held_requests) == (0, 3)
    assert requests(store, r) == (0, 3, 3)
    # A hold larger than the limit never fits; one that fits after a release does.
    assert not store.reserve("big", [hold(r, 10, requests=11)], now_ms=T0, deadline_ms=DEADLINE).granted
    assert store.release("c0", [r], now_ms=T0) == (True,)
    assert requests(store, r) == (0, 2, 3)
    assert store.reserve("c4", [hold(r)], now_ms=T0, deadline_ms=DEADLINE).granted


def test_settling_moves_requests_from_held_to_made_and_never_changes_the_count(store: Store) -> None:
    r = ref()
    for n in range(2):
        assert store.reserve(f"c{n}", [hold(r)], now_ms=T0, deadline_ms=DEADLINE).granted
    (outcome,) = store.settle("c0", [Spend(r, 7, 0, requests=1)], now_ms=T0)
    assert (outcome.state.spent_requests, outcome.state.held_requests) == (1, 1)
    # A settlement applied twice (a retry) counts once; a release after settling gives nothing back.
    store.settle("c0", [Spend(r, 7, 0, requests=1)], now_ms=T0)
    assert store.release("c0", [r], now_ms=T0) == (False,)
    assert requests(store, r) == (1, 1, 3)
    assert store.reserve("c2", [hold(r)], now_ms=T0, deadline_ms=DEADLINE).granted
    assert not store.reserve("c3", [hold(r)], now_ms=T0, deadline_ms=DEADLINE).granted
    # A retried reservation (same id) holds nothing twice.
    again = store.reserve("c2", [hold(r)], now_ms=T0, deadline_ms=DEADLINE)
    assert again.granted
    assert again.repeated
    assert requests(store, r) == (1, 2, 3)


def test_expired_holds_give_requests_back_unless_charged(store: Store) -> None:
    r = ref()
    assert store.reserve("gone", [hold(r)], now_ms=T0, deadline_ms=T0 + 10).granted
    charged = hold(r, charge_on_expiry=True)
    assert store.reserve("kept", [charged], now_ms=T0, deadline_ms=T0 + 10).granted
    later = T0 + 1000
    assert requests(store, r, later) == (1, 0, 3)  # "kept" counted as made, "gone" given back
    # A late settlement of the given-back hold counts its request once; of the charged one, nothing more.
    store.settle("gone", [Spend(r, 5, 0, requests=1)], now_ms=later)
    store.settle("kept", [Spend(r, 5, 0, requests=1)], now_ms=later)
    assert requests(store, r, later) == (2, 0, 3)


def test_a_counter_without_a_request_limit_counts_no_requests(backend: Backend, store: Store) -> None:
    r = ref()
    assert store.reserve("a", [hold(r, None)], now_ms=T0, deadline_ms=DEADLINE).granted
    (outcome,) = store.settle("a", [Spend(r, 5, 0)], now_ms=T0)
    assert (outcome.state.spent_requests, outcome.state.held_requests) == (0, 0)
    assert requests(store, r) == (0, 0, None)
    if backend.kind in ("redis", "fakeredis"):
        client: Any = store.client  # type: ignore[attr-defined]
        fields = {f.decode() if isinstance(f, bytes) else f for f in client.hkeys(f"{store.key(r)}:h")}
        assert not fields & {"sq", "hq", "lq"}


def test_request_alerts_fire_once_at_refusal_and_at_thresholds(store: Store) -> None:
    r = ref()
    r50 = Mark("requests", 50, 2)
    marked = hold(r, refusal_marks=(R100,))
    for n in range(3):
        assert store.reserve(f"c{n}", [marked], now_ms=T0, deadline_ms=DEADLINE).granted
    fired = [
        store.settle(f"c{n}", [Spend(r, 1, 0, marks=(r50,), requests=1)], now_ms=T0)[0].fired
        for n in range(3)
    ]
    assert fired == [(), (r50,), ()]
    first = store.reserve("c3", [marked], now_ms=T0, deadline_ms=DEADLINE)
    second = store.reserve("c4", [marked], now_ms=T0, deadline_ms=DEADLINE)
    assert (first.checks[0].fired, second.checks[0].fired) == ((R100,), ())
    (state,) = store.read([r], now_ms=T0)
    assert set(state.alerted) == {"r50", "r100"}


def test_forgetting_spend_keeps_held_requests(store: Store) -> None:
    r = ref()
    for n in range(3):
        assert store.reserve(f"c{n}", [hold(r)], now_ms=T0, deadline_ms=DEADLINE).granted
    store.settle("c0", [Spend(r, 1, 0, requests=1)], now_ms=T0)
    assert store.forget_spend([r], now_ms=T0) == 1
    assert requests(store, r) == (0, 2, 3)
    assert store.reserve("c3", [hold(r)], now_ms=T0, deadline_ms=DEADLINE).granted
    store.settle("c1", [Spend(r, 1, 0, requests=1)], now_ms=T0)
    assert requests(store, r) == (1, 2, 3)


def test_requests_refuse_all_or_nothing_across_counters(store: Store) -> None:
    free, full = ref("free"), ref("full")
    assert store.reserve("x", [hold(full, 1)], now_ms=T0, deadline_ms=DEADLINE).granted
    result = store.reserve("y", [hold(free), hold(full, 1)], now_ms=T0, deadline_ms=DEADLINE)
    assert not result.granted
    assert [c.refused_requests for c in result.checks] == [False, True]
    assert requests(store, free)[:2] == (0, 0)  # a cluster held it in another slot and gave it back
    warn = store.reserve("z", [hold(free), hold(full, 1, enforce=False)], now_ms=T0, deadline_ms=DEADLINE)
    assert warn.granted
    assert warn.checks[1].refused_requests
    assert requests(store, full) == (0, 2, 1)
