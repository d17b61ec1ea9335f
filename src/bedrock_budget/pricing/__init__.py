"""Exact pricing of Bedrock usage from the reviewed price files."""

from bedrock_budget.pricing.bundled import BUNDLED_PRICES
from bedrock_budget.pricing.cost import Cost, CostLine
from bedrock_budget.pricing.money import format_usd
from bedrock_budget.pricing.table import (
    DEFAULT_REGION,
    PriceTable,
    RateCard,
    default_price_table,
    load_price_table,
)

__all__ = [
    "BUNDLED_PRICES",
    "DEFAULT_REGION",
    "Cost",
    "CostLine",
    "PriceTable",
    "RateCard",
    "default_price_table",
    "format_usd",
    "load_price_table",
]
