"""Reservation ids: the store settles each id once, so no two calls may ever share one — across threads,
across processes, and between a process and the children it forks."""

from __future__ import annotations

import os
import re
import threading
import warnings

from bedrock_budget.budgets import Ledger
from bedrock_budget.budgets.ledger_core import ReservationIds
from bedrock_budget.stores import MemoryStore

THREADS = 8
PER_THREAD = 20_000


def test_ids_are_unique_across_threads() -> None:
    ids = ReservationIds()
    seen: list[list[str]] = [[] for _ in range(THREADS)]
    start = threading.Barrier(THREADS)

    def draw(into: list[str]) -> None:
        start.wait()
        into.extend(ids() for _ in range(PER_THREAD))

    workers = [threading.Thread(target=draw, args=(into,)) for into in seen]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    drawn = [rid for into in seen for rid in into]
    assert len(drawn) == THREADS * PER_THREAD
    assert len(set(drawn)) == len(drawn)


def test_two_generators_share_no_prefix() -> None:
    # Two processes are two generators: each draws its own 96 random bits.
    first, second = ReservationIds()(), ReservationIds()()
    assert first[:24] != second[:24]
    assert re.fullmatch(r"[0-9a-f]{25,}", first)


def test_a_forked_child_draws_ids_of_its_own() -> None:
    ids = ReservationIds()
    before = [ids() for _ in range(3)]
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process with threads (pytest's own); the child only writes to
        # a pipe and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: the same counter position as the parent, so only a new prefix keeps ids apart
        os.close(read)
        os.write(write, " ".join(ids() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    parent = [ids() for _ in range(3)]
    assert len(child) == 3
    assert not set(child) & set(parent + before)
    assert {rid[:24] for rid in child} != {rid[:24] for rid in parent}


def test_every_reservation_of_a_ledger_has_its_own_id() -> None:
    ledger = Ledger(MemoryStore())
    try:
        reservations = [ledger.reserve({"user": "u"}, "model", None, 1, {}) for _ in range(1_000)]
        assert len({r.id for r in reservations}) == 1_000
    finally:
        ledger.close()
