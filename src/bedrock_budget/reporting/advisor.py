"""The advisor's state and values: options, savings found, and the usage rows the levers price, each with
the model spec, region and route it is priced at."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, cast

from bedrock_budget.errors import BedrockBudgetError
from bedrock_budget.model_ids import Route
from bedrock_budget.pricing.money import format_usd
from bedrock_budget.pricing.schema import ModelSpec
from bedrock_budget.pricing.table import DEFAULT_REGION, PriceTable, RateCard, ServiceTier
from bedrock_budget.reporting.amounts import (
    per_month,
    token_femto,
    usd,
)
from bedrock_budget.reporting.tallies import Tally, UsageKey, UsageSet

__all__ = [
    "APP_KEY",
    "DEFAULT_CACHE_SHARE",
    "DEFAULT_CASCADE_SHARE",
    "LEVERS",
    "Advice",
    "AdviseOptions",
    "Advisor",
    "Row",
    "Saving",
]

DEFAULT_CASCADE_SHARE: Final = Decimal("0.8")
DEFAULT_CACHE_SHARE: Final = Decimal("0.5")
LEVERS: Final = ("global-routing", "prompt-caching", "batch", "cascade", "provisioned")
APP_KEY: Final = "app"


@dataclass(frozen=True, slots=True)
class AdviseOptions:
    batch_apps: frozenset[str] = frozenset()
    cascade_share: Decimal = DEFAULT_CASCADE_SHARE
    #: Apps to evaluate a cascade for; ``None``: every app (or all traffic when apps are unknown).
    cascade_apps: frozenset[str] | None = None
    cache_share: Decimal = DEFAULT_CACHE_SHARE
    #: Reads per cache write; ``None``: from the recorded history.
    cache_reads_per_write: Decimal | None = None
    #: Region of usage whose source does not record it (the store).
    region: str = DEFAULT_REGION
    #: Price date; ``None``: today (UTC).
    at: dt.date | None = None
    #: Observed period; ``None``: what the source says.
    period_hours: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Saving:
    """One lever applied to one slice of traffic. Amounts are for the observed period."""

    lever: str
    target: str
    current_usd: Decimal
    projected_usd: Decimal
    saving_usd: Decimal
    monthly_saving_usd: Decimal | None
    recommended: bool
    arithmetic: tuple[str, ...]
    assumptions: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "lever": self.lever,
            "target": self.target,
            "current_usd": format_usd(self.current_usd),
            "projected_usd": format_usd(self.projected_usd),
            "saving_usd": format_usd(self.saving_usd),
            "monthly_saving_usd": None
            if self.monthly_saving_usd is None
            else format_usd(self.monthly_saving_usd),
            "recommended": self.recommended,
            "arithmetic": list(self.arithmetic),
            "assumptions": list(self.assumptions),
        }


@dataclass(frozen=True, slots=True)
class Advice:
    source: str
    period_hours: Decimal | None
    recorded: Tally
    savings: tuple[Saving, ...]
    not_evaluated: tuple[str, ...]
    assumptions: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "period_hours": None if self.period_hours is None else str(self.period_hours),
            "recorded": self.recorded.as_dict(),
            "levers": [s.as_dict() for s in self.savings],
            "not_evaluated": list(self.not_evaluated),
            "assumptions": list(self.assumptions),
        }


@dataclass(slots=True)
class Row:
    key: UsageKey
    tally: Tally
    model: ModelSpec
    region: str
    route: str
    app: str | None
    #: False when the source did not record the route and ``route`` was inferred.
    route_known: bool = True


@dataclass(slots=True)
class Advisor:
    """Prices usage rows for the levers and collects what they find: savings, what was not evaluated and
    why, and the assumptions the figures rest on."""

    table: PriceTable
    options: AdviseOptions
    hours: Decimal | None
    at: dt.date
    #: The observed period of the per-app usage (another budget's window when it comes from the store).
    app_hours: Decimal | None = None
    savings: list[Saving] = field(default_factory=list)
    skipped: dict[str, None] = field(default_factory=dict)
    assumptions: dict[str, None] = field(default_factory=dict)

    def skip(self, text: str) -> None:
        self.skipped[text] = None

    def assume(self, text: str) -> None:
        self.assumptions[text] = None

    def card(
        self,
        model_id: str,
        region: str,
        *,
        route: str = "in_region",
        batch: bool = False,
        tier: str = "default",
    ) -> RateCard | None:
        try:
            return self.table.rate_card(
                model_id,
                region=region,
                route=cast(Route, route),
                batch=batch,
                service_tier=cast(ServiceTier, tier),
                at=self.at,
            )
        except BedrockBudgetError:
            if tier != "default":
                return self.card(model_id, region, route=route, batch=batch)
            return None

    def has_global(self, model: ModelSpec, region: str) -> bool:
        try:
            return "global" in self.table.entry_at(model, self.at).for_region(region).routes
        except BedrockBudgetError:
            return False

    def add(
        self,
        lever: str,
        target: str,
        current: Decimal,
        projected: Decimal,
        arithmetic: Iterable[str],
        assumptions: Iterable[str] = (),
        *,
        monthly: Decimal | None = None,
        per_app: bool = False,
    ) -> None:
        saving = current - projected
        positive = saving > 0
        if monthly is None:
            monthly = per_month(saving, self.app_hours if per_app else self.hours)
        self.savings.append(
            Saving(
                lever=lever,
                target=target,
                current_usd=current,
                projected_usd=projected,
                saving_usd=saving if positive else Decimal(0),
                monthly_saving_usd=monthly if positive else None,
                recommended=positive,
                arithmetic=tuple(arithmetic),
                assumptions=tuple(assumptions),
            )
        )

    # -- rows ------------------------------------------------------------------------------------------

    def rows(self, usage: UsageSet) -> list[Row]:
        rows: list[Row] = []
        excluded: dict[str, int] = {}
        unknown: dict[str, None] = {}
        inferred = False
        for key, tally in usage.rows.items():
            if key.pricing_mode != "on_demand":
                excluded[key.pricing_mode] = excluded.get(key.pricing_mode, 0) + tally.calls
                continue
            model = self._model(key.model)
            if model is None:
                unknown[key.model] = None
                continue
            region = key.region or self.options.region
            route = key.route
            if route is None:
                route = self._infer_route(key, tally, model, region)
                inferred = True
            rows.append(Row(key, tally, model, region, route, key.value(APP_KEY), key.route is not None))
        for mode, calls in sorted(excluded.items()):
            self.skip(f"{calls:,} calls billed as {mode} (not on-demand tokens) are left out")
        if unknown:
            self.skip(
                f"usage of models the price table does not know is left out: {', '.join(sorted(unknown))}"
            )
        if inferred:
            self.assume(
                f"the store records neither region nor route: region {self.options.region} is assumed, and "
                "each model's route is the one (in-region or global) whose price is nearer its recorded cost"
            )
            self.assume(
                "the store does not tell 5-minute from 1-hour cache writes: all are priced as 5-minute"
            )
        return rows

    def _model(self, model_id: str) -> ModelSpec | None:
        found = self.table.find(model_id)
        if found is not None:
            return found
        try:
            return self.table.model(model_id)
        except BedrockBudgetError:
            return None

    def _infer_route(self, key: UsageKey, tally: Tally, model: ModelSpec, region: str) -> str:
        if not self.has_global(model, region):
            return "in_region"
        regional = self.card(model.id, region, tier=key.service_tier)
        global_ = self.card(model.id, region, route="global", tier=key.service_tier)
        if regional is None or global_ is None:
            return "in_region"
        recorded = tally.cost_usd
        gap_regional = abs(recorded - usd(token_femto(regional, tally)))
        gap_global = abs(recorded - usd(token_femto(global_, tally)))
        return "global" if gap_global < gap_regional else "in_region"

    @staticmethod
    def group(
        rows: Iterable[Row], *, by_app: bool = False
    ) -> dict[tuple[str | None, str, str, str, str], tuple[Row, Tally]]:
        """Rows summed per (app, model, region, route, tier); the first row stands for its group."""
        groups: dict[tuple[str | None, str, str, str, str], tuple[Row, Tally]] = {}
        for row in rows:
            group = (row.app if by_app else None, row.model.id, row.region, row.route, row.key.service_tier)
            if group not in groups:
                groups[group] = (row, Tally())
            groups[group][1].add(row.tally)
        return dict(sorted(groups.items(), key=lambda item: tuple(x or "" for x in item[0])))
