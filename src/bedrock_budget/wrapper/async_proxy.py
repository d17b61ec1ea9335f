"""The async driver: an aiobotocore ``bedrock-runtime`` client whose billable methods go through the meter.

It runs the sync driver's own steps (:meth:`Meter.begin <bedrock_budget.wrapper.meter.Meter.begin>`,
``completed``, ``abort``) around an awaited call, so records, prices and attribution are the sync path's:
nothing runs when the coroutine is created, and a call's record is emitted once its response (or its
stream's end) has arrived. Attribution is read in ``begin``, inside the awaiting task, so each task of an
``asyncio.gather`` is charged to its own ``bb.attribute(...)``.

Budgets are not enforced on async clients yet (their store calls would block the event loop): wrapping one
with budget options raises :class:`~bedrock_budget.errors.ConfigurationError` instead of not enforcing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bedrock_budget.errors import ConfigurationError
from bedrock_budget.pipeline.operations import BILLABLE, Operation
from bedrock_budget.wrapper.async_body import BufferedBody
from bedrock_budget.wrapper.async_streams import AsyncMeteredEventStream
from bedrock_budget.wrapper.meter import Meter
from bedrock_budget.wrapper.proxy import PROXY_TYPES
from bedrock_budget.wrapper.proxy_base import ProxyBase

_CONVERSE = BILLABLE["converse"]
_CONVERSE_STREAM = BILLABLE["converse_stream"]
_INVOKE_MODEL = BILLABLE["invoke_model"]
_INVOKE_MODEL_STREAM = BILLABLE["invoke_model_with_response_stream"]
_APPLY_GUARDRAIL = BILLABLE["apply_guardrail"]
_START_ASYNC_INVOKE = BILLABLE["start_async_invoke"]


class AsyncBudgetedClient(ProxyBase):
    """What ``bb.wrap`` returns for an aiobotocore client: same methods (billable ones are coroutines, as
    before), ``isinstance`` to aiobotocore's client class holds, and ``async with`` gives the proxy."""

    def __init__(self, client: Any, meter: Meter) -> None:
        if meter.guard is not None:
            raise async_budgets_error(["budgets"])
        super().__init__(client)
        self._self_meter = meter
        self._self_region = getattr(getattr(client, "meta", None), "region_name", None) or "us-east-1"
        self._self_target = (meter, client, self._self_region)

    @property
    def bedrock_budget_meter(self) -> Meter:
        """The meter behind this client (for tests and introspection)."""
        return self._self_meter

    async def converse(self, **kwargs: Any) -> Any:
        meter, client, region = self._self_target
        return await call(meter, _CONVERSE, client.converse, kwargs, region)

    async def converse_stream(self, **kwargs: Any) -> Any:
        meter, client, region = self._self_target
        return await call(meter, _CONVERSE_STREAM, client.converse_stream, kwargs, region)

    async def invoke_model(self, **kwargs: Any) -> Any:
        meter, client, region = self._self_target
        return await call(meter, _INVOKE_MODEL, client.invoke_model, kwargs, region)

    async def invoke_model_with_response_stream(self, **kwargs: Any) -> Any:
        meter, client, region = self._self_target
        method = client.invoke_model_with_response_stream
        return await call(meter, _INVOKE_MODEL_STREAM, method, kwargs, region)

    async def apply_guardrail(self, **kwargs: Any) -> Any:
        meter, client, region = self._self_target
        return await call(meter, _APPLY_GUARDRAIL, client.apply_guardrail, kwargs, region)

    async def start_async_invoke(self, **kwargs: Any) -> Any:
        meter, client, region = self._self_target
        return await call(meter, _START_ASYNC_INVOKE, client.start_async_invoke, kwargs, region)

    async def __aenter__(self) -> AsyncBudgetedClient:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self.__wrapped__.__aexit__(*exc_info)

    def __repr__(self) -> str:
        return f"<bedrock_budget.AsyncBudgetedClient wrapping {self.__wrapped__!r}>"


PROXY_TYPES.add(AsyncBudgetedClient)


async def call(
    meter: Meter,
    operation: Operation,
    func: Callable[..., Awaitable[Any]],
    kwargs: dict[str, Any],
    region: str,
) -> Any:
    """One awaited call through the pipeline: the sync driver's steps around ``await func(**kwargs)``."""
    ctx = meter.begin(operation, kwargs, region, func)
    try:
        response = await func(**kwargs)
    except BaseException as exc:
        meter.abort(ctx, exc)
        raise
    if operation is _INVOKE_MODEL and meter.core.reads_body(ctx, response):
        return await _completed_with_body(meter, ctx, response)
    return meter.completed(ctx, response, AsyncMeteredEventStream)


async def _completed_with_body(meter: Meter, ctx: Any, response: dict[str, Any]) -> Any:
    """Read the body by awaiting, meter the response with its bytes, and hand the caller an unread copy."""
    body = response.get("body")
    read = getattr(body, "read", None)
    if read is None or isinstance(body, bytes | bytearray):
        return meter.completed(ctx, response, AsyncMeteredEventStream)
    try:
        data = await read()
    except BaseException as exc:
        # Bedrock billed the call: record it from what is known, and let the caller meet the same error
        # when it reads the body (or now, for a cancellation, which is not the body's error to keep).
        response["body"] = None
        meter.completed(ctx, response, AsyncMeteredEventStream)
        response["body"] = BufferedBody(b"", error=exc)
        if not isinstance(exc, Exception):
            raise
        return response
    if isinstance(data, str):
        data = data.encode("utf-8")
    data = bytes(data) if isinstance(data, bytes | bytearray) else b""
    response["body"] = data
    meter.completed(ctx, response, AsyncMeteredEventStream)
    response["body"] = BufferedBody(data)
    return response


def async_budgets_error(options: list[str]) -> ConfigurationError:
    return ConfigurationError(
        "budgets are not enforced on async (aiobotocore) clients yet, and a budget that silently did not "
        f"hold would be worse than none: {', '.join(sorted(options))} given. Wrap the async client without "
        "budget options to meter it (records, exact prices, listeners), or send budgeted calls through a "
        "boto3 client"
    )
