"""The drop-in proxy: a boto3 ``bedrock-runtime`` client whose billable methods go through the meter.

Everything else — ``meta``, ``exceptions``, paginators, waiters, non-billable operations — is the original
client's, untouched, and ``isinstance(proxy, botocore.client.BaseClient)`` still holds.
"""

from __future__ import annotations

import sys
from typing import Any

from bedrock_budget.wrapper.meter import Meter
from bedrock_budget.wrapper.operations import BILLABLE
from bedrock_budget.wrapper.proxy_base import ProxyBase

_CONVERSE = BILLABLE["converse"]
_CONVERSE_STREAM = BILLABLE["converse_stream"]
_INVOKE_MODEL = BILLABLE["invoke_model"]
_INVOKE_MODEL_STREAM = BILLABLE["invoke_model_with_response_stream"]
_APPLY_GUARDRAIL = BILLABLE["apply_guardrail"]
_START_ASYNC_INVOKE = BILLABLE["start_async_invoke"]


class BudgetedClient(ProxyBase):
    def __init__(self, client: Any, meter: Meter) -> None:
        super().__init__(client)
        self._self_meter = meter
        self._self_region = getattr(getattr(client, "meta", None), "region_name", None) or "us-east-1"
        # Every attribute read on a proxy costs several times a plain one, so each metered call reads
        # this one tuple instead of the meter, the client and the region apart.
        self._self_target = (meter, client, self._self_region)

    @property
    def bedrock_budget_meter(self) -> Meter:
        """The meter behind this client (for tests and introspection)."""
        return self._self_meter

    def converse(self, **kwargs: Any) -> Any:
        meter, client, region = self._self_target
        return meter.call(_CONVERSE, client.converse, kwargs, region)

    def converse_stream(self, **kwargs: Any) -> Any:
        meter, client, region = self._self_target
        return meter.call(_CONVERSE_STREAM, client.converse_stream, kwargs, region)

    def invoke_model(self, **kwargs: Any) -> Any:
        meter, client, region = self._self_target
        return meter.call(_INVOKE_MODEL, client.invoke_model, kwargs, region)

    def invoke_model_with_response_stream(self, **kwargs: Any) -> Any:
        meter, client, region = self._self_target
        return meter.call(_INVOKE_MODEL_STREAM, client.invoke_model_with_response_stream, kwargs, region)

    def apply_guardrail(self, **kwargs: Any) -> Any:
        meter, client, region = self._self_target
        return meter.call(_APPLY_GUARDRAIL, client.apply_guardrail, kwargs, region)

    def start_async_invoke(self, **kwargs: Any) -> Any:
        meter, client, region = self._self_target
        return meter.call(_START_ASYNC_INVOKE, client.start_async_invoke, kwargs, region)

    def __repr__(self) -> str:
        return f"<bedrock_budget.BudgetedClient wrapping {self.__wrapped__!r}>"


#: The proxy classes ``unwrap`` sees through (the async proxy adds itself when it is imported).
PROXY_TYPES: set[type] = {BudgetedClient}


def unwrap(client: Any) -> Any:
    """The innermost boto3 (or aiobotocore) client behind any number of bedrock-budget proxies."""
    while type(client) in PROXY_TYPES:
        client = client.__wrapped__
    return client


def is_async_client(client: Any) -> bool:
    """Whether ``client`` is an aiobotocore client (its methods return awaitables). Imports nothing: a
    process that never imported aiobotocore has no such client."""
    module = sys.modules.get("aiobotocore.client")
    base = getattr(module, "AioBaseClient", None)
    return isinstance(base, type) and isinstance(client, base)
