"""Spend-ledger rules: the hour-boundary rule under an injected clock, unattributed calls, retention,
``track=False``, exactly once on a retried settlement, an outage mid-run, and the report command."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.cli import main
from bedrock_budget.stores import from_uri
from bedrock_budget.stores.base import SettleRequest
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.testing import FakeBedrock
from service_fixtures import RedisServer, free_port

from . import _spend_worker
from .conftest import Target

ELEVEN = datetime(2026, 12, 4, 11, tzinfo=UTC).timestamp()
TOKENS = {"input": 10, "output": 5, "cache_read": 0, "cache_write": 0}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_call_is_bucketed_by_its_settlement_time(target: Target) -> None:
    clock = Clock(ELEVEN - 1)  # 10:59:59
    ledger = Ledger(target.store, clock=clock)
    early = ledger.reserve({"user": "a"}, "m", None, 0, TOKENS)
    crossing = ledger.reserve({"user": "b"}, "m", None, 0, TOKENS)
    clock.now = ELEVEN - 0.001  # 10:59:59.999: still hour 10
    ledger.settle(early, 7, TOKENS)
    clock.now = ELEVEN  # 11:00:00.000 exactly: hour 11, though reserved in hour 10
    ledger.settle(crossing, 11, TOKENS)
    ledger.flush()
    rows = bb.spend(
        target.store, by="user", since=ELEVEN - 3600, until=ELEVEN + 3600, granularity="hour",
        per_bucket=True, now=ELEVEN,
    )  # fmt: skip
    got = {(r.values[0], int(r.bucket.timestamp()) if r.bucket else 0): r.cost_nanos for r in rows}
    assert got == {("a", int(ELEVEN) - 3600): 7, ("b", int(ELEVEN)): 11}
    (day,) = bb.spend(target.store, by=(), since=ELEVEN, now=ELEVEN)
    assert (day.cost_nanos, day.calls, day.tokens["input"]) == (18, 2, 20)
    ledger.close()


def test_unattributed_calls_and_track_false(target: Target) -> None:
    clock = Clock(ELEVEN)
    ledger = Ledger(target.store, clock=clock)
    ledger.settle(ledger.reserve({}, "m", None, 0, TOKENS), 5, TOKENS)
    ledger.close()
    quiet = Ledger(target.store, clock=clock, track=False)
    quiet.settle(quiet.reserve({"user": "x"}, "m", None, 0, TOKENS), 9, TOKENS)
    quiet.close()
    rows = bb.spend(target.store, by="user", now=ELEVEN)
    assert [(r.values, r.cost_nanos) for r in rows] == [(("(none)",), 5)]


def test_a_settlement_sent_twice_is_tracked_once(target: Target) -> None:
    entry = bb.Tracking().entry({"user": "u"}, "m", 42, TOKENS, ELEVEN)
    request = SettleRequest("r-1", (), track=entry)
    now_ms = int(ELEVEN * 1000)
    target.store.settle_many([request, request], now_ms=now_ms)
    target.store.settle_many([request], now_ms=now_ms)
    (row,) = bb.spend(target.store, by="user", now=ELEVEN)
    assert (row.cost_nanos, row.calls) == (42, 1)


def test_a_batch_sums_exactly_beyond_doubles_and_skips_calls_already_tracked(target: Target) -> None:
    big = 2**53 + 1  # nano-dollars a double cannot hold: summed in a batch, it must stay exact
    tracking = bb.Tracking()
    now_ms = int(ELEVEN * 1000)

    def call(n: int, cost: int) -> SettleRequest:
        return SettleRequest(f"r-{n}", (), track=tracking.entry({"user": "u"}, "m", cost, TOKENS, ELEVEN))

    target.store.settle_many([call(0, big)], now_ms=now_ms)
    target.store.settle_many([call(0, big), call(1, big), call(2, 999_999_999), call(1, big)], now_ms=now_ms)
    expected = 2 * big + 999_999_999
    for by in ("user", "model", ()):
        (row,) = bb.spend(target.store, by=by, now=ELEVEN)
        assert (row.cost_nanos, row.calls, row.tokens["input"]) == (expected, 3, 30), by


def test_a_batch_of_many_users_sums_each_value_exactly(target: Target) -> None:
    # Calls of several users in one batch are summed per user first, then into the app and the total they
    # share: every sum carries its low limb many times over, across groups.
    tracking = bb.Tracking()
    now_ms = int(ELEVEN * 1000)
    costs = [(n * 7_919_000_000_001 + 999_999_999) % 10**15 for n in range(64)]
    entries = [
        tracking.entry({"user": f"u{n % 3}", "app": "a"}, "m", cost, TOKENS, ELEVEN)
        for n, cost in enumerate(costs)
    ]
    batch = [SettleRequest(f"many-{n}", (), track=entry) for n, entry in enumerate(entries)]
    target.store.settle_many(batch, now_ms=now_ms)
    by_user = {row.values[0]: row.cost_nanos for row in bb.spend(target.store, by="user", now=ELEVEN)}
    assert by_user == {f"u{k}": sum(costs[k::3]) for k in range(3)}
    (app,) = bb.spend(target.store, by="app", now=ELEVEN)
    (total,) = bb.spend(target.store, by=(), now=ELEVEN)
    assert app.cost_nanos == total.cost_nanos == sum(costs)
    assert (total.calls, total.tokens["input"]) == (64, 640)


def test_buckets_expire_after_their_retention() -> None:
    store = MemoryStore()
    ledger = Ledger(store, clock=Clock(ELEVEN), track=bb.Tracking(hourly_days=1, daily_days=2))
    ledger.settle(ledger.reserve({"user": "u"}, "m", None, 0, TOKENS), 5, TOKENS)
    ledger.close()
    hour = {"granularity": "hour", "since": ELEVEN, "until": ELEVEN + 1}
    assert bb.spend(store, now=ELEVEN + 86400 + 3599, **hour)  # type: ignore[arg-type]
    assert not bb.spend(store, now=ELEVEN + 86400 + 3600, **hour)  # type: ignore[arg-type]
    day = {"since": ELEVEN, "until": ELEVEN + 1}
    assert bb.spend(store, now=ELEVEN + 2 * 86400 + 46799, **day)  # type: ignore[arg-type]
    assert not bb.spend(store, now=ELEVEN + 3 * 86400, **day)  # type: ignore[arg-type]


def test_an_outage_mid_run_still_ends_exact(fake: FakeBedrock, tmp_path: Path) -> None:
    server = RedisServer(tmp_path, free_port(), "--appendonly", "yes")  # the data outlives the restart
    server.start()
    uri = f"redis://127.0.0.1:{server.port}/0?socket_timeout=0.5&socket_connect_timeout=0.5"
    store = from_uri(uri, prefix="out:")
    raw = _spend_worker.client_for(fake.endpoint_url)
    records: list[bb.CallRecord] = []
    client = bb.wrap(raw, store=store, listeners=[records.append], on_store_error="allow")
    ledger = client.bedrock_budget_meter.guard.ledger
    try:
        for phase in range(3):
            if phase == 1:
                server.stop()
            if phase == 2:
                server.start()
            for i in range(8):
                with bb.attribute(user=f"u-{i % 3}", app="chat"):
                    _spend_worker.one_call(client, i % 4)
            ledger._settler.drain()
            if phase == 1:
                assert ledger.journal_depth > 0
        assert ledger.flush() == 0
        total = sum(r.cost.total_nanos for r in records if r.cost is not None)
        (row,) = bb.spend(store, by=())
        assert (row.cost_nanos, row.calls) == (total, 24)
        assert sum(r.cost_nanos for r in bb.spend(store, by="user")) == total
    finally:
        ledger.close()
        store.close()
        raw.close()
        server.stop()


def test_report_lists_every_value_and_twice_gives_the_same(
    fake: FakeBedrock, shared_target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    target = shared_target
    assert target.uri is not None
    uri = f"{target.uri}{'&' if '?' in target.uri else '?'}prefix={target.prefix}"
    results: Any = __import__("queue").Queue()
    _spend_worker.mixed_calls(fake.endpoint_url, target.store, target.prefix, 7, 40, {}, results)
    calls, nanos = results.get()
    outputs = []
    for by in ("user", "app", "model"):
        for _ in range(2):
            assert main(["report", "--store", uri, "--by", by, "--format", "json"]) == 0
            outputs.append(capsys.readouterr().out)
        assert outputs[-1] == outputs[-2]
        report = json.loads(outputs[-1])
        assert report["total"]["calls"] == calls
        assert report["total"]["cost_usd"] == str(bb.SpendRow((), (), nanos, 0).cost_usd)
    assert main(["report", "--store", uri, "--by", "user"]) == 0
    table = capsys.readouterr().out
    for user in ("u-1", "u-2", "u-3", "u-4", "u-5", "(none)"):
        assert user in table
    assert main(["report", "--store", uri, "--by", "user", "--top", "2", "--format", "csv"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert main(["report", "--store", uri, "--by", "user", "--granularity", "week"]) == 2


def test_calls_admitted_from_leases_are_each_tracked(target: Target) -> None:
    clock = Clock(ELEVEN)
    budgets = [bb.Budget(name="org", window="day", limit_usd="10")]
    ledger = Ledger(target.store, budgets, lease_fraction=0.5, clock=clock)
    for i in range(30):
        ledger.settle(ledger.reserve({"user": f"u{i % 4}"}, "m", None, 1000, TOKENS), 100 + i, TOKENS)
    assert ledger.flush() == 0
    ledger.close()
    users = bb.spend(target.store, by="user", now=ELEVEN)
    assert sum(r.calls for r in users) == 30
    assert sum(r.cost_nanos for r in users) == sum(100 + i for i in range(30))
    assert ledger.read("org").spent_usd * 10**9 == sum(100 + i for i in range(30))


def test_one_call_is_one_slot_and_no_slot_is_hot_for_the_fleet() -> None:
    from redis.crc import key_slot

    from bedrock_budget.stores.tracking import writes

    tracking = bb.Tracking()
    slots: list[int] = []
    for i in range(400):
        entry = tracking.entry({"user": f"u-{i}", "app": "chat"}, "m", 1, {}, ELEVEN)
        (write,) = writes("bb:", f"r{i}", entry, 86400)  # every dimension of a call in one place
        slots.append(key_slot(write.slot_key.encode()))
    # The app, the model and the total every call carries are spread over every shard's slot.
    assert len(set(slots)) == 16
    assert max(slots.count(slot) for slot in slots) < 400 / 16 * 2
    total_only = bb.Tracking(keys=())
    spread = {
        key_slot(w.slot_key.encode())
        for i in range(400)
        for w in writes("bb:", f"r{i}", total_only.entry({}, "m", 1, {}, ELEVEN), 86400)
    }
    assert len(spread) == 16  # a total tracked alone spreads by call


def test_top_is_exact_for_values_spread_over_shards(target: Target) -> None:
    # Apps are spread over the shards of their users' calls. Each user's calls favour another app, so
    # every shard ranks the apps differently: the top apps over all shards must still come out exact.
    tracking = bb.Tracking()
    now_ms = int(ELEVEN * 1000)
    requests = []
    expected: dict[str, int] = {}
    for u in range(48):
        for a in range(12):
            cost = 1000 + (u * 7 + a * 13) % 97 * (3 if a == u % 12 else 1)
            expected[f"app-{a}"] = expected.get(f"app-{a}", 0) + cost
            entry = tracking.entry({"user": f"u-{u}", "app": f"app-{a}"}, "m", cost, TOKENS, ELEVEN)
            requests.append(SettleRequest(f"r-{u}-{a}", (), track=entry))
    target.store.settle_many(requests, now_ms=now_ms)
    ranking = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))
    for top in (1, 3, 5, 12, 20):
        rows = bb.spend(target.store, by="app", top=top, now=ELEVEN)
        assert [(r.values[0], r.cost_nanos) for r in rows] == ranking[:top], top
        assert all(r.calls == 48 for r in rows)
    hours = bb.spend(target.store, by="app", top=4, granularity="hour", now=ELEVEN)
    assert [(r.values[0], r.cost_nanos) for r in hours] == ranking[:4]


@pytest.mark.redis
def test_redis_expires_every_tracking_key(redis_url: str) -> None:
    import redis

    prefix = f"bbspendttl{uuid.uuid4().hex[:8]}:"
    store = from_uri(redis_url, prefix=prefix)

    ledger = Ledger(store, track=bb.Tracking(hourly_days=2, daily_days=30))
    ledger.settle(ledger.reserve({"user": "u", "app": "a"}, "m", None, 0, TOKENS), 5, TOKENS)
    ledger.close()
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        # user, app, model, total: (sorted set, hash) per hour and day; one dedupe hash (a call's writes
        # on one server are applied together, checked once)
        assert len(keys) == 4 * 4 + 1
        for key in keys:
            left = client.pttl(key) / 1000
            name = key.decode()
            if "}:d:" in name:
                limit = 3600 + 86400  # the hour, then the store's tombstone retention
            elif ":h:" in name:
                limit = 3600 + 2 * 86400
            else:
                limit = 86400 + 30 * 86400
            assert limit - 86400 - 3600 < left <= limit, (name, left)
        client.delete(*keys)
    finally:
        client.close()
        store.close()


def test_wrap_with_track_false_writes_nothing(fake: FakeBedrock) -> None:
    store = MemoryStore()
    raw = _spend_worker.client_for(fake.endpoint_url)
    client = bb.wrap(raw, store=store, track=False)
    with bb.attribute(user="u-1"):
        _spend_worker.one_call(client, 0)
    client.bedrock_budget_meter.guard.ledger.close()
    raw.close()
    assert bb.spend(store, by=()) == []
    tracked = bb.wrap(_spend_worker.client_for(fake.endpoint_url), store=store, track=["user"])
    with bb.attribute(user="u-1"):
        _spend_worker.one_call(tracked, 0)
    tracked.bedrock_budget_meter.guard.ledger.close()
    assert [r.values for r in bb.spend(store, by="user")] == [("u-1",)]
    assert bb.spend(store, by="app") == []


PAIRED = [  # values holding the pair separator and the escape character, alone and together
    ({"app": "a|b", "tenant": "t"}, "m"),
    ({"app": "a", "tenant": "b|t"}, "m"),
    ({"app": "a\\", "tenant": "|b"}, "m|x"),
    ({"app": "a\\|b", "tenant": ""}, "m\\"),
    ({"app": "|", "tenant": "\\\\|"}, "|m|"),
]


def test_pair_values_holding_the_separator_stay_apart(
    target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    tracking = bb.Tracking(keys=("app",), pairs=(("app", "tenant"), ("app", "tenant", "model")))
    now_ms = int(ELEVEN * 1000)
    requests = [
        SettleRequest(f"r-{n}", (), track=tracking.entry(ids, model, 100 + n, TOKENS, ELEVEN))
        for n, (ids, model) in enumerate(PAIRED)
    ]
    target.store.settle_many(requests, now_ms=now_ms)
    pairs = bb.spend(target.store, by=("app", "tenant"), now=ELEVEN)
    assert sorted((r.values, r.cost_nanos) for r in pairs) == sorted(
        ((ids["app"], ids["tenant"]), 100 + n) for n, (ids, _) in enumerate(PAIRED)
    )
    triples = bb.spend(target.store, by=("app", "tenant", "model"), now=ELEVEN, top=2)
    assert [(r.values, r.cost_nanos) for r in triples] == [
        (("|", "\\\\|", "|m|"), 104),
        (("a\\|b", "", "m\\"), 103),
    ]
    if target.uri is None:
        return
    uri = f"{target.uri}{'&' if '?' in target.uri else '?'}prefix={target.prefix}"
    since = datetime.fromtimestamp(ELEVEN, UTC).date().isoformat()
    argv = ["report", "--store", uri, "--by", "app,tenant", "--since", since, "--format", "json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(tuple(r["values"]) for r in report["rows"]) == sorted(
        (ids["app"], ids["tenant"]) for ids, _ in PAIRED
    )
    assert main([*argv[:-2], "--format", "csv"]) == 0
    import csv

    rows = list(csv.reader(capsys.readouterr().out.splitlines()))[1:]
    assert sorted((r[0], r[1]) for r in rows) == sorted((ids["app"], ids["tenant"]) for ids, _ in PAIRED)


def test_split_pair_inverts_join_pair() -> None:
    from bedrock_budget.stores.tracking import join_pair, split_pair

    samples = ["", "|", "\\", "\\|", "|\\", "a|b", "a\\b", "\\\\", "||", "x"]
    for first in samples:
        for second in samples:
            for third in ("", "|", "m"):
                values = (first, second, third)
                assert split_pair(join_pair(values)) == values
    assert join_pair(["plain", "values"]) == "plain|values"  # what was stored before escaping existed


def test_budgeted_sync_settlements_are_tracked_exactly(target: Target) -> None:
    # On Redis the entries of synchronous settlements go in batches apart from the budget counters
    # (Store.batch_tracking); either way every call is tracked once and the sums match the budget.
    clock = Clock(ELEVEN)
    budgets = [bb.Budget(name="org", window="day", limit_usd="10")]
    ledger = Ledger(target.store, budgets, clock=clock)
    assert ledger._track_apart is target.store.batch_tracking
    assert target.store.batch_tracking is (target.kind != "memory")
    for i in range(40):
        reservation = ledger.reserve({"user": f"u{i % 3}", "app": "chat"}, "m", None, 1000, TOKENS)
        ledger.settle(reservation, 100 + i, TOKENS)
    assert ledger.flush() == 0
    spent = ledger.read("org").spent_usd * 10**9
    ledger.close()
    total = sum(100 + i for i in range(40))
    assert spent == total
    for by in ("user", "app", "model", ()):
        rows = bb.spend(target.store, by=by, now=ELEVEN)
        assert (sum(r.cost_nanos for r in rows), sum(r.calls for r in rows)) == (total, 40), by
