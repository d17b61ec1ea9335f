"""Usage from the tallies the budget store keeps.

The store keeps, per budget counter (budget x concrete scope values x window), per-model tallies of calls,
cost and input/output/cache-read/cache-write tokens. It can group only by what some budget is counted by
(``--by user`` needs a budget with ``scope: {user: "*"}``), it keeps only current windows (keys expire soon
after their window ends), and it records neither route nor region.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from bedrock_budget.budgets.model import FAMILY_KEY, MODEL_KEY, WILDCARD, Budget
from bedrock_budget.budgets.units import nanos_to_usd
from bedrock_budget.budgets.windows import WINDOW_KINDS, Window
from bedrock_budget.pricing.money import format_usd
from bedrock_budget.reporting.tallies import (
    MODEL_GROUP,
    SECONDS_PER_HOUR,
    ReportError,
    Tally,
    UsageKey,
    UsageSet,
    total_of,
)
from bedrock_budget.stores.base import CounterState, Store

__all__ = ["BudgetCounters", "choose_counters", "current_counters", "usage_from_store"]

_MODEL_KEYS: Final = frozenset({MODEL_KEY, FAMILY_KEY})
_WINDOW_RANK: Final = {kind: rank for rank, kind in enumerate(WINDOW_KINDS)}


@dataclass(frozen=True, slots=True)
class BudgetCounters:
    """The current-window counters of one budget as found in the store."""

    budget: str
    window: str
    timezone: str
    start: int
    end: int | None
    config: Budget | None
    states: tuple[CounterState, ...] = field(default=())

    @property
    def keys(self) -> tuple[str, ...]:
        """Scope keys (``model``/``model_family`` included) the budget's counters are split by."""
        if self.config is not None:
            names = list(self.config.scope)
            if self.config.model is not None:
                names.append(MODEL_KEY)
            if self.config.model_family is not None:
                names.append(FAMILY_KEY)
            return tuple(sorted(names))
        found: set[str] = set()
        for state in self.states:
            found.update(k for k, _ in state.ref.scope)
        return tuple(sorted(found))

    def fixed(self) -> dict[str, str]:
        """Scope values every counter shares: a fixed budget scope narrows what the budget counts."""
        if self.config is not None:
            values = dict(self.config.scope)
            if self.config.model is not None:
                values[MODEL_KEY] = self.config.model
            if self.config.model_family is not None:
                values[FAMILY_KEY] = self.config.model_family
            return {k: v for k, v in values.items() if v != WILDCARD}
        if len(self.states) != 1:
            return {}
        return dict(self.states[0].ref.scope)

    def wildcard(self, key: str) -> bool:
        if self.config is None:
            return key not in self.fixed()
        return key in self.keys and key not in self.fixed()

    def describe(self) -> str:
        if self.config is not None:
            scope = dict(self.config.scope)
            if self.config.model is not None:
                scope[MODEL_KEY] = self.config.model
            if self.config.model_family is not None:
                scope[FAMILY_KEY] = self.config.model_family
            parts = ", ".join(f"{k}={v}" for k, v in sorted(scope.items()))
        else:
            fixed = self.fixed()
            parts = ", ".join(f"{k}={fixed.get(k, WILDCARD)}" for k in self.keys)
        return f"{self.budget} ({parts or 'all calls'}; {self.window} window, {self.timezone})"

    @property
    def restrictions(self) -> int:
        """How many scope conditions narrow what the budget counts (wildcard model keys narrow nothing)."""
        fixed = self.fixed()
        return sum(1 for k in self.keys if k not in _MODEL_KEYS or k in fixed)


def current_counters(store: Store, budgets: Sequence[Budget] | None, now: float) -> list[BudgetCounters]:
    """Every budget's counters of its current window. With ``budgets`` (the configuration) the current
    window is computed from it and budgets without spend are included; without it, each budget's latest
    window still open at ``now`` is taken from what the store holds."""
    now_ms = int(now * 1000)
    states = store.list(now_ms=now_ms)
    by_budget: dict[str, list[CounterState]] = {}
    for state in states:
        by_budget.setdefault(state.ref.budget, []).append(state)
    found: list[BudgetCounters] = []
    if budgets is not None:
        for budget in budgets:
            start, end = budget.window.bounds(now)
            mine = tuple(
                s
                for s in by_budget.get(budget.name, ())
                if s.ref.window == budget.window.kind
                and s.ref.timezone == budget.timezone
                and s.ref.start == start
            )
            found.append(
                BudgetCounters(budget.name, budget.window.kind, budget.timezone, start, end, budget, mine)
            )
        return found
    for name, mine_all in sorted(by_budget.items()):
        open_now = [s for s in mine_all if s.ref.end is None or s.ref.end * 1000 > now_ms]
        if not open_now:
            continue
        latest = max(open_now, key=lambda s: s.ref.start).ref
        mine = tuple(
            s
            for s in open_now
            if (s.ref.window, s.ref.timezone, s.ref.start) == (latest.window, latest.timezone, latest.start)
        )
        found.append(
            BudgetCounters(name, latest.window, latest.timezone, latest.start, latest.end, None, mine)
        )
    return found


def _rank(candidate: BudgetCounters, by: str) -> tuple[int, int, int, str]:
    fixed_by = 1 if by != MODEL_GROUP and not candidate.wildcard(by) else 0
    others = candidate.restrictions - (1 if by in candidate.keys and by in candidate.fixed() else 0)
    return (others, fixed_by, -_WINDOW_RANK[candidate.window], candidate.budget)


def choose_counters(candidates: Sequence[BudgetCounters], by: str, window: str | None) -> BudgetCounters:
    """The budget whose tallies best answer a grouping: counted by ``by`` (any budget for ``model``), with
    the fewest other scope conditions (so it covers the most calls), then the longest window."""
    if not candidates:
        raise ReportError(
            "the store holds no budget counters: nothing has been recorded yet, or --store (or its ?prefix=) "
            "points somewhere else"
        )
    able = [c for c in candidates if by == MODEL_GROUP or by in c.keys]
    pool = [c for c in able if window is None or c.window == window]
    if pool:
        return min(pool, key=lambda c: _rank(c, by))
    known = "; ".join(c.describe() for c in candidates)
    wanted = f" and window: {window}" if window else ""
    if able:
        windows = ", ".join(sorted({f"{c.window} ({c.budget})" for c in able}))
        raise ReportError(
            f"the store's tallies can group by {by!r} only in these windows: {windows}; pass one of them as "
            f'--window, add a budget with scope {{{by}: "*"}}{wanted}, or use --records FILE.jsonl'
        )
    if by == MODEL_GROUP:
        raise ReportError(f"no budget has {window} windows in the store (budgets: {known})")
    raise ReportError(
        f"the store's tallies cannot group by {by!r}: no budget is counted per {by} (budgets: {known}). "
        f'Add a budget with scope {{{by}: "*"}}{wanted} so the store keeps per-{by} tallies, '
        "or report from exported call records with --records FILE.jsonl"
    )


def _tally_of(counts: Mapping[str, int]) -> Tally:
    return Tally(
        calls=counts.get("calls", 0),
        input_tokens=counts.get("input", 0),
        output_tokens=counts.get("output", 0),
        cache_read_tokens=counts.get("cache_read", 0),
        cache_write_tokens=counts.get("cache_write", 0),
        cost_usd=nanos_to_usd(counts.get("cost", 0)),
    )


def _rows_of(states: Iterable[CounterState]) -> dict[UsageKey, Tally]:
    rows: dict[UsageKey, Tally] = {}
    for state in states:
        attribution = tuple((k, v) for k, v in state.ref.scope if k not in _MODEL_KEYS)
        for model, counts in state.models.items():
            key = UsageKey(model=model, attribution=attribution)
            rows.setdefault(key, Tally()).add(_tally_of(counts))
    return rows


def _same_window(a: BudgetCounters, b: BudgetCounters) -> bool:
    return (a.window, a.timezone, a.start) == (b.window, b.timezone, b.start)


def _conditions(candidate: BudgetCounters, by: str) -> str:
    """Scope conditions other than ``by`` that narrow what a budget counts, e.g. ``model=X, some user``."""
    fixed = candidate.fixed()
    parts = [f"{k}={v}" for k, v in sorted(fixed.items()) if k != by]
    parts += [f"some {k}" for k in candidate.keys if k not in fixed and k not in _MODEL_KEYS and k != by]
    return ", ".join(parts)


def _per_value(candidates: Sequence[BudgetCounters], chosen: BudgetCounters, by: str) -> list[BudgetCounters]:
    """For a key no budget is counted per, the budgets that each fix one value of it (``scope: {app:
    search}``), in the chosen budget's window: for each value the one that covers the most calls."""
    best: dict[str, BudgetCounters] = {}
    for candidate in candidates:
        value = candidate.fixed().get(by)
        if value is None or not _same_window(candidate, chosen):
            continue
        held = best.get(value)
        if held is None or _rank(candidate, by) < _rank(held, by):
            best[value] = candidate
    return [best[value] for value in sorted(best)]


def _all_calls(candidates: Sequence[BudgetCounters], chosen: BudgetCounters) -> BudgetCounters | None:
    """An all-calls budget whose window is the chosen one's, or failing that the shortest current window
    holding it (its spend is then a larger period's, and said so)."""
    holding = [
        c
        for c in candidates
        if not c.restrictions
        and c.start <= chosen.start
        and (c.end is None or (chosen.end is not None and c.end >= chosen.end))
    ]
    same = [c for c in holding if _same_window(c, chosen)]
    if same:
        return same[0]
    return min(holding, key=lambda c: (-_WINDOW_RANK[c.window], c.budget), default=None)


def _rest_rows(
    rows: Mapping[UsageKey, Tally], everything: BudgetCounters, by: str, label: str
) -> tuple[dict[UsageKey, Tally], str | None]:
    """What the all-calls budget holds beyond ``rows``, per model, as rows grouped under ``label``; or a
    note when it holds less (added or reset during the window)."""
    counted: dict[str, Tally] = {}
    for key, tally in rows.items():
        counted.setdefault(key.model, Tally()).add(tally)
    rest: dict[UsageKey, Tally] = {}
    for key, tally in _rows_of(everything.states).items():
        left = tally.minus(counted.get(key.model, Tally()))
        if left.negative:
            return {}, (
                f"budget {everything.budget} holds less than the budgets above for {key.model} "
                "(added or reset during the window), so calls they do not cover are not shown"
            )
        if not left.empty:
            rest[UsageKey(model=key.model, attribution=((by, label),))] = left
    return rest, None


def usage_from_store(
    store: Store,
    *,
    by: str,
    now: float,
    budgets: Sequence[Budget] | None = None,
    window: str | None = None,
    counters: Sequence[BudgetCounters] | None = None,
) -> UsageSet:
    """The store's per-model tallies from the budget that best answers ``by`` (see
    :func:`choose_counters`). When no budget is counted per ``by`` but budgets fix single values of it
    (``scope: {app: search}``), their tallies together are the rows, one group per value.

    When the rows do not count every call and an all-calls budget with the same window exists, the
    difference appears as one more group, so totals and shares still match. Without one the set is marked
    partial (``whole=False``: no shares) and a note says which budgets the figures come from and what part
    of the known spend they are."""
    candidates = list(counters) if counters is not None else current_counters(store, budgets, now)
    chosen = choose_counters(candidates, by, window)
    sources = [chosen]
    if by != MODEL_GROUP and not chosen.wildcard(by):
        sources = _per_value(candidates, chosen, by)
    rows: dict[UsageKey, Tally] = {}
    for counted in sources:
        for key, tally in _rows_of(counted.states).items():
            rows.setdefault(key, Tally()).add(tally)
    notes: list[str] = []
    whole = True
    # A budget counted per ``by`` and nothing else misses only calls without a ``by`` value.
    per_key_only = by != MODEL_GROUP and chosen.wildcard(by) and not _conditions(chosen, by)
    if chosen.restrictions:
        names = ", ".join(c.budget for c in sources)
        everything = _all_calls(candidates, chosen)
        if everything is not None and _same_window(everything, chosen):
            rest, problem = _rest_rows(rows, everything, by, f"(not counted by {names})")
            if problem is not None:
                notes.append(problem)
                whole = per_key_only
            rows.update(rest)
        elif per_key_only:
            notes.append(
                f"covers only calls attributed with some {by} (what budget {chosen.budget} counts); an "
                "all-calls budget with the same window would show the rest"
            )
        else:
            whole = False
            notes.append(_coverage_note(sources, everything, rows, by))
    start = Window(chosen.window, chosen.timezone).local(chosen.start)
    end_epoch = now if chosen.end is None else min(now, float(chosen.end))
    hours = None if chosen.window == "lifetime" else Decimal(int(end_epoch) - chosen.start) / SECONDS_PER_HOUR
    end = Window(chosen.window, chosen.timezone).local(int(end_epoch))
    described = "; ".join(c.describe() for c in sources)
    plural = "budgets" if len(sources) > 1 else "budget"
    source = f"store {store.name}, {plural} {described}, current window since {start.isoformat()}"
    return UsageSet(
        rows=MappingProxyType(rows),
        source=source,
        kind="store",
        keys=tuple(sorted({k for c in sources for k in c.keys if k not in _MODEL_KEYS})),
        period_start=start if chosen.window != "lifetime" else None,
        period_end=end,
        period_hours=hours if hours is None or hours > 0 else None,
        notes=tuple(notes),
        budget=chosen.budget,
        budgets=tuple(c.budget for c in sources),
        whole=whole,
    )


def _coverage_note(
    sources: Sequence[BudgetCounters],
    everything: BudgetCounters | None,
    rows: Mapping[UsageKey, Tally],
    by: str,
) -> str:
    """One line: where the figures come from, what part of the known spend they are, what is missing."""
    parts = []
    for counted in sources:
        conditions = _conditions(counted, by)
        value = counted.fixed().get(by)
        what = ", ".join(p for p in (f"{by}={value}" if value and by != MODEL_GROUP else "", conditions) if p)
        parts.append(f"{counted.budget} ({what or 'all calls'})")
    covered = total_of(rows.values()).cost_usd
    line = f"partial view: only what budgets {', '.join(parts)} count, ${format_usd(covered)}"
    if everything is not None:
        known = total_of(_rows_of(everything.states).values()).cost_usd
        period = "" if _same_window(everything, sources[0]) else f" in its current {everything.window} window"
        share = f"{(covered * 100 / known).quantize(Decimal('0.1'))}% of " if known else ""
        line += f", {share}the ${format_usd(known)} budget {everything.budget} recorded{period}"
    else:
        line += " (no all-calls budget tells the total)"
    if by != MODEL_GROUP and any(c.fixed().get(by) for c in sources):
        line += (
            f"; {by} values no budget scopes are not tracked "
            f'(a budget with scope {{{by}: "*"}} would track them)'
        )
    return line
