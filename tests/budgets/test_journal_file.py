"""The local journal file (``Ledger(journal_path=...)``, ``budgets.durable``): what it records, what a
takeover replays, and what it leaves alone. Killed processes are in tests/faults/test_journal_crash.py."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.budgets.durable import JournalFile, decode, encode, journal_key, pending_in
from bedrock_budget.errors import ConfigurationError, StoreUnavailableError
from bedrock_budget.stores import CounterRef, Spend
from bedrock_budget.stores.base import Mark, SettleRequest, call_tallies
from bedrock_budget.stores.memory import MemoryStore

from .conftest import FakeClock

USD = 1_000_000_000
REF = CounterRef(
    budget="cap", scope=(("user", 'ü/中文 "x"'),), window="lifetime", timezone="UTC", start=0, end=None
)


def entry(rid: str, usd: int, *, charge: bool = True) -> SettleRequest:
    return SettleRequest(
        reservation_id=rid,
        spends=(Spend(REF, usd, 7000, (Mark("usd", 80, 800),), epoch="e1"),),
        tallies=call_tallies("anthropic.claude-3-5-haiku-20241022-v1:0", usd, {"input": 5, "output": 2}),
        charge=charge,
    )


def budgets() -> list[Budget]:
    return [Budget("cap", window="lifetime", scope={"user": "*"}, limit_usd="10")]


def leave_behind(directory: Path, name: str, lines: list[dict[str, object]], torn: bytes = b"") -> Path:
    """A file as a killed process leaves it (nobody holds its lock)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"".join(json.dumps(line).encode() + b"\n" for line in lines) + torn)
    return path


def test_entries_round_trip_exactly() -> None:
    original = SettleRequest(
        reservation_id="lease-1",
        spends=entry("x", 5).spends,
        tallies=MappingProxyType({"m/1": MappingProxyType({"calls": 2, "cost": 12})}),
        charge=False,
    )
    assert decode(json.loads(json.dumps(encode(original)))) == original
    assert decode(json.loads(json.dumps(encode(entry("r", 2**62))))) == entry("r", 2**62)


def test_a_takeover_replays_pending_settlements_once_and_skips_applied_and_torn_ones(
    tmp_path: Path, clock: FakeClock
) -> None:
    journal = tmp_path / "j"
    leave_behind(
        journal,
        "111-dead.journal",
        [{"a": encode(entry("a", USD))}, {"a": encode(entry("b", 2 * USD))}, {"d": ["a"]}],
        torn=b'{"a": {"id": "c", "spe',
    )
    store = MemoryStore()
    first = Ledger(store, budgets(), journal_path=journal, clock=clock)
    assert first.read("cap", {"user": REF.scope[0][1]}).spent_usd == Decimal(2)  # b only
    assert first.journal_depth == 0
    assert not (journal / "111-dead.journal").exists()
    second = Ledger(store, budgets(), journal_path=journal, clock=clock)
    assert second.read("cap", {"user": REF.scope[0][1]}).spent_usd == Decimal(2)
    first.close()
    second.close()
    assert list(journal.iterdir()) == []


def test_a_takeover_killed_half_way_counts_each_settlement_once(tmp_path: Path, clock: FakeClock) -> None:
    # The new owner had copied the settlements into its file but was killed before deleting the old one.
    journal = tmp_path / "j"
    lines: list[dict[str, object]] = [{"a": encode(entry("a", USD))}, {"a": encode(entry("b", USD))}]
    leave_behind(journal, "111-dead.journal", lines)
    leave_behind(journal, "222-dead.journal", lines)
    ledger = Ledger(MemoryStore(), budgets(), journal_path=journal, clock=clock)
    assert ledger.read("cap", {"user": REF.scope[0][1]}).spent_usd == Decimal(2)
    ledger.close()


def test_a_file_whose_owner_is_alive_is_left_alone(tmp_path: Path, clock: FakeClock) -> None:
    journal = tmp_path / "j"
    path = leave_behind(journal, "333-alive.journal", [{"a": encode(entry("a", USD))}])
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        ledger = Ledger(MemoryStore(), budgets(), journal_path=journal, clock=clock)
        assert ledger.read("cap", {"user": REF.scope[0][1]}).spent_usd == 0
        assert path.exists()
        ledger.close()
    finally:
        os.close(fd)


def test_background_settlements_are_on_disk_until_applied(tmp_path: Path, clock: FakeClock) -> None:
    ledger = Ledger(
        MemoryStore(),
        budgets(),
        journal_path=tmp_path,
        clock=clock,
        settle_mode="background",
        settle_linger=60.0,
        settle_batch=1000,
    )
    assert ledger._file is not None
    own = ledger._file.path
    calls = [ledger.reserve({"user": "u1"}, "m", None, USD // 10, {"input": 1}) for _ in range(3)]
    for call in calls:
        ledger.settle(call, USD // 20, {"input": 1})
    assert [e.reservation_id for e in _pending(own)] == [c.id for c in calls]
    assert ledger.flush() == 0
    assert _pending(own) == []
    assert ledger.read("cap", {"user": "u1"}).spent_usd == Decimal("0.15")
    ledger.close()
    assert not own.exists()


def test_an_unwritable_journal_directory_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigurationError, match="journal directory"):
        Ledger(MemoryStore(), budgets(), journal_path=blocker / "j")


def test_nothing_is_compacted_while_something_is_pending(tmp_path: Path) -> None:
    journal = JournalFile(tmp_path, compact_bytes=1)
    journal.add(entry("a", 1))
    journal.add(entry("b", 1))
    journal.done([entry("a", 1)])
    assert [e.reservation_id for e in _pending(journal.path)] == ["b"]
    journal.done([entry("b", 1)])
    assert journal.path.stat().st_size == 0  # nothing pending: history truncated
    journal.close()
    assert not journal.path.exists()


def test_leases_taken_together_keep_their_own_settlements_through_a_takeover(
    tmp_path: Path, clock: FakeClock
) -> None:
    # One lease request takes a lease on each counter a call needs, under one reservation id; each lease
    # settles its own counter. Closed while the store is down, both must survive in the file.
    store = MemoryStore()
    two = [
        Budget("org", window="lifetime", limit_usd="10"),
        Budget("team", window="lifetime", scope={"team": "*"}, limit_usd="10"),
    ]
    ledger = Ledger(store, two, journal_path=tmp_path, clock=clock, lease_fraction=0.5)
    for _ in range(3):
        ledger.settle(ledger.reserve({"team": "t"}, "m", None, USD // 100, {"input": 1}), USD // 200, {})
    assert ledger.leases_live == 2
    settle, settle_many = store.settle, store.settle_many

    def down(*args: object, **kwargs: object) -> object:
        raise StoreUnavailableError("memory://", "down")

    store.settle = down  # type: ignore[method-assign]
    store.settle_many = down  # type: ignore[method-assign]
    assert ledger.flush() == 3  # both leases' settlements, and their calls' spend-ledger sum
    assert ledger._file is not None
    own = ledger._file.path
    pending = _pending(own)
    assert sorted(e.spends[0].ref.budget for e in pending if e.spends) == ["org", "team"]
    assert [e.track.calls for e in pending if e.track is not None] == [3]
    ledger.close()  # the store is still down: the file stays for the next process
    assert own.exists()
    store.settle, store.settle_many = settle, settle_many  # type: ignore[method-assign]
    successor = Ledger(store, two, journal_path=tmp_path, clock=clock)
    assert successor.flush() == 0
    (tracked,) = bb.spend(store, by=(), now=clock())
    assert (tracked.calls, tracked.cost_nanos) == (3, 3 * (USD // 200))
    assert (
        successor.read("org").spent_usd == successor.read("team", {"team": "t"}).spent_usd == Decimal("0.015")
    )
    successor.close()
    assert list(tmp_path.iterdir()) == []


def test_an_older_version_taking_a_file_over_replays_only_what_is_pending(tmp_path: Path) -> None:
    # An older version (a rollback, a rolling deploy) keyed settlements by reservation id alone, in "a"
    # records, and removed them by the ids in "d" records. It must not find applied settlements pending.
    org = Spend(REF, USD, 0)
    team = Spend(dataclasses.replace(REF, budget="team"), USD, 0)
    lease_org, lease_team = SettleRequest("lease-1", (org,)), SettleRequest("lease-1", (team,))
    journal = JournalFile(tmp_path)
    for request in (lease_org, lease_team, entry("call-1", 1), entry("call-2", 2)):
        journal.add(request)
    journal.done([lease_org])  # lease-1 still has a pending settlement: its id alone must not be marked
    journal.done([entry("call-1", 1)])

    def older_reader() -> set[str]:
        pending: dict[str, object] = {}
        for line in journal.path.read_bytes().splitlines():
            record = json.loads(line)
            if "a" in record:
                pending.setdefault(record["a"]["id"], record)
            else:
                for rid in record["d"]:
                    pending.pop(rid, None)
        return set(pending)

    assert older_reader() == {"lease-1", "call-2"}
    assert sorted(journal_key(e) for e in _pending(journal.path)) == sorted(
        journal_key(e) for e in (lease_team, entry("call-2", 2))
    )
    journal.done([lease_team, entry("call-2", 2)])
    assert older_reader() == set()
    assert _pending(journal.path) == []
    journal.close()


def _pending(path: Path) -> list[SettleRequest]:
    with path.open("rb") as stream:
        return pending_in(stream)


FIXTURES = Path(__file__).parent / "fixtures"


def test_a_file_written_before_settlements_carried_tallies_still_replays(
    tmp_path: Path, clock: FakeClock
) -> None:
    # Written by the previous record format: a call's settlement named its model and raw token counts
    # (its tallies were worked out by the store), a lease's carried its tallies; call-0 was applied.
    journal = tmp_path / "j"
    leave_behind(journal, "444-dead.journal", [])
    (journal / "444-dead.journal").write_bytes((FIXTURES / "before-tallies.journal").read_bytes())
    pending = _pending(journal / "444-dead.journal")
    assert [p.reservation_id for p in pending] == ["call-1", "lease-1"]
    assert [(p.charge, p.cost_nanos) for p in pending] == [(True, 2 * USD), (False, 3 * USD)]
    assert pending[0].tallies == {
        "anthropic.claude-3-5-haiku-20241022-v1:0": {"calls": 1, "cost": 2 * USD, "input": 5, "output": 2}
    }
    ledger = Ledger(MemoryStore(), budgets(), journal_path=journal, clock=clock)
    status = ledger.read("cap", {"user": "u-7"})
    assert status.spent_usd == Decimal(5)  # call-1 and lease-1, not the applied call-0
    assert {model: dict(counts) for model, counts in status.models.items()} == {
        "anthropic.claude-3-5-haiku-20241022-v1:0": {"calls": 1, "cost": 2 * USD, "input": 5, "output": 2},
        "m-a": {"calls": 2, "cost": 2 * USD, "input": 9},
        "m-b": {"calls": 1, "cost": USD},
    }
    assert ledger.journal_depth == 0
    ledger.close()
    assert list(journal.iterdir()) == []
