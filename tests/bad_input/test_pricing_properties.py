"""Properties of the pricing arithmetic over every token-priced model of the bundled table (in every
region, route, service tier and latency mode it is priced for) and arbitrary, even huge, usage: exact,
additive, monotone, rounded up only at the store boundary, and scaled exactly by a negotiated discount."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache
from typing import Any, get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from bedrock_budget import Usage
from bedrock_budget.errors import BedrockBudgetError
from bedrock_budget.model_ids import Route
from bedrock_budget.pricing import default_price_table
from bedrock_budget.pricing.table import Latency, PriceTable, RateCard, ServiceTier, load_price_table

TABLE = default_price_table()


@dataclass(frozen=True)
class Context:
    """A model and the conditions it is priced under."""

    model: str
    region: str = "us-east-1"
    route: Route = "in_region"
    service_tier: ServiceTier = "default"
    latency: Latency = "standard"

    def options(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("region", "route", "service_tier", "latency")}


def _contexts() -> list[Context]:
    found: list[Context] = []
    for model, region, route, tier, latency in itertools.product(
        sorted(TABLE.models),
        ("us-east-1", "eu-west-1", "ap-south-1"),
        get_args(Route),
        ("default", "priority", "flex"),
        get_args(Latency),
    ):
        context = Context(model, region, route, tier, latency)
        try:
            card = TABLE.rate_card(model, **context.options())
        except BedrockBudgetError:
            continue  # not offered that way
        if card.input or card.output:
            found.append(context)
    return found


CONTEXTS = _contexts()
COUNT = st.integers(min_value=0, max_value=5_000_000)
# Beyond any real call, to show the integer arithmetic never loses precision.
HUGE = st.integers(min_value=0, max_value=10**15)
FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens")
RATE_FIELDS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")
DISCOUNTS = ["0.01", "1", "10", "12.5", "33.33", "50", "75.25", "99.99"]


@st.composite
def usages(draw: st.DrawFn, counts: st.SearchStrategy[int] = COUNT) -> Usage:
    cache_write = draw(counts)
    return Usage(
        input_tokens=draw(counts),
        output_tokens=draw(counts),
        cache_read_tokens=draw(counts),
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=draw(st.integers(min_value=0, max_value=cache_write)),
    )


def total(context: Context, usage: Usage, table: PriceTable = TABLE) -> int:
    return table.price(context.model, usage, **context.options()).total_femto


def card(context: Context) -> RateCard:
    return TABLE.rate_card(context.model, **context.options())


@cache
def discounted(percent: str) -> PriceTable:
    return load_price_table(discount_percent=percent)


@settings(max_examples=300, deadline=None)
@given(context=st.sampled_from(CONTEXTS), usage=usages(HUGE))
def test_total_is_the_exact_sum_of_its_lines(context: Context, usage: Usage) -> None:
    cost = TABLE.price(context.model, usage, **context.options())
    assert cost.total_usd == sum((line.usd for line in cost.lines), Decimal(0))
    assert cost.total_usd == Decimal(cost.total_femto).scaleb(-15)
    for line in cost.lines:
        assert line.usd == line.unit_price_usd * line.quantity / line.per


@settings(max_examples=300, deadline=None)
@given(context=st.sampled_from(CONTEXTS), usage=usages(HUGE))
def test_store_nanos_round_up_by_less_than_one_nano(context: Context, usage: Usage) -> None:
    cost = TABLE.price(context.model, usage, **context.options())
    exact_nanos = cost.total_usd * 10**9
    assert cost.total_nanos >= exact_nanos
    assert cost.total_nanos < exact_nanos + 1


@settings(max_examples=300, deadline=None)
@given(context=st.sampled_from(CONTEXTS), first=usages(), second=usages())
def test_price_is_additive_over_a_split_of_the_usage(context: Context, first: Usage, second: Usage) -> None:
    whole = Usage(**{f: getattr(first, f) + getattr(second, f) for f in FIELDS})
    threshold = card(context).long_threshold
    if threshold is not None and whole.prompt_tokens > threshold:
        # Above a long-context threshold the whole call moves to the dearer rate: no longer additive, but
        # never cheaper than its parts.
        assert total(context, whole) >= total(context, first) + total(context, second)
    else:
        assert total(context, whole) == total(context, first) + total(context, second)


@settings(max_examples=300, deadline=None)
@given(
    context=st.sampled_from(CONTEXTS),
    usage=usages(),
    field=st.sampled_from(FIELDS),
    more=st.integers(min_value=1, max_value=1_000_000),
)
def test_price_is_monotone_in_every_count(context: Context, usage: Usage, field: str, more: int) -> None:
    changes = {field: getattr(usage, field) + more}
    if field == "cache_write_1h_tokens":
        changes["cache_write_tokens"] = usage.cache_write_tokens + more  # 1-hour writes are writes too
    grown = replace(usage, **changes)
    assert total(context, grown) >= total(context, usage)
    if usage.cache_write_tokens > usage.cache_write_1h_tokens:
        # Writing the same tokens with the longer TTL never costs less.
        longer = replace(usage, cache_write_1h_tokens=usage.cache_write_1h_tokens + 1)
        assert total(context, longer) >= total(context, usage)


@settings(max_examples=200, deadline=None)
@given(context=st.sampled_from(CONTEXTS), usage=usages(HUGE), percent=st.sampled_from(DISCOUNTS))
def test_a_discount_scales_every_price_exactly(context: Context, usage: Usage, percent: str) -> None:
    kept = 10_000 - int(Decimal(percent) * 100)  # hundredths of a percent
    scaled = total(context, usage, discounted(percent)) * 10_000
    exact = total(context, usage) * kept
    base = card(context)
    rates = [getattr(c, f) for c in (base, base.long_card) if c is not None for f in RATE_FIELDS]
    if all(rate * kept % 10_000 == 0 for rate in rates):
        assert scaled == exact
    else:
        # A rate that does not scale to whole femto-dollars (1e-15 USD) per unit is rounded half-even, so
        # the two tables differ by less than one femto-dollar per unit.
        units = sum(getattr(usage, f) for f in FIELDS) - usage.cache_write_1h_tokens
        assert abs(scaled - exact) <= 10_000 * units


@settings(max_examples=100, deadline=None)
@given(context=st.sampled_from(CONTEXTS), usage=usages())
def test_zero_usage_is_free_and_any_usage_is_not_negative(context: Context, usage: Usage) -> None:
    assert total(context, Usage()) == 0
    assert total(context, usage) >= 0
