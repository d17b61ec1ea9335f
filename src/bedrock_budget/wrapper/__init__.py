"""Metering proxies around boto3 bedrock-runtime clients."""

from bedrock_budget.wrapper.configure import build_meter, wrap
from bedrock_budget.wrapper.instrument import instrument, is_instrumented, uninstrument
from bedrock_budget.wrapper.proxy import BudgetedClient, unwrap

__all__ = ["BudgetedClient", "build_meter", "instrument", "is_instrumented", "uninstrument", "unwrap", "wrap"]
