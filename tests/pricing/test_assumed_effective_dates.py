"""A price whose start is unknown holds back to the model's launch, and a cost priced that way says so."""

from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from bedrock_budget.errors import PriceFileError, UnsupportedPricingError
from bedrock_budget.pricing import PriceTable, load_price_table
from bedrock_budget.usage import Usage

MILLION_IN = Usage(input_tokens=1_000_000)


@pytest.fixture(scope="module")
def bundled() -> PriceTable:
    return load_price_table()


def write(tmp_path: Path, prices: str) -> Path:
    path = tmp_path / "acme.yaml"
    header = (
        "schema_version: 1\nprovider: acme\nmodels:\n  - id: acme.model-v1\n    name: Model\n"
        "    family: acme\n    kind: text\n    max_output_tokens: 100\n    prices:\n"
    )
    path.write_text(header + textwrap.indent(textwrap.dedent(prices), " " * 6), encoding="utf-8")
    return path


def test_usage_before_a_first_seen_price_is_priced_and_marked(bundled: PriceTable) -> None:
    # Pixtral Large: $2.00 per 1M input tokens, first seen 2026-11-22, used on 2025-06-01.
    cost = bundled.price("mistral.pixtral-large-2502-v1:0", MILLION_IN, at=dt.date(2025, 6, 1))
    assert cost.total_usd == Decimal("2.00")
    assert cost.context["price_effective"] == "2026-11-22"
    assert cost.context["price_effective_assumed"] is True
    assert cost.as_dict()["price_effective_assumed"] is True
    # From the first-seen day on, the price is simply in force.
    on_the_day = bundled.price("mistral.pixtral-large-2502-v1:0", MILLION_IN, at=dt.date(2026, 11, 22))
    assert "price_effective_assumed" not in on_the_day.context


def test_every_first_seen_price_is_marked_and_launch_dates_are_not(bundled: PriceTable) -> None:
    assumed = [model for model in bundled.models.values() if model.prices[0].effective_assumed]
    assert len(assumed) >= 45
    for model in assumed:
        assert "first seen" in model.prices[0].notes, model.id
    # A price with a known start (a launch date) still refuses a day before it.
    with pytest.raises(UnsupportedPricingError, match="no price in force on 2024-01-01"):
        bundled.price("amazon.nova-pro-v1:0", MILLION_IN, at=dt.date(2024, 1, 1))


def test_a_later_price_is_never_assumed_backwards(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        - effective: 2025-01-01
          effective_assumed: true
          checked: 2026-12-03
          source: test
          input: "2.00"
          output: "4.00"
        - effective: 2025-06-01
          checked: 2026-12-03
          source: test
          input: "1.00"
          output: "2.00"
        """,
    )
    table = load_price_table([path])
    early = table.price("acme.model-v1", MILLION_IN, at=dt.date(2024, 3, 1))
    middle = table.price("acme.model-v1", MILLION_IN, at=dt.date(2025, 3, 1))
    late = table.price("acme.model-v1", MILLION_IN, at=dt.date(2025, 6, 1))
    assert [early.total_usd, middle.total_usd, late.total_usd] == [
        Decimal("2.00"),
        Decimal("2.00"),
        Decimal("1.00"),
    ]
    assert early.context.get("price_effective_assumed") is True
    assert "price_effective_assumed" not in middle.context
    assert "price_effective_assumed" not in late.context


@pytest.mark.parametrize(
    ("prices", "problem"),
    [
        (
            """\
            - effective: 2025-01-01
              checked: 2026-12-03
              source: test
              input: "2.00"
              output: "4.00"
            - effective: 2025-06-01
              effective_assumed: true
              checked: 2026-12-03
              source: test
              input: "1.00"
              output: "2.00"
            """,
            "only the first price can have an assumed start",
        ),
        (
            """\
            - effective: 2025-01-01
              effective_assumed: "yes"
              checked: 2026-12-03
              source: test
              input: "2.00"
              output: "4.00"
            """,
            "effective_assumed: must be true or false",
        ),
    ],
)
def test_effective_assumed_is_validated(tmp_path: Path, prices: str, problem: str) -> None:
    with pytest.raises(PriceFileError) as info:
        load_price_table([write(tmp_path, prices)])
    assert any(problem in item for item in info.value.problems), info.value.problems
