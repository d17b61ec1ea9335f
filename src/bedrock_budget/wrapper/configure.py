"""``wrap()``: turn keyword configuration into a meter and put a proxy around a client."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from bedrock_budget.attribution import validate_ids, validate_key
from bedrock_budget.errors import ConfigurationError
from bedrock_budget.pricing.table import PriceTable, default_price_table, load_price_table
from bedrock_budget.records import Listener, LogListener
from bedrock_budget.resolver import ModelResolver
from bedrock_budget.wrapper.meter import Guard, Meter
from bedrock_budget.wrapper.proxy import BudgetedClient, unwrap

GuardFactory = Callable[[Mapping[str, Any]], Guard | None]
_guard_factory: GuardFactory | None = None


def set_guard_factory(factory: GuardFactory) -> None:
    """Installed by the budget layer so that ``wrap(budgets=...)`` builds enforcement."""
    global _guard_factory
    _guard_factory = factory


def build_meter(
    *,
    listeners: Iterable[Listener] = (),
    attribution: Mapping[str, str] | None = None,
    metadata_attribution: Mapping[str, str] | Iterable[str] | None = None,
    hash_ids: bool = False,
    price_table: PriceTable | None = None,
    prices: Iterable[str | Path] = (),
    discount_percent: str | None = None,
    model_mapping: Mapping[str, str] | None = None,
    control_plane: Any | None = None,
    resolver: ModelResolver | None = None,
    log_calls: bool = False,
    **budget_options: Any,
) -> Meter:
    """Validate the configuration once, when the client is wrapped, not on every call."""
    listener_list = list(listeners)
    for listener in listener_list:
        if not callable(listener):
            raise ConfigurationError(f"listeners must be callables taking a CallRecord, got {listener!r}")
    if log_calls:
        listener_list.append(LogListener())
    defaults = validate_ids(attribution or {}, hash_ids=hash_ids)
    if metadata_attribution is None:
        metadata_keys: dict[str, str] = {}
    elif isinstance(metadata_attribution, Mapping):
        metadata_keys = {str(k): validate_key(v) for k, v in metadata_attribution.items()}
    else:
        metadata_keys = {validate_key(k): k for k in metadata_attribution}
    extra_prices = list(prices)
    if price_table is None:
        price_table = (
            load_price_table(extra_files=extra_prices, discount_percent=discount_percent)
            if extra_prices or discount_percent is not None
            else default_price_table()
        )
    elif extra_prices or discount_percent is not None:
        raise ConfigurationError("give either price_table or prices/discount_percent, not both")
    if resolver is None:
        resolver = ModelResolver(static_mapping=model_mapping, control_plane=control_plane)
    elif model_mapping is not None or control_plane is not None:
        raise ConfigurationError("give either resolver or model_mapping/control_plane, not both")
    meter = Meter(
        price_table=price_table,
        resolver=resolver,
        listeners=tuple(listener_list),
        defaults=defaults,
        metadata_keys=metadata_keys,
        hash_ids=hash_ids,
    )
    if budget_options:
        if _guard_factory is None:
            import bedrock_budget.budgets.enforcement  # noqa: F401 - installs the guard factory

        assert _guard_factory is not None
        meter.guard = guard = _guard_factory({**budget_options, "price_table": price_table})
        # Listeners that watch the store (the Prometheus listener) hear about its failures and journal.
        add_observer = getattr(guard, "add_store_observer", None)
        if add_observer is not None:
            for listener in listener_list:
                observer = getattr(listener, "store_metrics", None)
                if observer is not None:
                    add_observer(observer)
    return meter


def wrap(client: Any, **config: Any) -> Any:
    """Return ``client`` metered: same methods, same return values, same class for ``isinstance``.

    Wrapping an already wrapped (or instrumented) client replaces the old configuration instead of adding
    a second meter, so a call is never counted twice.
    """
    inner = unwrap(client)
    service = getattr(getattr(getattr(inner, "meta", None), "service_model", None), "service_name", None)
    if service != "bedrock-runtime":
        raise ConfigurationError(
            f"wrap() expects a boto3 'bedrock-runtime' client, got {service or type(inner)!r}"
        )
    return BudgetedClient(inner, build_meter(**config))
