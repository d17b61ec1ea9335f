"""The drop-in proxy: a boto3 ``bedrock-runtime`` client whose billable methods go through the meter.

Everything else — ``meta``, ``exceptions``, paginators, waiters, non-billable operations — is the original
client's, untouched, and ``isinstance(proxy, botocore.client.BaseClient)`` still holds.
"""

from __future__ import annotations

from typing import Any

import wrapt

from bedrock_budget.wrapper.meter import Meter
from bedrock_budget.wrapper.operations import BILLABLE, Operation


class BudgetedClient(wrapt.BaseObjectProxy[Any]):
    def __init__(self, client: Any, meter: Meter) -> None:
        super().__init__(client)
        self._self_meter = meter
        self._self_region = getattr(getattr(client, "meta", None), "region_name", None) or "us-east-1"

    @property
    def bedrock_budget_meter(self) -> Meter:
        """The meter behind this client (for tests and introspection)."""
        return self._self_meter

    def _self_call(self, operation: Operation, kwargs: dict[str, Any]) -> Any:
        method = getattr(self.__wrapped__, operation.method)
        return self._self_meter.call(operation, method, kwargs, self._self_region)

    def converse(self, **kwargs: Any) -> Any:
        return self._self_call(BILLABLE["converse"], kwargs)

    def converse_stream(self, **kwargs: Any) -> Any:
        return self._self_call(BILLABLE["converse_stream"], kwargs)

    def invoke_model(self, **kwargs: Any) -> Any:
        return self._self_call(BILLABLE["invoke_model"], kwargs)

    def invoke_model_with_response_stream(self, **kwargs: Any) -> Any:
        return self._self_call(BILLABLE["invoke_model_with_response_stream"], kwargs)

    def apply_guardrail(self, **kwargs: Any) -> Any:
        return self._self_call(BILLABLE["apply_guardrail"], kwargs)

    def start_async_invoke(self, **kwargs: Any) -> Any:
        return self._self_call(BILLABLE["start_async_invoke"], kwargs)

    def __repr__(self) -> str:
        return f"<bedrock_budget.BudgetedClient wrapping {self.__wrapped__!r}>"


def unwrap(client: Any) -> Any:
    """The innermost boto3 client behind any number of bedrock-budget proxies."""
    while type(client) is BudgetedClient:
        client = client.__wrapped__
    return client
