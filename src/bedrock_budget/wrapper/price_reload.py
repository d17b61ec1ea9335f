"""Reload layered price files when they change (``wrap(prices=[...], prices_reload_seconds=...)``).

A long-running service picks up a layer rewritten by ``bedrock-budget prices update`` without a redeploy.
On the call path this costs one clock read per call, plus a ``stat`` of the files at most every
``interval`` seconds; a change is loaded on a background thread, and the new table replaces the old one
with a single attribute assignment on the meter and its budget guard (atomic for readers: a call prices
wholly with the old table or wholly with the new). A file that does not load (half written, invalid) keeps
the old prices, is logged once, and is tried again when it changes again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from bedrock_budget.errors import BedrockBudgetError, ConfigurationError, shown
from bedrock_budget.pricing.schema import price_files_in
from bedrock_budget.pricing.table import PriceTable, load_price_table

logger = logging.getLogger(__name__)

_Signature = tuple[tuple[str, int, int], ...]


def reload_interval(value: object) -> float:
    """``prices_reload_seconds`` checked: a finite number of seconds >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(
            f"prices_reload_seconds must be a number of seconds >= 0, got {shown(value)}"
        )
    return float(value)


class PriceReloader:
    """Watches price files and swaps a freshly loaded :class:`PriceTable` into ``targets`` (objects with a
    ``price_table`` attribute: the meter and its guard) when one changes."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        interval: float,
        discount_percent: str | Decimal | None,
        table: PriceTable,
    ) -> None:
        self.paths = tuple(Path(path) for path in paths)
        self.interval = interval
        self.discount_percent = discount_percent
        self.table = table
        self.targets: list[Any] = []
        self.reloads = 0
        self.failures = 0
        self._signature = self._current_signature()
        self._next_check = time.monotonic() + interval
        self._lock = threading.Lock()
        self._loading: threading.Thread | None = None

    def check(self) -> None:
        """Called on every metered call: cheap unless ``interval`` has passed."""
        now = time.monotonic()
        if now < self._next_check or not self._lock.acquire(blocking=False):
            return
        try:
            if now < self._next_check or self._loading is not None:
                return
            self._next_check = now + self.interval
            signature = self._current_signature()
            if signature == self._signature:
                return
            self._signature = signature
            self._loading = threading.Thread(
                target=self._load, args=(signature,), name="bedrock-budget-price-reload", daemon=True
            )
            self._loading.start()
        finally:
            self._lock.release()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a reload in progress (tests, and a clean shutdown)."""
        thread = self._loading
        if thread is not None:
            thread.join(timeout)

    def _load(self, signature: _Signature) -> None:
        try:
            table = load_price_table(extra_files=self.paths, discount_percent=self.discount_percent)
        except (BedrockBudgetError, OSError) as exc:
            self.failures += 1
            logger.warning("price files changed but did not load; keeping the previous prices: %s", exc)
        else:
            self.table = table
            for target in self.targets:
                target.price_table = table
            self.reloads += 1
            logger.info("price files changed; reloaded %d models", len(table.models))
        finally:
            with self._lock:
                self._loading = None

    def _current_signature(self) -> _Signature:
        found: list[tuple[str, int, int]] = []
        for path in self.paths:
            try:
                files = price_files_in(path) if path.is_dir() else [path]
            except (OSError, BedrockBudgetError):
                files = [path]
            for file in files:
                try:
                    stat = file.stat()
                except OSError:
                    found.append((str(file), -1, -1))
                else:
                    found.append((str(file), stat.st_mtime_ns, stat.st_size))
        return tuple(found)
