"""Opt-in, zero-code metering: every ``bedrock-runtime`` client created after :func:`instrument` — also
inside third-party libraries — comes back wrapped."""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bedrock_budget.records import Listener
from bedrock_budget.wrapper.configure import OPTION_NAMES, build_async_meter, build_meter
from bedrock_budget.wrapper.meter import Meter
from bedrock_budget.wrapper.proxy import BudgetedClient

if TYPE_CHECKING:
    from bedrock_budget.alerts.model import Alert
    from bedrock_budget.alerts.sinks import AlertSink
    from bedrock_budget.budgets.async_ledger import AsyncLedger
    from bedrock_budget.budgets.ledger import Ledger, OutagePolicy, SettleMode
    from bedrock_budget.budgets.live import StoreBudgets
    from bedrock_budget.budgets.model import Budget
    from bedrock_budget.pricing.table import PriceTable
    from bedrock_budget.resolver import ModelResolver
    from bedrock_budget.stores.base import Store
    from bedrock_budget.stores.tracking import Tracking

_lock = threading.Lock()
_original_create_client: Any = None
_meter: Meter | None = None
#: The meter of async clients when budgets are configured (their ledger awaits the store), made on first use
#: from the same options, and the options it is made from.
_async_meter: Meter | None = None
_options: dict[str, Any] = {}


def instrument(
    *,
    store: Store | str | None = None,
    budgets: Iterable[Budget] | str | Path | StoreBudgets | None = None,
    on_store_error: OutagePolicy | None = None,
    ledger: Ledger | AsyncLedger | None = None,
    listeners: Iterable[Listener] = (),
    log_calls: bool = False,
    attribution: Mapping[str, str] | None = None,
    metadata_attribution: Mapping[str, str] | Iterable[str] | None = None,
    hash_ids: bool = False,
    tag_requests: bool | Iterable[str] = False,
    price_table: PriceTable | None = None,
    prices: Iterable[str | Path] = (),
    discount_percent: str | Decimal | None = None,
    prices_reload_seconds: float | None = None,
    model_mapping: Mapping[str, str] | None = None,
    control_plane: Any | None = None,
    resolver: ModelResolver | None = None,
    count_tokens: bool = False,
    alert_sinks: Iterable[AlertSink | Callable[[Alert], object]] | None = None,
    reservation_ttl: float | None = None,
    journal_size: int | None = None,
    settle_mode: SettleMode | None = None,
    lease_fraction: float | None = None,
    lease_seconds: float | None = None,
    max_call_seconds: float | None = None,
    journal_path: str | os.PathLike[str] | None = None,
    track: bool | Iterable[str | tuple[str, ...]] | Tracking | None = None,
) -> None:
    """Meter every ``bedrock-runtime`` client created from now on, also inside third-party libraries.

    The keywords are ``wrap``'s, with the same meanings and defaults (``help(bedrock_budget.wrap)`` lists
    them). All clients created while instrumented share one meter, so one set of budgets covers them.
    Calling it again replaces the configuration; it never stacks. With aiobotocore installed (the
    ``async`` extra), its ``bedrock-runtime`` clients are metered too, as ``wrap`` meters them; with budgets
    they get an async ledger (``budgets.async_ledger``) over the same store and budgets: the same memory
    store object, or the same Redis through ``redis.asyncio``.
    """
    global _original_create_client, _meter, _async_meter, _options
    from botocore.session import Session

    options = {name: value for name, value in locals().items() if name in OPTION_NAMES}
    async_clients = _aiobotocore_installed()  # checked before a meter (and its budget layer) is built
    meter = build_meter(**options)
    with _lock:
        _meter = meter
        _async_meter, _options = None, options
        if async_clients:
            from bedrock_budget.wrapper import async_instrument

            async_instrument.patch(_current_async_meter)
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
        if "bedrock_budget.wrapper.async_instrument" in sys.modules:
            from bedrock_budget.wrapper import async_instrument

            async_instrument.unpatch()
        if _original_create_client is not None:
            Session.create_client = _original_create_client  # type: ignore[method-assign]
        _original_create_client = None
        _meter = None


def _current_meter() -> Meter | None:
    return _meter


def _current_async_meter() -> Meter | None:
    """The meter for an async client: the one meter without budgets, else an async twin of it."""
    global _async_meter
    with _lock:
        meter = _meter
        if meter is None or meter.guard is None:
            return meter
        if _async_meter is None:
            _async_meter = _async_twin(meter, _options)
        return _async_meter


def _async_twin(meter: Meter, options: dict[str, Any]) -> Meter:
    """A meter for async clients enforcing the sync meter's budgets on the same store."""
    from bedrock_budget.budgets.ledger import Ledger
    from bedrock_budget.stores.memory import MemoryStore

    options = dict(options)
    ledger = getattr(meter.guard, "ledger", None)
    if isinstance(ledger, Ledger):
        given = options.pop("ledger", None)
        if given is not None:
            options.setdefault("budgets", list(ledger.budgets))
            options.setdefault("on_store_error", ledger.on_store_error)
        if given is not None or isinstance(ledger.store, MemoryStore):
            # The same store object, so both meters count against one budget (a memory store is used
            # on the loop directly; another sync store runs in worker threads).
            options["store"] = ledger.store
    return build_async_meter(**options)


def _aiobotocore_installed() -> bool:
    """Whether aiobotocore can be imported; if so, it must be a version the async proxy works with."""
    if importlib.util.find_spec("aiobotocore") is None:
        return False
    from bedrock_budget.dependencies import require_async

    require_async()
    return True


def is_instrumented() -> bool:
    return _original_create_client is not None
