"""``wrap()``: turn keyword configuration into a meter and put a proxy around a client."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from bedrock_budget.attribution import validate_ids, validate_key
from bedrock_budget.budget_options import BUDGET_OPTION_NAMES
from bedrock_budget.errors import ConfigurationError
from bedrock_budget.pipeline.tags import RequestTagger
from bedrock_budget.pricing.table import PriceTable, default_price_table, load_price_table
from bedrock_budget.records import Listener, LogListener
from bedrock_budget.resolver import ModelResolver
from bedrock_budget.wrapper.meter import Meter
from bedrock_budget.wrapper.proxy import BudgetedClient, is_async_client, unwrap

if TYPE_CHECKING:
    from bedrock_budget.alerts.model import Alert
    from bedrock_budget.alerts.sinks import AlertSink
    from bedrock_budget.budgets.async_ledger import AsyncLedger
    from bedrock_budget.budgets.ledger import Ledger, OutagePolicy, SettleMode
    from bedrock_budget.budgets.live import StoreBudgets
    from bedrock_budget.budgets.model import Budget
    from bedrock_budget.stores.base import Store
    from bedrock_budget.stores.tracking import Tracking

ClientT = TypeVar("ClientT")


def build_meter(
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
    tagger = _request_tagger(tag_requests)
    extra_prices = list(prices)
    interval = None
    if prices_reload_seconds is not None:
        from bedrock_budget.wrapper.price_reload import PriceReloader, reload_interval

        # Checked before any file is read: a wrong option should not be reported as a missing file.
        interval = reload_interval(prices_reload_seconds)
        if not extra_prices:
            raise ConfigurationError("prices_reload_seconds needs prices=[...]: the files to watch")
    if price_table is None:
        price_table = (
            load_price_table(extra_files=extra_prices, discount_percent=discount_percent)
            if extra_prices or discount_percent is not None
            else default_price_table()
        )
    elif extra_prices or discount_percent is not None:
        raise ConfigurationError("give either price_table or prices/discount_percent, not both")
    reloader = None
    if interval is not None:
        reloader = PriceReloader(
            extra_prices, interval=interval, discount_percent=discount_percent, table=price_table
        )
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
        price_reloader=reloader,
        request_tagger=tagger,
    )
    if reloader is not None:
        reloader.targets = [meter]
    # Only what the caller gave reaches the budget layer, so the ledger keeps its own defaults.
    budget_options = budget_options_given(locals())
    if budget_options:
        # Imported on first use: a client without budgets never loads the budget layer.
        from bedrock_budget.budgets.enforcement import build_guard

        attach_guard(meter, build_guard({**budget_options, "price_table": price_table}))
    return meter


def build_async_meter(**options: Any) -> Meter:
    """:func:`build_meter` for aiobotocore clients: the same options, with a budget layer whose store
    calls are awaited on the event loop (``budgets.async_enforcement``)."""
    budget_options = budget_options_given(options)
    meter = build_meter(**{name: value for name, value in options.items() if name not in BUDGET_OPTION_NAMES})
    if budget_options:
        from bedrock_budget.budgets.async_enforcement import build_async_guard

        attach_guard(meter, build_async_guard({**budget_options, "price_table": meter.price_table}))
    return meter


def attach_guard(meter: Meter, guard: Any) -> None:
    """Give ``meter`` its budget layer: listeners that watch the store (the Prometheus listener) hear
    about its failures and journal, and a price reload reaches the guard's price table too."""
    meter.guard = guard
    add_observer = getattr(guard, "add_store_observer", None)
    if add_observer is not None:
        for listener in meter.listeners:
            observer = getattr(listener, "store_metrics", None)
            if observer is not None:
                add_observer(observer)
    if meter.price_reloader is not None and hasattr(guard, "price_table"):
        meter.price_reloader.targets = [meter, guard]


def wrap(
    client: ClientT,
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
) -> ClientT:
    """Return ``client`` metered: same methods, same return values, same class for ``isinstance``.

    Wrapping an already wrapped (or instrumented) client replaces the old configuration instead of adding
    a second meter, so a call is never counted twice. Without ``store``, ``budgets`` or ``ledger`` calls are
    priced and recorded but nothing is enforced.

    Args:
        client: a boto3 (botocore) ``bedrock-runtime`` client, or an aiobotocore / aioboto3 one (then an
            async proxy is returned: its billable methods are awaited as before, and budgets are enforced
            with the store awaited on the loop; see ``budgets.async_ledger``).
        store: where budget spend lives: a URI (``memory://``, ``redis://host:6379/0``, ``rediss://``,
            ``redis+sentinel://``, ``redis+cluster://host:7000``) or a ``Store``. Default ``memory://``.
        budgets: the budgets to enforce: ``Budget`` objects, the path of a budgets YAML file, or
            ``"store"``: the budgets published in ``store`` (``bedrock-budget budgets apply``), followed
            live, so a changed limit reaches every process within about a second
            (``StoreBudgets(refresh_seconds=...)`` to tune; see ``bedrock_budget.budgets.live``).
        on_store_error: when the store cannot be reached: ``"deny"`` (default) refuses calls,
            ``"allow"`` lets them through and journals their spend until the store is back.
        ledger: a ``Ledger`` to share between clients, instead of ``store``/``budgets``/the ledger options.
        listeners: callables that receive every finished call's ``CallRecord``.
        log_calls: also log one structured line per call (ids, counts and money only).
        attribution: default attribution keys for every call, e.g. ``{"app": "chat"}``.
        metadata_attribution: Converse ``requestMetadata`` keys read as attribution: a list of keys, or
            a mapping of metadata key to attribution key.
        hash_ids: store and export attribution values as hashes instead of as given.
        tag_requests: copy each call's attribution into Converse/ConverseStream ``requestMetadata``, so
            Bedrock's invocation logs carry the same user/app/team: ``True`` for every key, or a list of
            keys. The caller's own entries are never overwritten; tags past Bedrock's 16 entries are dropped
            and counted (``meter.request_tagger.dropped``).
        price_table: a ``PriceTable`` to price with, instead of the bundled one.
        prices: extra price files or folders layered over the bundled prices.
        discount_percent: lower every price by this percentage (e.g. an EDP discount), e.g. ``"12.5"``.
        prices_reload_seconds: check the ``prices`` files for changes at most this often (seconds) and
            price with them, reloaded in the background, once they change (a layer that
            ``bedrock-budget prices update`` rewrites, say). A file that fails to load keeps the previous
            prices. Off (None) by default.
        model_mapping: static map of ARNs that hide their model (application inference profiles,
            provisioned models) to model ids, for offline use.
        control_plane: a boto3 ``bedrock`` client used to resolve such ARNs (cached).
        resolver: a ``ModelResolver``, instead of ``model_mapping``/``control_plane``.
        count_tokens: reserve exact input counts from Bedrock's free CountTokens API (cached by content
            hash) where the model supports it, instead of the estimate.
        alert_sinks: where budget threshold alerts go: callables or ``AlertSink`` objects.
        reservation_ttl: seconds after which a crashed process's holds expire (default 300).
        journal_size: spend entries kept while the store is unreachable under ``"allow"`` (default 10,000).
        settle_mode: ``"sync"`` (default) settles each call in its own thread; ``"background"`` batches
            settlements off the hot path (flushed at exit).
        lease_fraction: take capacity leases of this fraction of each budget's remaining room, so most
            calls reserve in memory (None, the default, reserves every call in the store).
        lease_seconds: how long a capacity lease lasts (default 1 s, at most an hour).
        max_call_seconds: how long a call's hold is kept alive past ``reservation_ttl`` (default 3600 s);
            a stream still open and unread after that is settled at its reserved worst case.
        journal_path: a directory for a local journal file that keeps settlements not yet in the store
            (background batches, outage spend) across a killed process; the next process replays them.
        track: what the spend ledger tracks in the store for every settled call, budgets or not (with a
            ``store``): ``True`` (default: user, app, every other key a call carries, and model),
            ``False``, a list of keys and key tuples (``["user", "model", ("app", "model")]``) or a
            ``Tracking`` (keys, pairs and retention). Read it with ``bb.spend()`` or ``report --by``.
    """
    inner = unwrap(client)
    service = getattr(getattr(getattr(inner, "meta", None), "service_model", None), "service_name", None)
    if service != "bedrock-runtime":
        hint = ""
        if service is None and hasattr(inner, "__aenter__"):
            # aiobotocore's create_client() returns a context manager, not the client.
            hint = (
                "; for aiobotocore, wrap the client its context gives: "
                "async with session.create_client('bedrock-runtime') as raw: client = bb.wrap(raw)"
            )
        raise ConfigurationError(
            f"wrap() expects a boto3 'bedrock-runtime' client, got {service or type(inner)!r}{hint}"
        )
    options = {name: value for name, value in locals().items() if name in OPTION_NAMES}
    if is_async_client(inner):
        from bedrock_budget.dependencies import require_async
        from bedrock_budget.wrapper.async_proxy import AsyncBudgetedClient

        require_async()
        return cast("ClientT", AsyncBudgetedClient(inner, build_async_meter(**options)))
    return cast("ClientT", BudgetedClient(inner, build_meter(**options)))


def budget_options_given(options: Mapping[str, Any]) -> dict[str, Any]:
    """The budget options among ``options`` that were given (not None; ``count_tokens`` not False).
    ``track=False`` alone asks for nothing; beside another option it turns the spend ledger off."""
    given = {
        name: options[name]
        for name in BUDGET_OPTION_NAMES
        if options.get(name) is not None and options.get(name) is not False
    }
    if given and options.get("track") is False:
        given["track"] = False
    return given


def _request_tagger(tag_requests: object) -> RequestTagger | None:
    if tag_requests is False:
        return None
    if tag_requests is True:
        return RequestTagger()
    if isinstance(tag_requests, str) or not isinstance(tag_requests, Iterable):
        raise ConfigurationError("tag_requests takes True, False or a list of attribution keys")
    return RequestTagger([validate_key(key) for key in tag_requests])


#: The configuration keywords ``wrap``, ``instrument`` and ``build_meter`` share (a test keeps them equal).
OPTION_NAMES: Final = frozenset(inspect.signature(wrap).parameters) - {"client"}
