"""Alert dispatch: turns the thresholds a store reports as reached into alerts and hands them to the sinks.

Thresholds reached by spend come back from settlements; a ``block`` or ``downgrade`` budget's 100%
threshold comes back from its first refusal (see the ledger's docstring). A failing sink is logged and
never fails the call or the settlement that reached the threshold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from bedrock_budget.alerts.model import Alert
from bedrock_budget.alerts.sinks import AlertSink, as_sink
from bedrock_budget.budgets.compiled import CompiledBudgets
from bedrock_budget.budgets.lines import ReservationLine
from bedrock_budget.budgets.outcomes import alert_of
from bedrock_budget.stores.base import Check, SettleOutcome, SettleRequest

log = logging.getLogger("bedrock_budget.ledger")


class AlertDispatcher:
    """The ledger's alert sinks and how many alerts it has sent."""

    def __init__(self, sinks: Iterable[AlertSink | Callable[[Alert], object]]) -> None:
        self.sinks: tuple[AlertSink, ...] = tuple(as_sink(s) for s in sinks)
        self.fired = 0

    def add(self, sink: AlertSink | Callable[[Alert], object]) -> None:
        self.sinks = (*self.sinks, as_sink(sink))

    def send(self, alert: Alert | None) -> None:
        if alert is None:
            return
        self.fired += 1
        for sink in self.sinks:
            try:
                sink.send(alert)
            except Exception:
                log.exception("alert sink %r failed", sink)

    def refused(self, lines: Sequence[ReservationLine], checks: Sequence[Check]) -> None:
        """Alerts for budgets that just started refusing calls."""
        for line, check in zip(lines, checks, strict=True):
            for mark in check.fired:
                self.send(alert_of(line.budget, line.ref, check.state, mark, refused_request=line))

    def settled(
        self,
        request: SettleRequest,
        outcomes: Sequence[SettleOutcome],
        budgets: CompiledBudgets,
    ) -> None:
        """Alerts for thresholds a settlement reached (of budgets still configured)."""
        for spend, outcome in zip(request.spends, outcomes, strict=True):
            if not outcome.fired:
                continue
            compiled = budgets.current(spend.ref.budget, spend.ref.scope)
            if compiled is None:
                continue
            for mark in outcome.fired:
                self.send(alert_of(compiled.budget, spend.ref, outcome.state, mark))

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:
                log.exception("closing alert sink %r failed", sink)
