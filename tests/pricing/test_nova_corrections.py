"""Amazon Nova prices corrected against the AWS Price List (see the entries' sources and prices/README.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from bedrock_budget.pricing import PriceTable, load_price_table
from bedrock_budget.usage import Usage

TODAY = dt.date(2026, 12, 3)
NOVA_TEXT = [
    "amazon.nova-2-lite-v1:0",
    "amazon.nova-lite-v1:0",
    "amazon.nova-micro-v1:0",
    "amazon.nova-premier-v1:0",
    "amazon.nova-pro-v1:0",
]


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return load_price_table()


# Every Nova text model, in-Region and through a geographic profile, and Nova 2 Lite's global profile.
NOVA_IDS = [*NOVA_TEXT, *(f"us.{model}" for model in NOVA_TEXT), "global.amazon.nova-2-lite-v1:0"]


@pytest.mark.parametrize("model_id", NOVA_IDS)
def test_nova_cache_writes_are_free(table: PriceTable, model_id: str) -> None:
    writes = Usage(cache_write_tokens=1_000_000, cache_write_1h_tokens=500_000)
    assert table.price(model_id, writes, at=TODAY).total_usd == 0
    # The rest of the call is still priced: 1M input tokens at the input rate.
    with_input = Usage(input_tokens=1_000_000, cache_write_tokens=1_000_000)
    alone = table.price(model_id, Usage(input_tokens=1_000_000), at=TODAY).total_usd
    assert alone > 0
    assert table.price(model_id, with_input, at=TODAY).total_usd == alone


def test_nova_cache_writes_are_free_in_govcloud(table: PriceTable) -> None:
    writes = Usage(cache_write_tokens=1_000_000)
    assert table.price("amazon.nova-pro-v1:0", writes, region="us-gov-west-1", at=TODAY).total_usd == 0


def test_nova_pro_in_tokyo_has_its_own_rate(table: PriceTable) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_tokens=1_000_000)
    cost = table.price("amazon.nova-pro-v1:0", usage, region="ap-northeast-1", at=TODAY)
    # $0.96 input + $3.84 output + $0.24 cache read per 1M (APN1 Price List rows)
    assert cost.total_usd == Decimal("0.96") + Decimal("3.84") + Decimal("0.24")
    assert cost.context["region_priced"] == "ap-northeast-1"
    # us-east-1 keeps $0.80 + $3.20 + $0.20
    assert table.price("amazon.nova-pro-v1:0", usage, at=TODAY).total_usd == Decimal("4.20")
