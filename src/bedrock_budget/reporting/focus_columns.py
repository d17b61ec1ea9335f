"""The FOCUS 1.2 columns of one charge row: every mandatory column, the conditional ones Bedrock usage has
(Region, resource, SKU, consumed quantity, unit prices, tags) and three ``x_`` columns of our own.

docs/focus.md explains each value.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from functools import lru_cache
from typing import Final

from bedrock_budget.errors import BedrockBudgetError
from bedrock_budget.pricing import PriceTable
from bedrock_budget.pricing.money import femto_to_usd, format_usd
from bedrock_budget.reporting.focus import ChargeKey, ChargeTotal, FocusSettings
from bedrock_budget.reporting.focus_pricing import REQUEST

__all__ = ["COLUMNS", "focus_columns"]

COLUMNS: Final = (
    # Mandatory in FOCUS 1.2.
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    # Conditional and optional columns that apply to Bedrock usage.
    "ChargeFrequency",
    "CommitmentDiscountStatus",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedUnitPrice",
    "InvoiceId",
    "ListUnitPrice",
    "PricingCurrency",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "Tags",
    # Ours.
    "x_Calls",
    "x_PriceStatus",
    "x_UsageEstimated",
)

AWS: Final = "AWS"
SERVICE: Final = "Amazon Bedrock"
_PUBLISHERS: Final = {
    "ai21": "AI21 Labs",
    "amazon": AWS,
    "anthropic": "Anthropic",
    "cohere": "Cohere",
    "deepseek": "DeepSeek",
    "google": "Google",
    "meta": "Meta",
    "minimax": "MiniMax",
    "mistral": "Mistral AI",
    "moonshot": "Moonshot AI",
    "nvidia": "NVIDIA",
    "openai": "OpenAI",
    "qwen": "Qwen",
    "stability": "Stability AI",
    "twelvelabs": "TwelveLabs",
    "writer": "Writer",
    "xai": "xAI",
    "zai": "Z.ai",
}
#: Dimension -> (FOCUS unit, meter name).
_UNITS: Final = {
    "input_tokens": ("Tokens", "Input Tokens"),
    "output_tokens": ("Tokens", "Output Tokens"),
    "cache_read_tokens": ("Tokens", "Cache Read Input Tokens"),
    "cache_write_5m_tokens": ("Tokens", "Cache Write Input Tokens (5 minutes)"),
    "cache_write_1h_tokens": ("Tokens", "Cache Write Input Tokens (1 hour)"),
    "images": ("Images", "Images"),
    "video_seconds": ("Seconds", "Video Seconds"),
    "rerank_queries": ("Queries", "Rerank Queries"),
    REQUEST: ("Requests", "Requests"),
}
_WHY: Final = {
    "priced": "",
    "recorded": "; the recorded cost of each request (the price table gives another)",
    "unpriced": "; not priced when recorded (cost 0 here)",
    "capacity": "; covered by hourly capacity, billed separately",
}


def _money(femto: int) -> str:
    # Always with a decimal point: readers that infer column types from the text must see decimals.
    return format_usd(femto_to_usd(femto), min_places=1)


def _time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _month(hour: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start = hour.replace(day=1, hour=0)
    days = calendar.monthrange(start.year, start.month)[1]
    return start, start + dt.timedelta(days=days)


def unit_and_meter(dimension: str) -> tuple[str, str]:
    known = _UNITS.get(dimension)
    if known is not None:
        return known
    if dimension.startswith("images:"):
        return "Images", f"Images ({dimension.partition(':')[2]})"
    if dimension.endswith("_text_units"):
        policy = dimension.removesuffix("_text_units").replace("_", " ")
        return "Units", f"Guardrail Text Units ({policy})"
    if dimension.endswith("_images"):
        policy = dimension.removesuffix("_images").replace("_", " ")
        return "Images", f"Guardrail Images ({policy})"
    return "Units", dimension.replace("_", " ").title()


@lru_cache(maxsize=256)
def region_name(region: str) -> str:
    import botocore.session

    for partition in botocore.session.get_session().get_data("endpoints").get("partitions", ()):
        described = partition.get("regions", {}).get(region)
        if described and described.get("description"):
            return str(described["description"])
    return region


def _model(prices: PriceTable, model_id: str) -> tuple[str, str]:
    """(publisher, model name); a model the table does not know is named by its id."""
    try:
        spec = prices.model(model_id)
    except BedrockBudgetError:
        provider = model_id.rsplit("/", 1)[-1].split(".")
        head = provider[1] if len(provider) > 2 and len(provider[0]) <= 7 else provider[0]
        return _PUBLISHERS.get(head, head), model_id
    return _PUBLISHERS.get(spec.provider, spec.provider), spec.name


def focus_columns(
    key: ChargeKey, total: ChargeTotal, settings: FocusSettings, prices: PriceTable
) -> dict[str, str]:
    """One row's values as text, empty for null."""
    unit, meter = unit_and_meter(key.dimension)
    publisher, name = _model(prices, key.model)
    billed = _money(total.contracted_femto)
    start, end = _month(key.hour)
    sku = f"{key.model}/{key.dimension}"
    details = {
        "Region": key.region,
        "Route": key.route,
        "ServiceTier": key.service_tier,
        "LatencyMode": key.latency_mode,
        "PricingMode": key.pricing_mode,
    }
    place = f"{key.region}, {key.route} route"
    description = f"{name}: {meter.lower()}, {place}{_WHY[key.status]}"
    if key.estimated:
        description += "; counts estimated, not reported by Bedrock"
    quantity = f"{total.quantity}.0"
    contracted_price = _money(key.contracted_rate)
    list_price = _money(key.list_rate)
    return {
        "BilledCost": billed,
        "BillingAccountId": settings.account_id,
        "BillingAccountName": settings.account_name,
        "BillingCurrency": "USD",
        "BillingPeriodEnd": _time(end),
        "BillingPeriodStart": _time(start),
        "ChargeCategory": "Usage",
        "ChargeClass": "",
        "ChargeDescription": description,
        "ChargePeriodEnd": _time(key.hour + dt.timedelta(hours=1)),
        "ChargePeriodStart": _time(key.hour),
        "ContractedCost": billed,
        "EffectiveCost": billed,
        "InvoiceIssuerName": AWS,
        "ListCost": _money(total.list_femto),
        "PricingCategory": "Other" if key.status == "capacity" else "Standard",
        "PricingQuantity": quantity,
        "PricingUnit": unit,
        "ProviderName": AWS,
        "PublisherName": publisher,
        "ServiceCategory": "AI and Machine Learning",
        "ServiceName": SERVICE,
        "ChargeFrequency": "Usage-Based",
        "CommitmentDiscountStatus": "",
        "ConsumedQuantity": quantity,
        "ConsumedUnit": unit,
        "ContractedUnitPrice": contracted_price,
        "InvoiceId": "",
        "ListUnitPrice": list_price,
        "PricingCurrency": "USD",
        "PricingCurrencyContractedUnitPrice": contracted_price,
        "PricingCurrencyEffectiveCost": billed,
        "PricingCurrencyListUnitPrice": list_price,
        "RegionId": key.region,
        "RegionName": region_name(key.region),
        "ResourceId": key.model,
        "ResourceName": name,
        "ResourceType": "Model",
        "ServiceSubcategory": "Generative AI",
        "SkuId": sku,
        "SkuMeter": meter,
        "SkuPriceDetails": json.dumps(details, separators=(",", ":")),
        "SkuPriceId": "/".join((sku, key.region, key.route, key.service_tier, key.latency_mode, list_price)),
        "Tags": json.dumps(dict(key.tags), separators=(",", ":"), sort_keys=True) if key.tags else "",
        "x_Calls": str(total.calls),
        "x_PriceStatus": key.status,
        "x_UsageEstimated": "true" if key.estimated else "false",
    }
