"""``instrument()`` for aiobotocore: ``bedrock-runtime`` clients that aiobotocore (and so aioboto3, and the
libraries built on them) creates while instrumented come back as async proxies.

aiobotocore's ``AioSession.create_client`` returns a context whose ``__aenter__`` awaits
``AioSession._create_client`` and then enters the client it made; replacing ``_create_client`` hands that
context the proxy, so ``async with session.create_client("bedrock-runtime") as client`` yields it.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from bedrock_budget.wrapper.async_proxy import AsyncBudgetedClient
from bedrock_budget.wrapper.meter import Meter

_original: Any = None


def patch(current_meter: Callable[[], Meter | None]) -> None:
    """Wrap every bedrock-runtime client aiobotocore creates with the meter ``current_meter()`` returns."""
    global _original
    session_class = _session_class()
    if _original is not None:
        return
    original = session_class._create_client
    _original = original

    @functools.wraps(original)
    async def _create_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = await original(self, service_name, *args, **kwargs)
        meter = current_meter()
        if service_name != "bedrock-runtime" or meter is None:
            return client
        return AsyncBudgetedClient(client, meter)

    session_class._create_client = _create_client


def _session_class() -> Any:
    # Imported by name: aiobotocore is an optional dependency without type information.
    return importlib.import_module("aiobotocore.session").AioSession


def unpatch() -> None:
    global _original
    if _original is None:
        return
    _session_class()._create_client = _original
    _original = None
