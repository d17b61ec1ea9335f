"""The alert record sent to every sink when a budget crosses one of its thresholds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class Alert:
    """A threshold crossed: fired once per (budget, scope values, window start, unit, threshold) across
    every process sharing the store. Amounts are USD for ``unit == "usd"``, weighted tokens for ``"tokens"``
    and calls for ``"requests"``."""

    budget: str
    scope: Mapping[str, str]
    window: str
    timezone: str
    window_start: datetime
    resets_at: datetime | None
    unit: str
    threshold: int
    spent: Decimal
    limit: Decimal
    percentage: Decimal
    action: str
    #: Fired by a refusal rather than by spend: a ``block`` or ``downgrade`` budget refuses the call whose
    #: worst case would cross its limit, so its spend stops short of it (``percentage`` below the
    #: threshold). ``held`` is what calls in flight held then and ``requested`` the refused call's worst case.
    refused: bool = False
    held: Decimal | None = None
    requested: Decimal | None = None

    @property
    def message(self) -> str:
        def amount(value: Decimal) -> str:
            return f"${value}" if self.unit == "usd" else f"{value} {self.unit}"

        scope = ", ".join(f"{k}={v}" for k, v in self.scope.items()) or "global"
        if self.refused:
            held = self.held if self.held is not None else Decimal(0)
            requested = self.requested if self.requested is not None else Decimal(0)
            return (
                f"budget {self.budget} ({scope}) started refusing calls at {self.percentage}% of its "
                f"{self.window} limit: {amount(self.spent)} spent + {amount(held)} held by calls in flight "
                f"+ {amount(requested)} for the refused call would pass {amount(self.limit)} "
                f"(threshold {self.threshold}%)"
            )
        return (
            f"budget {self.budget} ({scope}) reached {self.percentage}% of its {self.window} limit "
            f"({amount(self.spent)} of {amount(self.limit)}; threshold {self.threshold}%)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: Decimals as strings (exact), datetimes in ISO 8601 with their offset."""
        return {
            "type": "bedrock_budget.threshold",
            "budget": self.budget,
            "scope": dict(self.scope),
            "window": self.window,
            "timezone": self.timezone,
            "window_start": self.window_start.isoformat(),
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
            "unit": self.unit,
            "threshold": self.threshold,
            "spent": str(self.spent),
            "limit": str(self.limit),
            "percentage": str(self.percentage),
            "action": self.action,
            "refused": self.refused,
            "held": None if self.held is None else str(self.held),
            "requested": None if self.requested is None else str(self.requested),
            "message": self.message,
        }
