"""Exact money arithmetic.

Unit prices are compiled to integer **femto-dollars** (1e-15 USD) per unit. A rate of ``$X per 1M tokens``
is exactly ``X * 1e9`` femto-dollars per token, so any listed price with up to nine decimals is an exact
integer and pricing a call is integer multiplication. Stores keep integer **nano-dollars** (1e-9 USD).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, InvalidOperation

from bedrock_budget.errors import shown

FEMTO_PER_USD = 10**15
FEMTO_PER_NANO = 10**6

_ZERO = Decimal(0)


def parse_usd(value: object, *, what: str = "price") -> Decimal:
    """Parse a price given as a decimal string, ``Decimal`` or ``int``. Floats are refused: they cannot
    represent most prices exactly."""
    if isinstance(value, bool | float):
        raise ValueError(f'{what} must be a decimal string such as "0.80", not the float {value!r}')
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{what} {value!r} is not a decimal number") from None
    else:
        raise ValueError(f"{what} must be a decimal string, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{what} {shown(value)} is not a finite number")
    if result < _ZERO:
        raise ValueError(f"{what} {shown(value)} is negative")
    return result


def usd_to_femto(amount: Decimal, per_units: int = 1) -> int:
    """Femto-dollars per single unit for ``amount`` USD per ``per_units`` units, rounded half-even when
    the result is not exact (only possible after a percentage discount or a multiplier)."""
    scaled = amount * FEMTO_PER_USD / per_units
    return int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN))


def femto_to_usd(femto: int | Decimal) -> Decimal:
    """The exact Decimal for an integer femto-dollar amount, without trailing zeros or exponent form."""
    value = Decimal(femto).scaleb(-15)
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def femto_to_nanos_ceil(femto: int) -> int:
    """Nano-dollars for a store, rounded up so that recorded spend never understates the exact cost."""
    return -(-femto // FEMTO_PER_NANO)


def nanos_to_usd(nanos: int) -> Decimal:
    return femto_to_usd(nanos * FEMTO_PER_NANO)


def usd_to_nanos(amount: Decimal) -> int:
    return int((amount * 10**9).to_integral_value(rounding=ROUND_CEILING))


def format_usd(amount: Decimal, *, min_places: int = 2) -> str:
    """Plain decimal text (no exponent) with at least ``min_places`` decimals: ``70.00``, ``0.013``."""
    text = format(amount, "f")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    if len(frac) < min_places:
        frac = frac.ljust(min_places, "0")
    return f"{whole}.{frac}" if frac else whole
