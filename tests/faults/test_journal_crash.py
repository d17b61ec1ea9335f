"""A process killed with SIGKILL while settlements are still off the store — queued for a background batch,
or journalled during a store outage — loses none of them with ``journal_path``: the next process that
opens the same directory replays them, exactly once, even when two processes open it at the same time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.stores import from_uri
from bedrock_budget.testing import FakeBedrock, UsageSpec
from service_fixtures import kill_9, spawned_worker

from . import _crash_worker
from .conftest import HAIKU, NANOS_PER_USD, free_port

CALLS = 12


def _budgets() -> list[bb.Budget]:
    return [
        bb.Budget("cap", window="lifetime", limit_usd="10"),
        bb.Budget("per-user", scope={"user": "*"}, limit_usd="5"),
    ]


def _kill_after_calls(fake: FakeBedrock, store_uri: str, prefix: str, journal: Path, mode: str) -> int:
    """Runs the worker until its calls are made, kills it, and returns what its records say it spent."""
    args = (fake.endpoint_url, store_uri, prefix, str(journal), mode, HAIKU, CALLS)
    with spawned_worker(_crash_worker.settle_into_the_journal, *args) as (worker, ready):
        spent, calls = ready.get(timeout=60)
        assert calls == CALLS
        kill_9(worker)
        return int(spent)


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["background", "outage"])
def test_settlements_a_killed_process_had_not_sent_are_replayed_once_by_the_next(
    fake: FakeBedrock,
    redis_url: str,
    prefix: str,
    tmp_path: Path,
    ledgers: Callable[[Ledger], Ledger],
    mode: str,
) -> None:
    fake.set_usage("*", UsageSpec(input_tokens=150, output_tokens=40))
    journal = tmp_path / "journal"
    # In an outage the worker's store is a port nobody listens on; the store comes back at the real one.
    worker_store = redis_url if mode == "background" else f"redis://127.0.0.1:{free_port()}/0"
    recorded = _kill_after_calls(fake, worker_store, prefix, journal, mode)
    assert recorded > 0

    observer = ledgers(Ledger(from_uri(redis_url, prefix=prefix), _budgets()))
    before = observer.read("cap")
    assert before.spent_usd == 0  # nothing reached the store before the kill
    if mode == "background":
        assert before.active_reservations == CALLS  # the holds of the queued settlements
    assert len(list(journal.glob("*.journal"))) == 1

    # Two processes (here: two ledgers, each with its own open file and lock) open the journal at once.
    opened: list[Ledger] = []
    barrier = threading.Barrier(2)

    def open_journal() -> None:
        barrier.wait()
        opened.append(ledgers(Ledger(from_uri(redis_url, prefix=prefix), _budgets(), journal_path=journal)))

    threads = [threading.Thread(target=open_journal) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(opened) == 2
    for ledger in opened:
        assert ledger.flush() == 0
    after = observer.read("cap")
    assert after.spent_usd * NANOS_PER_USD == recorded
    assert after.reserved_usd == 0
    assert observer.read("per-user", {"user": "u1"}).spent_usd * NANOS_PER_USD == recorded
    assert after.models[HAIKU]["calls"] == CALLS

    # Closing with nothing pending deletes their files; a later process finds nothing to replay.
    for ledger in opened:
        ledger.close()
    assert list(journal.glob("*.journal")) == []
    later = ledgers(Ledger(from_uri(redis_url, prefix=prefix), _budgets(), journal_path=journal))
    assert later.read("cap").spent_usd * NANOS_PER_USD == recorded
    assert Decimal(recorded) / NANOS_PER_USD == later.read("cap").spent_usd


def test_wrap_takes_journal_path(fake: FakeBedrock, tmp_path: Path) -> None:
    import boto3

    client = bb.wrap(
        boto3.client(
            "bedrock-runtime",
            endpoint_url=fake.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        ),
        budgets=_budgets(),
        settle_mode="background",
        journal_path=tmp_path / "journal",
    )
    ledger: Ledger = client.bedrock_budget_meter.guard.ledger
    assert len(list((tmp_path / "journal").glob("*.journal"))) == 1
    ledger.close()
    assert list((tmp_path / "journal").glob("*.journal")) == []
