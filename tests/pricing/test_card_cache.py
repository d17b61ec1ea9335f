"""The table's cache of rate cards: an undated price follows the UTC day, through ``price`` (which reads the
cache itself) as through ``rate_card``, and dated prices are never affected."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from bedrock_budget.pricing import PriceTable, load_price_table
from bedrock_budget.pricing import table as table_module
from bedrock_budget.usage import Usage

FIXTURES = Path(__file__).parent / "fixtures" / "good"
# The fixture prices Haiku at $1.00/M input from 2024-11-04 and at $0.80/M from 2024-12-01.
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
MILLION_IN = Usage(input_tokens=1_000_000)
BEFORE_MIDNIGHT = dt.datetime(2024, 11, 30, 23, 59, 59, tzinfo=dt.UTC).timestamp()


class Clock:
    """Stands in for the ``time`` module the table reads the wall clock from."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(BEFORE_MIDNIGHT)
    monkeypatch.setattr(table_module, "time", fake)
    monkeypatch.setattr(
        table_module, "_utc_today", lambda: dt.datetime.fromtimestamp(fake.now, dt.UTC).date()
    )
    return fake


@pytest.fixture
def table(clock: Clock) -> PriceTable:
    return load_price_table([FIXTURES])


@pytest.mark.parametrize("first", ["price", "rate_card"])
def test_undated_cards_are_rebuilt_on_a_new_utc_day(table: PriceTable, clock: Clock, first: str) -> None:
    assert table.price(HAIKU, MILLION_IN).total_usd == Decimal("1.00")
    assert table.price(HAIKU, MILLION_IN).total_usd == Decimal("1.00")  # from the cache
    clock.now += 2
    if first == "rate_card":
        assert table.rate_card(HAIKU).price(MILLION_IN).total_usd == Decimal("0.80")
    assert table.price(HAIKU, MILLION_IN).total_usd == Decimal("0.80")
    assert table.rate_card(HAIKU).price(MILLION_IN).total_usd == Decimal("0.80")


def test_a_table_loaded_on_an_earlier_day_prices_by_today(table: PriceTable, clock: Clock) -> None:
    clock.now += 2  # no card was built before midnight
    assert table.price(HAIKU, MILLION_IN).total_usd == Decimal("0.80")
    assert table.price(HAIKU, MILLION_IN).total_usd == Decimal("0.80")


def test_dated_cards_ignore_the_clock(table: PriceTable, clock: Clock) -> None:
    then = dt.date(2024, 11, 20)
    assert table.price(HAIKU, MILLION_IN, at=then).total_usd == Decimal("1.00")
    clock.now += 86400 * 30
    assert table.price(HAIKU, MILLION_IN, at=then).total_usd == Decimal("1.00")
    assert table.price(HAIKU, MILLION_IN).total_usd == Decimal("0.80")
    assert table.price(HAIKU, MILLION_IN, at=then).total_usd == Decimal("1.00")


def test_price_and_rate_card_share_their_cards(table: PriceTable) -> None:
    card = table.rate_card(HAIKU, region="eu-central-1", service_tier="flex")
    assert table.rate_card(HAIKU, region="eu-central-1", service_tier="flex") is card
    cost = table.price(HAIKU, MILLION_IN, region="eu-central-1", service_tier="flex")
    assert cost == card.price(MILLION_IN)
