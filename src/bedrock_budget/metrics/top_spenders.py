"""Who is spending: the top N values of each tracked key today, read from the spend ledger at scrape time.

A dashboard needs "the ten users spending most today" without a series per user on every metric, so the
exporter publishes at most ``top`` series per key, labelled with the rank and the value, and only for the
keys it is told to (``bedrock-budget serve-metrics --top-spenders N --top-keys user,app,model``). The
label set is bounded (keys x N); which values hold the ranks changes as spend does, so old value labels
disappear from the exposition. Values are attribution ids and model ids, never prompt text.

One read of the ledger's sorted sets per key per scrape, cached for ``cache_seconds`` like the budget
gauges, so many scrapers do not turn into store load. A failed read drops this collector's series for that
scrape (and is counted in ``bedrock_budget_top_spenders_errors``) rather than failing the whole scrape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from bedrock_budget.reporting.spend import SpendRow
    from bedrock_budget.stores.base import Store

__all__ = ["DEFAULT_TOP_KEYS", "TopSpendersCollector"]

log = logging.getLogger("bedrock_budget.metrics")

PREFIX: Final = "bedrock_budget_"
DEFAULT_TOP_KEYS: Final = ("user", "app", "model")
_NANOS_PER_USD: Final = 1_000_000_000


class TopSpendersCollector:
    """``bedrock_budget_top_spend_usd{key, rank, value}`` and ``bedrock_budget_top_spend_calls`` for the
    current UTC day, the ``top`` highest-spending values of each key in ``keys``."""

    def __init__(
        self,
        store: Store,
        *,
        top: int,
        keys: Sequence[str] = DEFAULT_TOP_KEYS,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if top < 1:
            raise ValueError(f"top must be at least 1, not {top}")
        if not keys:
            raise ValueError("keys must name at least one tracked key")
        self.store = store
        self.top = top
        self.keys = tuple(keys)
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._cached: tuple[float, dict[str, list[SpendRow]]] | None = None
        self.errors = 0

    def _read(self) -> dict[str, list[SpendRow]] | None:
        from bedrock_budget.reporting.spend import spend

        now = self._clock()
        if self._cached is not None and now - self._cached[0] < self.cache_seconds:
            return self._cached[1]
        try:
            rows = {key: spend(self.store, by=key, granularity="day", top=self.top) for key in self.keys}
        except Exception:  # a scrape must not fail because the store did
            self.errors += 1
            log.warning("reading the top spenders from %s failed", self.store.name, exc_info=True)
            return None
        self._cached = (now, rows)
        return rows

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        rows = self._read()
        errors = CounterMetricFamily(
            PREFIX + "top_spenders_errors",
            "Scrapes whose read of the spend ledger's top spenders failed.",
        )
        errors.add_metric([], self.errors)
        if rows is not None:
            labels = ["key", "rank", "value"]
            usd = GaugeMetricFamily(
                PREFIX + "top_spend_usd",
                "Spend today (UTC) of the highest-spending values of a tracked key, by rank (1 = most).",
                labels=labels,
            )
            calls = GaugeMetricFamily(
                PREFIX + "top_spend_calls",
                "Calls today (UTC) of the highest-spending values of a tracked key, by rank.",
                labels=labels,
            )
            for key, ranked in rows.items():
                for rank, row in enumerate(ranked, start=1):
                    value = "|".join(row.values)
                    usd.add_metric([key, str(rank), value], row.cost_nanos / _NANOS_PER_USD)
                    calls.add_metric([key, str(rank), value], row.calls)
            yield usd
            yield calls
        yield errors

    def describe(self) -> Iterator[Metric]:
        # Nothing at registration: the first scrape reads the store, never the registering thread.
        return iter(())
