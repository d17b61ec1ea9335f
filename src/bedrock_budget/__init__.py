"""bedrock-budget: know and cap what AWS Bedrock costs you.

Public names are loaded on first use, so ``import bedrock_budget`` costs almost nothing on top of boto3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "wrap": "bedrock_budget.wrapper.configure",
    "instrument": "bedrock_budget.wrapper.instrument",
    "uninstrument": "bedrock_budget.wrapper.instrument",
    "unwrap": "bedrock_budget.wrapper.proxy",
    "BudgetedClient": "bedrock_budget.wrapper.proxy",
    "attribute": "bedrock_budget.attribution",
    "current_attribution": "bedrock_budget.attribution",
    "CallRecord": "bedrock_budget.records",
    "LogListener": "bedrock_budget.records",
    "Usage": "bedrock_budget.usage",
    "Cost": "bedrock_budget.pricing.cost",
    "CostLine": "bedrock_budget.pricing.cost",
    "PriceTable": "bedrock_budget.pricing.table",
    "load_price_table": "bedrock_budget.pricing.table",
    "default_price_table": "bedrock_budget.pricing.table",
    "ModelResolver": "bedrock_budget.resolver",
    "parse_model_id": "bedrock_budget.model_ids",
    "Budget": "bedrock_budget.budgets.model",
    "load_budgets": "bedrock_budget.budgets.loading",
    "BedrockBudgetError": "bedrock_budget.errors",
    "BudgetExceededError": "bedrock_budget.errors",
    "StoreUnavailableError": "bedrock_budget.errors",
    "UnknownModelError": "bedrock_budget.errors",
    "AttributionError": "bedrock_budget.errors",
    "ConfigurationError": "bedrock_budget.errors",
}

__all__ = [
    "AttributionError",
    "BedrockBudgetError",
    "Budget",
    "BudgetExceededError",
    "BudgetedClient",
    "CallRecord",
    "ConfigurationError",
    "Cost",
    "CostLine",
    "LogListener",
    "ModelResolver",
    "PriceTable",
    "StoreUnavailableError",
    "UnknownModelError",
    "Usage",
    "attribute",
    "current_attribution",
    "default_price_table",
    "instrument",
    "load_budgets",
    "load_price_table",
    "parse_model_id",
    "uninstrument",
    "unwrap",
    "wrap",
]


_SUBMODULES = frozenset({"metrics", "testing", "stores", "budgets", "pricing"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"bedrock_budget.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bedrock_budget' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from bedrock_budget.attribution import attribute, current_attribution
    from bedrock_budget.budgets.loading import load_budgets
    from bedrock_budget.budgets.model import Budget
    from bedrock_budget.errors import (
        AttributionError,
        BedrockBudgetError,
        BudgetExceededError,
        ConfigurationError,
        StoreUnavailableError,
        UnknownModelError,
    )
    from bedrock_budget.model_ids import parse_model_id
    from bedrock_budget.pricing.cost import Cost, CostLine
    from bedrock_budget.pricing.table import PriceTable, default_price_table, load_price_table
    from bedrock_budget.records import CallRecord, LogListener
    from bedrock_budget.resolver import ModelResolver
    from bedrock_budget.usage import Usage
    from bedrock_budget.wrapper.configure import wrap
    from bedrock_budget.wrapper.instrument import instrument, uninstrument
    from bedrock_budget.wrapper.proxy import BudgetedClient, unwrap
