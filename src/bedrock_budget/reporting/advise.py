"""What each savings lever would have saved on recorded usage, in dollars, with the arithmetic shown.

Every estimate prices the recorded token counts twice with the price table, as they were billed and as
they would be billed with the lever, so both sides use the same rates and the difference is the lever
alone. Amounts are for the observed period; monthly figures scale it to 730 hours.

- **global-routing**: traffic on a model whose price file has a ``routes.global`` rate, sent through an
  in-region or geographic route, priced at the global rate instead.
- **prompt-caching**: a share of the uncached input tokens (``cache_share``, an assumption) is a prefix
  re-sent within the cache lifetime. With caching, one send in ``1 + k`` writes it and ``k`` read it, where
  ``k`` (reads per write) comes from the recorded cache history. Saving = share x uncached input x (input
  rate - blended write/read rate).
- **batch**: apps named as non-interactive priced at the model's batch rate (batch uses no prompt cache, so
  cached tokens are billed as input), or at 50% of on-demand when no batch rate is listed.
- **cascade**: ``cascade_share`` of an app's calls moved to the cheapest active model of the same family
  (cheapest for that traffic's token mix).
- **provisioned**: observed on-demand spend per month against one model unit of Provisioned Throughput at
  the cheapest commitment the price table lists, with the break-even volume as in
  :mod:`bedrock_budget.pricing.planning`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Final, cast

from bedrock_budget.errors import BedrockBudgetError
from bedrock_budget.model_ids import Route
from bedrock_budget.pricing.money import FEMTO_PER_USD, femto_to_usd, format_usd
from bedrock_budget.pricing.planning import HOURS_PER_MONTH
from bedrock_budget.pricing.schema import ModelSpec
from bedrock_budget.pricing.table import DEFAULT_REGION, Commitment, PriceTable, RateCard, ServiceTier
from bedrock_budget.reporting.sources import Tally, UsageKey, UsageSet, total_of

DEFAULT_CASCADE_SHARE: Final = Decimal("0.8")
DEFAULT_CACHE_SHARE: Final = Decimal("0.5")
DEFAULT_READS_PER_WRITE: Final = Decimal(4)
BATCH_FALLBACK: Final = Decimal("0.5")
LEVERS: Final = ("global-routing", "prompt-caching", "batch", "cascade", "provisioned")
APP_KEY: Final = "app"

_PER_MILLION: Final = 1_000_000
_NANO: Final = Decimal("1E-9")
_CENT: Final = Decimal("0.01")
_TENTH: Final = Decimal("0.1")
_COMMITMENTS: Final[tuple[Commitment, ...]] = ("none", "1-month", "6-month")
_TERMS: Final[dict[str, str]] = {
    "none": "no commitment",
    "1-month": "1-month commitment",
    "6-month": "6-month commitment",
}


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


# --- arithmetic helpers ---------------------------------------------------------------------------------


def _tidy(value: Decimal) -> Decimal:
    """No trailing zeros or exponent; finer than a femto-dollar only after a division, so rounded there."""
    return femto_to_usd((value * FEMTO_PER_USD).to_integral_value(ROUND_HALF_EVEN))


def _usd(femto: int | Decimal) -> Decimal:
    """USD of femto-dollars: exact, or to the nano-dollar when a share or a division made it finer."""
    value = Decimal(femto).scaleb(-15)
    rounded = value.quantize(_NANO, ROUND_HALF_EVEN)
    return _tidy(rounded if rounded != value else value)


def _money(value: Decimal) -> str:
    return f"${format_usd(value)}"


def _rate(femto_per_token: int | Decimal) -> str:
    return f"${format_usd(_tidy(Decimal(femto_per_token) * _PER_MILLION / FEMTO_PER_USD))}/1M"


def _share(value: Decimal) -> str:
    return f"{_tidy(value * 100)}%"


def _dims(card: RateCard, t: Tally) -> list[tuple[str, int, int]]:
    w1h = t.cache_write_1h_tokens
    return [
        ("input", t.input_tokens, card.input),
        ("output", t.output_tokens, card.output),
        ("cache read", t.cache_read_tokens, card.cache_read),
        ("cache write", t.cache_write_tokens - w1h, card.cache_write_5m),
        ("cache write 1h", w1h, card.cache_write_1h),
    ]


def token_femto(card: RateCard, t: Tally) -> int:
    """Femto-dollars of a tally's tokens at a card's standard-context rates (linear in the counts)."""
    return sum(count * rate for _, count, rate in _dims(card, t))


def _cost_line(card: RateCard, t: Tally) -> str:
    parts = [f"{label} {count:,} x {_rate(rate)}" for label, count, rate in _dims(card, t) if count]
    return f"{' + '.join(parts) or 'no tokens'} = {_money(_usd(token_femto(card, t)))}"


def format_hours(hours: Decimal) -> str:
    """Hours for reading: a window that has run 508.0072 hours so far reads 508.01."""
    rounded = hours.quantize(_CENT, ROUND_HALF_UP)
    return str(rounded.to_integral_value() if rounded == rounded.to_integral_value() else rounded.normalize())


def _monthly(amount: Decimal, hours: Decimal | None) -> Decimal | None:
    if hours is None or not hours:
        return None
    return (amount * HOURS_PER_MONTH / hours).quantize(_CENT, ROUND_HALF_UP)


@dataclass(slots=True)
class _Row:
    key: UsageKey
    tally: Tally
    model: ModelSpec
    region: str
    route: str
    app: str | None
    #: False when the source did not record the route and ``route`` was inferred.
    route_known: bool = True


@dataclass(slots=True)
class _Advisor:
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
            monthly = _monthly(saving, self.app_hours if per_app else self.hours)
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

    def rows(self, usage: UsageSet) -> list[_Row]:
        rows: list[_Row] = []
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
            rows.append(_Row(key, tally, model, region, route, key.value(APP_KEY), key.route is not None))
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
        gap_regional = abs(recorded - _usd(token_femto(regional, tally)))
        gap_global = abs(recorded - _usd(token_femto(global_, tally)))
        return "global" if gap_global < gap_regional else "in_region"

    @staticmethod
    def group(
        rows: Iterable[_Row], *, by_app: bool = False
    ) -> dict[tuple[str | None, str, str, str, str], tuple[_Row, Tally]]:
        """Rows summed per (app, model, region, route, tier); the first row stands for its group."""
        groups: dict[tuple[str | None, str, str, str, str], tuple[_Row, Tally]] = {}
        for row in rows:
            group = (row.app if by_app else None, row.model.id, row.region, row.route, row.key.service_tier)
            if group not in groups:
                groups[group] = (row, Tally())
            groups[group][1].add(row.tally)
        return dict(sorted(groups.items(), key=lambda item: tuple(x or "" for x in item[0])))

    # -- levers ----------------------------------------------------------------------------------------

    def global_routing(self, rows: list[_Row]) -> None:
        lacking: dict[str, None] = {}
        already: dict[str, None] = {}
        assumption = (
            "global. profiles may serve a request from any commercial AWS region: only for traffic without "
            "data-residency requirements"
        )
        for (_, model_id, region, route, tier), (row, tally) in self.group(
            r for r in rows if r.route_known
        ).items():
            if route == "global":
                continue
            if not self.has_global(row.model, region):
                lacking[model_id] = None
                continue
            now_card = self.card(model_id, region, route=route, tier=tier)
            global_card = self.card(model_id, region, route="global", tier=tier)
            if now_card is None or global_card is None:
                continue
            now = _usd(token_femto(now_card, tally))
            after = _usd(token_femto(global_card, tally))
            lines = [
                f"{label} {count:,} x ({_rate(a)} - {_rate(b)}) = {_money(_usd(count * (a - b)))}"
                for (label, count, a), (_, _, b) in zip(
                    _dims(now_card, tally), _dims(global_card, tally), strict=True
                )
                if count and a != b
            ]
            lines.append(f"{route} {_money(now)} -> global {_money(after)}: saves {_money(now - after)}")
            target = f"{model_id} ({route}, {region}, {tally.calls:,} calls)"
            self.add("global-routing", target, now, after, lines, (assumption,))
        unknown: dict[tuple[str, str, str], tuple[_Row, Tally]] = {}
        for row in rows:
            if not row.route_known:
                group = (row.model.id, row.region, row.key.service_tier)
                _, tally = unknown.setdefault(group, (row, Tally()))
                tally.add(row.tally)
        for (model_id, region, tier), (row, tally) in sorted(unknown.items(), key=lambda item: item[0]):
            if not self.has_global(row.model, region):
                lacking[model_id] = None
                continue
            regional_card = self.card(model_id, region, tier=tier)
            global_card = self.card(model_id, region, route="global", tier=tier)
            if regional_card is None or global_card is None:
                continue
            recorded = tally.cost_usd
            regional = _usd(token_femto(regional_card, tally))
            global_ = _usd(token_femto(global_card, tally))
            # Each call's cost is rounded up to a nano-dollar when recorded: that much is not a premium.
            premium = recorded - global_
            if premium <= Decimal(tally.calls) * _NANO:
                already[model_id] = None
                continue
            saving = min(premium, regional - global_)
            lines = [
                f"recorded {_money(recorded)}; the same tokens cost {_money(regional)} at in-region rates "
                f"and {_money(global_)} at global rates",
                f"the store keeps no route, so the recorded cost above the global price is what non-global "
                f"routes added: {_money(recorded)} - {_money(global_)} = {_money(premium)}"
                + (f", capped at {_money(regional)} - {_money(global_)}" if saving < premium else ""),
            ]
            target = f"{model_id} (recorded routes, {region}, {tally.calls:,} calls)"
            self.add("global-routing", target, recorded, recorded - saving, lines, (assumption,))
        if lacking:
            self.skip(f"global-routing: no global-profile rate in the price table for {', '.join(lacking)}")
        if already:
            self.skip(f"global-routing: already billed at global rates: {', '.join(already)}")

    def prompt_caching(self, rows: list[_Row]) -> None:
        per_model: dict[str, Tally] = {}
        for row in rows:
            per_model.setdefault(row.model.id, Tally()).add(row.tally)
        everything = total_of(per_model.values())
        share = self.options.cache_share
        no_discount: dict[str, None] = {}
        for (_, model_id, region, route, tier), (_, tally) in self.group(rows).items():
            if not tally.input_tokens:
                continue
            card = self.card(model_id, region, route=route, tier=tier)
            if card is None:
                continue
            if card.cache_read >= card.input:
                no_discount[model_id] = None
                continue
            k, k_source = self._reads_per_write(per_model[model_id], everything)
            resent = share * tally.input_tokens
            write, read, plain = card.cache_write_5m, card.cache_read, card.input
            blended = (write + k * read) / (1 + k)
            now = _usd(resent * plain)
            after = _usd(resent * blended)
            lines = [
                f"uncached input {tally.input_tokens:,} tokens x {_share(share)} re-sent prefix = "
                f"{_tidy(resent):,} tokens",
                f"reads per write k = {k_source}",
                f"cached: (1 write x {_rate(write)} + {_tidy(k)} reads x {_rate(read)}) / {_tidy(1 + k)} = "
                f"{_rate(blended)}",
                f"{_tidy(resent):,} x ({_rate(plain)} - {_rate(blended)}) = {_money(now - after)}",
            ]
            if tally.cache_read_tokens or tally.cache_write_tokens:
                realised = _usd(
                    tally.cache_read_tokens * (plain - read) - tally.cache_write_tokens * (write - plain)
                )
                lines.append(
                    f"already cached: {tally.cache_read_tokens:,} reads x ({_rate(plain)} - {_rate(read)}) - "
                    f"{tally.cache_write_tokens:,} writes x ({_rate(write)} - {_rate(plain)}) = "
                    f"{_money(realised)} saved so far"
                )
            self.add(
                "prompt-caching",
                f"{model_id} ({route}, {region}, {tally.calls:,} calls)",
                now,
                after,
                lines,
                (
                    f"{_share(share)} of the uncached input tokens repeat a prefix (system prompt, tools, "
                    "documents) sent again within the cache lifetime (5 minutes): measure it for your "
                    "prompts",
                    "prefixes shorter than the model's minimum cacheable length cannot be cached",
                ),
            )
        if no_discount:
            self.skip(
                f"prompt-caching: no cache-read discount in the price table for {', '.join(no_discount)}"
            )

    def _reads_per_write(self, model: Tally, everything: Tally) -> tuple[Decimal, str]:
        if self.options.cache_reads_per_write is not None:
            k = self.options.cache_reads_per_write
            return k, f"{_tidy(k)} (given)"
        for scope, t in (("this model's", model), ("all recorded", everything)):
            if t.cache_write_tokens:
                k = Decimal(t.cache_read_tokens) / t.cache_write_tokens
                return k, (
                    f"{t.cache_read_tokens:,} / {t.cache_write_tokens:,} = {_tidy(k)} ({scope} cache history)"
                )
        k = DEFAULT_READS_PER_WRITE
        return k, f"{k} (assumed: no cache writes recorded; pass --cache-reads-per-write)"

    def batch(self, rows: list[_Row], apps_known: bool, why: str, missing: Callable[[str], str]) -> None:
        wanted = self.options.batch_apps
        if not wanted:
            return
        if not apps_known:
            self.skip(f"batch: needs usage per app, but {why}")
            return
        present = {row.app for row in rows}
        for absent in sorted(wanted - present):
            self.skip(f"batch: {missing(absent)}")
        for (app, model_id, region, route, tier), (_, tally) in self.group(
            (r for r in rows if r.app in wanted), by_app=True
        ).items():
            card = self.card(model_id, region, route=route, tier=tier)
            if card is None:
                continue
            now_femto = token_femto(card, tally)
            now = _usd(now_femto)
            lines = [f"now: {_cost_line(card, tally)}"]
            assumptions = ["batch jobs complete within 24 hours, without a latency guarantee"]
            batch_card = self.card(model_id, region, batch=True)
            if batch_card is None:
                after = _usd(now_femto * BATCH_FALLBACK)
                lines.append(
                    f"no batch rate listed for {model_id}: {_money(now)} x {_share(BATCH_FALLBACK)} = "
                    f"{_money(after)}"
                )
                assumptions.append(
                    f"Bedrock's usual 50% batch discount (the price table lists no batch rate: check that "
                    f"{model_id} is offered for batch inference)"
                )
            else:
                prompt = tally.input_tokens + tally.cache_read_tokens + tally.cache_write_tokens
                after = _usd(prompt * batch_card.input + tally.output_tokens * batch_card.output)
                cached = (
                    f" ({tally.input_tokens:,} input + {tally.cache_read_tokens:,} cache read + "
                    f"{tally.cache_write_tokens:,} cache write)"
                    if tally.cache_read_tokens or tally.cache_write_tokens
                    else ""
                )
                lines.append(
                    f"batch: input {prompt:,}{cached} x {_rate(batch_card.input)} + output "
                    f"{tally.output_tokens:,} x {_rate(batch_card.output)} = {_money(after)}"
                )
                if cached:
                    assumptions.append("batch uses no prompt cache: cached tokens are billed as input")
            lines.append(f"{_money(now)} - {_money(after)} = {_money(now - after)}")
            self.add(
                "batch", f"app {app}: {model_id} ({tally.calls:,} calls)", now, after, lines, assumptions
            )

    def cascade(self, rows: list[_Row], apps_known: bool, why: str, missing: Callable[[str], str]) -> None:
        share = self.options.cascade_share
        wanted = self.options.cascade_apps
        if wanted is not None:
            if not apps_known:
                self.skip(f"cascade: needs usage per app, but {why}")
                return
            for absent in sorted(wanted - {row.app for row in rows}):
                self.skip(f"cascade: {missing(absent)}")
            rows = [r for r in rows if r.app in wanted]
        cheapest_already: dict[str, None] = {}
        for (app, model_id, region, route, tier), (row, tally) in self.group(rows, by_app=apps_known).items():
            card = self.card(model_id, region, route=route, tier=tier)
            if card is None:
                continue
            now_femto = token_femto(card, tally)
            options: list[tuple[int, str, RateCard]] = []
            for candidate in self.table.models.values():
                if (
                    candidate.id == model_id
                    or candidate.family != row.model.family
                    or candidate.kind != row.model.kind
                    or candidate.lifecycle != "active"
                ):
                    continue
                other = self.card(candidate.id, region, route=route, tier=tier)
                if other is not None:
                    options.append((token_femto(other, tally), candidate.id, other))
            if not options:
                continue
            options.sort(key=lambda o: (o[0], o[1]))
            best_femto, best_id, best_card = options[0]
            who = f"app {app}" if apps_known else "all traffic"
            if best_femto >= now_femto:
                cheapest_already[f"{model_id} ({who})"] = None
                continue
            now, best = _usd(now_femto), _usd(best_femto)
            lines = [
                f"now {model_id}: {_cost_line(card, tally)}",
                f"on {best_id}: {_cost_line(best_card, tally)}",
                f"move {_share(share)} of the calls: {_tidy(share)} x ({_money(now)} - {_money(best)}) = "
                f"{_money(_usd((now_femto - best_femto) * share))}",
            ]
            others = ", ".join(f"{ident} {_money(_usd(femto))}" for femto, ident, _ in options[1:4])
            lines.append(f"{best_id} is the cheapest active {row.model.family} model for this token mix")
            if others:
                lines[-1] += f" (next: {others})"
            self.add(
                "cascade",
                f"{who}: {model_id} -> {best_id} ({tally.calls:,} calls)",
                _usd(now_femto * share),
                _usd(best_femto * share),
                lines,
                (
                    f"{best_id} answers the moved {_share(share)} of calls well enough (route them by a "
                    "confidence check or task type); moved calls keep their token counts",
                ),
                per_app=apps_known,
            )
        if cheapest_already:
            self.skip(
                f"cascade: already on the cheapest active model of the family: {', '.join(cheapest_already)}"
            )

    def provisioned(self, rows: list[_Row]) -> None:
        per_model: dict[tuple[str, str], tuple[_Row, Tally, int]] = {}
        for row in rows:
            if row.route_known:
                card = self.card(row.model.id, row.region, route=row.route, tier=row.key.service_tier)
                if card is None:
                    continue
                femto = token_femto(card, row.tally)
            else:
                # Without the route, what was paid is the best measure of the on-demand spend.
                femto = int(row.tally.cost_usd * FEMTO_PER_USD)
            key = (row.model.id, row.region)
            first, tally, total = per_model.get(key, (row, Tally(), 0))
            tally.add(row.tally)
            per_model[key] = (first, tally, total + femto)
        hours = self.hours
        unpriced: dict[str, None] = {}
        for (model_id, region), (_, tally, femto) in sorted(per_model.items()):
            offered: list[tuple[Decimal, Commitment]] = []
            for term in _COMMITMENTS:
                try:
                    quote = self.table.price_provisioned(
                        model_id,
                        model_units=1,
                        commitment=term,
                        hours=HOURS_PER_MONTH,
                        region=region,
                        at=self.at,
                    )
                except BedrockBudgetError:
                    continue
                offered.append((quote.total_usd, term))
            if not offered:
                unpriced[model_id] = None
                continue
            if hours is None:
                self.skip("provisioned: needs the length of the observed period (--period-hours)")
                continue
            now = _usd(femto)
            if not now or not tally.calls:
                continue
            monthly_now = now * HOURS_PER_MONTH / hours
            calls_month = (tally.calls * HOURS_PER_MONTH / hours).to_integral_value(ROUND_HALF_UP)
            lines = [
                f"on-demand: {_money(now)} in {format_hours(hours)} h x 730 / {format_hours(hours)} = "
                f"{_money(monthly_now.quantize(_CENT, ROUND_HALF_UP))}/month ({calls_month:,} calls/month)"
            ]
            for monthly_cost, term in offered:
                lines.append(
                    f"1 model unit, {_TERMS[term]}: {_money(_tidy(monthly_cost / HOURS_PER_MONTH))}/h x "
                    f"730 h = {_money(monthly_cost)}/month"
                )
            provisioned, term = min(offered)
            per_call = now / tally.calls
            break_even = (provisioned / per_call).to_integral_value(ROUND_HALF_UP)
            utilisation = (monthly_now * 100 / provisioned).quantize(_TENTH, ROUND_HALF_UP)
            call_cost = _money(_usd(per_call * FEMTO_PER_USD))
            lines.append(
                f"break-even ({_TERMS[term]}): {_money(provisioned)} / {call_cost} per call = "
                f"{break_even:,} calls/month; this workload is {utilisation}% of it"
            )
            gap = monthly_now - provisioned
            if gap > 0:
                lines.append(f"provisioned saves {_money(gap.quantize(_CENT, ROUND_HALF_UP))}/month")
            else:
                lines.append(
                    f"stay on-demand: provisioned costs {_money((-gap).quantize(_CENT, ROUND_HALF_UP))} "
                    "more a month at this volume"
                )
            self.add(
                "provisioned",
                f"{model_id} ({region}, 1 model unit, {_TERMS[term]})",
                now,
                _tidy(provisioned * hours / HOURS_PER_MONTH),
                lines,
                (
                    "one model unit carries this traffic (the price table has no per-unit throughput: check "
                    "the model's tokens per minute per unit)",
                ),
                monthly=gap.quantize(_CENT, ROUND_HALF_UP),
            )
        if unpriced:
            self.skip(
                f"provisioned: no Provisioned Throughput price in the price table for {', '.join(unpriced)}"
            )


def advise(
    table: PriceTable,
    usage: UsageSet,
    options: AdviseOptions | None = None,
    *,
    by_app: UsageSet | None = None,
) -> Advice:
    """Estimate every lever on ``usage`` (all recorded traffic). ``by_app`` is the same traffic split per
    app when ``usage`` itself is not (a store whose all-calls budget is not counted per app); batch and
    cascade need it."""
    options = options or AdviseOptions()
    hours = options.period_hours if options.period_hours is not None else usage.period_hours
    at = options.at or dt.datetime.now(dt.UTC).date()
    app_source = usage if APP_KEY in usage.keys or by_app is None else by_app
    app_hours = options.period_hours if options.period_hours is not None else app_source.period_hours
    advisor = _Advisor(table, options, hours, at, app_hours)
    rows = advisor.rows(usage)
    app_rows = rows if app_source is usage else advisor.rows(app_source)
    apps_known = APP_KEY in app_source.keys
    why = (
        "no call record carries an app attribution"
        if usage.kind == "records"
        else 'no budget in the store is counted per app (add one with scope {app: "*"}, or use --records)'
    )
    if apps_known and app_source is not usage:
        period = "" if app_hours is None else f", whose window has {format_hours(app_hours)} hours"
        names = ", ".join(app_source.budgets or (str(app_source.budget),))
        plural = "budgets" if len(app_source.budgets) > 1 else "budget"
        advisor.assume(f"per-app levers (batch, cascade) use the tallies of {plural} {names}{period}")
        for note in app_source.notes:
            advisor.assume(f"per-app levers: {note}")

    def missing(app: str) -> str:
        if apps_known and app_source.kind == "store" and not app_source.whole:
            tracked = ", ".join(sorted({r.app for r in app_rows if r.app}))
            return (
                f"no budget in the store scopes app {app!r}, so its spend is not tracked per app (tracked: "
                f'{tracked}; a budget with scope {{app: "*"}} would track every app)'
            )
        return f"no recorded usage for app {app!r}"

    advisor.global_routing(rows)
    advisor.prompt_caching(rows)
    advisor.batch(app_rows, apps_known, why, missing)
    advisor.cascade(app_rows if apps_known else rows, apps_known, why, missing)
    advisor.provisioned(rows)
    advisor.assume(
        f"prices in force on {at.isoformat()}; tokens priced at standard-context rates, so both sides of "
        "every comparison use the same rates"
    )
    if hours is not None:
        advisor.assume(f"monthly figures scale the observed {format_hours(hours)} hours to 730 hours")
    advisor.assume("levers overlap (batch and cascade may move the same calls): savings are not additive")
    order = {lever: index for index, lever in enumerate(LEVERS)}
    savings = sorted(
        advisor.savings, key=lambda s: (not s.recommended, -s.saving_usd, order[s.lever], s.target)
    )
    return Advice(
        source=usage.source,
        period_hours=hours,
        recorded=usage.total(),
        savings=tuple(savings),
        not_evaluated=tuple(advisor.skipped),
        assumptions=tuple(advisor.assumptions),
    )
