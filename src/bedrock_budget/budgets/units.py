"""Exact units for money and tokens.

Stores hold only integers: dollars as nano-dollars (1 USD = 10**9) and weighted tokens as milli-tokens
(1 token at weight 1 = 1000), so a weight such as 0.1 for cache reads stays an integer (100 milli-tokens per
token) and no float ever touches a budget. Budget limits are capped at :data:`MAX_AMOUNT` (2**62) so every
sum a store computes stays inside a signed 64-bit Redis integer.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

NANOS_PER_USD = 10**9
MILLI_PER_TOKEN = 1000
MAX_AMOUNT = 2**62

_NANO = Decimal(1).scaleb(-9)
_MILLI = Decimal(1).scaleb(-3)


def to_decimal(value: object, *, what: str, places: int) -> Decimal:
    """Parse a user-supplied exact number: ``str``, ``Decimal`` or ``int``. Floats are refused because
    ``0.1`` as a float is not one tenth; the message says how to write it exactly."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, not a bool")
    if isinstance(value, float):
        raise ValueError(f"{what} {value!r} is a float, which is not exact; pass a string ('{value}')")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{what} {value!r} is not a number") from None
    else:
        raise ValueError(f"{what} must be a str, Decimal or int, not {type(value).__name__}")
    if not number.is_finite():
        raise ValueError(f"{what} must be finite, not {number}")
    if number < 0:
        raise ValueError(f"{what} must not be negative ({number})")
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        raise ValueError(f"{what} {number} has more than {places} decimal places")
    return number


def _tidy(value: Decimal) -> Decimal:
    # normalize() alone turns 100 into 1E+2, which reads badly in messages and reports.
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def usd_to_nanos(usd: Decimal) -> int:
    return int(usd.scaleb(9))


def nanos_to_usd(nanos: int) -> Decimal:
    return _tidy(Decimal(nanos) * _NANO)


def tokens_to_milli(tokens: Decimal) -> int:
    return int(tokens.scaleb(3))


def milli_to_tokens(milli: int) -> Decimal:
    return _tidy(Decimal(milli) * _MILLI)


def check_amount(value: int, what: str) -> int:
    """Validate an integer amount handed to the ledger (nanos or token counts)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must not be negative ({value})")
    if value > MAX_AMOUNT:
        raise ValueError(f"{what} {value} is out of range")
    return value


def check_token_counts(tokens: Mapping[str, int]) -> None:
    """Validate token counts by type; the error names the type (built only when one is wrong)."""
    for kind, count in tokens.items():
        if type(count) is not int or not 0 <= count <= MAX_AMOUNT:
            check_amount(count, f"tokens[{kind!r}]")
