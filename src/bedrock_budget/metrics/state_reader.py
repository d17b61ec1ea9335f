"""Reading budget states for gauges, shared by every exporter (Prometheus collector, OpenTelemetry gauges).

A :class:`BudgetStateReader` caches a read briefly, so several scrapers (or one exporter per metric
instrument) cost one store read; a failed read answers ``None`` instead of stale numbers, logged once per
outage. :func:`gauge_points` decides which gauge values a state has, so both exporters publish the same
series.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal, Protocol, runtime_checkable

log = logging.getLogger("bedrock_budget.metrics")

GaugeKind = Literal["limit", "spent", "reserved", "utilisation", "reset_seconds", "counters"]
Unit = Literal["usd", "tokens", "requests"]
_ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class BudgetState:
    """One budget's current window, in dollars, (weighted) tokens and requests (calls, counted under a
    request limit). ``resets_at`` is epoch seconds (``None``: a lifetime budget); ``counters`` is how many
    scope values hold spend in this window."""

    budget: str
    window: str = ""
    limit_usd: Decimal | None = None
    spent_usd: Decimal = _ZERO
    reserved_usd: Decimal = _ZERO
    limit_tokens: Decimal | None = None
    spent_tokens: Decimal = _ZERO
    reserved_tokens: Decimal = _ZERO
    resets_at: float | None = None
    counters: int = 0
    limit_requests: int | None = None
    spent_requests: int = 0
    reserved_requests: int = 0


@runtime_checkable
class BudgetStateSource(Protocol):
    """Anything that can list budget states: :class:`StoreBudgetSource`, or the budget layer itself."""

    def list_budget_states(self) -> Iterable[BudgetState]: ...


class BudgetStateReader:
    """``source.list_budget_states()`` cached for ``cache_seconds``, bounded to ``max_budgets`` budgets
    (alphabetically first; the rest are left out with a warning)."""

    def __init__(
        self,
        source: BudgetStateSource,
        *,
        cache_seconds: float = 5.0,
        max_budgets: int = 500,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(source, BudgetStateSource):
            raise TypeError(f"source must have list_budget_states(), not {type(source).__name__}")
        self.source = source
        self.cache_seconds = cache_seconds
        self.max_budgets = max_budgets
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: tuple[float, Sequence[BudgetState] | None] | None = None
        self._failing = False
        self._truncated_warned = False

    def states(self) -> Sequence[BudgetState] | None:
        """The cached states (``None`` when the last read failed)."""
        with self._lock:
            now = self._monotonic()
            cached = self._cached
            if cached is not None and now - cached[0] < self.cache_seconds:
                return cached[1]
            states = self._read()
            self._cached = (now, states)
            return states

    def _read(self) -> Sequence[BudgetState] | None:
        try:
            states = list(self.source.list_budget_states())
        except Exception as exc:  # an exporter must answer even when the store does not
            if not self._failing:
                log.warning(
                    "bedrock-budget metrics: reading budget states failed: %s: %s", type(exc).__name__, exc
                )
            self._failing = True
            return None
        if self._failing:
            log.info("bedrock-budget metrics: reading budget states works again")
        self._failing = False
        if len(states) > self.max_budgets:
            if not self._truncated_warned:
                log.warning(
                    "bedrock-budget metrics: %d budgets, exporting the first %d (raise max_budgets)",
                    len(states),
                    self.max_budgets,
                )
                self._truncated_warned = True
            states = sorted(states, key=lambda s: s.budget)[: self.max_budgets]
        return states


@dataclass(frozen=True, slots=True)
class GaugePoint:
    """One gauge value of one budget. ``unit`` is set for the per-unit gauges (limit, spent, reserved,
    utilisation); money and tokens become floats here, at the exporter's edge."""

    kind: GaugeKind
    budget: str
    value: float
    unit: Unit | None = None


def gauge_points(states: Sequence[BudgetState], now: float) -> Iterator[GaugePoint]:
    """Every gauge value the states have: a limit (and utilisation) only where the budget defines one,
    spent/reserved where there is a limit or any amount, a reset time unless the window is a lifetime."""
    for s in states:
        name = s.budget
        per_unit: tuple[tuple[Unit, Decimal | None, Decimal, Decimal], ...] = (
            ("usd", s.limit_usd, s.spent_usd, s.reserved_usd),
            ("tokens", s.limit_tokens, s.spent_tokens, s.reserved_tokens),
            (
                "requests",
                None if s.limit_requests is None else Decimal(s.limit_requests),
                Decimal(s.spent_requests),
                Decimal(s.reserved_requests),
            ),
        )
        for unit, limit, spent, reserved in per_unit:
            if limit is not None:
                yield GaugePoint("limit", name, float(limit), unit)
                yield GaugePoint("utilisation", name, _ratio(spent, limit), unit)
            if limit is not None or spent or reserved:
                yield GaugePoint("spent", name, float(spent), unit)
                yield GaugePoint("reserved", name, float(reserved), unit)
        if s.resets_at is not None:
            yield GaugePoint("reset_seconds", name, max(0.0, s.resets_at - now))
        yield GaugePoint("counters", name, float(s.counters))


def _ratio(spent: Decimal, limit: Decimal) -> float:
    if limit <= 0:
        return 1.0
    return float(spent / limit)
