"""What the ledger hands back: reservations, refusals and alerts built from store state (budget status is in
``budgets.status``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal

from bedrock_budget.alerts.model import Alert
from bedrock_budget.budgets.lines import ReservationLine
from bedrock_budget.budgets.model import Budget
from bedrock_budget.budgets.status import BudgetStatus, window_times
from bedrock_budget.budgets.units import milli_to_tokens, nanos_to_usd
from bedrock_budget.errors import BudgetBlockedError, ClampRequiredError, DowngradeRequiredError
from bedrock_budget.stores.base import Check, CounterRef, CounterState, Mark

__all__ = [
    "BudgetStatus",
    "Refusal",
    "Reservation",
    "alert_of",
    "per_call_refusal",
    "refusal_error",
    "refusals_of",
]

if TYPE_CHECKING:
    from bedrock_budget.budgets.leases import Lease

_HUNDRED: Final = Decimal(100)
_PERCENT_STEP: Final = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one budget refused (or, for a warn budget, would have refused) a call."""

    budget: Budget
    scope: Mapping[str, str]
    window_start: datetime | None
    resets_at: datetime | None
    unit: str
    limit: Decimal
    spent: Decimal
    reserved: Decimal
    requested: Decimal
    reason: str

    @property
    def budget_name(self) -> str:
        return self.budget.name

    @property
    def window(self) -> str:
        return self.budget.window.kind

    @property
    def action(self) -> str:
        return self.budget.action

    @property
    def downgrade_to(self) -> str | None:
        return self.budget.downgrade_to


@dataclass(eq=False)
class Reservation:
    """A held worst case. Settle or release it exactly once (later calls are no-ops)."""

    id: str
    model_id: str
    model_family: str | None
    cost_nanos: int
    tokens: Mapping[str, int]
    lines: tuple[ReservationLine, ...]
    created_at: float
    deadline: float
    warnings: tuple[Refusal, ...] = ()
    offline: bool = False
    #: Each line's counter epoch as the store reported it (see ``stores.base``); empty when offline.
    epochs: tuple[str | None, ...] = ()
    #: The leases this call was admitted against, one per line (empty: an ordinary reservation).
    leases: tuple[Lease, ...] = ()
    state: Literal["held", "settled", "released"] = "held"
    #: Who pays for the call (for the spend ledger; never enforced from here).
    attribution: Mapping[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def budgets(self) -> tuple[str, ...]:
        return tuple(line.budget.name for line in self.lines)

    def _finish(self, state: Literal["settled", "released"]) -> bool:
        with self._lock:
            if self.state != "held":
                return False
            self.state = state
            return True


def refusals_of(line: ReservationLine, check: Check) -> list[Refusal]:
    refusals: list[Refusal] = []
    budget, state = line.budget, check.state
    start, resets = window_times(budget, line.ref)
    scope = MappingProxyType(dict(line.ref.scope))
    units: list[tuple[str, int | None, int, int, int, Callable[[int], Decimal], str]] = []
    if check.refused_usd:
        units.append(
            ("usd", budget.limit_nanos, state.spent_usd, state.held_usd, line.usd, nanos_to_usd, "$")
        )
    if check.refused_tokens:
        units.append(
            (
                "tokens",
                budget.limit_milli,
                state.spent_tokens,
                state.held_tokens,
                line.tokens,
                milli_to_tokens,
                "",
            )
        )
    if check.refused_requests:
        units.append(
            ("requests", budget.limit_requests, state.spent_requests, state.held_requests, 1, Decimal, "")
        )
    for unit, limit, spent, held, requested, convert, sign in units:
        assert limit is not None
        if unit == "requests":
            reason = f"the limit of {limit} requests per {budget.window.kind} would be exceeded"
        elif requested > limit:
            noun = "" if unit == "usd" else " tokens"
            reason = (
                f"this call's worst case alone ({sign}{convert(requested)}{noun}) exceeds the budget's limit "
                f"({sign}{convert(limit)}{noun}); lower the request's maximum output tokens "
                "(maxTokens / max_tokens) or raise the limit"
            )
        else:
            reason = "the limit would be exceeded by spent + reserved + this call's worst case"
        refusals.append(
            Refusal(
                budget=budget,
                scope=scope,
                window_start=start,
                resets_at=resets,
                unit=unit,
                limit=convert(limit),
                spent=convert(spent),
                reserved=convert(held),
                requested=convert(requested),
                reason=reason,
            )
        )
    return refusals


def alert_of(
    budget: Budget,
    ref: CounterRef,
    state: CounterState,
    mark: Mark,
    *,
    refused_request: ReservationLine | None = None,
) -> Alert | None:
    """The alert for a threshold reached by spend, or (``refused_request``: the hold a budget refused)
    for a budget that started refusing calls."""
    convert: Callable[[int], Decimal]
    if mark.unit == "usd":
        limit_raw, spent_raw, held_raw, convert = (
            budget.limit_nanos,
            state.spent_usd,
            state.held_usd,
            nanos_to_usd,
        )
        requested_raw = refused_request.usd if refused_request is not None else None
    elif mark.unit == "tokens":
        limit_raw, spent_raw, held_raw = budget.limit_milli, state.spent_tokens, state.held_tokens
        convert = milli_to_tokens
        requested_raw = refused_request.tokens if refused_request is not None else None
    else:
        limit_raw, spent_raw, held_raw = budget.limit_requests, state.spent_requests, state.held_requests
        convert = Decimal
        requested_raw = 1 if refused_request is not None else None
    if limit_raw is None:
        return None
    start, resets = window_times(budget, ref)
    percentage = (
        (Decimal(spent_raw) * _HUNDRED / Decimal(limit_raw)).quantize(_PERCENT_STEP)
        if limit_raw
        else _HUNDRED
    )
    return Alert(
        budget=budget.name,
        scope=MappingProxyType(dict(ref.scope)),
        window=budget.window.kind,
        timezone=budget.timezone,
        window_start=start if start is not None else budget.window.local(0),
        resets_at=resets,
        unit=mark.unit,
        threshold=mark.percent,
        spent=convert(spent_raw),
        limit=convert(limit_raw),
        percentage=percentage,
        action=budget.action,
        refused=refused_request is not None,
        held=convert(held_raw) if refused_request is not None else None,
        requested=convert(requested_raw) if requested_raw is not None else None,
    )


def refusal_error(model_id: str, refusals: Sequence[Refusal]) -> BudgetBlockedError:
    """What ``reserve`` raises for the enforcing budgets that refused a call (configuration order): a
    downgrade, when one applies; a clamp, when every refusing budget clamps (a request limit never clamps:
    a smaller call is still a call); otherwise a block."""
    for r in refusals:
        target = r.downgrade_to
        if r.action == "downgrade" and target is not None and target != model_id:
            return DowngradeRequiredError.from_refusal(
                r,
                downgrade_to=target,
                refusals=refusals,
                reason=f"{r.reason}; retry with the cheaper model {target}",
            )
    if all(r.action == "clamp" and r.unit != "requests" for r in refusals):
        return ClampRequiredError.from_refusal(refusals[0], refusals=refusals)
    return BudgetBlockedError.from_refusal(refusals[0], refusals=refusals)


def per_call_refusal(budget: Budget, ref: CounterRef, cost_nanos: int) -> Refusal:
    """A budget's ``max_call_usd`` refusing a call whose worst case alone is larger (no store involved:
    the room it reports is the per-call cap itself, so a ``clamp`` budget fits the call under it)."""
    assert budget.max_call_nanos is not None
    start, resets = window_times(budget, ref)
    cap, requested = nanos_to_usd(budget.max_call_nanos), nanos_to_usd(cost_nanos)
    return Refusal(
        budget=budget,
        scope=MappingProxyType(dict(ref.scope)),
        window_start=start,
        resets_at=resets,
        unit="usd",
        limit=cap,
        spent=Decimal(0),
        reserved=Decimal(0),
        requested=requested,
        reason=f"this call's worst case (${requested}) exceeds the budget's per-call cap (${cap})",
    )
