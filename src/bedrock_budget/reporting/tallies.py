"""The shape every usage source produces: :class:`Tally` rows (calls, tokens by type, cost) keyed by
:class:`UsageKey` (model, route, region, service tier and the attribution values kept), gathered in a
:class:`UsageSet` that says where they came from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from bedrock_budget.errors import ConfigurationError
from bedrock_budget.pricing.money import format_usd

__all__ = [
    "MODEL_GROUP",
    "NONE_VALUE",
    "SECONDS_PER_HOUR",
    "ZERO",
    "ReportError",
    "Tally",
    "UsageKey",
    "UsageSet",
    "sort_key",
    "total_of",
]

ZERO: Final = Decimal(0)
NONE_VALUE: Final = "(none)"
MODEL_GROUP: Final = "model"
SECONDS_PER_HOUR: Final = Decimal(3600)


class ReportError(ConfigurationError):
    """A report or advice the given source cannot produce; the message says what would be needed."""


@dataclass(slots=True)
class Tally:
    """Calls, tokens by type and cost (exact USD) of some traffic."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cost_usd: Decimal = ZERO
    unpriced_calls: int = 0

    def add(self, other: Tally) -> None:
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.cache_write_1h_tokens += other.cache_write_1h_tokens
        self.cost_usd += other.cost_usd
        self.unpriced_calls += other.unpriced_calls

    def minus(self, other: Tally) -> Tally:
        return Tally(
            calls=self.calls - other.calls,
            input_tokens=self.input_tokens - other.input_tokens,
            output_tokens=self.output_tokens - other.output_tokens,
            cache_read_tokens=self.cache_read_tokens - other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens - other.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens - other.cache_write_1h_tokens,
            cost_usd=self.cost_usd - other.cost_usd,
            unpriced_calls=self.unpriced_calls - other.unpriced_calls,
        )

    @property
    def negative(self) -> bool:
        counts = (self.calls, self.input_tokens, self.output_tokens, self.cache_read_tokens)
        return min(counts) < 0 or self.cache_write_tokens < 0 or self.cost_usd < 0

    @property
    def empty(self) -> bool:
        return not (self.calls or self.total_tokens or self.cost_usd)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

    def as_dict(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cost_usd": format_usd(self.cost_usd),
            "unpriced_calls": self.unpriced_calls,
        }


def total_of(tallies: Iterable[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total.add(tally)
    return total


@dataclass(frozen=True, slots=True)
class UsageKey:
    """What a tally row is about. ``region``/``route`` are ``None`` when the source does not know them."""

    model: str
    region: str | None = None
    route: str | None = None
    service_tier: str = "default"
    pricing_mode: str = "on_demand"
    attribution: tuple[tuple[str, str], ...] = ()

    def value(self, key: str) -> str | None:
        if key == MODEL_GROUP:
            return self.model
        for name, value in self.attribution:
            if name == key:
                return value
        return None


def sort_key(key: UsageKey) -> tuple[str, ...]:
    return (
        key.model,
        key.region or "",
        key.route or "",
        key.service_tier,
        key.pricing_mode,
        str(key.attribution),
    )


@dataclass(frozen=True, slots=True)
class UsageSet:
    """Tallies from one source over one period, with a description of where they came from."""

    rows: Mapping[UsageKey, Tally]
    source: str
    #: ``records`` or ``store``.
    kind: str
    #: Attribution keys seen in the source (records: in any call; store: the chosen budget's scope keys).
    keys: tuple[str, ...] = ()
    period_start: datetime | None = None
    period_end: datetime | None = None
    period_hours: Decimal | None = None
    notes: tuple[str, ...] = ()
    #: For store sets: the budget whose counters the rows come from.
    budget: str | None = None
    #: For store sets: every budget whose counters the rows come from (several when each fixes one value).
    budgets: tuple[str, ...] = ()
    #: False when the rows are only part of the period's spend: shares of their total would mislead.
    whole: bool = True

    def total(self) -> Tally:
        return total_of(self.rows.values())

    def grouped(self, by: str) -> dict[str, Tally]:
        groups: dict[str, Tally] = {}
        for key, tally in self.rows.items():
            groups.setdefault(key.value(by) or NONE_VALUE, Tally()).add(tally)
        return groups
