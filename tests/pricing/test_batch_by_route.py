"""Batch prices follow the route, Region and long-context tier of the call.

AWS prices batch inference at 50% of the on-demand price of the same call; one written batch rate used for
every route and Region overcharged global calls and mispriced every Region with its own rates. Expected
values are worked out by hand from the bundled on-demand rates.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from bedrock_budget.errors import PriceFileError, UnsupportedPricingError
from bedrock_budget.pricing import PriceTable, load_price_table
from bedrock_budget.usage import Usage

SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
TODAY = dt.date(2026, 12, 3)
HUNDRED_K_EACH = Usage(input_tokens=100_000, output_tokens=100_000)
MILLION_EACH = Usage(input_tokens=1_000_000, output_tokens=1_000_000)


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return load_price_table()


def batch_usd(table: PriceTable, model_id: str, usage: Usage = MILLION_EACH, **kwargs: object) -> Decimal:
    return table.price(model_id, usage, batch=True, at=TODAY, **kwargs).total_usd  # type: ignore[arg-type]


def test_global_batch_is_half_the_global_rate(table: PriceTable) -> None:
    # Global on-demand $3.00/$15.00 per 1M: 0.1 x 3.00 + 0.1 x 15.00 = $1.80, batch half of it.
    assert batch_usd(table, f"global.{SONNET_45}", HUNDRED_K_EACH) == Decimal("0.90")
    # Geographic (and in-Region) on-demand $3.30/$16.50: 0.1 x (3.30 + 16.50) / 2
    assert batch_usd(table, f"us.{SONNET_45}", HUNDRED_K_EACH) == Decimal("0.99")
    assert batch_usd(table, SONNET_45, HUNDRED_K_EACH) == Decimal("0.99")


def test_batch_keeps_the_long_context_tier(table: PriceTable) -> None:
    long_request = Usage(input_tokens=200_001, output_tokens=1000)
    # Above 200K input tokens the whole request is at the long-context rate ($6.60/$24.75), halved.
    expected = (200_001 * Decimal("6.60") + 1000 * Decimal("24.75")) / 2 / 10**6
    cost = table.price(SONNET_45, long_request, batch=True, at=TODAY)
    assert cost.total_usd == expected
    assert cost.context["long_context"] is True
    assert cost.context["batch"] is True


@pytest.mark.parametrize(
    ("model_id", "region", "on_demand_in", "on_demand_out"),
    [
        ("deepseek.v3.2", "ap-northeast-1", "0.74", "2.22"),
        ("qwen.qwen3-coder-next", "eu-west-2", "0.78", "1.86"),
        ("amazon.nova-pro-v1:0", "us-gov-west-1", "0.96", "3.84"),
        ("amazon.nova-pro-v1:0", "ap-northeast-1", "0.96", "3.84"),
        ("amazon.nova-lite-v1:0", "us-gov-west-1", "0.072", "0.288"),
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "us-gov-west-1", "3.60", "18.00"),
        ("openai.gpt-oss-120b-1:0", "us-gov-east-1", None, None),
    ],
)
def test_regional_batch_is_half_that_regions_rate(
    table: PriceTable, model_id: str, region: str, on_demand_in: str | None, on_demand_out: str | None
) -> None:
    on_demand = table.price(model_id, MILLION_EACH, region=region, at=TODAY)
    assert on_demand.context["region_priced"] == region
    if on_demand_in is not None and on_demand_out is not None:
        assert on_demand.total_usd == Decimal(on_demand_in) + Decimal(on_demand_out)
    in_region_default = batch_usd(table, model_id)
    regional = batch_usd(table, model_id, region=region)
    assert regional == on_demand.total_usd / 2
    assert regional != in_region_default


def test_nova_pro_tokyo_batch_matches_the_price_list(table: PriceTable) -> None:
    # APN1-NovaPro-input-tokens-batch is $0.00048 per 1K: $0.48 per 1M.
    cost = table.price(
        "amazon.nova-pro-v1:0", Usage(input_tokens=1_000_000), batch=True, region="ap-northeast-1"
    )
    assert cost.total_usd == Decimal("0.48")


def test_written_batch_rates_are_unchanged(table: PriceTable) -> None:
    # Claude 3.5 Haiku's batch rate is not half of its on-demand rate and stays as written: 0.50 + 2.50.
    assert batch_usd(table, "anthropic.claude-3-5-haiku-20241022-v1:0") == Decimal("3.00")
    with pytest.raises(UnsupportedPricingError, match="batch"):
        batch_usd(table, "amazon.nova-canvas-v1:0")


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "acme.yaml"
    path.write_text(
        "schema_version: 1\nprovider: acme\nmodels:\n  - id: acme.model-v1\n    name: Model\n"
        "    family: acme\n    kind: text\n    max_output_tokens: 100\n    prices:\n"
        "      - effective: 2025-01-01\n        checked: 2026-12-03\n        source: test\n"
        + textwrap.indent(textwrap.dedent(body), " " * 8),
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            """\
            input: "1.00"
            output: "2.00"
            batch: {input: "0.50", output: "1.00"}
            routes: {global: {input: "0.90", output: "1.80"}}
            """,
            "written batch rates cannot follow routes",
        ),
        (
            """\
            input: "1.00"
            output: "2.00"
            batch: {input: "0.50", output: "1.00"}
            long_context: {threshold_tokens: 1000, input: "2.00", output: "4.00"}
            """,
            "written batch rates cannot follow long_context",
        ),
        (
            """\
            input: "1.00"
            output: "2.00"
            batch: {input: "0.50", output: "1.00"}
            regions: {eu-west-2: {input: "1.20", output: "2.40"}}
            """,
            "regions.eu-west-2: has its own on-demand rates but would inherit batch rates",
        ),
        (
            """\
            input: "1.00"
            output: "2.00"
            batch: {input: "0.50", output: "1.00"}
            regions: {eu-west-2: {long_context: {threshold_tokens: 1000, input: "2.00", output: "4.00"}}}
            """,
            "regions.eu-west-2: has its own on-demand rates but would inherit batch rates",
        ),
        (
            """\
            input: "1.00"
            output: "2.00"
            batch: {multiplier: "0.5", input: "0.50"}
            """,
            "either 'multiplier' or batch rates, not both",
        ),
        (
            """\
            input: "1.00"
            output: "2.00"
            batch: {multiplier: "1.5"}
            """,
            "must be above 0 and at most 1",
        ),
        (
            """\
            input: "1.00"
            output: "2.00"
            batch: {multiplier: 0.5}
            """,
            "quoted decimal string",
        ),
    ],
)
def test_batch_that_cannot_be_priced_right_is_refused_at_load(
    tmp_path: Path, body: str, problem: str
) -> None:
    with pytest.raises(PriceFileError) as info:
        load_price_table([write(tmp_path, body)])
    assert any(problem in item for item in info.value.problems), info.value.problems


def test_a_regions_batch_replaces_the_base_batch_whole(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        input: "1.00"
        output: "2.00"
        batch: {multiplier: "0.5"}
        regions:
          eu-west-2: {input: "1.20", output: "2.40", batch: {input: "0.70"}}
          ap-south-1: {input: "1.10", output: "2.20"}
        """,
    )
    table = load_price_table([path])
    million = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    # eu-west-2 writes its own batch input rate; its output has no batch rate of its own, so it falls back
    # to that Region's on-demand output rate rather than mixing in the base multiplier: 0.70 + 2.40.
    assert table.price("acme.model-v1", million, batch=True, region="eu-west-2").total_usd == Decimal("3.10")
    # ap-south-1 inherits the multiplier and halves its own rates: (1.10 + 2.20) / 2.
    assert table.price("acme.model-v1", million, batch=True, region="ap-south-1").total_usd == Decimal("1.65")
