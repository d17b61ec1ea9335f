"""Fixtures for budget definitions, windows and the ledger (memory store, injected clock)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from bedrock_budget.stores.memory import MemoryStore


class FakeClock:
    """A settable clock: ``clock()`` returns epoch seconds."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, iso: str) -> None:
        self.now = datetime.fromisoformat(iso).timestamp()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.fromisoformat("2025-06-10T12:00:00+00:00").timestamp())


@pytest.fixture
def memory_store() -> Iterator[MemoryStore]:
    store = MemoryStore()
    yield store
    store.close()
