"""Background settlement (``Ledger(settle_mode="background")``) and the batched ``Store.settle_many``.

What is proved here, on every backend that applies:

- exactly once: a batch applied twice (the retry after a lost reply) changes nothing the second time; a
  reply lost on the wire, retried by redis-py itself through a proxy that cuts the connection, and a batch
  lost before or after it reached the store and then replayed from the journal, all count the spend once;
- ``settle_many`` agrees with ``settle`` counter for counter (statuses, states, alerts, model tallies);
- a queued settlement keeps its hold until it is applied, so reservations never overshoot;
- flush, close and interpreter exit apply the queue; a full queue settles synchronously;
- ordering with release: whichever of settle and release comes first wins, locally and in the store.

Crash safety (a process killed outright, so neither close nor atexit runs): queued settlements are lost
as a synchronous settlement the process was about to make would be. Their holds stay in the store, which
keeps capacity conservative, until ``reservation_ttl`` expires them (``test_a_crash_loses_only_the_queue``
shows the hold coming back); a settlement that does reach the store later is charged exactly once, from
the late-settle tombstone. Nothing is ever applied twice because every store path is idempotent per
reservation id and counter.
"""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest

from backends import Backend, delete_prefix
from bedrock_budget.alerts import Alert
from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.errors import BudgetExceededError, StoreError, StoreUnavailableError
from bedrock_budget.stores import (
    CounterRef,
    Hold,
    Mark,
    ReserveResult,
    SettleOutcome,
    SettleRequest,
    SettleStatus,
    Spend,
    Store,
    from_uri,
)
from bedrock_budget.stores.base import CounterState, Tallies
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.stores.tracking import TrackEntry

from .conftest import FakeClock

USD = 1_000_000_000
CALL = {"user": "u-1", "app": "chat"}
TEAM = CounterRef("team", (("app", "chat"),), "lifetime", "UTC", 0, None)
USER = CounterRef("user", (("user", "u-1"),), "lifetime", "UTC", 0, None)


pytestmark = pytest.mark.backends("all")


def now_ms() -> int:
    return int(time.time() * 1000)


class Delegating(Store):
    """A store that forwards everything to ``inner``; subclasses intercept what they test."""

    def __init__(self, inner: Store) -> None:
        super().__init__(prefix=inner.prefix)
        self.inner = inner

    def reserve(
        self, reservation_id: str, holds: Sequence[Hold], *, now_ms: int, deadline_ms: int
    ) -> ReserveResult:
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
        return self.inner.settle_many(requests, now_ms=now_ms)

    def release(self, reservation_id: str, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[bool, ...]:
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
        self.inner.ping()


class Gated(Delegating):
    """Batches wait for ``gate`` (``entered`` tells that one does); synchronous settles are counted."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[int] = []
        self.sync_settles = 0

    def settle(
        self, reservation_id: str, spends: Sequence[Spend], **kwargs: Any
    ) -> tuple[SettleOutcome, ...]:
        self.sync_settles += 1
        return super().settle(reservation_id, spends, **kwargs)

    def settle_many(
        self, requests: Sequence[SettleRequest], *, now_ms: int
    ) -> list[tuple[SettleOutcome, ...] | StoreError]:
        self.entered.set()
        assert self.gate.wait(30)
        self.batches.append(len(requests))
        return super().settle_many(requests, now_ms=now_ms)


class LosesBatches(Delegating):
    """Fails the next ``lose`` batches, after (``applied=True``) or before they reach the store."""

    def __init__(self, inner: Store, *, lose: int, applied: bool) -> None:
        super().__init__(inner)
        self.lose = lose
        self.applied = applied

    def settle_many(
        self, requests: Sequence[SettleRequest], *, now_ms: int
    ) -> list[tuple[SettleOutcome, ...] | StoreError]:
        if self.lose:
            self.lose -= 1
            if self.applied:
                self.inner.settle_many(requests, now_ms=now_ms)
            raise StoreUnavailableError("lossy://", "connection reset by peer")
        return super().settle_many(requests, now_ms=now_ms)


def shared_budget(limit: str = "100") -> Budget:
    return Budget("shared", window="lifetime", limit_usd=limit)


def totals(ledger: Ledger, name: str = "shared") -> tuple[Decimal, Decimal, int]:
    status = ledger.read(name)
    return status.spent_usd, status.reserved_usd, status.active_reservations


# -- the store primitive ---------------------------------------------------------------------------------


def _scenario_requests(store: Store, now_ms: int) -> list[SettleRequest]:
    """Reservations in every state settle can meet, and the batch that settles them."""
    marks = (Mark("usd", 50, 5 * USD), Mark("tokens", 80, 80_000))
    for rid, deadline in (("live", now_ms + 60_000), ("expired", now_ms - 1), ("released", now_ms + 60_000)):
        holds = [Hold(ref, 10 * USD, 200_000, 3 * USD, 40_000) for ref in (TEAM, USER)]
        assert store.reserve(rid, holds, now_ms=now_ms - 10, deadline_ms=deadline).granted
    store.release("released", [TEAM, USER], now_ms=now_ms)

    def spends(usd: int, milli: int) -> tuple[Spend, ...]:
        return (Spend(TEAM, usd, milli, marks), Spend(USER, usd, milli, ()))

    tokens = {"input": 30, "output": 10}
    return [
        SettleRequest.of_call("live", spends(6 * USD, 40_000), "m-1", tokens),
        SettleRequest.of_call("expired", spends(1 * USD, 50_000), "m-1", tokens),
        SettleRequest.of_call("released", spends(2 * USD, 1_000), "m-2", tokens),
        SettleRequest.of_call("offline", spends(USD // 2, 500), "m-2", tokens, charge=True),
        SettleRequest.of_call("unknown", spends(USD, 1_000), "m-2", tokens),
        SettleRequest("nothing", ()),
    ]


def _summary(results: Sequence[tuple[SettleOutcome, ...] | StoreError]) -> list[Any]:
    summary: list[Any] = []
    for result in results:
        assert not isinstance(result, StoreError)
        summary.append(
            [
                (o.status, o.state.spent_usd, o.state.held_usd, o.state.spent_tokens, o.state.active, o.fired)
                for o in result
            ]
        )
    return summary


def test_settle_many_agrees_with_settle(backend: Backend) -> None:
    now = 1_750_000_000_000
    one_by_one = backend.make()
    # A second namespace on the same backend: the same scenario, settled as one batch.
    batched = backend.make(prefix=backend.prefix + "b:")
    sequential = [
        one_by_one.settle(r.reservation_id, r.spends, now_ms=now, tallies=r.tallies, charge=r.charge)
        for r in _scenario_requests(one_by_one, now)
    ]
    together = batched.settle_many(_scenario_requests(batched, now), now_ms=now)
    assert _summary(together) == _summary(sequential)
    statuses = [[o.status for o in result] for result in sequential]
    assert statuses == [
        [SettleStatus.SETTLED] * 2,
        [SettleStatus.LATE] * 2,
        [SettleStatus.NOOP] * 2,
        [SettleStatus.CHARGED] * 2,
        [SettleStatus.NOOP] * 2,
        [],
    ]
    for a, b in zip(
        one_by_one.read([TEAM, USER], now_ms=now), batched.read([TEAM, USER], now_ms=now), strict=True
    ):
        assert (a.spent_usd, a.held_usd, a.spent_tokens, a.held_tokens, a.active) == (
            b.spent_usd,
            b.held_usd,
            b.spent_tokens,
            b.held_tokens,
            b.active,
        )
        assert a.models == b.models
        assert a.alerted == b.alerted


def _snapshot(store: Store, now: int) -> list[Any]:
    return [
        (s.spent_usd, s.held_usd, s.spent_tokens, s.held_tokens, s.active, s.models, s.alerted)
        for s in store.read([TEAM, USER], now_ms=now)
    ]


def test_a_batch_applied_twice_counts_once(backend: Backend) -> None:
    """What redis-py's own retry does when a reply is lost: the same batch reaches the store again."""
    now = 1_750_000_000_000
    store = backend.make()
    requests = _scenario_requests(store, now)
    store.settle_many(requests, now_ms=now)
    before = _snapshot(store, now)
    again = store.settle_many(requests, now_ms=now)
    for result in _summary(again):
        assert [(row[0], row[5]) for row in result] == [(SettleStatus.NOOP, ())] * len(result)
    assert _snapshot(store, now) == before


# -- the ledger in background mode -----------------------------------------------------------------------


def test_background_mode_is_exactly_once_and_never_overshoots(backend: Backend) -> None:
    cost, limit = 7_000_003, "0.3"
    fits = 300_000_000 // cost  # 42
    alerts: list[Alert] = []
    budget = Budget("shared", window="lifetime", limit_usd=limit, thresholds=(50, 100))
    ledger = Ledger(
        backend.make(), [budget], settle_mode="background", settle_batch=8, alert_sinks=[alerts.append]
    )
    granted: list[int] = []
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        mine = 0
        for _ in range(15):
            try:
                reservation = ledger.reserve(CALL, "m", None, cost, {"output": 2})
            except BudgetExceededError:
                continue
            mine += 1
            ledger.settle(reservation, cost, {"output": 2})
        granted.append(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert ledger.flush() == 0
    assert sum(granted) == fits
    assert totals(ledger) == (Decimal(cost * fits) / USD, Decimal(0), 0)
    # 42 x 0.007 = 0.294: spend reaches 98%, never 100%; the 100% alert comes from the first refusal, once.
    assert sorted((a.threshold, a.refused) for a in alerts) == [(50, False), (100, True)]
    ledger.close()


def test_a_queued_settlement_keeps_its_hold(memory_store: MemoryStore) -> None:
    gated = Gated(memory_store)
    ledger = Ledger(gated, [shared_budget("1")], settle_mode="background")
    first = ledger.reserve(CALL, "m", None, 600_000_000, {})
    ledger.settle(first, 100_000_000, {})
    assert ledger.pending_settlements == 1
    # The store still holds the worst case: a call that fits only once the settlement lands is refused.
    state = memory_store.read([first.lines[0].ref], now_ms=now_ms())[0]
    assert (state.spent_usd, state.held_usd) == (0, 600_000_000)
    with pytest.raises(BudgetExceededError):
        ledger.reserve(CALL, "m", None, 500_000_000, {})
    gated.gate.set()
    assert ledger.flush() == 0
    assert totals(ledger) == (Decimal("0.1"), Decimal(0), 0)
    ledger.settle(ledger.reserve(CALL, "m", None, 500_000_000, {}), 500_000_000, {})
    assert totals(ledger) == (Decimal("0.6"), Decimal(0), 0)
    ledger.close()


@pytest.mark.parametrize("applied", [False, True], ids=["lost-request", "lost-reply"])
def test_a_lost_batch_is_replayed_once(backend: Backend, applied: bool) -> None:
    lossy = LosesBatches(backend.make(), lose=1, applied=applied)
    gated = Gated(lossy)
    ledger = Ledger(gated, [shared_budget()], settle_mode="background", settle_batch=100, track=False)
    for _ in range(10):
        ledger.settle(ledger.reserve(CALL, "m", None, 3 * USD, {}), 2 * USD, {})
    gated.gate.set()
    assert ledger.flush() == 0
    assert ledger.store_errors == 1
    assert ledger.journal_depth == 0
    assert sum(gated.batches) == 10
    assert totals(ledger) == (Decimal(20), Decimal(0), 0)
    ledger.close()


def test_flush_and_close_apply_the_queue(backend: Backend) -> None:
    gated = Gated(backend.make())
    ledger = Ledger(gated, [shared_budget()], settle_mode="background")
    for _ in range(5):
        ledger.settle(ledger.reserve(CALL, "m", None, USD, {}), USD, {})
    assert ledger.pending_settlements == 5
    gated.gate.set()
    assert ledger.flush() == 0
    for _ in range(3):
        ledger.settle(ledger.reserve(CALL, "m", None, USD, {}), USD, {})
    ledger.close()
    assert ledger.pending_settlements == 0
    # After close, settling is synchronous: nothing can be left in a queue nobody drains.
    reservation = ledger.reserve(CALL, "m", None, USD, {})
    ledger.settle(reservation, USD, {})
    assert gated.sync_settles == 1
    assert totals(ledger) == (Decimal(9), Decimal(0), 0)


def test_reads_see_this_process_settlements(backend: Backend) -> None:
    ledger = Ledger(backend.make(), [shared_budget()], settle_mode="background")
    ledger.settle(ledger.reserve(CALL, "m", None, 2 * USD, {}), USD, {})
    assert totals(ledger) == (Decimal(1), Decimal(0), 0)
    assert [s.spent_usd for s in ledger.status("shared")] == [Decimal(1)]
    ledger.close()


def test_a_full_queue_settles_synchronously(memory_store: MemoryStore) -> None:
    gated = Gated(memory_store)
    ledger = Ledger(gated, [shared_budget()], settle_mode="background", settle_queue_size=2, settle_batch=1)
    ledger.settle(ledger.reserve(CALL, "m", None, USD, {}), USD, {})
    assert gated.entered.wait(30)
    for _ in range(5):
        ledger.settle(ledger.reserve(CALL, "m", None, USD, {}), USD, {})
    # One batch is in flight at the gate, two wait in the queue, the rest were settled by their callers.
    assert gated.sync_settles == 3
    assert ledger.pending_settlements == 3
    gated.gate.set()
    assert ledger.flush() == 0
    assert totals(ledger) == (Decimal(6), Decimal(0), 0)
    ledger.close()


def test_settle_and_release_whichever_comes_first_wins(backend: Backend) -> None:
    gated = Gated(backend.make())
    ledger = Ledger(gated, [shared_budget()], settle_mode="background")
    settled_first = ledger.reserve(CALL, "m", None, 3 * USD, {})
    released_first = ledger.reserve(CALL, "m", None, 3 * USD, {})
    ledger.settle(settled_first, 2 * USD, {})
    ledger.release(settled_first)  # no-op: the settlement is queued, and it will be applied
    ledger.release(released_first)  # applied at once, ahead of the queued settlement of another call
    ledger.settle(released_first, 2 * USD, {})  # no-op: nothing billed for a released call
    assert ledger.pending_settlements == 1
    assert (settled_first.state, released_first.state) == ("settled", "released")
    state = gated.inner.read([settled_first.lines[0].ref], now_ms=now_ms())[0]
    assert (state.held_usd, state.active) == (3 * USD, 1)  # only the queued settlement's hold remains
    gated.gate.set()
    assert ledger.flush() == 0
    assert totals(ledger) == (Decimal(2), Decimal(0), 0)
    ledger.close()


def test_a_crash_loses_only_the_queue(memory_store: MemoryStore, clock: FakeClock) -> None:
    gated = Gated(memory_store)
    crashed = Ledger(gated, [shared_budget("10")], settle_mode="background", reservation_ttl=60, clock=clock)
    reservation = crashed.reserve(CALL, "m", None, 8 * USD, {})
    crashed.settle(reservation, 5 * USD, {})
    # The process dies here: its queue is never applied. Another process sees the hold, conservatively...
    survivor = Ledger(memory_store, [shared_budget("10")], clock=clock)
    with pytest.raises(BudgetExceededError):
        survivor.reserve(CALL, "m", None, 3 * USD, {})
    # ...until the reservation's deadline gives the capacity back.
    clock.advance(61)
    assert totals(survivor) == (Decimal(0), Decimal(0), 0)
    survivor.settle(survivor.reserve(CALL, "m", None, 3 * USD, {}), 3 * USD, {})
    # Had the settlement reached the store late after all, it would be charged once, never twice.
    gated.gate.set()
    assert crashed.flush() == 0
    assert crashed.flush() == 0
    assert totals(survivor) == (Decimal(8), Decimal(0), 0)
    crashed.close()
    survivor.close()


def test_background_settle_rejects_bad_configuration() -> None:
    from bedrock_budget.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        Ledger("memory://", settle_mode="later")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Ledger("memory://", settle_mode="background", settle_batch=0)


# -- real Redis: redis-py's own retry, and interpreter exit ----------------------------------------------


class DropOneReply:
    """A loopback TCP proxy in front of Redis that closes the client connection instead of forwarding the
    reply to the first command mentioning ``needle``, so the command ran but its caller never hears."""

    def __init__(self, target: tuple[str, int], needle: bytes) -> None:
        self.target = target
        self.needle = needle
        self.dropped = 0
        self.seen = 0
        # Claimed by the first matching command on any connection: the settle thread and a flush can
        # each send a batch on their own connection at the same moment, and only one reply may be lost.
        self._claimed = False
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        self._server.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._pump, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _pump(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target)
        drop_next_reply = False
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([client, upstream], [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        if self.needle in data:
                            with self._lock:
                                self.seen += 1
                                if not self._claimed:
                                    self._claimed = drop_next_reply = True
                        upstream.sendall(data)
                    elif drop_next_reply:
                        with self._lock:
                            self.dropped += 1
                        return
                    else:
                        client.sendall(data)
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        for thread in self._threads:
            thread.join(5)


@pytest.mark.redis
def test_a_reply_lost_on_the_wire_is_retried_and_counted_once(redis_url: str) -> None:
    import redis

    from bedrock_budget.stores.redis import _SCRIPTS

    sha = redis.Redis.from_url(redis_url).script_load(_SCRIPTS["settle_many"])
    proxy = DropOneReply(("127.0.0.1", 6379), sha.encode() if isinstance(sha, str) else sha)
    prefix = f"bbs{uuid.uuid4().hex[:12]}:"
    try:
        store = from_uri(f"redis://127.0.0.1:{proxy.port}/0", prefix=prefix, retries=1)
        ledger = Ledger(store, [shared_budget()], settle_mode="background", settle_batch=100)
        for _ in range(20):
            ledger.settle(ledger.reserve(CALL, "m", None, 3 * USD, {}), 2 * USD, {})
        assert ledger.flush() == 0
        assert proxy.dropped == 1
        assert proxy.seen >= 2  # the batch that lost its reply went out again
        assert ledger.journal_depth == 0
        assert totals(ledger) == (Decimal(40), Decimal(0), 0)
        ledger.close()
        store.close()
    finally:
        proxy.close()
        delete_prefix(redis_url, prefix)


EXIT_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from bedrock_budget.budgets import Budget, Ledger
    from bedrock_budget.stores.redis import RedisStore

    class Slow(RedisStore):
        def settle_many(self, requests, *, now_ms):
            time.sleep(0.05)
            return super().settle_many(requests, now_ms=now_ms)

    store = Slow.from_uri(sys.argv[1], prefix=sys.argv[2])
    ledger = Ledger(store, [Budget("shared", window="lifetime", limit_usd="100")], settle_mode="background",
                    settle_batch=10)
    for _ in range(200):
        ledger.settle(ledger.reserve({}, "m", None, 1_000_000, {}), 700_000, {})
    print(ledger.pending_settlements)
    """
)


@pytest.mark.redis
def test_interpreter_exit_applies_the_queue(redis_url: str) -> None:
    prefix = f"bbs{uuid.uuid4().hex[:12]}:"
    try:
        done = subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT, redis_url, prefix],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert int(done.stdout) > 0  # the process exited with settlements still queued
        store = from_uri(redis_url, prefix=prefix)
        ledger = Ledger(store, [shared_budget()])
        assert totals(ledger) == (Decimal("0.14"), Decimal(0), 0)
        ledger.close()
        store.close()
    finally:
        delete_prefix(redis_url, prefix)
