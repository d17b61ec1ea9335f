"""Budgets compiled for the hot path: their alert marks worked out once, and matching a call to the
counters (budget windows) it is held and settled against."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from bedrock_budget.budgets.lines import ReservationLine
from bedrock_budget.budgets.model import Budget
from bedrock_budget.budgets.outcomes import Refusal, per_call_refusal, refusal_error
from bedrock_budget.budgets.unattributed import UnattributedTally, missing_keys, unattributed_error
from bedrock_budget.errors import ConfigurationError
from bedrock_budget.stores.base import CounterRef, Hold, Mark


@lru_cache(maxsize=4096)
def counter_ref(
    budget: str, scope: tuple[tuple[str, str], ...], window: str, timezone: str, start: int, end: int | None
) -> CounterRef:
    # Counter refs are built on every call and hashed by the stores' memos: one object per window.
    return CounterRef(budget=budget, scope=scope, window=window, timezone=timezone, start=start, end=end)


@dataclass(frozen=True, slots=True)
class CompiledBudget:
    budget: Budget
    order: int
    marks: tuple[Mark, ...]
    #: Reported when the budget refuses a call (see ``stores.base``): its limit, i.e. the 100% thresholds.
    refusal_marks: tuple[Mark, ...]
    #: Its ``"*"`` attribution keys: a call lacking one is unattributed for this budget.
    wildcards: tuple[str, ...]
    #: Compiled copies for the values the budget overrides (``budgets.overrides``), made on first use.
    variants: dict[str, CompiledBudget] = field(default_factory=dict, compare=False)

    def for_values(self, values: tuple[tuple[str, str], ...]) -> CompiledBudget:
        """This budget as it applies to one counter: itself, or the copy with the value's override."""
        value = self.budget.overridden_value(values)
        if value is None:
            return self
        variant = self.variants.get(value)
        if variant is None:
            variant = self.variants[value] = compile_budget(self.budget.for_values(values), self.order)
        return variant

    def hold(self, line: ReservationLine) -> Hold:
        budget = self.budget
        return Hold(
            ref=line.ref,
            limit_usd=budget.limit_nanos,
            limit_tokens=budget.limit_milli,
            usd=line.usd,
            tokens=line.tokens,
            enforce=budget.action != "warn",
            refusal_marks=self.refusal_marks,
            charge_on_expiry=budget.on_expired_hold == "charge",
            limit_requests=budget.limit_requests,
        )


def marks_of(budget: Budget) -> tuple[Mark, ...]:
    marks: list[Mark] = []
    for percent in budget.thresholds:
        # ceil(limit * percent / 100): the threshold is reached exactly when spent * 100 >= limit * percent.
        if budget.limit_nanos is not None:
            marks.append(Mark("usd", percent, -(-budget.limit_nanos * percent // 100)))
        if budget.limit_milli is not None:
            marks.append(Mark("tokens", percent, -(-budget.limit_milli * percent // 100)))
        if budget.limit_requests is not None:
            marks.append(Mark("requests", percent, -(-budget.limit_requests * percent // 100)))
    return tuple(marks)


def compile_budget(budget: Budget, order: int) -> CompiledBudget:
    marks = marks_of(budget)
    refusal = tuple(m for m in marks if m.percent == 100) if budget.action != "warn" else ()
    return CompiledBudget(budget, order, marks, refusal, budget.wildcard_keys)


class CompiledBudgets:
    """The configured budgets, in order, and by name."""

    __slots__ = ("all", "by_name", "unattributed")

    def __init__(self, budgets: Iterable[Budget], unattributed: UnattributedTally | None = None) -> None:
        compiled: list[CompiledBudget] = []
        seen: set[str] = set()
        for order, budget in enumerate(budgets):
            if not isinstance(budget, Budget):
                raise ConfigurationError(f"expected a Budget, got {type(budget).__name__}")
            if budget.name in seen:
                raise ConfigurationError(f"two budgets are named {budget.name!r}")
            seen.add(budget.name)
            compiled.append(compile_budget(budget, order))
        self.all: tuple[CompiledBudget, ...] = tuple(compiled)
        self.by_name: dict[str, CompiledBudget] = {c.budget.name: c for c in compiled}
        # Kept by the ledger across set_budgets, so the counts only ever grow.
        self.unattributed = unattributed if unattributed is not None else UnattributedTally()

    @property
    def budgets(self) -> tuple[Budget, ...]:
        return tuple(c.budget for c in self.all)

    def budget(self, name: str) -> Budget:
        compiled = self.by_name.get(name)
        if compiled is None:
            raise ConfigurationError(f"no budget named {name!r}")
        return compiled.budget

    def current(self, name: str, scope: tuple[tuple[str, str], ...]) -> CompiledBudget | None:
        """The budget ``name`` as configured now for one counter (its override applied), if it still is."""
        compiled = self.by_name.get(name)
        if compiled is None or not compiled.budget.overrides:
            return compiled
        return compiled.for_values(scope)

    def current_marks(self, budget: Budget, scope: tuple[tuple[str, str], ...]) -> tuple[Mark, ...]:
        # Thresholds follow the budget as configured now, so a raised limit (or a new override for this
        # counter's value) moves its alert points.
        compiled = self.current(budget.name, scope)
        return compiled.marks if compiled is not None else marks_of(budget)

    def matching(
        self, attribution: Mapping[str, str], model_id: str, model_family: str | None
    ) -> list[tuple[Budget, tuple[tuple[str, str], ...]]]:
        found: list[tuple[Budget, tuple[tuple[str, str], ...]]] = []
        for compiled in self.all:
            values = compiled.budget.match(attribution, model_id, model_family)
            if values is not None:
                found.append((compiled.budget, values))
        return found

    def lines(
        self,
        attribution: Mapping[str, str],
        model_id: str,
        model_family: str | None,
        now: float,
        cost_nanos: int,
        tokens: Mapping[str, int],
    ) -> list[tuple[CompiledBudget, ReservationLine]]:
        """What a call holds against each budget that applies to it, in configuration order. Raises
        :class:`~bedrock_budget.errors.UnattributedCallError` for a budget that refuses unattributed calls,
        and a refusal (block, clamp or downgrade) when the call's worst case exceeds a ``max_call_usd``."""
        lines: list[tuple[CompiledBudget, ReservationLine]] = []
        too_large: list[Refusal] = []
        for compiled in self.all:
            budget = compiled.budget
            values = budget.match(attribution, model_id, model_family)
            if compiled.wildcards:
                missing = missing_keys(budget, attribution)
                if missing:
                    self._unattributed(compiled, missing, values, (attribution, model_id, model_family))
                    if values is not None and budget.on_unattributed == "refuse":
                        raise unattributed_error(budget, missing, cost_nanos)
            if values is None:
                continue
            if budget.overrides:
                compiled = compiled.for_values(values)
                budget = compiled.budget
            start, end = budget.window.bounds(now)
            ref = counter_ref(budget.name, values, budget.window.kind, budget.window.timezone, start, end)
            if budget.max_call_nanos is not None and cost_nanos > budget.max_call_nanos:
                too_large.append(per_call_refusal(budget, ref, cost_nanos))
            lines.append((compiled, ReservationLine(budget, ref, cost_nanos, budget.weigh(tokens))))
        if too_large:  # rare: most calls fit every per-call cap, and pay nothing here
            enforced = [r for r in too_large if r.action != "warn"]
            if enforced:
                raise refusal_error(model_id, enforced)
        return lines

    def _unattributed(
        self,
        compiled: CompiledBudget,
        missing: tuple[str, ...],
        values: tuple[tuple[str, str], ...] | None,
        call: tuple[Mapping[str, str], str, str | None],
    ) -> None:
        """Count a call lacking the budget's wildcard keys when the rest of the budget's scope covers it (a
        call for another app is not an unattributed call of a per-user budget of that app)."""
        budget = compiled.budget
        if budget.on_unattributed == "skip":
            attribution, model_id, model_family = call
            filled = {**attribution, **dict.fromkeys(missing, "-")}
            values = budget.match(filled, model_id, model_family)
        if values is not None:
            self.unattributed.note(budget)


def fixed_scope(budget: Budget) -> dict[str, str]:
    """The scope values a budget names itself (wildcards included), model and family among them."""
    values = dict(budget.scope)
    if budget.model is not None:
        values["model"] = budget.model
    if budget.model_family is not None:
        values["model_family"] = budget.model_family
    return values


def current_ref(budget: Budget, scope: Mapping[str, str], now: float) -> CounterRef:
    start, end = budget.window.bounds(now)
    return counter_ref(
        budget.name, tuple(sorted(scope.items())), budget.window.kind, budget.timezone, start, end
    )
