"""Amounts for advice: exact USD from femto-dollars, and how rates, money and shares read in the arithmetic
each saving shows."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Final

from bedrock_budget.pricing.money import FEMTO_PER_USD, femto_to_usd, format_usd
from bedrock_budget.pricing.planning import HOURS_PER_MONTH
from bedrock_budget.pricing.table import RateCard
from bedrock_budget.reporting.tallies import Tally

__all__ = [
    "CENT",
    "NANO",
    "TENTH",
    "cost_line",
    "format_hours",
    "per_month",
    "show_money",
    "show_rate",
    "show_share",
    "tidy",
    "token_dims",
    "token_femto",
    "usd",
]

_PER_MILLION: Final = 1_000_000
NANO: Final = Decimal("1E-9")
CENT: Final = Decimal("0.01")
TENTH: Final = Decimal("0.1")


def tidy(value: Decimal) -> Decimal:
    """No trailing zeros or exponent; finer than a femto-dollar only after a division, so rounded there."""
    return femto_to_usd((value * FEMTO_PER_USD).to_integral_value(ROUND_HALF_EVEN))


def usd(femto: int | Decimal) -> Decimal:
    """USD of femto-dollars: exact, or to the nano-dollar when a share or a division made it finer."""
    value = Decimal(femto).scaleb(-15)
    rounded = value.quantize(NANO, ROUND_HALF_EVEN)
    return tidy(rounded if rounded != value else value)


def show_money(value: Decimal) -> str:
    return f"${format_usd(value)}"


def show_rate(femto_per_token: int | Decimal) -> str:
    return f"${format_usd(tidy(Decimal(femto_per_token) * _PER_MILLION / FEMTO_PER_USD))}/1M"


def show_share(value: Decimal) -> str:
    return f"{tidy(value * 100)}%"


def token_dims(card: RateCard, t: Tally) -> list[tuple[str, int, int]]:
    w1h = t.cache_write_1h_tokens
    return [
        ("input", t.input_tokens, card.input),
        ("output", t.output_tokens, card.output),
        ("cache read", t.cache_read_tokens, card.cache_read),
        ("cache write", t.cache_write_tokens - w1h, card.cache_write_5m),
        ("cache write 1h", w1h, card.cache_write_1h),
    ]


def token_femto(card: RateCard, t: Tally) -> int:
    """Femto-dollars of a tally's tokens at a card's standard-context rates (linear in the counts)."""
    return sum(count * rate for _, count, rate in token_dims(card, t))


def cost_line(card: RateCard, t: Tally) -> str:
    parts = [f"{label} {count:,} x {show_rate(rate)}" for label, count, rate in token_dims(card, t) if count]
    return f"{' + '.join(parts) or 'no tokens'} = {show_money(usd(token_femto(card, t)))}"


def format_hours(hours: Decimal) -> str:
    """Hours for reading: a window that has run 508.0072 hours so far reads 508.01."""
    rounded = hours.quantize(CENT, ROUND_HALF_UP)
    return str(rounded.to_integral_value() if rounded == rounded.to_integral_value() else rounded.normalize())


def per_month(amount: Decimal, hours: Decimal | None) -> Decimal | None:
    if hours is None or not hours:
        return None
    return (amount * HOURS_PER_MONTH / hours).quantize(CENT, ROUND_HALF_UP)
