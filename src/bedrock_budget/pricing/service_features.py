"""Prices of what is not a model call: Provisioned Throughput (model units × hours), Guardrail policies
(text units and images) and Custom Model Import (CMU-minutes in 5-minute windows, plus storage).

The price table looks up the prices in force and passes them here with its discount (the fraction of list
price paid, or ``None``); these functions check the quantities and compute the cost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal, TypeVar

from bedrock_budget.errors import ConfigurationError, UnsupportedPricingError, shown
from bedrock_budget.pricing.cost import ContextValue, Cost, RawLine
from bedrock_budget.pricing.money import FEMTO_PER_USD, parse_usd, usd_to_femto
from bedrock_budget.pricing.schema import CustomModelImportPrices, GuardrailPrices, PriceSpec

Commitment = Literal["none", "1-month", "6-month"]
_COMMITMENT_KEYS: dict[str, str] = {"none": "no_commit", "1-month": "one_month", "6-month": "six_month"}
_Dated = TypeVar("_Dated", GuardrailPrices, CustomModelImportPrices)


def provisioned_terms(model_units: int, commitment: Commitment, hours: Decimal | int) -> tuple[str, Decimal]:
    """The price-file key of ``commitment`` and ``hours`` as a Decimal, once all three are checked (before
    the model is looked up, so a bad quantity is reported first)."""
    _require_positive("model_units", model_units)
    hours_d = _non_negative_decimal("hours", hours)
    key = _COMMITMENT_KEYS.get(commitment)
    if key is None:
        raise ConfigurationError(f"commitment must be none, 1-month or 6-month, got {commitment!r}")
    return key, hours_d


def provisioned_cost(
    model_id: str,
    spec: PriceSpec,
    *,
    commitment: Commitment,
    commitment_key: str,
    model_units: int,
    hours: Decimal,
    region: str,
    discount: Decimal | None,
) -> Cost:
    """Provisioned Throughput: model units × hours at the hourly rate of the commitment term."""
    rate = spec.provisioned.get(commitment_key)
    if rate is None:
        raise UnsupportedPricingError(model_id, f"provisioned throughput ({commitment} commitment)")
    rate = _discounted(rate, discount)
    femto_per_hour = usd_to_femto(rate)
    unit_hours = hours * model_units
    total = _exact_femto(rate * unit_hours)
    context: dict[str, ContextValue] = {
        "region": region,
        "commitment": commitment,
        "model_units": model_units,
        "hours": str(hours),
    }
    return Cost(model_id, total, (("model_unit_hours", unit_hours, femto_per_hour, 1),), context)


def guardrail_cost(
    history: Sequence[GuardrailPrices],
    day: dt.date,
    text_units: Mapping[str, int],
    image_units: Mapping[str, int] | None,
    discount: Decimal | None,
) -> Cost:
    """Guardrail policies: text units (up to 1,000 characters each) per policy, priced per 1,000."""
    prices = _in_force(history, day, "guardrails")
    raw: list[RawLine] = []
    total = 0
    for policy, units in text_units.items():
        _require_non_negative(f"text units for {policy}", units)
        rate = prices.per_1000_text_units.get(policy)
        if rate is None:
            known = ", ".join(sorted(prices.per_1000_text_units))
            raise UnsupportedPricingError("guardrails", f"{policy!r} policy", f"known policies: {known}")
        femto = usd_to_femto(_discounted(rate, discount), 1000)
        raw.append((f"{policy}_text_units", units, femto, 1000))
        total += units * femto
    for policy, units in (image_units or {}).items():
        _require_non_negative(f"image units for {policy}", units)
        rate = prices.per_image.get(policy)
        if rate is None:
            raise UnsupportedPricingError("guardrails", f"{policy!r} image policy")
        femto = usd_to_femto(_discounted(rate, discount))
        raw.append((f"{policy}_images", units, femto, 1))
        total += units * femto
    return Cost("guardrails", total, tuple(raw), {"price_effective": prices.effective.isoformat()})


def custom_model_import_cost(
    history: Sequence[CustomModelImportPrices],
    day: dt.date,
    *,
    custom_model_units: int,
    active_windows: int,
    region: str,
    storage_months: Decimal | int,
    discount: Decimal | None,
) -> Cost:
    """Custom Model Import: CMUs × active 5-minute windows × the per-CMU-minute rate, plus storage."""
    _require_positive("custom_model_units", custom_model_units)
    _require_non_negative("active_windows", active_windows)
    months = _non_negative_decimal("storage_months", storage_months)
    prices = _in_force(history, day, "custom model import")
    per_minute = prices.cmu_minute.get(region)
    if per_minute is None:
        raise UnsupportedPricingError(
            "custom-model-import",
            f"region {region}",
            f"priced regions: {', '.join(sorted(prices.cmu_minute))}",
        )
    per_minute = _discounted(per_minute, discount)
    cmu_minutes = custom_model_units * active_windows * prices.window_minutes
    minute_femto = usd_to_femto(per_minute)
    raw: list[RawLine] = [("cmu_minutes", cmu_minutes, minute_femto, 1)]
    total = cmu_minutes * minute_femto
    if months:
        storage = _discounted(prices.storage_cmu_month, discount)
        cmu_months = months * custom_model_units
        raw.append(("storage_cmu_months", cmu_months, usd_to_femto(storage), 1))
        total += _exact_femto(storage * cmu_months)
    context: dict[str, ContextValue] = {"region": region, "window_minutes": prices.window_minutes}
    return Cost("custom-model-import", total, tuple(raw), context)


def _in_force(entries: Sequence[_Dated], day: dt.date, what: str) -> _Dated:
    chosen = None
    for entry in entries:
        if entry.effective <= day:
            chosen = entry
    if chosen is None:
        raise UnsupportedPricingError(what, "price", f"no {what} price in force on {day.isoformat()}")
    return chosen


def _discounted(amount: Decimal, discount: Decimal | None) -> Decimal:
    return amount if discount is None else amount * discount


def _exact_femto(usd: Decimal) -> int:
    return int((usd * FEMTO_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def _require_positive(name: str, value: int) -> None:
    if type(value) is not int or value <= 0:
        raise ConfigurationError(f"{name} must be a positive integer, got {shown(value)}")


def _require_non_negative(name: str, value: int) -> None:
    if type(value) is not int or value < 0:
        raise ConfigurationError(f"{name} must be a non-negative integer, got {shown(value)}")


def _non_negative_decimal(name: str, value: Decimal | int) -> Decimal:
    try:
        return parse_usd(value, what=name)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
