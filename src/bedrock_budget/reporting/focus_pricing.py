"""The charges of one exported call, dimension by dimension (input tokens, output tokens, cache reads, ...).

A record keeps only its total cost, so each call is priced again from the price table, twice: at list price
(no discount) and at the contracted price (the negotiated discount applied). When the contracted total equals
the recorded cost to the femto-dollar, the call's charges are those lines. Otherwise the record's own total is
kept as one charge per request, so the export never states a price the call was not charged.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from bedrock_budget.errors import BedrockBudgetError
from bedrock_budget.pricing import PriceTable
from bedrock_budget.pricing.cost import Cost, RawLine
from bedrock_budget.reporting.call_records import CallRow
from bedrock_budget.reporting.repricing import reprice
from bedrock_budget.reporting.tallies import ReportError

__all__ = ["CAPACITY_MODES", "Charge", "PriceStatus", "call_charges", "femto_of"]

#: ``priced``: lines of the price table that add up to the recorded cost. ``recorded``: the recorded cost
#: as one charge per request (the table disagrees or cannot price the call). ``unpriced``: the record has
#: no cost. ``capacity``: Provisioned Throughput or imported-model capacity, billed by the hour elsewhere.
PriceStatus = Literal["priced", "recorded", "unpriced", "capacity"]

#: Pricing modes whose calls cost nothing by themselves (capacity is billed by the hour).
CAPACITY_MODES: Final = frozenset({"provisioned", "custom_model_import"})

REQUEST: Final = "requests"


@dataclass(frozen=True, slots=True)
class Charge:
    """One dimension of one call: ``quantity`` units at integer femto-dollar unit prices."""

    dimension: str
    quantity: int
    list_rate: int
    contracted_rate: int

    @property
    def list_femto(self) -> int:
        return self.quantity * self.list_rate

    @property
    def contracted_femto(self) -> int:
        return self.quantity * self.contracted_rate


def femto_of(amount: Decimal, where: str) -> int:
    """``amount`` USD as integer femto-dollars; an amount finer than that is refused, not rounded."""
    scaled = amount.scaleb(15)
    if scaled != scaled.to_integral_value():
        raise ReportError(f"{where}: cost_usd {amount} is finer than 1e-15 USD")
    return int(scaled)


def _counts(row: CallRow) -> dict[str, int]:
    return {
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cache_read_tokens": row.cache_read_tokens,
        "cache_write_5m_tokens": row.cache_write_tokens - row.cache_write_1h_tokens,
        "cache_write_1h_tokens": row.cache_write_1h_tokens,
        "images": row.images,
        "video_seconds": row.video_seconds,
        "rerank_queries": row.rerank_queries,
        **{_guardrail_dimension(policy): units for policy, units in row.guardrail_text_units.items()},
    }


def _guardrail_dimension(policy: str) -> str:
    return f"{policy}s" if policy.endswith("_image") else f"{policy}_text_units"


def _unrated(row: CallRow) -> tuple[Charge, ...]:
    return tuple(Charge(name, count, 0, 0) for name, count in _counts(row).items() if count)


def _lines(cost: Cost) -> list[RawLine]:
    return [line for line in cost.raw_lines if line[1]]


def call_charges(
    row: CallRow, list_prices: PriceTable, contracted_prices: PriceTable, where: str
) -> tuple[PriceStatus, tuple[Charge, ...]]:
    """The charges of one billed call and how they were priced (see :data:`PriceStatus`)."""
    if row.cost_usd is None:
        return "unpriced", _unrated(row)
    recorded = femto_of(row.cost_usd, where)
    if row.pricing_mode in CAPACITY_MODES and recorded == 0:
        return "capacity", _unrated(row)
    charges = _table_charges(row, list_prices, contracted_prices, recorded)
    if charges is not None:
        return "priced", charges
    return "recorded", (Charge(REQUEST, 1, recorded, recorded),)


def _table_charges(
    row: CallRow, list_prices: PriceTable, contracted_prices: PriceTable, recorded: int
) -> tuple[Charge, ...] | None:
    """The price table's lines for the call, when they add up to the recorded cost exactly."""
    try:
        contracted = reprice(row, contracted_prices)
        listed = reprice(row, list_prices)
    except (BedrockBudgetError, ValueError):
        return None
    if contracted.total_femto != recorded:
        return None
    pairs = zip(_lines(listed), _lines(contracted), strict=True)
    charges = tuple(Charge(_dimension(c), c[1], lst[2], c[2]) for lst, c in pairs if isinstance(c[1], int))
    return charges if sum(c.contracted_femto for c in charges) == recorded else None


def _dimension(line: RawLine) -> str:
    name = line[0]
    # Image lines carry their size and quality: "images (1024x1024 standard)".
    return name.replace(" (", ":").rstrip(")") if name.startswith("images (") else name
