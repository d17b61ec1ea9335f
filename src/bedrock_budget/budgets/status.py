"""One budget window as the store holds it now: what ``Ledger.read`` / ``Ledger.status`` return and what
``bedrock-budget budgets`` shows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Final

from bedrock_budget.budgets.model import Budget
from bedrock_budget.budgets.units import milli_to_tokens, nanos_to_usd
from bedrock_budget.pricing.money import format_usd
from bedrock_budget.stores.base import CounterRef, CounterState

__all__ = ["BudgetStatus", "status_of", "window_times"]

_PERCENT: Final = Decimal("0.01")
_TOKEN_KINDS: Final = ("input", "output", "cache_read", "cache_write")


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One budget window (one scope value of a wildcard budget). Amounts are Decimal USD and weighted
    tokens; requests are counted only while the budget has ``limit_requests``."""

    budget: Budget
    scope: Mapping[str, str]
    window_start: datetime | None
    resets_at: datetime | None
    spent_usd: Decimal
    reserved_usd: Decimal
    spent_tokens: Decimal
    reserved_tokens: Decimal
    active_reservations: int
    models: Mapping[str, Mapping[str, int]]
    #: The store counter; ``None`` only in listings, for a wildcard budget nobody has spent against in this
    #: window yet (``budget_windows``).
    ref: CounterRef | None = field(repr=False, compare=False)
    #: Alert thresholds already reached in this window (filled in by detailed listings only).
    alerts_fired: tuple[str, ...] = ()
    #: Requests made (calls settled) and held by calls in flight, under a request limit.
    spent_requests: int = 0
    reserved_requests: int = 0

    @property
    def limit_usd(self) -> Decimal | None:
        return self.budget.limit_usd

    @property
    def limit_tokens(self) -> Decimal | None:
        return self.budget.limit_tokens

    @property
    def limit_requests(self) -> int | None:
        return self.budget.limit_requests

    def _used(self) -> list[tuple[Decimal, Decimal]]:
        # Spent and limit in each limited unit (requests made count like spend).
        pairs = [(self.spent_usd, self.limit_usd), (self.spent_tokens, self.limit_tokens)]
        if self.budget.limit_requests is not None:
            pairs.append((Decimal(self.spent_requests), Decimal(self.budget.limit_requests)))
        return [(spent, limit) for spent, limit in pairs if limit]

    @property
    def utilisation(self) -> Decimal | None:
        """Spent over limit (0..1+) in the tighter unit; None without limits, or for a zero limit."""
        ratios = [spent / limit for spent, limit in self._used()]
        return max(ratios) if ratios else None

    @property
    def utilisation_percent(self) -> Decimal | None:
        """Spent over limit in the tighter unit, as a percentage; ``None`` without a non-zero limit."""
        ratios = [spent * 100 / limit for spent, limit in self._used()]
        return max(ratios).quantize(_PERCENT, ROUND_HALF_UP) if ratios else None

    def as_dict(self, *, detail: bool = False) -> dict[str, object]:
        budget = self.budget
        data: dict[str, object] = {
            "budget": budget.name,
            "scope": dict(self.scope),
            "window": budget.window.kind,
            "timezone": budget.timezone,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
            "limit_usd": None if budget.limit_usd is None else format_usd(budget.limit_usd),
            "spent_usd": format_usd(self.spent_usd),
            "reserved_usd": format_usd(self.reserved_usd),
            "limit_tokens": None if budget.limit_tokens is None else str(budget.limit_tokens),
            "spent_tokens": str(self.spent_tokens),
            "reserved_tokens": str(self.reserved_tokens),
            "limit_requests": budget.limit_requests,
            "spent_requests": self.spent_requests,
            "reserved_requests": self.reserved_requests,
            "utilisation_percent": None
            if self.utilisation_percent is None
            else str(self.utilisation_percent),
            "active_reservations": self.active_reservations,
            "action": budget.action,
        }
        if detail:
            data["alerts_fired"] = list(self.alerts_fired)
            data["models"] = {
                model: {
                    "calls": counts.get("calls", 0),
                    "cost_usd": format_usd(nanos_to_usd(counts.get("cost", 0))),
                    **{f"{kind}_tokens": counts.get(kind, 0) for kind in _TOKEN_KINDS},
                }
                for model, counts in sorted(self.models.items())
            }
        return data


def window_times(budget: Budget, ref: CounterRef) -> tuple[datetime | None, datetime | None]:
    if ref.end is None:
        return None, None
    return budget.window.local(ref.start), budget.window.local(ref.end)


def status_of(budget: Budget, state: CounterState, alerts_fired: tuple[str, ...] = ()) -> BudgetStatus:
    start, resets = window_times(budget, state.ref)
    return BudgetStatus(
        budget=budget,
        scope=MappingProxyType(dict(state.ref.scope)),
        window_start=start,
        resets_at=resets,
        spent_usd=nanos_to_usd(state.spent_usd),
        reserved_usd=nanos_to_usd(state.held_usd),
        spent_tokens=milli_to_tokens(state.spent_tokens),
        reserved_tokens=milli_to_tokens(state.held_tokens),
        active_reservations=state.active,
        models=state.models,
        ref=state.ref,
        alerts_fired=alerts_fired,
        spent_requests=state.spent_requests,
        reserved_requests=state.held_requests,
    )
