"""A bounded local journal of spend the store could not take.

When a settlement fails (store down, timeout), the settlement is kept here and replayed once the store
answers again. Replays are idempotent in the store (a settled reservation id is never charged twice), so
an entry whose first attempt did reach the store before the connection broke is harmless. When the
journal is full, new entries are dropped: loudly, with an error log line, a counter and the dropped
amount, never silently.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from bedrock_budget.stores.base import Spend

log = logging.getLogger("bedrock_budget.journal")


@dataclass(frozen=True, slots=True)
class JournalEntry:
    reservation_id: str
    spends: tuple[Spend, ...]
    model: str
    tokens: Mapping[str, int]
    charge: bool
    cost_nanos: int


class Journal:
    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 0:
            raise ValueError("journal capacity must not be negative")
        self.capacity = capacity
        self._entries: deque[JournalEntry] = deque()
        self._lock = threading.Lock()
        self.dropped = 0
        self.dropped_nanos = 0
        self.replayed = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def full(self) -> bool:
        return len(self._entries) >= self.capacity

    def append(self, entry: JournalEntry) -> bool:
        with self._lock:
            if len(self._entries) < self.capacity:
                self._entries.append(entry)
                return True
            self.dropped += 1
            self.dropped_nanos += entry.cost_nanos
        log.error(
            "budget store unavailable and the spend journal is full (%d entries): spend of reservation %s "
            "(%d nano-USD) could not be recorded; %d settlements lost so far",
            self.capacity,
            entry.reservation_id,
            entry.cost_nanos,
            self.dropped,
        )
        return False

    def peek(self) -> JournalEntry | None:
        with self._lock:
            return self._entries[0] if self._entries else None

    def pop(self, entry: JournalEntry) -> None:
        with self._lock:
            if self._entries and self._entries[0] is entry:
                self._entries.popleft()
                self.replayed += 1
