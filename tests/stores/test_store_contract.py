"""The store contract, run against every backend of tests/backends.py (memory, fakeredis, Redis, Redis
Sentinel, Redis Cluster)."""

from __future__ import annotations

import pytest

from backends import Backend
from bedrock_budget.stores import CounterRef, Hold, Mark, SettleRequest, SettleStatus, Spend, Store
from bedrock_budget.stores.base import Renewal

T0 = 1_700_000_000_000  # ms; windows below are [T0/1000, T0/1000 + 86400)
START = T0 // 1000
END = START + 86400
DEADLINE = T0 + 300_000

pytestmark = pytest.mark.backends("all")


def ref(budget: str = "b", scope: tuple[tuple[str, str], ...] = (), start: int = START) -> CounterRef:
    return CounterRef(
        budget=budget, scope=scope, window="day", timezone="UTC", start=start, end=start + 86400
    )


def hold(
    r: CounterRef,
    usd: int,
    limit: int | None = 1000,
    *,
    tokens: int = 0,
    limit_tokens: int | None = None,
    enforce: bool = True,
) -> Hold:
    return Hold(ref=r, limit_usd=limit, limit_tokens=limit_tokens, usd=usd, tokens=tokens, enforce=enforce)


def read1(store: Store, r: CounterRef, now: int = T0) -> tuple[int, int]:
    (state,) = store.read([r], now_ms=now)
    return state.spent_usd, state.held_usd


def test_reserve_holds_and_settle_replaces_the_hold(store: Store) -> None:
    r = ref()
    result = store.reserve("r1", [hold(r, 300)], now_ms=T0, deadline_ms=DEADLINE)
    assert result.granted
    assert not result.repeated
    assert result.checks[0].state.held_usd == 0  # the state before this hold
    assert read1(store, r) == (0, 300)
    (outcome,) = store.settle("r1", [Spend(r, 120, 0)], now_ms=T0)
    assert outcome.status is SettleStatus.SETTLED
    assert bool(outcome)
    assert (outcome.state.spent_usd, outcome.state.held_usd) == (120, 0)
    assert read1(store, r) == (120, 0)


def test_limit_boundary_is_exact(store: Store) -> None:
    r = ref()
    assert store.reserve("a", [hold(r, 400)], now_ms=T0, deadline_ms=DEADLINE).granted
    store.settle("a", [Spend(r, 400, 0)], now_ms=T0)
    assert store.reserve("b", [hold(r, 350)], now_ms=T0, deadline_ms=DEADLINE).granted
    refused = store.reserve("c", [hold(r, 251)], now_ms=T0, deadline_ms=DEADLINE)
    assert not refused.granted
    check = refused.checks[0]
    assert check.refused_usd
    assert not check.refused_tokens
    assert (check.state.spent_usd, check.state.held_usd) == (400, 350)
    assert store.reserve("d", [hold(r, 250)], now_ms=T0, deadline_ms=DEADLINE).granted  # exactly 1000
    assert read1(store, r) == (400, 600)


def test_all_or_nothing_across_many_counters(store: Store) -> None:
    refs = [ref(f"budget-{i}", (("user", f"u{i}"),)) for i in range(12)]
    holds = [hold(r, 100) for r in refs[:-1]] + [hold(refs[-1], 100, limit=99)]
    result = store.reserve("r", holds, now_ms=T0, deadline_ms=DEADLINE)
    assert not result.granted
    assert [c.refused for c in result.checks] == [False] * 11 + [True]
    states = store.read(refs, now_ms=T0)
    assert [(s.spent_usd, s.held_usd, s.active) for s in states] == [(0, 0, 0)] * 12
    granted = store.reserve("r2", [hold(r, 100) for r in refs], now_ms=T0, deadline_ms=DEADLINE)
    assert granted.granted
    assert [s.held_usd for s in store.read(refs, now_ms=T0)] == [100] * 12
    outcomes = store.settle("r2", [Spend(r, 70, 0) for r in refs], now_ms=T0)
    assert [o.status for o in outcomes] == [SettleStatus.SETTLED] * 12
    assert [(s.spent_usd, s.held_usd) for s in store.read(refs, now_ms=T0)] == [(70, 0)] * 12


def test_token_limits_refuse_independently(store: Store) -> None:
    r = ref()
    ok = store.reserve(
        "a", [hold(r, 1, None, tokens=9_000, limit_tokens=10_000)], now_ms=T0, deadline_ms=DEADLINE
    )
    assert ok.granted
    refused = store.reserve(
        "b", [hold(r, 1, None, tokens=1_001, limit_tokens=10_000)], now_ms=T0, deadline_ms=DEADLINE
    )
    assert not refused.granted
    assert refused.checks[0].refused_tokens
    assert not refused.checks[0].refused_usd
    assert refused.checks[0].state.held_tokens == 9_000


def test_changing_the_limit_keeps_the_spend(store: Store) -> None:
    r = ref()
    store.reserve("a", [hold(r, 600)], now_ms=T0, deadline_ms=DEADLINE)
    store.settle("a", [Spend(r, 600, 0)], now_ms=T0)
    assert not store.reserve("b", [hold(r, 100, limit=650)], now_ms=T0, deadline_ms=DEADLINE).granted
    raised = store.reserve("c", [hold(r, 100, limit=2000)], now_ms=T0, deadline_ms=DEADLINE)
    assert raised.granted
    assert raised.checks[0].state.spent_usd == 600


def test_settle_is_exactly_once_and_unknown_ids_are_noops(store: Store) -> None:
    r = ref()
    store.reserve("a", [hold(r, 500)], now_ms=T0, deadline_ms=DEADLINE)
    assert store.settle("a", [Spend(r, 200, 0)], now_ms=T0)[0].status is SettleStatus.SETTLED
    again = store.settle("a", [Spend(r, 200, 0)], now_ms=T0)[0]
    assert again.status is SettleStatus.NOOP
    assert not again
    unknown = store.settle("never-reserved", [Spend(r, 999, 0)], now_ms=T0)[0]
    assert unknown.status is SettleStatus.NOOP
    assert read1(store, r) == (200, 0)


def test_settle_may_exceed_the_estimate(store: Store) -> None:
    r = ref()
    store.reserve("a", [hold(r, 100)], now_ms=T0, deadline_ms=DEADLINE)
    store.settle("a", [Spend(r, 1500, 0)], now_ms=T0)
    assert read1(store, r) == (1500, 0)
    assert not store.reserve("b", [hold(r, 1)], now_ms=T0, deadline_ms=DEADLINE).granted


def test_release_drops_the_hold_once(store: Store) -> None:
    r = ref()
    store.reserve("a", [hold(r, 500)], now_ms=T0, deadline_ms=DEADLINE)
    assert store.release("a", [r], now_ms=T0) == (True,)
    assert store.release("a", [r], now_ms=T0) == (False,)
    assert read1(store, r) == (0, 0)
    assert store.settle("a", [Spend(r, 500, 0)], now_ms=T0)[0].status is SettleStatus.NOOP
    assert read1(store, r) == (0, 0)


def test_retried_reserve_does_not_hold_twice(store: Store) -> None:
    r = ref()
    first = store.reserve("a", [hold(r, 400)], now_ms=T0, deadline_ms=DEADLINE)
    second = store.reserve("a", [hold(r, 400)], now_ms=T0, deadline_ms=DEADLINE)
    assert first.granted
    assert second.granted
    assert second.repeated
    assert read1(store, r) == (0, 400)


def test_expired_reservations_are_purged_and_late_settles_count_once(store: Store) -> None:
    r = ref()
    store.reserve("slow", [hold(r, 800)], now_ms=T0, deadline_ms=T0 + 1000)
    assert not store.reserve("x", [hold(r, 300)], now_ms=T0 + 999, deadline_ms=T0 + 5000).granted
    # At the deadline the hold is given back by whatever operation touches the counter next.
    assert store.reserve("y", [hold(r, 300)], now_ms=T0 + 1000, deadline_ms=T0 + 5000).granted
    assert read1(store, r, T0 + 1000) == (0, 300)
    late = store.settle("slow", [Spend(r, 650, 0)], now_ms=T0 + 2000)[0]
    assert late.status is SettleStatus.LATE
    assert not late
    assert late.recorded
    assert (late.state.spent_usd, late.state.held_usd) == (650, 300)
    assert store.settle("slow", [Spend(r, 650, 0)], now_ms=T0 + 3000)[0].status is SettleStatus.NOOP
    assert read1(store, r, T0 + 3000) == (650, 300)


def test_released_after_expiry_is_not_charged_later(store: Store) -> None:
    r = ref()
    store.reserve("a", [hold(r, 100)], now_ms=T0, deadline_ms=T0 + 10)
    assert store.release("a", [r], now_ms=T0 + 20) == (False,)
    assert store.settle("a", [Spend(r, 100, 0)], now_ms=T0 + 30)[0].status is SettleStatus.NOOP
    assert read1(store, r, T0 + 30) == (0, 0)


def test_tombstones_are_trimmed_after_retention(backend: Backend) -> None:
    store = backend.make(tombstone_retention=60)
    assert store.tombstone_retention == 60
    r = ref()
    store.reserve("a", [hold(r, 100)], now_ms=T0, deadline_ms=T0 + 10)
    store.read([r], now_ms=T0 + 20)  # purges: tombstone at T0 + 20
    assert store.settle("a", [Spend(r, 5, 0)], now_ms=T0 + 20 + 61_000)[0].status is SettleStatus.NOOP


def test_charge_records_unknown_ids_once_and_settles_live_ones(store: Store) -> None:
    r = ref()
    assert (
        store.settle("offline", [Spend(r, 70, 0)], now_ms=T0, charge=True)[0].status is SettleStatus.CHARGED
    )
    assert store.settle("offline", [Spend(r, 70, 0)], now_ms=T0, charge=True)[0].status is SettleStatus.NOOP
    store.reserve("live", [hold(r, 100)], now_ms=T0, deadline_ms=DEADLINE)
    assert store.settle("live", [Spend(r, 30, 0)], now_ms=T0, charge=True)[0].status is SettleStatus.SETTLED
    assert store.settle("live", [Spend(r, 30, 0)], now_ms=T0, charge=True)[0].status is SettleStatus.NOOP
    assert read1(store, r) == (100, 0)


def test_shadow_counters_are_checked_and_held_but_never_refuse(store: Store) -> None:
    enforced, shadow = ref("hard"), ref("soft")
    result = store.reserve(
        "a", [hold(enforced, 50), hold(shadow, 50, limit=10, enforce=False)], now_ms=T0, deadline_ms=DEADLINE
    )
    assert result.granted
    assert [c.refused for c in result.checks] == [False, True]
    assert read1(store, shadow) == (0, 50)


def test_alert_marks_fire_once_across_store_instances(backend: Backend) -> None:
    one, two = backend.make(), backend.make()
    r = ref()
    marks = (Mark("usd", 50, 500), Mark("usd", 80, 800), Mark("usd", 100, 1000))
    fired: list[list[int]] = []
    for n, store in enumerate([one, two, one, two, one]):
        store.reserve(f"r{n}", [hold(r, 200, limit=None)], now_ms=T0, deadline_ms=DEADLINE)
        (outcome,) = store.settle(f"r{n}", [Spend(r, 200, 0, marks)], now_ms=T0)
        fired.append([m.percent for m in outcome.fired])
    assert fired == [[], [], [50], [80], [100]]
    assert one.read([r], now_ms=T0)[0].alerted == ("u100", "u50", "u80")


def test_alert_fires_when_a_lowered_limit_is_already_passed(store: Store) -> None:
    r = ref()
    store.settle("a", [Spend(r, 600, 0, (Mark("usd", 80, 800),))], now_ms=T0, charge=True)
    (outcome,) = store.settle("b", [Spend(r, 1, 0, (Mark("usd", 80, 400),))], now_ms=T0, charge=True)
    assert [m.percent for m in outcome.fired] == [80]
    (zero,) = store.settle("c", [Spend(r, 0, 0, (Mark("usd", 50, 300),))], now_ms=T0, charge=True)
    assert zero.fired == ()  # no spend, no alert


def test_token_alert_marks(store: Store) -> None:
    r = ref()
    (outcome,) = store.settle(
        "a", [Spend(r, 0, 9_000, (Mark("tokens", 80, 8_000), Mark("usd", 50, 1)))], now_ms=T0, charge=True
    )
    assert [(m.unit, m.percent) for m in outcome.fired] == [("tokens", 80)]


def test_amounts_near_the_64_bit_limit_stay_exact(store: Store) -> None:
    r = ref()
    big = 2**62
    assert store.reserve("a", [hold(r, 2**61 + 7, limit=big)], now_ms=T0, deadline_ms=DEADLINE).granted
    store.settle("a", [Spend(r, 2**61 + 7, 0)], now_ms=T0)
    assert not store.reserve("b", [hold(r, 2**61 - 6, limit=big)], now_ms=T0, deadline_ms=DEADLINE).granted
    assert store.reserve("c", [hold(r, 2**61 - 7, limit=big)], now_ms=T0, deadline_ms=DEADLINE).granted
    assert read1(store, r) == (2**61 + 7, 2**61 - 7)


def test_model_tallies(store: Store) -> None:
    r = ref()
    store.reserve("a", [hold(r, 100)], now_ms=T0, deadline_ms=DEADLINE)
    store.settle(
        "a", [Spend(r, 90, 0)], now_ms=T0, model="anthropic.claude-x:0", tokens={"input": 10, "output": 3}
    )
    store.settle(
        "b", [Spend(r, 5, 0)], now_ms=T0, model="anthropic.claude-x:0", tokens={"input": 1}, charge=True
    )
    (state,) = store.read([r], now_ms=T0)
    assert dict(state.models["anthropic.claude-x:0"]) == {"calls": 2, "cost": 95, "input": 11, "output": 3}


HOSTILE = [
    "plain",
    "{evil}",
    "a}b{c",
    "x:y:z",
    "*",
    "line\nbreak",
    "ünï©ødé-日本",
    "%7B",
    "=|,",
    "v" * 10_000,
    "w" * 10_000,
]


def test_hostile_scope_values_get_separate_counters(store: Store) -> None:
    refs = [ref("per-user", (("user", value),)) for value in HOSTILE]
    for n, r in enumerate(refs):
        assert store.reserve(f"r{n}", [hold(r, n + 1)], now_ms=T0, deadline_ms=DEADLINE).granted
        store.settle(f"r{n}", [Spend(r, n + 1, 0)], now_ms=T0)
    assert [s.spent_usd for s in store.read(refs, now_ms=T0)] == [n + 1 for n in range(len(HOSTILE))]
    listed = {s.ref.scope[0][1]: s.spent_usd for s in store.list(now_ms=T0, budget="per-user")}
    assert listed == {value: n + 1 for n, value in enumerate(HOSTILE)}


def test_keys_stay_in_the_namespace_and_share_a_slot(store: Store) -> None:
    from redis.crc import key_slot

    for value in HOSTILE:
        key = store.key(ref("b{x}", (("user", value), ("team", "}{"))))
        assert key.startswith(store.prefix + "{")
        assert key.count("{") == 1
        assert key.count("}") == 1
        assert key.endswith("}")
        assert "\n" not in key
        assert len(key) < 256
        slots = {key_slot(f"{key}:{suffix}".encode()) for suffix in "hzt"}
        assert len(slots) == 1


def test_list_read_and_reset(store: Store) -> None:
    a, b, other = ref("alpha", (("app", "chat"),)), ref("alpha", (("app", "search"),)), ref("beta")
    for n, r in enumerate([a, b, other]):
        store.settle(f"c{n}", [Spend(r, 10 * (n + 1), 5)], now_ms=T0, charge=True)
    listed = sorted((s.ref.budget, s.ref.scope, s.spent_usd, s.spent_tokens) for s in store.list(now_ms=T0))
    assert listed == [
        ("alpha", (("app", "chat"),), 10, 5),
        ("alpha", (("app", "search"),), 20, 5),
        ("beta", (), 30, 5),
    ]
    assert {s.ref for s in store.list(now_ms=T0, budget="alpha")} == {a, b}
    assert store.reset([a, ref("never")]) == 1
    assert read1(store, a) == (0, 0)
    assert {s.ref for s in store.list(now_ms=T0)} == {b, other}


def test_windows_are_separate_counters(store: Store) -> None:
    today, tomorrow = ref(start=START), ref(start=START + 86400)
    store.settle("a", [Spend(today, 900, 0)], now_ms=T0, charge=True)
    assert store.reserve("b", [hold(tomorrow, 1000)], now_ms=T0, deadline_ms=DEADLINE).granted


def test_reading_untouched_counters(store: Store) -> None:
    (state,) = store.read([ref("nothing")], now_ms=T0)
    assert (state.spent_usd, state.held_usd, state.active, dict(state.models)) == (0, 0, 0, {})
    assert store.list(now_ms=T0, budget="nothing") == []
    assert store.reserve("a", [], now_ms=T0, deadline_ms=DEADLINE).granted
    assert store.settle("a", [], now_ms=T0) == ()


def test_keys_expire_after_their_window(store: Store) -> None:
    r = ref()
    store.reserve("a", [hold(r, 100)], now_ms=T0, deadline_ms=DEADLINE)
    store.settle("a", [Spend(r, 100, 0)], now_ms=T0)
    expected = (END + store.key_slack) * 1000 - T0
    client = getattr(store, "client", None)
    if client is None:  # memory: the counter vanishes at the same instant
        assert read1(store, r, T0 + expected - 1) == (100, 0)
        assert read1(store, r, T0 + expected) == (0, 0)
        return
    ttl = client.pttl(store.key(r) + ":h")
    assert expected - 5_000 < ttl <= expected


def test_lifetime_counters_do_not_expire(store: Store) -> None:
    forever = CounterRef(budget="life", scope=(), window="lifetime", timezone="UTC", start=0, end=None)
    store.settle("a", [Spend(forever, 5, 0)], now_ms=T0, charge=True)
    client = getattr(store, "client", None)
    if client is not None:
        assert client.pttl(store.key(forever) + ":h") == -1
    assert read1(store, forever, T0 + 10**12) == (5, 0)


def test_reads_report_the_limits_last_used(store: Store) -> None:
    r = ref()
    store.reserve("a", [hold(r, 1, limit=500, limit_tokens=70)], now_ms=T0, deadline_ms=DEADLINE)
    (state,) = store.read([r], now_ms=T0)
    assert (state.limit_usd, state.limit_tokens) == (500, 70)
    store.reserve("b", [hold(r, 1, limit=None)], now_ms=T0, deadline_ms=DEADLINE)
    (listed,) = store.list(now_ms=T0)
    assert (listed.limit_usd, listed.limit_tokens, listed.held_usd) == (None, None, 2)


def test_a_hold_lost_with_the_counters_data_is_charged_once(store: Store) -> None:
    r = ref()
    first = store.reserve("r1", [hold(r, 300)], now_ms=T0, deadline_ms=DEADLINE)
    second = store.reserve("r2", [hold(r, 200)], now_ms=T0, deadline_ms=DEADLINE)
    epoch = first.checks[0].epoch
    assert epoch is not None
    assert second.checks[0].epoch == epoch  # one life of the counter's data, one epoch
    assert store.reset([r]) == 1  # what a restart without persistence does to the holds
    (charged,) = store.settle("r1", [Spend(r, 120, 0, epoch=epoch)], now_ms=T0)
    assert charged.status is SettleStatus.CHARGED
    assert charged.recorded
    assert store.settle("r1", [Spend(r, 120, 0, epoch=epoch)], now_ms=T0)[0].status is SettleStatus.NOOP
    assert store.settle("r2", [Spend(r, 80, 0, epoch=epoch)], now_ms=T0)[0].status is SettleStatus.CHARGED
    assert read1(store, r) == (200, 0)
    # The next hold starts a new epoch, and its settlements follow the ordinary rules again.
    third = store.reserve("r3", [hold(r, 100)], now_ms=T0, deadline_ms=DEADLINE)
    new_epoch = third.checks[0].epoch
    assert new_epoch not in (None, epoch)
    assert store.settle("r3", [Spend(r, 50, 0, epoch=new_epoch)], now_ms=T0)[0].status is SettleStatus.SETTLED
    assert store.settle("r3", [Spend(r, 50, 0, epoch=new_epoch)], now_ms=T0)[0].status is SettleStatus.NOOP
    assert read1(store, r) == (250, 0)


def test_a_settlement_retried_under_the_same_epoch_is_a_noop(store: Store) -> None:
    r = ref()
    epoch = store.reserve("a", [hold(r, 100)], now_ms=T0, deadline_ms=DEADLINE).checks[0].epoch
    repeated = store.reserve("a", [hold(r, 100)], now_ms=T0, deadline_ms=DEADLINE)
    assert repeated.repeated
    assert repeated.checks[0].epoch == epoch
    spend = Spend(r, 60, 0, epoch=epoch)
    assert store.settle("a", [spend], now_ms=T0)[0].status is SettleStatus.SETTLED
    assert store.settle("a", [spend], now_ms=T0)[0].status is SettleStatus.NOOP
    (batched,) = store.settle_many([SettleRequest("a", (spend,))], now_ms=T0)
    assert not isinstance(batched, Exception)
    assert batched[0].status is SettleStatus.NOOP
    assert read1(store, r) == (60, 0)


def test_a_batched_settlement_charges_a_lost_hold_once(store: Store) -> None:
    r = ref()
    epoch = store.reserve("a", [hold(r, 100)], now_ms=T0, deadline_ms=DEADLINE).checks[0].epoch
    store.reset([r])
    spend = Spend(r, 40, 0, epoch=epoch)
    results = store.settle_many([SettleRequest("a", (spend,)), SettleRequest("a", (spend,))], now_ms=T0)
    statuses = [result[0].status for result in results if not isinstance(result, Exception)]
    assert statuses == [SettleStatus.CHARGED, SettleStatus.NOOP]
    assert read1(store, r) == (40, 0)


LIMIT_MARK = Mark("usd", 100, 1000)


def test_a_refusal_fires_the_limit_mark_once(store: Store) -> None:
    r = ref()
    store.settle("spent", [Spend(r, 900, 0)], now_ms=T0, charge=True)
    refusing = Hold(ref=r, limit_usd=1000, limit_tokens=None, usd=200, tokens=0, refusal_marks=(LIMIT_MARK,))
    first = store.reserve("a", [refusing], now_ms=T0, deadline_ms=DEADLINE)
    assert not first.granted
    assert first.checks[0].fired == (LIMIT_MARK,)
    again = store.reserve("b", [refusing], now_ms=T0, deadline_ms=DEADLINE)
    assert (again.granted, again.checks[0].fired) == (False, ())
    assert "u100" in store.read([r], now_ms=T0)[0].alerted
    # The same mark reached by spend later is not reported a second time.
    (outcome,) = store.settle("late", [Spend(r, 100, 0, (LIMIT_MARK,))], now_ms=T0, charge=True)
    assert outcome.fired == ()


def test_no_limit_mark_for_a_call_too_big_for_the_empty_budget(store: Store) -> None:
    r = ref()
    store.settle("spent", [Spend(r, 10, 0)], now_ms=T0, charge=True)
    too_big = Hold(ref=r, limit_usd=1000, limit_tokens=None, usd=1001, tokens=0, refusal_marks=(LIMIT_MARK,))
    result = store.reserve("a", [too_big], now_ms=T0, deadline_ms=DEADLINE)
    assert not result.granted
    assert result.checks[0].fired == ()
    assert store.read([r], now_ms=T0)[0].alerted == ()


def test_limit_marks_follow_the_refusing_unit_and_skip_shadow_counters(store: Store) -> None:
    by_tokens, shadow = ref("tokens"), ref("shadow")
    store.settle("spent", [Spend(by_tokens, 0, 900)], now_ms=T0, charge=True)
    store.settle("spent", [Spend(shadow, 900, 0)], now_ms=T0, charge=True)
    marks = (LIMIT_MARK, Mark("tokens", 100, 1000))
    holds = [
        Hold(ref=by_tokens, limit_usd=1000, limit_tokens=1000, usd=5, tokens=200, refusal_marks=marks),
        Hold(
            ref=shadow,
            limit_usd=1000,
            limit_tokens=None,
            usd=200,
            tokens=0,
            enforce=False,
            refusal_marks=marks,
        ),
    ]
    result = store.reserve("a", holds, now_ms=T0, deadline_ms=DEADLINE)
    assert not result.granted
    assert [c.fired for c in result.checks] == [(marks[1],), ()]


def test_every_key_of_a_counter_expires_with_its_window(store: Store) -> None:
    client = getattr(store, "client", None)
    if client is None:
        return  # memory: covered by test_keys_expire_after_their_window
    r = ref()
    expected = (END + store.key_slack) * 1000 - T0
    store.reserve("a", [hold(r, 100)], now_ms=T0, deadline_ms=T0 + 10)
    store.reserve("b", [hold(r, 100)], now_ms=T0 + 20, deadline_ms=DEADLINE)  # purges "a": a tombstone
    base = store.key(r)
    for suffix in ("h", "z", "t"):
        ttl = client.pttl(f"{base}:{suffix}")
        assert expected - 5_000 < ttl <= expected, (suffix, ttl)


# -- forget_spend (a budget reset that keeps live holds) -----------------------------------------------------


def test_forget_spend_keeps_live_holds_and_charges_them_to_the_fresh_spend(store: Store) -> None:
    r = ref()
    epoch = store.reserve("spent", [hold(r, 300)], now_ms=T0, deadline_ms=DEADLINE).checks[0].epoch
    store.settle("spent", [Spend(r, 250, 0, epoch=epoch)], now_ms=T0)
    assert store.reserve("flying", [hold(r, 400)], now_ms=T0, deadline_ms=DEADLINE).granted
    assert read1(store, r) == (250, 400)
    assert store.forget_spend([r], now_ms=T0 + 1) == 1
    (state,) = store.read([r], now_ms=T0 + 1)
    assert (state.spent_usd, state.held_usd, state.active) == (0, 400, 1)
    assert (state.limit_usd, state.ref) == (1000, r)
    # The hold still counts against the fresh window: 400 held + 601 requested > 1000.
    assert not store.reserve("big", [hold(r, 601)], now_ms=T0 + 2, deadline_ms=DEADLINE).granted
    again = store.reserve("small", [hold(r, 600)], now_ms=T0 + 2, deadline_ms=DEADLINE)
    assert again.granted
    assert again.checks[0].epoch == epoch  # the counter's data lives on: same epoch
    spend = Spend(r, 350, 0, epoch=epoch)
    (settled,) = store.settle("flying", [spend], now_ms=T0 + 3)
    assert settled.status is SettleStatus.SETTLED
    assert (settled.state.spent_usd, settled.state.held_usd) == (350, 600)
    assert store.settle("flying", [spend], now_ms=T0 + 4)[0].status is SettleStatus.NOOP
    # A settlement of a call settled before the reset stays applied once: it is not charged again.
    (retried,) = store.settle("spent", [Spend(r, 250, 0, epoch=epoch)], now_ms=T0 + 4)
    assert retried.status is SettleStatus.NOOP
    assert read1(store, r, T0 + 4) == (350, 600)


def test_forget_spend_clears_tallies_and_alert_markers(store: Store) -> None:
    r = ref()
    marks = (Mark("usd", 50, 500),)
    store.reserve("a", [hold(r, 600)], now_ms=T0, deadline_ms=DEADLINE)
    (first,) = store.settle("a", [Spend(r, 600, 9, marks)], now_ms=T0, model="m", tokens={"input": 9})
    assert first.fired == marks
    store.reserve("live", [hold(r, 100, tokens=7)], now_ms=T0, deadline_ms=DEADLINE)
    assert store.forget_spend([r], now_ms=T0) == 1
    (state,) = store.read([r], now_ms=T0)
    assert (state.spent_usd, state.spent_tokens, state.held_usd, state.held_tokens) == (0, 0, 100, 7)
    assert (dict(state.models), state.alerted) == ({}, ())
    store.reserve("b", [hold(r, 500)], now_ms=T0, deadline_ms=DEADLINE)
    (again,) = store.settle("b", [Spend(r, 500, 0, marks)], now_ms=T0, model="m", tokens={"input": 1})
    assert again.fired == marks  # the threshold fires again in the fresh window
    (state,) = store.read([r], now_ms=T0)
    assert dict(state.models["m"]) == {"calls": 1, "cost": 500, "input": 1}


def test_forget_spend_deletes_counters_without_live_holds(store: Store) -> None:
    spent, flying, other = ref("spent"), ref("flying"), ref("other")
    store.settle("a", [Spend(spent, 70, 5)], now_ms=T0, charge=True)
    store.reserve("b", [hold(flying, 30)], now_ms=T0, deadline_ms=DEADLINE)
    store.settle("c", [Spend(other, 10, 0)], now_ms=T0, charge=True)
    assert store.forget_spend([spent, flying, ref("never")], now_ms=T0) == 2
    assert {s.ref for s in store.list(now_ms=T0)} == {flying, other}
    assert read1(store, spent) == (0, 0)
    assert read1(store, flying) == (0, 30)
    assert read1(store, other) == (10, 0)
    assert store.forget_spend([ref("never")], now_ms=T0) == 0
    assert store.forget_spend([], now_ms=T0) == 0


def test_forget_spend_purges_expired_holds_first(store: Store) -> None:
    r = ref()
    store.reserve("a", [hold(r, 100)], now_ms=T0, deadline_ms=T0 + 10)
    store.settle("s", [Spend(r, 40, 0)], now_ms=T0, charge=True)
    # The only hold expired: nothing live is left to keep, so the counter goes entirely.
    assert store.forget_spend([r], now_ms=T0 + 20) == 1
    assert store.list(now_ms=T0 + 20) == []
    assert read1(store, r, T0 + 20) == (0, 0)
    # Without its tombstone (or an epoch) the late settle finds nothing to charge.
    assert store.settle("a", [Spend(r, 100, 0)], now_ms=T0 + 30)[0].status is SettleStatus.NOOP


def test_forget_spend_keeps_tombstones_so_late_settles_count_once(store: Store) -> None:
    r = ref()
    store.reserve("slow", [hold(r, 200)], now_ms=T0, deadline_ms=T0 + 10)
    store.reserve("live", [hold(r, 300)], now_ms=T0, deadline_ms=DEADLINE)
    store.settle("old", [Spend(r, 90, 0)], now_ms=T0, charge=True)
    # Purges "slow" first: its hold goes, its tombstone stays.
    assert store.forget_spend([r], now_ms=T0 + 20) == 1
    assert read1(store, r, T0 + 20) == (0, 300)
    (late,) = store.settle("slow", [Spend(r, 150, 0)], now_ms=T0 + 30)
    assert late.status is SettleStatus.LATE
    assert (late.state.spent_usd, late.state.held_usd) == (150, 300)
    assert store.settle("slow", [Spend(r, 150, 0)], now_ms=T0 + 40)[0].status is SettleStatus.NOOP
    # The charge-mode marker survives too: the journalled spend is not replayed into the fresh window.
    assert store.settle("old", [Spend(r, 90, 0)], now_ms=T0 + 40, charge=True)[0].status is SettleStatus.NOOP
    assert read1(store, r, T0 + 40) == (150, 300)


def test_forget_spend_keeps_the_expiry_of_every_key(store: Store) -> None:
    client = getattr(store, "client", None)
    if client is None:
        return  # memory: one expiry per counter, which forget_spend does not change
    r = ref()
    expected = (END + store.key_slack) * 1000 - T0
    store.reserve("a", [hold(r, 100)], now_ms=T0, deadline_ms=T0 + 10)
    store.reserve("b", [hold(r, 100)], now_ms=T0, deadline_ms=DEADLINE)
    assert client.exists(f"{store.key(r)}:t") == 0
    store.forget_spend([r], now_ms=T0 + 20)  # purges "a": its tombstone creates the key, with an expiry
    base = store.key(r)
    for suffix in ("h", "z", "t"):
        ttl = client.pttl(f"{base}:{suffix}")
        assert expected - 5_000 < ttl <= expected, (suffix, ttl)


def test_renew_keeps_a_live_hold_past_its_first_deadline(store: Store) -> None:
    r = ref()
    store.reserve("long", [hold(r, 800)], now_ms=T0, deadline_ms=T0 + 1000)
    assert store.renew([Renewal("long", r)], now_ms=T0 + 500, deadline_ms=T0 + 1500) == (True,)
    assert store.renew([Renewal("long", r)], now_ms=T0 + 1200, deadline_ms=T0 + 2200) == (True,)
    # Past the first deadline, the renewed hold still refuses what would not fit beside it.
    assert not store.reserve("x", [hold(r, 300)], now_ms=T0 + 2100, deadline_ms=T0 + 5000).granted
    assert read1(store, r, T0 + 2100) == (0, 800)
    settled = store.settle("long", [Spend(r, 650, 0)], now_ms=T0 + 2150)[0]
    assert settled.status is SettleStatus.SETTLED
    assert read1(store, r, T0 + 2150) == (650, 0)
    # Once settled there is nothing left to renew.
    assert store.renew([Renewal("long", r)], now_ms=T0 + 2160, deadline_ms=T0 + 3000) == (False,)


def test_renew_never_revives_an_expired_hold(store: Store) -> None:
    r = ref()
    store.reserve("gone", [hold(r, 800)], now_ms=T0, deadline_ms=T0 + 1000)
    assert store.renew([Renewal("gone", r)], now_ms=T0 + 1000, deadline_ms=T0 + 9000) == (False,)
    assert read1(store, r, T0 + 1001) == (0, 0)
    assert store.reserve("y", [hold(r, 1000)], now_ms=T0 + 1001, deadline_ms=T0 + 5000).granted
    # The expired hold's late settlement is still charged once.
    assert store.settle("gone", [Spend(r, 100, 0)], now_ms=T0 + 1002)[0].status is SettleStatus.LATE


def test_renew_never_shortens_a_deadline(store: Store) -> None:
    r = ref()
    store.reserve("lease", [hold(r, 500)], now_ms=T0, deadline_ms=T0 + 10_000)
    assert store.renew([Renewal("lease", r)], now_ms=T0 + 100, deadline_ms=T0 + 2000) == (True,)
    assert read1(store, r, T0 + 9_999) == (0, 500)
    assert read1(store, r, T0 + 10_000) == (0, 0)


def test_renew_many_holds_across_counters_in_one_call(store: Store) -> None:
    refs = [ref(f"budget-{i}", (("user", f"u{i}"),)) for i in range(6)]
    for i in range(4):
        store.reserve(f"call-{i}", [hold(r, 10) for r in refs], now_ms=T0, deadline_ms=T0 + 1000)
    renewals = [Renewal(f"call-{i}", r) for i in (0, 1, 3, 9) for r in refs]  # call-9 never existed
    assert store.renew(renewals, now_ms=T0 + 900, deadline_ms=T0 + 5000) == (True,) * 18 + (False,) * 6
    states = store.read(refs, now_ms=T0 + 4000)
    assert [(s.held_usd, s.active) for s in states] == [(30, 3)] * 6  # call-2 expired, the rest renewed
    assert store.renew([], now_ms=T0 + 4000, deadline_ms=T0 + 6000) == ()


def test_an_expired_hold_marked_charge_is_charged_its_worst_case_once(store: Store) -> None:
    r = ref()
    charged = Hold(ref=r, limit_usd=1000, limit_tokens=None, usd=400, tokens=7, charge_on_expiry=True)
    store.reserve("crashed", [charged], now_ms=T0, deadline_ms=T0 + 1000)
    store.reserve("released", [hold(r, 300, tokens=5)], now_ms=T0, deadline_ms=T0 + 1000)
    (state,) = store.read([r], now_ms=T0 + 1000)
    assert (state.spent_usd, state.held_usd, state.spent_tokens, state.held_tokens) == (400, 0, 7, 0)
    # The charged worst case stands in for the call: a settlement arriving later adds nothing ...
    late = store.settle("crashed", [Spend(r, 250, 3)], now_ms=T0 + 2000)[0]
    assert late.status is SettleStatus.NOOP
    # ... while the released hold's late settlement is still charged once.
    assert store.settle("released", [Spend(r, 100, 2)], now_ms=T0 + 2000)[0].status is SettleStatus.LATE
    assert store.release("crashed", [r], now_ms=T0 + 2500) == (False,)
    (state,) = store.read([r], now_ms=T0 + 3000)
    assert (state.spent_usd, state.held_usd, state.spent_tokens) == (500, 0, 9)


def test_a_settled_or_renewed_hold_marked_charge_is_never_charged_by_expiry(store: Store) -> None:
    r = ref()

    def charged(usd: int) -> Hold:
        return Hold(ref=r, limit_usd=1000, limit_tokens=None, usd=usd, tokens=0, charge_on_expiry=True)

    store.reserve("done", [charged(400)], now_ms=T0, deadline_ms=T0 + 1000)
    store.reserve("long", [charged(300)], now_ms=T0, deadline_ms=T0 + 1000)
    assert store.settle("done", [Spend(r, 120, 0)], now_ms=T0 + 10)[0].status is SettleStatus.SETTLED
    assert store.release("gone", [r], now_ms=T0 + 10) == (False,)
    assert store.renew([Renewal("long", r)], now_ms=T0 + 900, deadline_ms=T0 + 5000) == (True,)
    assert read1(store, r, T0 + 4000) == (120, 300)
    assert read1(store, r, T0 + 5000) == (420, 0)  # expired unsettled at last: charged once
    assert read1(store, r, T0 + 6000) == (420, 0)
