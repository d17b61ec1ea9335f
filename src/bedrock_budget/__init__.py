"""bedrock-budget: know and cap what AWS Bedrock costs you.

Public names are loaded on first use, so ``import bedrock_budget`` costs almost nothing on top of boto3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from bedrock_budget._lazy_exports import lazy_exports

__version__ = "0.1.0"

_EXPORTS: Final = {
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
    "StoreBudgets": "bedrock_budget.budgets.live",
    "load_budgets": "bedrock_budget.budgets.loading",
    "spend": "bedrock_budget.reporting.spend",
    "SpendRow": "bedrock_budget.reporting.spend",
    "Tracking": "bedrock_budget.stores.tracking",
    "BedrockBudgetError": "bedrock_budget.errors",
    "BudgetExceededError": "bedrock_budget.errors",
    "StoreUnavailableError": "bedrock_budget.errors",
    "UnattributedCallError": "bedrock_budget.errors",
    "EvictionPolicyError": "bedrock_budget.errors",
    "UnknownModelError": "bedrock_budget.errors",
    "AttributionError": "bedrock_budget.errors",
    "ConfigurationError": "bedrock_budget.errors",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(
    globals(), _EXPORTS, submodules=("metrics", "testing", "stores", "budgets", "pricing")
)

if TYPE_CHECKING:
    from bedrock_budget.attribution import attribute as attribute
    from bedrock_budget.attribution import current_attribution as current_attribution
    from bedrock_budget.budgets.live import StoreBudgets as StoreBudgets
    from bedrock_budget.budgets.loading import load_budgets as load_budgets
    from bedrock_budget.budgets.model import Budget as Budget
    from bedrock_budget.errors import AttributionError as AttributionError
    from bedrock_budget.errors import BedrockBudgetError as BedrockBudgetError
    from bedrock_budget.errors import BudgetExceededError as BudgetExceededError
    from bedrock_budget.errors import ConfigurationError as ConfigurationError
    from bedrock_budget.errors import EvictionPolicyError as EvictionPolicyError
    from bedrock_budget.errors import StoreUnavailableError as StoreUnavailableError
    from bedrock_budget.errors import UnattributedCallError as UnattributedCallError
    from bedrock_budget.errors import UnknownModelError as UnknownModelError
    from bedrock_budget.model_ids import parse_model_id as parse_model_id
    from bedrock_budget.pricing.cost import Cost as Cost
    from bedrock_budget.pricing.cost import CostLine as CostLine
    from bedrock_budget.pricing.table import PriceTable as PriceTable
    from bedrock_budget.pricing.table import default_price_table as default_price_table
    from bedrock_budget.pricing.table import load_price_table as load_price_table
    from bedrock_budget.records import CallRecord as CallRecord
    from bedrock_budget.records import LogListener as LogListener
    from bedrock_budget.reporting.spend import SpendRow as SpendRow
    from bedrock_budget.reporting.spend import spend as spend
    from bedrock_budget.resolver import ModelResolver as ModelResolver
    from bedrock_budget.stores.tracking import Tracking as Tracking
    from bedrock_budget.usage import Usage as Usage
    from bedrock_budget.wrapper.configure import wrap as wrap
    from bedrock_budget.wrapper.instrument import instrument as instrument
    from bedrock_budget.wrapper.instrument import uninstrument as uninstrument
    from bedrock_budget.wrapper.proxy import BudgetedClient as BudgetedClient
    from bedrock_budget.wrapper.proxy import unwrap as unwrap
