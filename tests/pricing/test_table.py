"""Pricing engine against a small fixture price set whose numbers are chosen to be checked by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from bedrock_budget.errors import (
    ConfigurationError,
    InvalidUsageError,
    ModelResolutionError,
    UnknownModelError,
    UnsupportedPricingError,
)
from bedrock_budget.pricing import PriceTable, load_price_table
from bedrock_budget.usage import Usage

FIXTURES = Path(__file__).parent / "fixtures" / "good"
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
TODAY = dt.date(2026, 11, 22)


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return load_price_table([FIXTURES])


def usd(text: str) -> Decimal:
    return Decimal(text)


def test_input_and_output_tokens(table: PriceTable) -> None:
    cost = table.price(HAIKU, Usage(input_tokens=2000, output_tokens=500), at=TODAY)
    # 2000 × $0.80/1M + 500 × $4.00/1M = 0.0016 + 0.002
    assert cost.total_usd == usd("0.0036")
    assert [(line.dimension, line.usd) for line in cost.lines] == [
        ("input_tokens", usd("0.0016")),
        ("output_tokens", usd("0.002")),
    ]


def test_cache_tokens_priced_separately_and_by_ttl(table: PriceTable) -> None:
    usage = Usage(
        input_tokens=100,
        output_tokens=10,
        cache_read_tokens=1000,
        cache_write_tokens=3000,
        cache_write_1h_tokens=1000,
    )
    cost = table.price(HAIKU, usage, at=TODAY)
    expected = (
        100 * usd("0.80") + 10 * usd("4.00") + 1000 * usd("0.08") + 2000 * usd("1.00") + 1000 * usd("1.60")
    ) / 1_000_000
    assert cost.total_usd == expected
    dims = {line.dimension: line.quantity for line in cost.lines}
    assert dims["cache_write_5m_tokens"] == 2000
    assert dims["cache_write_1h_tokens"] == 1000


def test_every_id_form_of_one_model_prices_the_same(table: PriceTable) -> None:
    usage = Usage(input_tokens=12345, output_tokens=678)
    forms = [
        HAIKU,
        "anthropic.claude-3-5-haiku-20241022-v1",
        f"us.{HAIKU}",
        f"eu.{HAIKU}",
        f"apac.{HAIKU}",
        f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}",
        f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{HAIKU}",
        "anthropic.claude-3-5-haiku-20241022-v1%3A0",
    ]
    totals = {form: table.price(form, usage, at=TODAY).total_usd for form in forms}
    assert len(set(totals.values())) == 1, totals


def test_global_route_uses_its_own_rate(table: PriceTable) -> None:
    usage = Usage(input_tokens=100_000, output_tokens=100_000)
    regional = table.price(SONNET, usage, at=TODAY).total_usd
    geo = table.price(f"us.{SONNET}", usage, at=TODAY).total_usd
    global_ = table.price(f"global.{SONNET}", usage, at=TODAY).total_usd
    assert regional == geo == usd("1.98")
    assert global_ == usd("1.80")


def test_long_context_switches_the_whole_request(table: PriceTable) -> None:
    at_threshold = Usage(input_tokens=150_000, cache_read_tokens=50_000, output_tokens=1000)
    above = Usage(input_tokens=150_001, cache_read_tokens=50_000, output_tokens=1000)
    normal = table.price(SONNET, at_threshold, at=TODAY)
    long = table.price(SONNET, above, at=TODAY)
    assert normal.total_usd == (150_000 * usd("3.30") + 50_000 * usd("0.33") + 1000 * usd("16.50")) / 10**6
    # Cache reads keep their normal rate: the fixture's long_context block does not list them.
    assert long.total_usd == (150_001 * usd("6.60") + 50_000 * usd("0.33") + 1000 * usd("24.75")) / 10**6
    global_long = table.price(f"global.{SONNET}", above, at=TODAY)
    assert (
        global_long.total_usd == (150_001 * usd("6.00") + 50_000 * usd("0.30") + 1000 * usd("22.50")) / 10**6
    )
    assert long.context["long_context"] is True


def test_batch_rates_and_refusal(table: PriceTable) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert table.price("amazon.nova-micro-v1:0", usage, batch=True, at=TODAY).total_usd == usd("0.0875")
    with pytest.raises(UnsupportedPricingError, match="batch"):
        table.price(SONNET, usage, batch=True, at=TODAY)


def test_service_tier_multipliers(table: PriceTable) -> None:
    usage = Usage(input_tokens=1_000_000)
    assert table.price(HAIKU, usage, service_tier="priority", at=TODAY).total_usd == usd("1.40")
    assert table.price(HAIKU, usage, service_tier="flex", at=TODAY).total_usd == usd("0.40")
    assert table.price(HAIKU, usage, service_tier="reserved", at=TODAY).total_usd == usd("0.80")
    with pytest.raises(UnsupportedPricingError, match="priority"):
        table.price("amazon.nova-micro-v1:0", usage, service_tier="priority", at=TODAY)


def test_latency_optimized_and_regions(table: PriceTable) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert table.price(HAIKU, usage, latency="optimized", at=TODAY).total_usd == usd("6.00")
    with pytest.raises(UnsupportedPricingError, match="latency"):
        table.price(SONNET, usage, latency="optimized", at=TODAY)
    eu = table.price(HAIKU, usage, region="eu-central-1", at=TODAY)
    assert eu.total_usd == usd("5.76")
    assert eu.context["region_priced"] == "eu-central-1"
    # A region without its own rates is priced at the base rates, and says so.
    other = table.price(HAIKU, usage, region="ap-south-2", at=TODAY)
    assert other.total_usd == usd("4.80")
    assert other.context["region_priced"] == "default"


def test_dated_prices_reprice_history(table: PriceTable) -> None:
    usage = Usage(input_tokens=1_000_000)
    assert table.price(HAIKU, usage, at=dt.date(2024, 11, 20)).total_usd == usd("1.00")
    assert table.price(HAIKU, usage, at=dt.date(2024, 12, 1)).total_usd == usd("0.80")
    with pytest.raises(UnsupportedPricingError, match="no price in force"):
        table.price(HAIKU, usage, at=dt.date(2020, 1, 1))


def test_images_by_size_and_quality(table: PriceTable) -> None:
    model = "amazon.titan-image-generator-v2:0"
    assert table.price(model, Usage(images=3, image_size="512x512"), at=TODAY).total_usd == usd("0.024")
    assert table.price(model, Usage(images=2), at=TODAY).total_usd == usd("0.02")
    premium = table.price(model, Usage(images=1, image_size="768x768", image_quality="premium"), at=TODAY)
    assert premium.total_usd == usd("0.012")
    with pytest.raises(UnsupportedPricingError, match="largest"):
        table.price(model, Usage(images=1, image_size="2048x2048"), at=TODAY)


def test_unknown_model_is_an_error_never_zero(table: PriceTable) -> None:
    with pytest.raises(UnknownModelError) as info:
        table.price("anthropic.claude-3-5-haiku-20241023-v1:0", Usage(input_tokens=1), at=TODAY)
    assert HAIKU in info.value.suggestions
    assert "prices/README.md" in str(info.value)


def test_hidden_model_arn_needs_resolution(table: PriceTable) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcd1234efgh"
    with pytest.raises(ModelResolutionError, match="resolve"):
        table.price(arn, Usage(input_tokens=1), at=TODAY)


def test_usage_validation() -> None:
    with pytest.raises(InvalidUsageError):
        Usage(input_tokens=-1)
    with pytest.raises(InvalidUsageError):
        Usage(cache_write_tokens=1, cache_write_1h_tokens=2)
    with pytest.raises(InvalidUsageError):
        Usage(output_tokens=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidUsageError):
        Usage(input_tokens=True)


def test_provisioned_guardrail_and_import(table: PriceTable) -> None:
    cost = table.price_provisioned(
        "amazon.titan-image-generator-v2:0", model_units=2, commitment="1-month", hours=730, at=TODAY
    )
    assert cost.total_usd == usd("21.18") * 2 * 730
    with pytest.raises(UnsupportedPricingError, match="none commitment"):
        table.price_provisioned(
            "amazon.titan-image-generator-v2:0", model_units=1, commitment="none", hours=1
        )
    guard = table.price_guardrail({"content_filters": 3000, "denied_topics": 3000}, at=TODAY)
    assert guard.total_usd == usd("0.90")
    imported = table.price_custom_model_import(
        custom_model_units=2, active_windows=12, storage_months=1, at=TODAY
    )
    assert imported.total_usd == 2 * 12 * 5 * usd("0.0785") + 2 * usd("1.95")
    with pytest.raises(ConfigurationError):
        table.price_custom_model_import(custom_model_units=0, active_windows=1)


def test_discount_and_user_override(tmp_path: Path) -> None:
    override = tmp_path / "anthropic.yaml"
    override.write_text(
        (FIXTURES / "anthropic.yaml").read_text().replace('input: "0.80"', 'input: "0.50"'), encoding="utf-8"
    )
    table = load_price_table([FIXTURES], extra_files=[override], discount_percent="10")
    cost = table.price(HAIKU, Usage(input_tokens=1_000_000), at=TODAY)
    assert cost.total_usd == usd("0.45")


def test_total_nanos_rounds_up() -> None:
    table = load_price_table([FIXTURES])
    cost = table.price("amazon.nova-micro-v1:0", Usage(input_tokens=1), at=TODAY)
    assert cost.total_usd == usd("0.000000035")
    assert cost.total_nanos == 35
    cheap = table.price("amazon.nova-micro-v1:0", Usage(input_tokens=1), batch=True, at=TODAY)
    assert cheap.total_usd == usd("0.0000000175")
    assert cheap.total_nanos == 18
