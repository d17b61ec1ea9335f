"""Which Region a call is priced in when the caller does not say."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from bedrock_budget.errors import ConfigurationError
from bedrock_budget.pricing import PriceTable, load_price_table
from bedrock_budget.usage import Usage

SONNET_35 = "anthropic.claude-3-5-sonnet-20240620-v1:0"
TODAY = dt.date(2026, 12, 3)
MILLION_IN = Usage(input_tokens=1_000_000)


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return load_price_table()


def test_us_gov_profile_without_region_is_priced_in_govcloud(table: PriceTable) -> None:
    cost = table.price(f"us-gov.{SONNET_35}", MILLION_IN, at=TODAY)
    # GovCloud $3.60 per 1M input tokens; the commercial rate is $3.00.
    assert (cost.context["region"], cost.total_usd) == ("us-gov-west-1", Decimal("3.60"))
    assert table.price(SONNET_35, MILLION_IN, at=TODAY).total_usd == Decimal("3.00")
    east = table.price(f"us-gov.{SONNET_35}", MILLION_IN, region="us-gov-east-1", at=TODAY)
    assert east.context["region"] == "us-gov-east-1"


def test_us_gov_profile_in_a_commercial_region_is_an_error(table: PriceTable) -> None:
    with pytest.raises(ConfigurationError, match="runs only in AWS GovCloud"):
        table.price(f"us-gov.{SONNET_35}", MILLION_IN, region="us-east-1", at=TODAY)


def test_an_arn_without_region_is_priced_in_its_own_region(table: PriceTable) -> None:
    arn = f"arn:aws-us-gov:bedrock:us-gov-east-1::foundation-model/{SONNET_35}"
    cost = table.price(arn, MILLION_IN, at=TODAY)
    assert (cost.context["region"], cost.total_usd) == ("us-gov-east-1", Decimal("3.60"))
    # An explicit region still wins, and plain ids default to us-east-1.
    assert table.price(arn, MILLION_IN, region="us-gov-west-1", at=TODAY).context["region"] == "us-gov-west-1"
    assert table.price(SONNET_35, MILLION_IN, at=TODAY).context["region"] == "us-east-1"


def test_in_profile_is_priced(table: PriceTable) -> None:
    cost = table.price("in.amazon.nova-pro-v1:0", MILLION_IN, region="ap-south-1", at=TODAY)
    assert (cost.context["route"], cost.context["region"]) == ("geo", "ap-south-1")
