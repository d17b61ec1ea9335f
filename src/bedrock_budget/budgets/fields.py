"""Checks of a budget's fields, each raising :class:`~bedrock_budget.errors.BudgetConfigError` that names
the budget and the field: shared by :class:`~bedrock_budget.budgets.model.Budget` and its per-value
overrides (:mod:`bedrock_budget.budgets.overrides`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Final

from bedrock_budget.budgets.units import MAX_AMOUNT, to_decimal
from bedrock_budget.errors import BudgetConfigError, shown

TOKEN_TYPES: Final = ("input", "output", "cache_read", "cache_write")
#: A ``clamp`` budget refuses a call rather than cap its output below this many tokens.
DEFAULT_MIN_OUTPUT_TOKENS: Final = 100
#: The largest request-count limit (a trillion calls per window).
MAX_REQUESTS: Final = 10**12


def fail(budget: str | None, field: str, reason: str) -> BudgetConfigError:
    return BudgetConfigError(budget, field, reason)


def text(budget: str | None, field: str, value: object, *, max_len: int) -> str:
    if not isinstance(value, str) or not value:
        raise fail(budget, field, f"must be a non-empty string, not {shown(value)}")
    if len(value) > max_len:
        raise fail(budget, field, f"is longer than {max_len} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise fail(budget, field, "must not contain control characters")
    return value


def limit_of(name: str, field: str, value: object, *, places: int) -> Decimal | None:
    if value is None:
        return None
    try:
        number = to_decimal(value, what=field, places=places)
    except ValueError as exc:
        raise fail(name, field, str(exc).removeprefix(f"{field} ")) from None
    if number.scaleb(places) > MAX_AMOUNT:
        raise fail(name, field, f"{number} is too large")
    return number


def requests_of(name: str, field: str, value: object) -> int | None:
    """A request-count limit: a whole number of calls (a string of digits from YAML or the environment)."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REQUESTS:
        raise fail(name, field, f"{shown(value)} is not a whole number from 1 to {MAX_REQUESTS}")
    return value


def weights_of(name: str, weights: Mapping[str, str | Decimal | int] | None) -> dict[str, Decimal]:
    result = {kind: Decimal(1) for kind in TOKEN_TYPES}
    if weights is None:
        return result
    if not isinstance(weights, Mapping):
        raise fail(name, "token_weights", f"must be a mapping of token type to weight, not {shown(weights)}")
    for kind, weight in weights.items():
        field = f"token_weights.{kind}"
        if kind not in TOKEN_TYPES:
            raise fail(name, field, f"unknown token type; expected one of {', '.join(TOKEN_TYPES)}")
        try:
            number = to_decimal(weight, what=field, places=3)
        except ValueError as exc:
            raise fail(name, field, str(exc).removeprefix(f"{field} ")) from None
        if number > 1000:
            raise fail(name, field, f"{number} is above the maximum weight 1000")
        result[kind] = number
    return result


def min_output_of(name: str, action: str, value: object) -> int | None:
    if action != "clamp":
        if value is not None:
            raise fail(name, "min_output_tokens", f"only applies to action 'clamp', not {action!r}")
        return None
    if value is None:
        return DEFAULT_MIN_OUTPUT_TOKENS
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
        raise fail(name, "min_output_tokens", f"{shown(value)} is not a whole number from 1 to 1000000")
    return value


def thresholds_of(name: str, thresholds: Iterable[int]) -> tuple[int, ...]:
    if isinstance(thresholds, str | bytes) or not isinstance(thresholds, Iterable):
        raise fail(name, "thresholds", f"must be a list of percentages, not {shown(thresholds)}")
    values = list(thresholds)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
            raise fail(name, "thresholds", f"{shown(value)} is not a whole percentage between 1 and 1000")
    if len(set(values)) != len(values):
        raise fail(name, "thresholds", "contains duplicates")
    return tuple(sorted(values))
