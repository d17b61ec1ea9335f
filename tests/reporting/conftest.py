"""Shared fixtures: a 20-call workload with round numbers priced by a small fixture price file, replayed
into stores the same way the wrapper records it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.pricing import PriceTable, load_price_table
from bedrock_budget.reporting.sources import CallRow, read_records

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CALLS = FIXTURES / "calls.jsonl"
PRICES = FIXTURES / "prices"
PRICE_DATE = date(2026, 11, 22)
LARGE = "acme.large-v1:0"
SMALL = "acme.small-v1:0"


@pytest.fixture(scope="session")
def acme() -> PriceTable:
    return load_price_table([PRICES])


def calls() -> list[CallRow]:
    return list(read_records(CALLS))


def replay(ledger: Ledger, rows: Iterable[CallRow]) -> int:
    """Record each billed call as the wrapper's budget guard does: reserve, then settle the actual cost."""
    count = 0
    for row in rows:
        if not row.billed:
            continue
        assert row.cost_usd is not None
        nanos = int(row.cost_usd * Decimal(10**9))
        tokens = {
            "input": row.input_tokens,
            "output": row.output_tokens,
            "cache_read": row.cache_read_tokens,
            "cache_write": row.cache_write_tokens,
        }
        reservation = ledger.reserve(dict(row.attribution), row.model, "acme", nanos, tokens)
        ledger.settle(reservation, nanos, tokens)
        count += 1
    return count
