"""The async driver: an aiobotocore ``bedrock-runtime`` client whose billable methods go through the meter.

It runs the sync driver's own steps (:meth:`Meter.prepare <bedrock_budget.wrapper.meter.Meter.prepare>`,
``completed``, ``abort``) around an awaited call, so records, prices and attribution are the sync path's:
nothing runs when the coroutine is created, and a call's record is emitted once its response (or its
stream's end) has arrived. Attribution is read in ``prepare``, inside the awaiting task, so each task of an
``asyncio.gather`` is charged to its own ``bb.attribute(...)``.

With budgets the meter's guard is an :class:`~bedrock_budget.budgets.async_enforcement.AsyncBudgetGuard`:
the reservation is awaited between ``prepare`` and the call (a refusal raises before any request is sent),
and the meter's own decision step (``apply_admission``) turns it into a downgrade, a clamp or a refusal, as
the sync driver does. Settling and releasing queue their store work on the loop and never wait. Leaving
``async with client`` flushes the ledger's queued settlements.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from bedrock_budget.errors import ConfigurationError
from bedrock_budget.pipeline.operations import BILLABLE, Operation
from bedrock_budget.wrapper.async_body import BufferedBody
from bedrock_budget.wrapper.async_streams import AsyncMeteredEventStream
from bedrock_budget.wrapper.meter import MAX_DOWNGRADES, Meter
from bedrock_budget.wrapper.proxy import PROXY_TYPES
from bedrock_budget.wrapper.proxy_base import ProxyBase

if TYPE_CHECKING:
    from bedrock_budget.budgets.async_enforcement import AsyncBudgetGuard

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
        if meter.guard is not None and not hasattr(meter.guard, "admit_async"):
            raise ConfigurationError("an async client needs an async budget layer: wrap it with bb.wrap()")
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
        guard = self._self_meter.guard
        if guard is not None:
            await cast("AsyncBudgetGuard", guard).ledger.flush()
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
    ctx = meter.prepare(operation, kwargs, region, func)
    guard = meter.guard
    if guard is not None:
        try:
            await _admit(meter, cast("AsyncBudgetGuard", guard), ctx, kwargs)
        except asyncio.CancelledError as exc:
            # Cancelled while the store answered: nothing went to Bedrock, and the ledger gives back a
            # hold the store granted meanwhile. The call still ends as one record.
            meter.abort(ctx, exc)
            raise
    try:
        response = await func(**kwargs)
    except BaseException as exc:
        meter.abort(ctx, exc)
        raise
    if operation is _INVOKE_MODEL and meter.core.reads_body(ctx, response):
        return await _completed_with_body(meter, ctx, response)
    return meter.completed(ctx, response, AsyncMeteredEventStream)


async def _admit(meter: Meter, guard: AsyncBudgetGuard, ctx: Any, kwargs: dict[str, Any]) -> None:
    """The budget layer's decisions for one call, awaited, applied by the meter (raises when refused)."""
    for attempt in range(MAX_DOWNGRADES + 1):
        if meter.apply_admission(ctx, kwargs, await guard.admit_async(ctx, kwargs), attempt):
            return


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
