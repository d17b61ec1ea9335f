"""Settled calls that cost more than their hold: counted per budget, logged once per model.

A reservation is meant to be the most a call can cost, so a settlement above it means the bound was wrong
(a bug, a mode that reserves less than the bound, a model whose template adds more than documented).
Concurrent calls near a limit can then overshoot it, so it must be visible: the ledger notes every such
settlement here, the budget guard passes the totals on to its store observers (the Prometheus
``bedrock_budget_reservation_exceeded_total`` and ``bedrock_budget_reservation_excess_usd_total``), and the
first overrun of each model is logged as a warning. Only ids, counts and money are kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from bedrock_budget.budgets.outcomes import Reservation
from bedrock_budget.pricing.money import format_usd, nanos_to_usd

__all__ = ["Overrun", "OverrunTally"]

log = logging.getLogger("bedrock_budget.ledger")

# Models named in the once-per-model warning; past this many the warning is still logged, without memory.
_MODELS_REMEMBERED: Final = 1_000


@dataclass(frozen=True, slots=True)
class Overrun:
    """Per budget: how many settled calls exceeded their hold, and by how many nano-dollars in total."""

    count: int = 0
    excess_nanos: int = 0


class OverrunTally:
    """Cumulative overruns per budget name. Thread-safe; ``version`` moves whenever a total does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, Overrun] = {}
        self._models_warned: set[str] = set()
        self.version = 0

    def note(self, reservation: Reservation, cost_nanos: int, tokens: Mapping[str, int]) -> None:
        """Compare a settlement with its hold; count each budget line the settlement went beyond."""
        excess_nanos = max(0, cost_nanos - reservation.cost_nanos)
        over = [
            line.budget.name
            for line in reservation.lines
            if excess_nanos
            or (
                line.budget.limit_tokens is not None
                and line.budget.weigh(tokens) > line.budget.weigh(reservation.tokens)
            )
        ]
        if not over:
            return
        with self._lock:
            for name in over:
                before = self._totals.get(name, Overrun())
                self._totals[name] = Overrun(before.count + 1, before.excess_nanos + excess_nanos)
            self.version += 1
            first = reservation.model_id not in self._models_warned
            if first and len(self._models_warned) < _MODELS_REMEMBERED:
                self._models_warned.add(reservation.model_id)
        if first:
            log.warning(
                "a call to %s cost more than its reservation (held $%s, settled $%s; budgets %s): concurrent "
                "calls near a limit can overshoot it. Counted in bedrock_budget_reservation_exceeded_total; "
                "logged once per model",
                reservation.model_id,
                format_usd(nanos_to_usd(reservation.cost_nanos)),
                format_usd(nanos_to_usd(cost_nanos)),
                ", ".join(over),
            )

    def totals(self) -> dict[str, Overrun]:
        with self._lock:
            return dict(self._totals)
