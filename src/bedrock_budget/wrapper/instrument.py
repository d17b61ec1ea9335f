"""Opt-in, zero-code metering: every ``bedrock-runtime`` client created after :func:`instrument` — also
inside third-party libraries — comes back wrapped."""

from __future__ import annotations

import functools
import threading
from typing import Any

from bedrock_budget.wrapper.configure import build_meter
from bedrock_budget.wrapper.meter import Meter
from bedrock_budget.wrapper.proxy import BudgetedClient

_lock = threading.Lock()
_original_create_client: Any = None
_meter: Meter | None = None


def instrument(**config: Any) -> None:
    """Meter every ``bedrock-runtime`` client created from now on with ``config`` (the same keywords as
    ``wrap``). Calling it again replaces the configuration; it never stacks."""
    global _original_create_client, _meter
    from botocore.session import Session

    meter = build_meter(**config)
    with _lock:
        _meter = meter
        if _original_create_client is not None:
            return
        original = Session.create_client
        _original_create_client = original

        @functools.wraps(original)
        def create_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
            client = original(self, service_name, *args, **kwargs)
            current = _meter
            if service_name == "bedrock-runtime" and current is not None:
                return BudgetedClient(client, current)
            return client

        Session.create_client = create_client  # type: ignore[method-assign]


def uninstrument() -> None:
    """Stop wrapping new clients. Clients already created stay metered."""
    global _original_create_client, _meter
    from botocore.session import Session

    with _lock:
        if _original_create_client is not None:
            Session.create_client = _original_create_client  # type: ignore[method-assign]
        _original_create_client = None
        _meter = None


def is_instrumented() -> bool:
    return _original_create_client is not None
