"""The savings levers, each a function that prices the advisor's rows with and without the lever and records
what it finds (a :class:`~bedrock_budget.reporting.advisor.Saving`, or why it was not evaluated)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from bedrock_budget.errors import BedrockBudgetError
from bedrock_budget.pricing.money import FEMTO_PER_USD
from bedrock_budget.pricing.planning import HOURS_PER_MONTH
from bedrock_budget.pricing.table import Commitment, RateCard
from bedrock_budget.reporting.advisor import Advisor, Row
from bedrock_budget.reporting.amounts import (
    CENT,
    NANO,
    TENTH,
    cost_line,
    format_hours,
    show_money,
    show_rate,
    show_share,
    tidy,
    token_dims,
    token_femto,
    usd,
)
from bedrock_budget.reporting.tallies import Tally, total_of

__all__ = ["batch", "cascade", "global_routing", "prompt_caching", "provisioned"]

DEFAULT_READS_PER_WRITE: Final = Decimal(4)
BATCH_FALLBACK: Final = Decimal("0.5")
_COMMITMENTS: Final[tuple[Commitment, ...]] = ("none", "1-month", "6-month")
_TERMS: Final[dict[str, str]] = {
    "none": "no commitment",
    "1-month": "1-month commitment",
    "6-month": "6-month commitment",
}


def global_routing(advisor: Advisor, rows: list[Row]) -> None:
    lacking: dict[str, None] = {}
    already: dict[str, None] = {}
    assumption = (
        "global. profiles may serve a request from any commercial AWS region: only for traffic without "
        "data-residency requirements"
    )
    for (_, model_id, region, route, tier), (row, tally) in advisor.group(
        r for r in rows if r.route_known
    ).items():
        if route == "global":
            continue
        if not advisor.has_global(row.model, region):
            lacking[model_id] = None
            continue
        now_card = advisor.card(model_id, region, route=route, tier=tier)
        global_card = advisor.card(model_id, region, route="global", tier=tier)
        if now_card is None or global_card is None:
            continue
        now = usd(token_femto(now_card, tally))
        after = usd(token_femto(global_card, tally))
        lines = [
            f"{label} {count:,} x ({show_rate(a)} - {show_rate(b)}) = {show_money(usd(count * (a - b)))}"
            for (label, count, a), (_, _, b) in zip(
                token_dims(now_card, tally), token_dims(global_card, tally), strict=True
            )
            if count and a != b
        ]
        lines.append(
            f"{route} {show_money(now)} -> global {show_money(after)}: saves {show_money(now - after)}"
        )
        target = f"{model_id} ({route}, {region}, {tally.calls:,} calls)"
        advisor.add("global-routing", target, now, after, lines, (assumption,))
    unknown: dict[tuple[str, str, str], tuple[Row, Tally]] = {}
    for row in rows:
        if not row.route_known:
            group = (row.model.id, row.region, row.key.service_tier)
            _, tally = unknown.setdefault(group, (row, Tally()))
            tally.add(row.tally)
    for (model_id, region, tier), (row, tally) in sorted(unknown.items(), key=lambda item: item[0]):
        if not advisor.has_global(row.model, region):
            lacking[model_id] = None
            continue
        regional_card = advisor.card(model_id, region, tier=tier)
        global_card = advisor.card(model_id, region, route="global", tier=tier)
        if regional_card is None or global_card is None:
            continue
        recorded = tally.cost_usd
        regional = usd(token_femto(regional_card, tally))
        global_ = usd(token_femto(global_card, tally))
        # Each call's cost is rounded up to a nano-dollar when recorded: that much is not a premium.
        premium = recorded - global_
        if premium <= Decimal(tally.calls) * NANO:
            already[model_id] = None
            continue
        saving = min(premium, regional - global_)
        lines = [
            f"recorded {show_money(recorded)}; the same tokens cost {show_money(regional)} at in-region "
            f"rates and {show_money(global_)} at global rates",
            f"the store keeps no route, so the recorded cost above the global price is what non-global "
            f"routes added: {show_money(recorded)} - {show_money(global_)} = {show_money(premium)}"
            + (f", capped at {show_money(regional)} - {show_money(global_)}" if saving < premium else ""),
        ]
        target = f"{model_id} (recorded routes, {region}, {tally.calls:,} calls)"
        advisor.add("global-routing", target, recorded, recorded - saving, lines, (assumption,))
    if lacking:
        advisor.skip(f"global-routing: no global-profile rate in the price table for {', '.join(lacking)}")
    if already:
        advisor.skip(f"global-routing: already billed at global rates: {', '.join(already)}")


def prompt_caching(advisor: Advisor, rows: list[Row]) -> None:
    per_model: dict[str, Tally] = {}
    for row in rows:
        per_model.setdefault(row.model.id, Tally()).add(row.tally)
    everything = total_of(per_model.values())
    share = advisor.options.cache_share
    no_discount: dict[str, None] = {}
    for (_, model_id, region, route, tier), (_, tally) in advisor.group(rows).items():
        if not tally.input_tokens:
            continue
        card = advisor.card(model_id, region, route=route, tier=tier)
        if card is None:
            continue
        if card.cache_read >= card.input:
            no_discount[model_id] = None
            continue
        k, k_source = _reads_per_write(advisor, per_model[model_id], everything)
        resent = share * tally.input_tokens
        write, read, plain = card.cache_write_5m, card.cache_read, card.input
        blended = (write + k * read) / (1 + k)
        now = usd(resent * plain)
        after = usd(resent * blended)
        lines = [
            f"uncached input {tally.input_tokens:,} tokens x {show_share(share)} re-sent prefix = "
            f"{tidy(resent):,} tokens",
            f"reads per write k = {k_source}",
            f"cached: (1 write x {show_rate(write)} + {tidy(k)} reads x {show_rate(read)}) / {tidy(1 + k)} = "
            f"{show_rate(blended)}",
            f"{tidy(resent):,} x ({show_rate(plain)} - {show_rate(blended)}) = {show_money(now - after)}",
        ]
        if tally.cache_read_tokens or tally.cache_write_tokens:
            realised = usd(
                tally.cache_read_tokens * (plain - read) - tally.cache_write_tokens * (write - plain)
            )
            lines.append(
                f"already cached: {tally.cache_read_tokens:,} reads x "
                f"({show_rate(plain)} - {show_rate(read)}) - "
                f"{tally.cache_write_tokens:,} writes x ({show_rate(write)} - {show_rate(plain)}) = "
                f"{show_money(realised)} saved so far"
            )
        advisor.add(
            "prompt-caching",
            f"{model_id} ({route}, {region}, {tally.calls:,} calls)",
            now,
            after,
            lines,
            (
                f"{show_share(share)} of the uncached input tokens repeat a prefix (system prompt, tools, "
                "documents) sent again within the cache lifetime (5 minutes): measure it for your "
                "prompts",
                "prefixes shorter than the model's minimum cacheable length cannot be cached",
            ),
        )
    if no_discount:
        advisor.skip(
            f"prompt-caching: no cache-read discount in the price table for {', '.join(no_discount)}"
        )


def _reads_per_write(advisor: Advisor, model: Tally, everything: Tally) -> tuple[Decimal, str]:
    if advisor.options.cache_reads_per_write is not None:
        k = advisor.options.cache_reads_per_write
        return k, f"{tidy(k)} (given)"
    for scope, t in (("this model's", model), ("all recorded", everything)):
        if t.cache_write_tokens:
            k = Decimal(t.cache_read_tokens) / t.cache_write_tokens
            return k, (
                f"{t.cache_read_tokens:,} / {t.cache_write_tokens:,} = {tidy(k)} ({scope} cache history)"
            )
    k = DEFAULT_READS_PER_WRITE
    return k, f"{k} (assumed: no cache writes recorded; pass --cache-reads-per-write)"


def batch(
    advisor: Advisor, rows: list[Row], apps_known: bool, why: str, missing: Callable[[str], str]
) -> None:
    wanted = advisor.options.batch_apps
    if not wanted:
        return
    if not apps_known:
        advisor.skip(f"batch: needs usage per app, but {why}")
        return
    present = {row.app for row in rows}
    for absent in sorted(wanted - present):
        advisor.skip(f"batch: {missing(absent)}")
    for (app, model_id, region, route, tier), (_, tally) in advisor.group(
        (r for r in rows if r.app in wanted), by_app=True
    ).items():
        card = advisor.card(model_id, region, route=route, tier=tier)
        if card is None:
            continue
        now_femto = token_femto(card, tally)
        now = usd(now_femto)
        lines = [f"now: {cost_line(card, tally)}"]
        assumptions = ["batch jobs complete within 24 hours, without a latency guarantee"]
        batch_card = advisor.card(model_id, region, batch=True)
        if batch_card is None:
            after = usd(now_femto * BATCH_FALLBACK)
            lines.append(
                f"no batch rate listed for {model_id}: {show_money(now)} x {show_share(BATCH_FALLBACK)} = "
                f"{show_money(after)}"
            )
            assumptions.append(
                f"Bedrock's usual 50% batch discount (the price table lists no batch rate: check that "
                f"{model_id} is offered for batch inference)"
            )
        else:
            prompt = tally.input_tokens + tally.cache_read_tokens + tally.cache_write_tokens
            after = usd(prompt * batch_card.input + tally.output_tokens * batch_card.output)
            cached = (
                f" ({tally.input_tokens:,} input + {tally.cache_read_tokens:,} cache read + "
                f"{tally.cache_write_tokens:,} cache write)"
                if tally.cache_read_tokens or tally.cache_write_tokens
                else ""
            )
            lines.append(
                f"batch: input {prompt:,}{cached} x {show_rate(batch_card.input)} + output "
                f"{tally.output_tokens:,} x {show_rate(batch_card.output)} = {show_money(after)}"
            )
            if cached:
                assumptions.append("batch uses no prompt cache: cached tokens are billed as input")
        lines.append(f"{show_money(now)} - {show_money(after)} = {show_money(now - after)}")
        advisor.add("batch", f"app {app}: {model_id} ({tally.calls:,} calls)", now, after, lines, assumptions)


def cascade(
    advisor: Advisor, rows: list[Row], apps_known: bool, why: str, missing: Callable[[str], str]
) -> None:
    share = advisor.options.cascade_share
    wanted = advisor.options.cascade_apps
    if wanted is not None:
        if not apps_known:
            advisor.skip(f"cascade: needs usage per app, but {why}")
            return
        for absent in sorted(wanted - {row.app for row in rows}):
            advisor.skip(f"cascade: {missing(absent)}")
        rows = [r for r in rows if r.app in wanted]
    cheapest_already: dict[str, None] = {}
    for (app, model_id, region, route, tier), (row, tally) in advisor.group(rows, by_app=apps_known).items():
        card = advisor.card(model_id, region, route=route, tier=tier)
        if card is None:
            continue
        now_femto = token_femto(card, tally)
        options: list[tuple[int, str, RateCard]] = []
        for candidate in advisor.table.models.values():
            if (
                candidate.id == model_id
                or candidate.family != row.model.family
                or candidate.kind != row.model.kind
                or candidate.lifecycle != "active"
            ):
                continue
            other = advisor.card(candidate.id, region, route=route, tier=tier)
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
        now, best = usd(now_femto), usd(best_femto)
        lines = [
            f"now {model_id}: {cost_line(card, tally)}",
            f"on {best_id}: {cost_line(best_card, tally)}",
            f"move {show_share(share)} of the calls: "
            f"{tidy(share)} x ({show_money(now)} - {show_money(best)}) = "
            f"{show_money(usd((now_femto - best_femto) * share))}",
        ]
        others = ", ".join(f"{ident} {show_money(usd(femto))}" for femto, ident, _ in options[1:4])
        lines.append(f"{best_id} is the cheapest active {row.model.family} model for this token mix")
        if others:
            lines[-1] += f" (next: {others})"
        advisor.add(
            "cascade",
            f"{who}: {model_id} -> {best_id} ({tally.calls:,} calls)",
            usd(now_femto * share),
            usd(best_femto * share),
            lines,
            (
                f"{best_id} answers the moved {show_share(share)} of calls well enough (route them by a "
                "confidence check or task type); moved calls keep their token counts",
            ),
            per_app=apps_known,
        )
    if cheapest_already:
        advisor.skip(
            f"cascade: already on the cheapest active model of the family: {', '.join(cheapest_already)}"
        )


def provisioned(advisor: Advisor, rows: list[Row]) -> None:
    per_model: dict[tuple[str, str], tuple[Row, Tally, int]] = {}
    for row in rows:
        if row.route_known:
            card = advisor.card(row.model.id, row.region, route=row.route, tier=row.key.service_tier)
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
    hours = advisor.hours
    unpriced: dict[str, None] = {}
    for (model_id, region), (_, tally, femto) in sorted(per_model.items()):
        offered: list[tuple[Decimal, Commitment]] = []
        for term in _COMMITMENTS:
            try:
                quote = advisor.table.price_provisioned(
                    model_id,
                    model_units=1,
                    commitment=term,
                    hours=HOURS_PER_MONTH,
                    region=region,
                    at=advisor.at,
                )
            except BedrockBudgetError:
                continue
            offered.append((quote.total_usd, term))
        if not offered:
            unpriced[model_id] = None
            continue
        if hours is None:
            advisor.skip("provisioned: needs the length of the observed period (--period-hours)")
            continue
        now = usd(femto)
        if not now or not tally.calls:
            continue
        monthly_now = now * HOURS_PER_MONTH / hours
        calls_month = (tally.calls * HOURS_PER_MONTH / hours).to_integral_value(ROUND_HALF_UP)
        lines = [
            f"on-demand: {show_money(now)} in {format_hours(hours)} h x 730 / {format_hours(hours)} = "
            f"{show_money(monthly_now.quantize(CENT, ROUND_HALF_UP))}/month ({calls_month:,} calls/month)"
        ]
        for monthly_cost, term in offered:
            lines.append(
                f"1 model unit, {_TERMS[term]}: {show_money(tidy(monthly_cost / HOURS_PER_MONTH))}/h x "
                f"730 h = {show_money(monthly_cost)}/month"
            )
        provisioned, term = min(offered)
        per_call = now / tally.calls
        break_even = (provisioned / per_call).to_integral_value(ROUND_HALF_UP)
        utilisation = (monthly_now * 100 / provisioned).quantize(TENTH, ROUND_HALF_UP)
        call_cost = show_money(usd(per_call * FEMTO_PER_USD))
        lines.append(
            f"break-even ({_TERMS[term]}): {show_money(provisioned)} / {call_cost} per call = "
            f"{break_even:,} calls/month; this workload is {utilisation}% of it"
        )
        gap = monthly_now - provisioned
        if gap > 0:
            lines.append(f"provisioned saves {show_money(gap.quantize(CENT, ROUND_HALF_UP))}/month")
        else:
            lines.append(
                f"stay on-demand: provisioned costs {show_money((-gap).quantize(CENT, ROUND_HALF_UP))} "
                "more a month at this volume"
            )
        advisor.add(
            "provisioned",
            f"{model_id} ({region}, 1 model unit, {_TERMS[term]})",
            now,
            tidy(provisioned * hours / HOURS_PER_MONTH),
            lines,
            (
                "one model unit carries this traffic (the price table has no per-unit throughput: check "
                "the model's tokens per minute per unit)",
            ),
            monthly=gap.quantize(CENT, ROUND_HALF_UP),
        )
    if unpriced:
        advisor.skip(
            f"provisioned: no Provisioned Throughput price in the price table for {', '.join(unpriced)}"
        )
