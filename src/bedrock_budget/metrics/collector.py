"""Budget gauges read from the budget store at scrape time.

Every process (and the ``bedrock-budget serve-metrics`` exporter) reads the same store, so they all report
the same numbers; a briefly cached read keeps scrapes from several Prometheus servers, or a dashboard
refresh storm, from turning into store load.

One series per budget, labelled ``budget`` only. A budget with a wildcard scope (``scope: {user: "*"}``)
keeps one counter per scope value; its gauges show the *most used* of those counters (spent, reserved and
utilisation of the worst-off user), and ``bedrock_budget_budget_counters`` says how many there are. That
is what an alert needs (someone is at 80%) without a series per user; ``bedrock-budget`` CLI answers who.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Final, Protocol

from bedrock_budget.metrics.state_reader import (
    BudgetState,
    BudgetStateReader,
    BudgetStateSource,
    gauge_points,
)

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from bedrock_budget.budgets.model import Budget
    from bedrock_budget.stores.base import CounterState, Store

PREFIX: Final = "bedrock_budget_"
_ZERO: Final = Decimal(0)

__all__ = [
    "BudgetCollector",
    "BudgetState",
    "BudgetStateSource",
    "LedgerBudgetSource",
    "StoreBudgetSource",
]


class StoreBudgetSource:
    """Budget states from a :class:`~bedrock_budget.stores.base.Store` and the budget definitions.

    Limits come from ``budgets`` (the store keeps amounts, not limits). Counters of budgets that are not
    defined here are still reported (spent, reserved, reset time) unless ``include_undefined`` is false;
    counters of earlier windows, or of a window kind/zone the definition no longer uses, are ignored.
    """

    def __init__(
        self,
        store: Store,
        budgets: Iterable[Budget] = (),
        *,
        include_undefined: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.budgets = {b.name: b for b in budgets}
        self.include_undefined = include_undefined
        self._clock = clock

    def set_budgets(self, budgets: Iterable[Budget]) -> None:
        """Replace the definitions (e.g. when the store's published budgets change)."""
        self.budgets = {b.name: b for b in budgets}

    def list_budget_states(self) -> list[BudgetState]:
        from bedrock_budget.budgets.units import milli_to_tokens, nanos_to_usd

        now = self._clock()
        now_s = int(now)
        groups: dict[str, list[CounterState]] = {name: [] for name in self.budgets}
        for state in self.store.list(now_ms=int(now * 1000)):
            ref = state.ref
            if ref.start > now_s or (ref.end is not None and now_s >= ref.end):
                continue
            budget = self.budgets.get(ref.budget)
            if budget is None:
                if not self.include_undefined:
                    continue
            elif (ref.window, ref.timezone) != (budget.window.kind, budget.window.timezone):
                continue
            groups.setdefault(ref.budget, []).append(state)

        result: list[BudgetState] = []
        for name, states in sorted(groups.items()):
            budget = self.budgets.get(name)
            if budget is not None:
                resets_at: float | None = budget.window.bounds(now)[1]
                window = budget.window.kind
            else:
                ends = {s.ref.end for s in states}
                resets_at = min((e for e in ends if e is not None), default=None)
                window = states[0].ref.window
            # The fullest counter relative to its own limit: a per-value override gives one user a limit of
            # their own, so the largest spend is not necessarily the one closest to its limit.
            usd = max(states, key=lambda s: _fill(budget, s, "usd"), default=None)
            tok = max(states, key=lambda s: _fill(budget, s, "tokens"), default=None)
            req = max(states, key=lambda s: _fill(budget, s, "requests"), default=None)
            usd_budget = budget.for_values(usd.ref.scope) if budget is not None and usd else budget
            tok_budget = budget.for_values(tok.ref.scope) if budget is not None and tok else budget
            result.append(
                BudgetState(
                    budget=name,
                    window=window,
                    limit_usd=usd_budget.limit_usd if usd_budget is not None else None,
                    spent_usd=nanos_to_usd(usd.spent_usd) if usd else _ZERO,
                    reserved_usd=nanos_to_usd(usd.held_usd) if usd else _ZERO,
                    limit_tokens=tok_budget.limit_tokens if tok_budget is not None else None,
                    spent_tokens=milli_to_tokens(tok.spent_tokens) if tok else _ZERO,
                    reserved_tokens=milli_to_tokens(tok.held_tokens) if tok else _ZERO,
                    resets_at=resets_at,
                    counters=len(states),
                    limit_requests=budget.limit_requests if budget is not None else None,
                    spent_requests=req.spent_requests if req else 0,
                    reserved_requests=req.held_requests if req else 0,
                )
            )
        return result


class _Status(Protocol):
    """What :class:`LedgerBudgetSource` reads from ``Ledger.status()`` entries."""

    @property
    def budget(self) -> Budget: ...
    @property
    def resets_at(self) -> datetime | None: ...
    @property
    def spent_usd(self) -> Decimal: ...
    @property
    def reserved_usd(self) -> Decimal: ...
    @property
    def spent_tokens(self) -> Decimal: ...
    @property
    def reserved_tokens(self) -> Decimal: ...
    @property
    def spent_requests(self) -> int: ...
    @property
    def reserved_requests(self) -> int: ...


class _StatusLister(Protocol):
    def status(self) -> Sequence[_Status]: ...


class LedgerBudgetSource:
    """Budget states from an in-process budget ledger (``bedrock_budget.budgets.Ledger``): its configured
    budgets only, one :class:`BudgetState` per budget (worst scope for wildcard budgets)."""

    def __init__(self, ledger: _StatusLister) -> None:
        self.ledger = ledger

    def list_budget_states(self) -> list[BudgetState]:
        groups: dict[str, list[_Status]] = {}
        for status in self.ledger.status():
            groups.setdefault(status.budget.name, []).append(status)
        result: list[BudgetState] = []
        for name, items in sorted(groups.items()):
            usd = max(items, key=lambda s: _ratios(s.spent_usd, s.reserved_usd, s.budget.limit_usd))
            tok = max(items, key=lambda s: _ratios(s.spent_tokens, s.reserved_tokens, s.budget.limit_tokens))
            budget = items[0].budget
            req = max(
                items, key=lambda s: _ratios(s.spent_requests, s.reserved_requests, s.budget.limit_requests)
            )
            resets = items[0].resets_at
            result.append(
                BudgetState(
                    budget=name,
                    window=budget.window.kind,
                    limit_usd=usd.budget.limit_usd,
                    spent_usd=usd.spent_usd,
                    reserved_usd=usd.reserved_usd,
                    limit_tokens=tok.budget.limit_tokens,
                    spent_tokens=tok.spent_tokens,
                    reserved_tokens=tok.reserved_tokens,
                    resets_at=resets.timestamp() if resets is not None else None,
                    counters=sum(
                        1
                        for s in items
                        if s.spent_usd
                        or s.reserved_usd
                        or s.spent_tokens
                        or s.reserved_tokens
                        or s.spent_requests
                        or s.reserved_requests
                    ),
                    limit_requests=req.budget.limit_requests,
                    spent_requests=req.spent_requests,
                    reserved_requests=req.reserved_requests,
                )
            )
        return result


_GAUGES: Final = (
    ("budget_limit_usd", "Budget limit in US dollars for the current window."),
    (
        "budget_spent_usd",
        "US dollars spent in the budget's current window (worst scope for wildcard budgets).",
    ),
    ("budget_reserved_usd", "US dollars held by calls in flight against the budget."),
    ("budget_limit_tokens", "Budget limit in weighted tokens for the current window."),
    ("budget_spent_tokens", "Weighted tokens spent in the budget's current window."),
    ("budget_reserved_tokens", "Weighted tokens held by calls in flight against the budget."),
    ("budget_limit_requests", "Budget limit in requests (calls) for the current window."),
    ("budget_spent_requests", "Requests made in the budget's current window (under a request limit)."),
    ("budget_reserved_requests", "Requests held by calls in flight against the budget."),
    ("budget_utilisation_ratio", "Spent divided by limit (1 = exhausted), per unit (usd, tokens, requests)."),
    ("budget_reset_seconds", "Seconds until the budget's window resets."),
    ("budget_counters", "Scope values holding spend in the current window (1 unless the scope has '*')."),
)


class BudgetCollector:
    """A prometheus_client collector: ``registry.register(BudgetCollector(source))``.

    ``collect()`` is the whole protocol; ``describe()`` only lists names, so registering on a registry
    with ``auto_describe`` does not read the store. Reads are cached for ``cache_seconds``; a failed read
    exports ``bedrock_budget_store_up 0`` and no budget series (stale numbers would keep alerts wrong).
    ``max_budgets`` bounds the series: budgets beyond it (alphabetically) are left out, with a warning.
    """

    def __init__(
        self,
        source: BudgetStateSource,
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

    @property
    def source(self) -> BudgetStateSource:
        return self.reader.source

    @property
    def cache_seconds(self) -> float:
        return self.reader.cache_seconds

    @property
    def max_budgets(self) -> int:
        return self.reader.max_budgets

    def describe(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        for name, doc in (*_GAUGES, ("store_up", "")):
            yield GaugeMetricFamily(PREFIX + name, doc or name)

    def states(self) -> Sequence[BudgetState] | None:
        """The cached states (``None`` when the last read failed)."""
        return self.reader.states()

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        states = self.states()
        up = GaugeMetricFamily(PREFIX + "store_up", "1 when the last read of budget states succeeded.")
        up.add_metric([], 0.0 if states is None else 1.0)
        yield up
        if states is None:
            return
        families = {
            name: GaugeMetricFamily(PREFIX + name, doc, labels=_labels_of(name)) for name, doc in _GAUGES
        }
        for point in gauge_points(states, self._clock()):
            kind, unit = point.kind, point.unit
            if kind == "utilisation":
                families["budget_utilisation_ratio"].add_metric([point.budget, str(unit)], point.value)
            else:
                families[_FAMILY_OF[kind] + (f"_{unit}" if unit else "")].add_metric(
                    [point.budget], point.value
                )
        yield from families.values()


_FAMILY_OF: Final = {
    "limit": "budget_limit",
    "spent": "budget_spent",
    "reserved": "budget_reserved",
    "reset_seconds": "budget_reset_seconds",
    "counters": "budget_counters",
}


def _labels_of(name: str) -> list[str]:
    return ["budget", "unit"] if name == "budget_utilisation_ratio" else ["budget"]


def _ratios(
    spent: Decimal | int, held: Decimal | int, limit: Decimal | int | None
) -> tuple[Fraction, Fraction]:
    if not limit:
        return Fraction(spent), Fraction(held)
    return Fraction(spent) / Fraction(limit), Fraction(held) / Fraction(limit)


def _fill(budget: Budget | None, state: CounterState, unit: str) -> tuple[Fraction, Fraction]:
    if unit == "usd":
        spent, held = state.spent_usd, state.held_usd
        limit = budget.for_values(state.ref.scope).limit_nanos if budget is not None else None
    elif unit == "tokens":
        spent, held = state.spent_tokens, state.held_tokens
        limit = budget.for_values(state.ref.scope).limit_milli if budget is not None else None
    else:
        spent, held = state.spent_requests, state.held_requests
        limit = budget.for_values(state.ref.scope).limit_requests if budget is not None else None
    return _ratios(Decimal(spent), Decimal(held), Decimal(limit) if limit else None)
