"""Budget gauges as OpenTelemetry observable instruments, read from the budget store when collected.

They show what :class:`~bedrock_budget.metrics.BudgetCollector` shows, from the same reader (a cached
read, ``None`` while the store is down) and the same choice of values::

    BudgetGauges(StoreBudgetSource(store, budgets))

One series per budget (attribute ``bedrock_budget.budget``); a wildcard budget shows its most used scope
value, and ``bedrock_budget.budget.counters`` says how many there are.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Final

import bedrock_budget.otel.names as names
from bedrock_budget.metrics.state_reader import (
    BudgetState,
    BudgetStateReader,
    BudgetStateSource,
    GaugeKind,
    GaugePoint,
    Unit,
    gauge_points,
)
from bedrock_budget.otel.api import get_meter

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

# (gauge kind, unit of the budget or None) → (instrument name, instrument unit, description).
_INSTRUMENTS: Final[dict[tuple[GaugeKind, Unit | None], tuple[str, str, str]]] = {
    ("limit", "usd"): (names.BUDGET_LIMIT, names.UNIT_USD, "Budget limit for the current window."),
    ("spent", "usd"): (
        names.BUDGET_SPENT, names.UNIT_USD, "Spent in the current window (worst scope for wildcard budgets).",
    ),
    ("reserved", "usd"): (names.BUDGET_RESERVED, names.UNIT_USD, "Held by calls in flight."),
    ("limit", "tokens"): (
        names.BUDGET_TOKEN_LIMIT, names.UNIT_TOKEN, "Budget limit in weighted tokens for the current window.",
    ),
    ("spent", "tokens"): (
        names.BUDGET_TOKENS_SPENT, names.UNIT_TOKEN, "Weighted tokens spent in the current window.",
    ),
    ("reserved", "tokens"): (
        names.BUDGET_TOKENS_RESERVED, names.UNIT_TOKEN, "Weighted tokens held by calls in flight.",
    ),
    ("limit", "requests"): (
        names.BUDGET_REQUEST_LIMIT, names.UNIT_REQUEST, "Budget limit in requests for the current window.",
    ),
    ("spent", "requests"): (
        names.BUDGET_REQUESTS_SPENT, names.UNIT_REQUEST, "Requests made in the current window.",
    ),
    ("reserved", "requests"): (
        names.BUDGET_REQUESTS_RESERVED, names.UNIT_REQUEST, "Requests held by calls in flight.",
    ),
    ("reset_seconds", None): (
        names.BUDGET_TIME_TO_RESET, names.UNIT_SECONDS, "Seconds until the budget's window resets.",
    ),
    ("counters", None): (
        names.BUDGET_COUNTERS, names.UNIT_COUNTER, "Scope values holding spend in the current window.",
    ),
}  # fmt: skip


class BudgetGauges:
    """Registers the budget gauges on ``meter_provider`` (default: the global provider).

    ``source`` lists budget states (:class:`~bedrock_budget.metrics.StoreBudgetSource` for a store and the
    budget definitions, :class:`~bedrock_budget.metrics.LedgerBudgetSource` for an in-process ledger).
    Reads are cached for ``cache_seconds``, so one collection reads the store once for every gauge; a
    failed read reports ``bedrock_budget.store.up`` 0 and no budget values.
    """

    def __init__(
        self,
        source: BudgetStateSource,
        meter_provider: MeterProvider | None = None,
        *,
        cache_seconds: float = 5.0,
        max_budgets: int = 500,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.reader = BudgetStateReader(
            source, cache_seconds=cache_seconds, max_budgets=max_budgets, monotonic=monotonic
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._points_of: tuple[Sequence[BudgetState] | None, tuple[GaugePoint, ...]] = (None, ())
        meter = get_meter(meter_provider)
        for (kind, unit), (name, instrument_unit, description) in _INSTRUMENTS.items():
            meter.create_observable_gauge(
                name, callbacks=[self._observer(kind, unit)], unit=instrument_unit, description=description
            )
        meter.create_observable_gauge(
            names.BUDGET_UTILIZATION,
            callbacks=[self._observe_utilization],
            unit=names.UNIT_RATIO,
            description="Spent divided by limit (1 = exhausted), per unit (usd, tokens, requests).",
        )
        meter.create_observable_gauge(
            names.STORE_UP,
            callbacks=[self._observe_store],
            unit=names.UNIT_RATIO,
            description="1 when the last read of budget states succeeded.",
        )

    def _points(self) -> tuple[GaugePoint, ...]:
        states = self.reader.states()
        if states is None:
            return ()
        with self._lock:
            # Every gauge of one collection sees the same cached read: compute its points once.
            seen, points = self._points_of
            if seen is not states:
                points = tuple(gauge_points(states, self._clock()))
                self._points_of = (states, points)
            return points

    def _observer(
        self, kind: GaugeKind, unit: Unit | None
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            from opentelemetry.metrics import Observation

            return [
                Observation(p.value, {names.BUDGET: p.budget})
                for p in self._points()
                if p.kind == kind and p.unit == unit
            ]

        return observe

    def _observe_utilization(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        return [
            Observation(p.value, {names.BUDGET: p.budget, names.BUDGET_UNIT: str(p.unit)})
            for p in self._points()
            if p.kind == "utilisation"
        ]

    def _observe_store(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        return [Observation(0.0 if self.reader.states() is None else 1.0)]
