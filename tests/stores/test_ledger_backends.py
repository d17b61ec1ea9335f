"""The ledger over every backend: cross-process alert de-duplication, concurrency that never overshoots,
and outage handling against real redis-server processes."""

from __future__ import annotations

import multiprocessing
import signal
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backends import Backend
from bedrock_budget.alerts import Alert
from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.errors import BudgetExceededError, StoreUnavailableError
from bedrock_budget.stores import Spend, from_uri
from polling import wait_until
from service_fixtures import RedisServer, free_port

from . import _concurrency_worker

USD = 1_000_000_000
CALL = {"user": "u-1", "app": "chat"}

pytestmark = pytest.mark.backends("all")


def test_two_ledgers_on_one_store_fire_each_alert_once(backend: Backend) -> None:
    received: list[tuple[str, int]] = []
    budget = Budget("team", scope={"app": "chat"}, limit_usd="10", thresholds=(50, 80, 100))
    ledgers = [
        Ledger(backend.make(), [budget], alert_sinks=[lambda a, n=n: received.append((f"L{n}", a.threshold))])
        for n in range(2)
    ]
    for step in range(10):
        ledger = ledgers[step % 2]
        ledger.settle(ledger.reserve(CALL, "m", None, USD, {}), USD, {})
    assert received == [("L0", 50), ("L1", 80), ("L1", 100)]
    assert ledgers[0].read("team").spent_usd == Decimal(10)
    for ledger in ledgers:  # their settle threads must not outlive the store the fixture closes
        ledger.close()


def test_a_refusing_budget_alerts_at_its_limit_once_across_ledgers(backend: Backend) -> None:
    received: list[tuple[str, int, bool]] = []
    budget = Budget("team", scope={"app": "chat"}, limit_usd="10", thresholds=(50, 100))
    ledgers = [
        Ledger(
            backend.make(),
            [budget],
            alert_sinks=[lambda a, n=n: received.append((f"L{n}", a.threshold, a.refused))],
        )
        for n in range(2)
    ]
    for step in range(6):  # $2 worst case, $1.90 actual: spend reaches 9.50 of 10, never 100%
        ledger = ledgers[step % 2]
        try:
            ledger.settle(ledger.reserve(CALL, "m", None, 2 * USD, {}), 19 * USD // 10, {})
        except BudgetExceededError:
            continue
    refusals = 0
    for ledger in ledgers * 2:
        with pytest.raises(BudgetExceededError):
            ledger.reserve(CALL, "m", None, 2 * USD, {})
        refusals += 1
    assert refusals == 4
    assert received == [("L0", 50, False), ("L1", 100, True)]  # the sixth call, on L1, is the first refused
    assert ledgers[1].read("team").spent_usd == Decimal("9.5")
    # A call larger than the whole budget says nothing about its spend: no alert of its own.
    fresh = Budget("fresh", limit_usd="1")
    alone = Ledger(
        backend.make(), [fresh], alert_sinks=[lambda a: received.append(("fresh", a.threshold, a.refused))]
    )
    with pytest.raises(BudgetExceededError):
        alone.reserve(CALL, "m", None, 2 * USD, {})
    assert received[-1][0] != "fresh"
    for ledger in [*ledgers, alone]:
        ledger.close()


def test_threads_never_overshoot(backend: Backend) -> None:
    cost, limit = 7_000_003, "0.3"
    fits = 300_000_000 // cost  # 42
    ledger = Ledger(backend.make(), [Budget("shared", window="lifetime", limit_usd=limit)])
    granted: list[int] = []
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        mine = 0
        for _ in range(15):
            try:
                reservation = ledger.reserve(CALL, "m", None, cost, {})
            except BudgetExceededError:
                continue
            mine += 1
            ledger.settle(reservation, cost, {})
        granted.append(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    (status,) = ledger.status()
    assert sum(granted) == fits
    assert (status.spent_usd, status.reserved_usd) == (Decimal(fits * cost) / USD, 0)


#: Each process leases a tenth of the limit and gives a lease back after 20 ms at most.
LEASE: dict[str, Any] = {"lease_fraction": 0.1, "lease_seconds": 0.02}
#: Ledger options of the process test: exact reservations, or leases settled inline or from the queue.
LEDGER_OPTIONS: dict[str, dict[str, Any]] = {
    "exact": {},
    "leased": LEASE,
    "leased-background": {**LEASE, "settle_mode": "background"},
}


@pytest.mark.backends("redis", "cluster")
@pytest.mark.parametrize("mode", list(LEDGER_OPTIONS))
def test_processes_never_overshoot(backend: Backend, mode: str) -> None:
    assert backend.uri is not None
    options = LEDGER_OPTIONS[mode]
    cost, limit_nanos = 7_000_003, 1_000_000_000
    fits = limit_nanos // cost  # 142 of 1600 attempts
    context = multiprocessing.get_context("spawn")
    # Every worker starts once all have started up, so they all contend for the budget.
    start = context.Barrier(8)
    results = context.Queue()
    workers = [
        context.Process(
            target=_concurrency_worker.hammer,
            args=(backend.uri, backend.prefix, "1", cost, 200, start, results, options),
        )
        for _ in range(8)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
        worker.close()
    results.close()
    results.join_thread()
    granted = sum(g for g, _ in outcomes)
    assert granted + sum(r for _, r in outcomes) == 8 * 200
    if "lease_fraction" not in options:
        assert granted == fits
    else:
        # Capacity leased by the other seven processes may be stranded when one is refused, never more; with
        # background settlement, also the refused process's own last lease while its settlement is queued.
        holders = 8 if options.get("settle_mode") == "background" else 7
        stranded = holders * int(limit_nanos * float(options["lease_fraction"]))
        assert limit_nanos - stranded - cost < granted * cost <= limit_nanos
    store = backend.make()
    (state,) = Ledger(store, [Budget("shared", window="lifetime", limit_usd="1")]).status()
    assert state.spent_usd * USD == granted * cost <= limit_nanos
    assert state.reserved_usd == 0
    assert state.active_reservations == 0
    assert state.models["model"]["calls"] == granted


def test_deny_fails_fast_on_a_closed_port() -> None:
    port = free_port()
    ledger = Ledger(from_uri(f"redis://127.0.0.1:{port}/0"), [Budget("b", limit_usd="1")])
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as info:
        ledger.reserve(CALL, "m", None, 1, {})
    assert time.monotonic() - started < 2
    assert f"127.0.0.1:{port}" in info.value.store
    ledger.close()
    ledger.store.close()


def test_passwords_never_reach_error_messages() -> None:
    port = free_port()
    store = from_uri(f"redis://user:hunter2@127.0.0.1:{port}/0")
    with pytest.raises(StoreUnavailableError) as info:
        store.ping()
    assert "hunter2" not in str(info.value)
    assert "user:***@" in str(info.value)
    store.close()


@pytest.mark.redis
def test_outage_allow_journals_and_replays_after_restart(redis_server_binary: str, tmp_path: Path) -> None:
    server = RedisServer(tmp_path, free_port())
    server.start()
    store = from_uri(f"redis://127.0.0.1:{server.port}/0", connect_timeout=0.2, socket_timeout=0.5)
    alerts: list[Alert] = []
    ledger = Ledger(store, [Budget("b", limit_usd="10", thresholds=(50,))], on_store_error="allow",
                    alert_sinks=[alerts.append])  # fmt: skip
    try:
        ledger.settle(ledger.reserve(CALL, "m", None, USD, {}), USD, {})
        server.stop()
        started = time.monotonic()
        offline = [ledger.reserve(CALL, "m", None, 2 * USD, {}) for _ in range(3)]
        assert all(r.offline for r in offline)
        assert time.monotonic() - started < 3
        for reservation in offline:
            ledger.settle(reservation, 2 * USD, {})
        # The three settlements at once, and their spend-ledger entries from the batches a synchronous ledger
        # on Redis sends apart, a few milliseconds later.
        wait_until(lambda: ledger.journal_depth == 6, 5, message="the settlements and entries journalled")
        assert ledger.flush() == 6
        server.start()  # an empty server: the offline spend is all that will be there
        # The circuit breaker's probe finds the server back and replays the journal.
        wait_until(lambda: ledger.journal_depth == 0, 5, message="the journal to be replayed")
        assert ledger.read("b").spent_usd == Decimal(6)
        assert [a.threshold for a in alerts] == [50]
        # A replay whose reply got lost and is sent again is not charged twice.
        ref = offline[0].lines[0].ref
        (again,) = store.settle(
            offline[0].id, [Spend(ref, 2 * USD, 0)], now_ms=int(time.time() * 1000), charge=True
        )
        assert not again.recorded
        assert ledger.read("b").spent_usd == Decimal(6)
    finally:
        ledger.close()
        store.close()
        server.stop()


@pytest.mark.redis
def test_a_frozen_server_denies_then_settles_exactly_once(redis_server_binary: str, tmp_path: Path) -> None:
    server = RedisServer(tmp_path, free_port())
    server.start()
    store = from_uri(f"redis://127.0.0.1:{server.port}/0", socket_timeout=0.3, connect_timeout=0.3)
    ledger = Ledger(store, [Budget("b", limit_usd="10")])
    assert server.process is not None
    try:
        held = ledger.reserve(CALL, "m", None, 3 * USD, {})
        server.process.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="Timeout"):
            ledger.reserve(CALL, "m", None, USD, {})
        assert time.monotonic() - started < 2
        ledger.settle(held, 2 * USD, {})  # times out: kept in the journal
        assert ledger.journal_depth == 1
        server.process.send_signal(signal.SIGCONT)
        # The server may still run the commands that timed out; the replay must not count twice.
        assert ledger.flush() == 0
        status = ledger.read("b")
        assert status.spent_usd == Decimal(2)
        assert status.reserved_usd in (0, Decimal(1))  # the refused call's request may hold until its TTL
    finally:
        if server.process is not None:
            server.process.send_signal(signal.SIGCONT)
        ledger.close()
        store.close()
        server.stop()


@pytest.mark.redis
def test_one_round_trip_per_reservation_however_many_budgets(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = from_uri(redis_url, prefix=f"bbt{time.time_ns()}:")
    budgets = [
        Budget(f"b{n}", scope={"user": "*"} if n % 2 else {"app": "chat"}, limit_usd="5") for n in range(6)
    ]
    ledger = Ledger(store, budgets)
    client = store.client  # type: ignore[attr-defined]
    sent: list[str] = []
    original = client.execute_command

    caller = threading.get_ident()

    def counting(*args: object, **options: object) -> object:
        # Only the caller's round trips: spend-ledger entries go out in batches of their own, from the
        # settle thread, whenever its linger ends (under load, inside this test's window).
        if threading.get_ident() == caller:
            sent.append(str(args[0]))
        return original(*args, **options)

    try:
        ledger.settle(ledger.reserve(CALL, "m", None, 1, {}), 1, {})  # the first calls load the scripts
        monkeypatch.setattr(client, "execute_command", counting)
        reservation = ledger.reserve(CALL, "m", None, USD, {"input": 3})
        assert sent == ["EVALSHA"]
        assert len(reservation.lines) == 6
        ledger.settle(reservation, USD, {"input": 3})
        assert sent == ["EVALSHA", "EVALSHA"]
    finally:
        monkeypatch.undo()
        for budget in budgets:
            ledger.reset(budget.name)
        ledger.close()
        store.close()
