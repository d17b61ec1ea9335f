"""The journal file on async clients (``journal_path``): an aiobotocore process killed with SIGKILL while its
settlements are off the store (queued, in a batch the store has not answered, or journalled during an
outage) loses none of them. The next process opening the directory, sync or async, replays them exactly
once, even when two open it at once; the file is the sync ledger's, so each kind replays the other's. The
fsync and the takeover of dead processes' files never run on the loop."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from _async_budget_worker import IN_FLIGHT_LINGER, journal_budgets, replay_journal, settle_into_the_journal
from test_budgets import ROOMY, ledger_of, spent_by_records, state

from backends import delete_prefix
from bedrock_budget.budgets import AsyncLedger, Ledger
from bedrock_budget.budgets.async_ledger import ASYNC_SETTLE_BATCH
from bedrock_budget.budgets.durable import JournalFile, pending_in
from bedrock_budget.budgets.status import BudgetStatus
from bedrock_budget.stores import from_uri
from bedrock_budget.testing import FakeBedrock, UsageSpec
from conftest import HAIKU, Records, converse, run, wrapped
from faults.test_journal_crash import CALLS, _kill_after_calls
from polling import wait_until
from service_fixtures import RedisServer, free_port, kill_9, spawned_worker

NANOS_PER_USD = 10**9


def _prefix() -> str:
    return f"t-async2-{uuid.uuid4().hex[:12]}:"


def _files(journal: Path) -> list[Path]:
    return sorted(journal.glob("*.journal"))


def _read(
    store_uri: str, prefix: str, budget: str = "cap", scope: dict[str, str] | None = None
) -> BudgetStatus:
    """What the store holds for one of the workers' budgets, read by a sync ledger of its own."""
    store = from_uri(store_uri, prefix=prefix)
    ledger = Ledger(store, journal_budgets())
    try:
        return ledger.read(budget, scope)
    finally:
        ledger.close()
        store.close()


def _nanos(status: BudgetStatus) -> int:
    spent = status.spent_usd * NANOS_PER_USD
    assert spent == int(spent)
    return int(spent)


def _kill_async_worker(fake: FakeBedrock, store_uri: str, prefix: str, journal: Path, mode: str) -> list[int]:
    """Runs the async worker until its calls are made, kills it, and returns what each call's record cost."""
    args = (fake.endpoint_url, store_uri, prefix, str(journal), mode, HAIKU, CALLS)
    with spawned_worker(settle_into_the_journal, *args) as (worker, ready):
        costs: list[int] = ready.get(timeout=60)
        assert len(costs) == CALLS
        kill_9(worker)
    return costs


def _replay_in_this_process(kind: str, store_uri: str, prefix: str, journal: Path) -> int:
    """Open the journal with a ledger of ``kind``, flush it (nothing may be left) and close it; returns how
    many settlements it replayed."""
    if kind == "sync":
        store = from_uri(store_uri, prefix=prefix)
        ledger = Ledger(store, journal_budgets(), journal_path=journal)
        assert ledger.flush() == 0
        ledger.close()
        store.close()
        return ledger.journal_replayed

    async def replay() -> int:
        ledger = AsyncLedger(
            store_uri, journal_budgets(), journal_path=journal, store_options={"prefix": prefix}
        )
        assert await ledger.flush() == 0
        await ledger.aclose()
        return ledger.journal_replayed

    return int(asyncio.run(replay()))


def _assert_spend_is(store_uri: str, prefix: str, nanos: int, calls: int) -> None:
    cap = _read(store_uri, prefix)
    assert _nanos(cap) == nanos  # to the nano-dollar: nothing lost, nothing twice
    assert cap.reserved_usd == 0
    assert cap.active_reservations == 0
    assert cap.models[HAIKU]["calls"] == calls
    assert _nanos(_read(store_uri, prefix, "per-user", {"user": "u1"})) == nanos


# -- a batch in flight ------------------------------------------------------------------------------------


@contextmanager
def stoppable_redis(directory: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, which the test may stop (SIGSTOP) to make the store hang, with the
    budget scripts loaded as on a store in use: on a fresh server the batch caught in flight would be
    refused (NOSCRIPT) when the server reads it, instead of applied."""
    server = RedisServer(directory, free_port())
    server.start()
    try:
        store = from_uri(f"redis://127.0.0.1:{server.port}/0", prefix="warm-up:")
        with Ledger(store, journal_budgets(), settle_mode="background") as ledger:
            ledger.settle(ledger.reserve({"user": "u1"}, HAIKU, "anthropic", 1000, {"input": 1}), 1000, {})
        store.close()
        yield server
    finally:
        if server.process is not None:
            server.process.send_signal(signal.SIGCONT)
        server.stop()


def unread_bytes(port: int) -> int:
    """Bytes the server on loopback ``port`` has been sent and not read yet (Linux, ``/proc/net/tcp``)."""
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, connection_state, queues = fields[1], fields[3], fields[4]
        if int(local.split(":")[1], 16) == port and connection_state == "01":  # established
            total += int(queues.split(":")[1], 16)
    return total


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("replayer", ["sync", "async"])
def test_a_process_killed_with_a_batch_in_flight_loses_nothing_and_charges_nothing_twice(
    fake: FakeBedrock, redis_server_binary: str, tmp_path: Path, replayer: str
) -> None:
    fake.set_usage("*", UsageSpec(input_tokens=150, output_tokens=40))
    journal, prefix = tmp_path / "journal", _prefix()
    with stoppable_redis(tmp_path) as server:
        assert server.process is not None
        uri = f"redis://127.0.0.1:{server.port}/0"
        args = (fake.endpoint_url, uri, prefix, str(journal), "in-flight", HAIKU, CALLS)
        with spawned_worker(settle_into_the_journal, *args) as (worker, ready):
            costs: list[int] = ready.get(timeout=60)
            assert len(costs) == CALLS
            # The first batch lingers IN_FLIGHT_LINGER seconds: the store has none of it yet when it hangs.
            assert _nanos(_read(uri, prefix)) == 0
            server.process.send_signal(signal.SIGSTOP)
            wait_until(
                lambda: unread_bytes(server.port) > 0,
                IN_FLIGHT_LINGER + 30,
                message="the first settlement batch to reach the stopped store",
            )
            kill_9(worker)  # its first batch sent and unanswered, the rest still queued
        server.process.send_signal(signal.SIGCONT)

        # The store reads the batch the dead process sent and applies it: the first settlements only.
        first = sum(costs[:ASYNC_SETTLE_BATCH])
        wait_until(lambda: _nanos(_read(uri, prefix)) == first, 30, message="the batch in flight to apply")
        assert _read(uri, prefix).active_reservations == CALLS - ASYNC_SETTLE_BATCH
        (left,) = _files(journal)
        with left.open("rb") as lines:
            assert len(pending_in(lines)) == CALLS  # every settlement on disk, none marked applied

        # The next process replays all of them: those already applied change nothing.
        assert _replay_in_this_process(replayer, uri, prefix, journal) == CALLS
        _assert_spend_is(uri, prefix, sum(costs), CALLS)
        assert _files(journal) == []  # closed with nothing pending: its file is gone
        assert _replay_in_this_process(replayer, uri, prefix, journal) == 0
        _assert_spend_is(uri, prefix, sum(costs), CALLS)


# -- two processes opening the journal at once ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "store",
    [pytest.param("redis", marks=pytest.mark.redis), pytest.param("cluster", marks=pytest.mark.cluster)],
)
def test_two_processes_opening_the_journal_at_once_replay_each_file_once(
    fake: FakeBedrock, request: pytest.FixtureRequest, tmp_path: Path, store: str
) -> None:
    fake.set_usage("*", UsageSpec(input_tokens=150, output_tokens=40))
    uri = request.getfixturevalue("redis_url" if store == "redis" else "cluster_url")
    journal, prefix = tmp_path / "journal", _prefix()
    try:
        # Two killed processes leave a file each: an async one and a sync one (tests/faults' worker). Each
        # in a directory of its own (the second would replay the first's file), then both in one.
        async_costs = _kill_async_worker(fake, uri, prefix, tmp_path / "a", "background")
        sync_spent = _kill_after_calls(fake, uri, prefix, tmp_path / "s", "background")
        journal.mkdir()
        for left in (*_files(tmp_path / "a"), *_files(tmp_path / "s")):
            left.rename(journal / left.name)
        before = _read(uri, prefix)
        assert before.spent_usd == 0
        assert before.active_reservations == 2 * CALLS  # the holds of the queued settlements
        assert len(_files(journal)) == 2

        # A sync and an async process open the directory at the same moment.
        start = multiprocessing.get_context("spawn").Barrier(2)
        with ExitStack() as stack:
            replayers = [
                stack.enter_context(spawned_worker(replay_journal, kind, uri, prefix, str(journal), start))
                for kind in ("sync", "async")
            ]
            outcomes = [ready.get(timeout=120) for _, ready in replayers]
            for worker, _ in replayers:
                worker.join(30)
                assert worker.exitcode == 0
        assert sorted(kind for kind, _, _ in outcomes) == ["async", "sync"]
        assert [left for _, left, _ in outcomes] == [0, 0]
        # Each file was taken over by one of them: no settlement was replayed twice.
        assert sum(replayed for _, _, replayed in outcomes) == 2 * CALLS
        _assert_spend_is(uri, prefix, sum(async_costs) + sync_spent, 2 * CALLS)
        assert _files(journal) == []
    finally:
        delete_prefix(uri, prefix)


# -- an outage --------------------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("worker", ["async", "sync"])
def test_outage_spend_of_a_killed_process_is_replayed_once_by_an_async_process(
    fake: FakeBedrock, redis_url: str, tmp_path: Path, worker: str
) -> None:
    fake.set_usage("*", UsageSpec(input_tokens=150, output_tokens=40))
    journal, prefix = tmp_path / "journal", _prefix()
    dead = f"redis://127.0.0.1:{free_port()}/0"  # the worker's store: nobody listens; it comes back here
    try:
        if worker == "async":
            recorded = sum(_kill_async_worker(fake, dead, prefix, journal, "outage"))
        else:
            recorded = _kill_after_calls(fake, dead, prefix, journal, "outage")
        assert recorded > 0
        (left,) = _files(journal)
        with left.open("rb") as lines:
            pending = pending_in(lines)
        # One settlement per call (a sync ledger settling at once sends its spend-ledger entry apart).
        assert len([entry for entry in pending if entry.spends]) == CALLS
        assert _nanos(_read(redis_url, prefix)) == 0

        assert _replay_in_this_process("async", redis_url, prefix, journal) == len(pending)
        _assert_spend_is(redis_url, prefix, recorded, CALLS)
        assert _files(journal) == []
    finally:
        delete_prefix(redis_url, prefix)


# -- in one process: the file's life, and what runs on the loop ---------------------------------------------


def _threads_of(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Record the thread each call of ``owner.name`` runs on."""
    threads: list[int] = []
    original: Callable[..., Any] = getattr(owner, name)

    def recorded(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, recorded)
    return threads


def test_wrap_takes_journal_path_and_keeps_the_files_work_off_the_loop(
    fake: FakeBedrock, records: Records, store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=12, output_tokens=30))
    journal = tmp_path / "journal"
    dead = "redis://127.0.0.1:1/0?connect_timeout=0.2&socket_timeout=0.2&retries=0"
    fsyncs = _threads_of(monkeypatch, os, "fsync")
    takeovers = _threads_of(monkeypatch, JournalFile, "take_over")
    offline = Records()

    loop_threads: list[int] = []

    async def main() -> None:
        loop_threads.append(threading.get_ident())
        # A client whose store never answered closes with its spend still in its file, for the next process.
        async with wrapped(
            fake, offline, store=dead, budgets=[ROOMY], on_store_error="allow", journal_path=journal
        ) as client:
            ledger = ledger_of(client)
            for _ in range(3):
                await converse(client)
            assert await ledger.flush() == 3
            await ledger.aclose()
        (kept,) = _files(journal)
        with kept.open("rb") as lines:
            assert len(pending_in(lines)) == 3

        async with wrapped(fake, records, store=store_uri, budgets=[ROOMY], journal_path=journal) as client:
            ledger = ledger_of(client)
            await asyncio.gather(*(converse(client) for _ in range(20)))
            assert await ledger.flush() == 0
            assert ledger.journal_replayed == 3  # the file left behind, taken over and replayed
            found = await state(ledger, ROOMY)
            assert found.spent_usd == spent_by_records(records) + spent_by_records(offline)
            assert (found.held_usd, found.active) == (0, 0)
            (own,) = _files(journal)
            lines = own.read_bytes().splitlines()
            added = [json.loads(line) for line in lines if "a" in json.loads(line)]
            assert len(added) == 3 + 20  # every settlement was written before it was queued
            assert pending_in(lines) == []  # and marked applied once the store took it
            await ledger.aclose()
        assert _files(journal) == []  # closed with nothing pending: deleted

    run(main())
    (loop_thread,) = loop_threads
    assert len(takeovers) == 2  # one per ledger, each in a worker thread
    assert loop_thread not in takeovers
    assert fsyncs  # once per batch at least, never on the loop
    assert loop_thread not in fsyncs
    assert [record.outcome for record in offline + records] == ["ok"] * 23
