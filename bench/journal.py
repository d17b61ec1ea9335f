"""What the local journal file (``journal_path``) costs per call.

In ``settle_mode="background"`` every settlement is written to the journal file (one JSON line, one
``write``) on the caller's thread before it is queued, and the settle thread fsyncs the file once per batch
before sending the batch and writes one line marking the batch applied. Timed: a ledger reserve+settle on
the memory store and on Redis, with and without a journal, interleaved call by call so drift on a shared
machine hits every variant alike (medians), as ``bench/hot_path.py`` does; and, on the settle thread, the
fsync of one batch's records.

Run alone: ``.venv/bin/python bench/journal.py`` (the Redis rows need Redis on 127.0.0.1:6379).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable

from bedrock_budget.budgets import Ledger
from bedrock_budget.budgets.durable import JournalFile
from bedrock_budget.stores import Store, from_uri
from bedrock_budget.stores.memory import MemoryStore
from hot_path import ATTRIBUTION, BASE_MODEL, COST, TOKENS, budgets, interleaved
from journal_entries import sample_entry
from report import Row, median, render
from services import REDIS_URL, delete_prefix, redis_available, unique_prefix

BATCH = 64


def _reserve_settle(ledger: Ledger) -> Callable[[], None]:
    def call() -> None:
        ledger.settle(ledger.reserve(ATTRIBUTION, BASE_MODEL, "anthropic", COST, TOKENS), COST // 2, TOKENS)

    return call


def _fsync_per_batch(directory: str) -> float:
    """Microseconds to fsync one batch's records (BATCH lines) on the disk holding ``directory``."""
    journal = JournalFile(directory)
    samples: list[float] = []
    try:
        for round_ in range(60):
            entries = [sample_entry(f"{round_}-{index}") for index in range(BATCH)]
            for entry in entries:
                journal.add(entry)
            started = time.perf_counter()
            journal.sync()
            samples.append((time.perf_counter() - started) * 1e6)
            journal.done(entries)
    finally:
        journal.close()
    return median(samples[10:])


def _ledger(store: Store, journal: str | None = None) -> Ledger:
    return Ledger(store, budgets(), settle_mode="background", settle_linger=0.0, journal_path=journal)


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bb-journal-bench-") as directory:
        ledgers = {
            "memory": _ledger(MemoryStore()),
            "memory+journal": _ledger(MemoryStore(), os.path.join(directory, "memory")),
        }
        prefix = unique_prefix()
        if redis_available():
            ledgers["redis"] = _ledger(from_uri(REDIS_URL, prefix=prefix))
            ledgers["redis+journal"] = _ledger(
                from_uri(REDIS_URL, prefix=prefix), os.path.join(directory, "redis")
            )
        try:
            times = interleaved(
                {name: _reserve_settle(ledger) for name, ledger in ledgers.items()},
                iterations=600,
                ledgers=list(ledgers.values()),
            )
            fsync_us = _fsync_per_batch(os.path.join(directory, "fsync"))
        finally:
            for ledger in ledgers.values():
                ledger.close()
                ledger.store.close()
            if redis_available():
                delete_prefix(REDIS_URL, prefix)
    rows = [
        Row(
            "journal file: ledger reserve+settle, memory store, background",
            times["memory+journal"],
            "us",
            times["memory"],
            "no journal",
            note="the caller's cost: one JSON line written per settlement",
        )
    ]
    if "redis" in times:
        rows.append(
            Row(
                "journal file: ledger reserve+settle, Redis, background",
                times["redis+journal"],
                "us",
                times["redis"],
                "no journal",
                note="the caller's cost; the batch's fsync runs on the settle thread",
            )
        )
    rows.append(
        Row(
            f"journal file: fsync of one batch ({BATCH} settlements)",
            fsync_us,
            "us",
            note=f"on the settle thread, once per batch: {fsync_us / BATCH:.1f} us per settlement",
        )
    )
    return rows


if __name__ == "__main__":
    print(render(run()))
