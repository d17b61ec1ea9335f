"""The call pipeline: resolve → attribute → (estimate, reserve) → call → extract → price → settle → observe.

Everything after a successful Bedrock call is guarded: a failure in our own accounting is logged once,
counted, and never takes the caller's response away.

When nothing consumes a call's usage and cost (no listener, no budget), a Converse call whose response
cannot make extraction or pricing log or count anything skips both (``Meter._call_unobserved``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from bedrock_budget.attribution import current_attribution, resolve_attribution
from bedrock_budget.errors import BedrockBudgetError, UnknownModelError
from bedrock_budget.extract.families import family_of
from bedrock_budget.extract.request import inspect_request
from bedrock_budget.extract.responses import converse_self_contained, extract_response
from bedrock_budget.extract.streams import StreamAccumulator
from bedrock_budget.extract.types import Extracted, RequestInfo
from bedrock_budget.pricing.cost import Cost
from bedrock_budget.pricing.table import PriceTable
from bedrock_budget.records import CallRecord, FailureCounter, Listener, Outcome, new_record, notify
from bedrock_budget.resolver import ModelResolver, ResolvedModel
from bedrock_budget.usage import Usage
from bedrock_budget.wrapper.operations import Operation
from bedrock_budget.wrapper.streams import MeteredEventStream, StreamOverdueError, StreamSettlement

if TYPE_CHECKING:
    from bedrock_budget.wrapper.price_reload import PriceReloader

logger = logging.getLogger("bedrock_budget")

_FREE_MODES = ("provisioned", "custom_model_import")


@dataclass(slots=True)
class CallContext:
    """What the pipeline knows about one call before it goes out. Holds no prompt text."""

    operation: Operation
    requested_model_id: str
    region: str
    attribution: dict[str, str]
    resolved: ResolvedModel | None
    resolution_error: str | None
    family: str
    request: RequestInfo | None
    started: float
    hold: object | None = None
    #: The usage the hold was sized for (set by the budget layer), charged for a stream left unread.
    worst_case: Usage | None = None
    downgraded_from: str | None = None
    budget_warnings: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)
    # The unwrapped boto3 client, for budget hooks that call Bedrock themselves (CountTokens).
    client: Any = None


class Guard(Protocol):
    """Budget enforcement hooks; the budget layer implements them."""

    def admit(self, meter: Meter, ctx: CallContext, kwargs: dict[str, Any]) -> None:
        """Reserve the worst case (may raise ``BudgetExceededError`` or switch ``kwargs['modelId']``)."""

    def settle(self, ctx: CallContext, cost: Cost | None, usage: Usage) -> None: ...

    def release(self, ctx: CallContext) -> None: ...

    def on_overdue(self, ctx: CallContext, callback: Callable[[], None]) -> None:
        """Run ``callback`` if the call is still in flight past the maximum call lifetime."""


class Meter:
    """Shared by every proxy built with the same configuration. Thread-safe."""

    def __init__(
        self,
        *,
        price_table: PriceTable,
        resolver: ModelResolver,
        listeners: tuple[Listener, ...],
        defaults: Mapping[str, str],
        metadata_keys: Mapping[str, str],
        hash_ids: bool,
        guard: Guard | None = None,
        price_reloader: PriceReloader | None = None,
    ) -> None:
        self.price_table = price_table
        self.price_reloader = price_reloader
        self.resolver = resolver
        self.listeners = listeners
        self.defaults = dict(defaults)
        self.metadata_keys = dict(metadata_keys)
        self.hash_ids = hash_ids
        self.guard = guard
        self.failures = FailureCounter()
        self._warned_models: set[str] = set()
        self._warn_lock = threading.Lock()
        # The last (table, model, region, served tier and latency) found to price quietly, and until when:
        # most clients call one model over and over, and comparing keys costs less than a table lookup.
        self._quiet: tuple[tuple[object, ...], float] = ((), 0.0)

    # --- the call ---------------------------------------------------------------------------------------

    def call(
        self, operation: Operation, func: Callable[..., Any], kwargs: dict[str, Any], region: str
    ) -> Any:
        if self.price_reloader is not None:
            self.price_reloader.check()
        if operation.name == "Converse" and self.guard is None and not self.listeners:
            return self._call_unobserved(operation, func, kwargs, region)
        ctx = self.prepare(operation, kwargs, region)
        if self.guard is not None:
            ctx.client = getattr(func, "__self__", None)
            try:
                self.guard.admit(self, ctx, kwargs)
            except BedrockBudgetError as exc:
                self._blocked(ctx, exc)
                raise
        try:
            response = func(**kwargs)
        except BaseException as exc:
            self._abort(ctx, exc)
            raise
        if operation.stream_key is not None and isinstance(response, dict):
            stream = response.get(operation.stream_key)
            if stream is not None:
                response[operation.stream_key] = self._meter_stream(ctx, stream, response)
                return response
        self._complete(ctx, response)
        return response

    def _call_unobserved(
        self, operation: Operation, func: Callable[..., Any], kwargs: dict[str, Any], region: str
    ) -> Any:
        """``call`` for a Converse call whose usage and cost nothing consumes: no listener, no budget.

        What stays observable is what ``prepare`` raises, logs and counts, and what extraction and pricing
        log and count when they fail. Attribution is checked and the model resolved as in ``prepare``,
        before anything is sent. A self-contained response (``converse_self_contained``) cannot fail to
        extract, and its token-only usage can only fail to price in building the rate card, which
        ``_prices_quietly`` tries; every other response, and every model that does not price, takes the
        full path, which logs and counts exactly as before.
        """
        started = time.perf_counter()
        attribution = None
        if self.metadata_keys or current_attribution():
            # Ids from the request or the context are checked before anything is sent. The defaults alone
            # were checked by wrap(), and are copied only if a context is built after all.
            attribution = resolve_attribution(
                self.defaults, kwargs.get("requestMetadata"), self.metadata_keys, hash_ids=self.hash_ids
            )
        model_id = str(kwargs.get("modelId", ""))
        resolved, resolution_error, family = self._resolve(model_id, region)
        try:
            response = func(**kwargs)
        except BaseException as exc:
            ctx = self._late_context(
                operation, kwargs, region, model_id, attribution, resolved, resolution_error, family, started
            )
            self._abort(ctx, exc)
            raise
        served = converse_self_contained(response)
        if served is not None:
            if resolved is None:
                return response  # left unpriced without a word, as finish() would
            quiet_key = (self.price_table, resolved, region, served)
            last_key, until = self._quiet
            if (last_key == quiet_key and time.time() < until) or self._prices_quietly(quiet_key):
                return response
        ctx = self._late_context(
            operation, kwargs, region, model_id, attribution, resolved, resolution_error, family, started
        )
        self._complete(ctx, response)
        return response

    def _late_context(
        self,
        operation: Operation,
        kwargs: dict[str, Any],
        region: str,
        model_id: str,
        attribution: dict[str, str] | None,
        resolved: ResolvedModel | None,
        resolution_error: str | None,
        family: str,
        started: float,
    ) -> CallContext:
        """The context ``prepare`` would have built, from what ``_call_unobserved`` found before the call."""
        return CallContext(
            operation,
            model_id,
            region,
            dict(self.defaults) if attribution is None else attribution,
            resolved,
            resolution_error,
            family,
            cast(RequestInfo, _DeferredRequest(self, operation.name, family, kwargs)),
            started,
        )

    def _prices_quietly(
        self, key: tuple[PriceTable, ResolvedModel, str, tuple[str | None, str | None]]
    ) -> bool:
        """Whether ``price`` would price a token-only usage of this model, served at this tier and latency,
        without logging or counting anything: capacity modes are priced as nothing, and otherwise only
        building the rate card can fail. A yes is remembered for the rest of the UTC day (``_quiet``)."""
        table, resolved, region, (tier, latency) = key
        now = time.time()
        if resolved.pricing_mode not in _FREE_MODES:
            try:
                table.rate_card(
                    resolved.base_id,
                    region=region,
                    route=resolved.route,
                    service_tier=tier or "default",  # type: ignore[arg-type]
                    latency=latency or "standard",  # type: ignore[arg-type]
                )
            except Exception:
                return False
        # A table's price files never change, and an undated card holds for the UTC day it was built in
        # (see PriceTable.rate_card): a card that built now builds again until midnight UTC.
        self._quiet = (key, now // 86400 * 86400 + 86400)
        return True

    def prepare(self, operation: Operation, kwargs: dict[str, Any], region: str) -> CallContext:
        """Attribution errors raise here, before any I/O; resolution problems are recorded, not raised."""
        started = time.perf_counter()
        attribution = resolve_attribution(
            self.defaults, kwargs.get("requestMetadata"), self.metadata_keys, hash_ids=self.hash_ids
        )
        model_id = str(kwargs.get("modelId", "")) if operation.has_model else ""
        ctx = CallContext(operation, model_id, region, attribution, None, None, "guardrail", None, started)
        if operation.has_model:
            self.resolve_into(ctx, model_id)
        if operation.name in _DEFERRABLE and self.guard is None:
            # Without budgets the request is only read when Bedrock's usage is missing; Converse kwargs
            # are plain data that stay as they were sent, so reading them later is the same.
            ctx.request = cast(RequestInfo, _DeferredRequest(self, operation.name, ctx.family, kwargs))
            return ctx
        try:
            ctx.request = inspect_request(operation.name, ctx.family, kwargs)
        except Exception as exc:
            self.failures.record("request inspection", exc)
        return ctx

    def resolve_into(self, ctx: CallContext, model_id: str) -> None:
        ctx.requested_model_id = model_id
        ctx.resolved, ctx.resolution_error, ctx.family = self._resolve(model_id, ctx.region)

    def _resolve(self, model_id: str, region: str) -> tuple[ResolvedModel | None, str | None, str]:
        """The resolved model, why it could not be resolved, and its family."""
        try:
            resolved = self.resolver.resolve(model_id, client_region=region)
            return resolved, None, family_of(resolved.base_id)
        except BedrockBudgetError as exc:
            return None, str(exc), "unknown"
        except Exception as exc:
            self.failures.record("model resolution", exc)
            return None, f"internal error: {type(exc).__name__}", "unknown"

    # --- after the call ---------------------------------------------------------------------------------

    def _complete(self, ctx: CallContext, response: Any) -> None:
        try:
            extracted = extract_response(ctx.operation.name, ctx.family, _request_or_empty(ctx), response)
        except Exception as exc:
            self.failures.record("usage extraction", exc)
            extracted = Extracted(usage=Usage(), source="none", estimated=True)
        self.finish(ctx, extracted, "ok", request_id=_request_id(response))

    def _meter_stream(self, ctx: CallContext, stream: Any, response: Mapping[str, Any]) -> Any:
        try:
            accumulator = StreamAccumulator(ctx.operation.name, ctx.family, response)
        except Exception as exc:
            self.failures.record("stream setup", exc)
            self.finish(
                ctx, Extracted(usage=Usage(), source="none", estimated=True), "ok", _request_id(response)
            )
            return stream
        request_id = _request_id(response)

        def feed(event: dict[str, Any]) -> None:
            try:
                accumulator.feed(event)
            except Exception as exc:
                self.failures.record("stream usage", exc)

        def finish(complete: bool, error: BaseException | None, first_event_at: float | None) -> None:
            if isinstance(error, StreamOverdueError) and ctx.worst_case is not None:
                # Nobody read it, but Bedrock may have generated all of it: charge what was held, so the
                # spend is never undercounted, and give the hold back.
                extracted = Extracted(usage=ctx.worst_case, source="estimate", estimated=True, partial=True)
                error = None
            else:
                try:
                    extracted = accumulator.result(complete=complete, request=_request_or_empty(ctx))
                except Exception as exc:
                    self.failures.record("stream usage", exc)
                    extracted = Extracted(usage=Usage(), source="none", estimated=True, partial=not complete)
            ttft = None if first_event_at is None else first_event_at - ctx.started
            outcome: Outcome = "ok" if complete and not extracted.partial else "partial"
            self.finish(ctx, extracted, outcome, request_id, error_code=_error_code(error), ttft=ttft)

        settlement = StreamSettlement(feed, finish)
        if self.guard is not None:
            try:
                self.guard.on_overdue(ctx, settlement.overdue)
            except Exception as exc:
                self.failures.record("stream lifetime", exc)
        return MeteredEventStream(stream, settlement)

    def _blocked(self, ctx: CallContext, exc: BedrockBudgetError) -> None:
        """Refused before any I/O (a budget, an unpriceable model, the store under 'deny')."""
        if not self.listeners:
            return
        try:
            budget = getattr(exc, "budget", None)
            record = self._record(
                ctx,
                Usage(),
                None,
                "blocked",
                None,
                error_code=type(exc).__name__,
                blocked_by=budget if isinstance(budget, str) else None,
            )
            notify(self.listeners, record, self.failures)
        except Exception as inner:
            self.failures.record("blocked-call accounting", inner)

    def _abort(self, ctx: CallContext, exc: BaseException) -> None:
        """Bedrock refused or failed before inference: nothing was billed; release the hold."""
        try:
            if self.guard is not None:
                self.guard.release(ctx)
            record = self._record(
                ctx, Usage(), None, "error", None, error_code=_error_code(exc) or type(exc).__name__
            )
            notify(self.listeners, record, self.failures)
        except Exception as inner:
            self.failures.record("error accounting", inner)

    def finish(
        self,
        ctx: CallContext,
        extracted: Extracted,
        outcome: Outcome,
        request_id: str | None,
        *,
        error_code: str | None = None,
        ttft: float | None = None,
    ) -> None:
        """Price, settle and notify. Never raises."""
        cost: Cost | None = None
        unpriced: str | None = None
        try:
            cost, unpriced = self.price(ctx, extracted)
        except Exception as exc:
            self.failures.record("pricing", exc)
            unpriced = f"internal pricing error: {type(exc).__name__}"
        try:
            if self.guard is not None:
                self.guard.settle(ctx, cost, extracted.usage)
        except Exception as exc:
            self.failures.record("settlement", exc)
        if not self.listeners:
            return
        try:
            record = self._record(
                ctx,
                extracted.usage,
                cost,
                outcome,
                request_id,
                error_code=error_code,
                unpriced=unpriced,
                ttft=ttft,
                extracted=extracted,
            )
        except Exception as exc:
            self.failures.record("call record", exc)
            return
        notify(self.listeners, record, self.failures)

    def price(self, ctx: CallContext, extracted: Extracted) -> tuple[Cost | None, str | None]:
        usage = extracted.usage
        guardrail = self._price_guardrail(usage)
        if not ctx.operation.has_model:
            return guardrail, None
        resolved = ctx.resolved
        if extracted.routed_model_id:
            resolved = self.resolver.resolve(extracted.routed_model_id, client_region=ctx.region)
        if resolved is None:
            return None, ctx.resolution_error or "model not resolved"
        if resolved.pricing_mode in _FREE_MODES:
            # Capacity is billed by the hour, not per call: the call itself adds nothing.
            cost = Cost(resolved.base_id, 0, (), {"pricing_mode": resolved.pricing_mode})
        else:
            try:
                cost = self.price_table.price(
                    resolved.base_id,
                    usage,
                    region=ctx.region,
                    route=resolved.route,
                    service_tier=_served(extracted.served_service_tier, "default"),  # type: ignore[arg-type]
                    latency=_served(extracted.served_latency, "standard"),  # type: ignore[arg-type]
                )
            except UnknownModelError as exc:
                self._warn_unpriced(resolved.base_id, exc)
                return None, f"unknown model {resolved.base_id}"
            except BedrockBudgetError as exc:
                self._warn_unpriced(resolved.base_id, exc)
                return None, str(exc)
        return (cost + guardrail if guardrail is not None else cost), None

    def _price_guardrail(self, usage: Usage) -> Cost | None:
        if not usage.guardrail_text_units:
            return None
        text = {k: v for k, v in usage.guardrail_text_units.items() if not k.endswith("_image")}
        images = {k: v for k, v in usage.guardrail_text_units.items() if k.endswith("_image")}
        return self.price_table.price_guardrail(text, image_units=images)

    def _warn_unpriced(self, model_id: str, exc: Exception) -> None:
        with self._warn_lock:
            if model_id in self._warned_models:
                return
            self._warned_models.add(model_id)
        logger.warning("bedrock-budget: calls to %s are recorded without a price: %s", model_id, exc)

    def _record(
        self,
        ctx: CallContext,
        usage: Usage,
        cost: Cost | None,
        outcome: Outcome,
        request_id: str | None,
        *,
        error_code: str | None = None,
        unpriced: str | None = None,
        ttft: float | None = None,
        extracted: Extracted | None = None,
        blocked_by: str | None = None,
    ) -> CallRecord:
        resolved = ctx.resolved
        return new_record(
            {
                "operation": ctx.operation.name,
                "model_id": resolved.base_id if resolved else None,
                "requested_model_id": ctx.requested_model_id,
                "region": ctx.region,
                "route": resolved.route if resolved else "in_region",
                "attribution": ctx.attribution,
                "usage": usage,
                "cost": cost,
                "outcome": outcome,
                "request_id": request_id,
                "latency_seconds": time.perf_counter() - ctx.started,
                "time_to_first_token_seconds": ttft,
                "usage_source": extracted.source if extracted else "none",
                "estimated": extracted.estimated if extracted else False,
                "partial": extracted.partial if extracted else False,
                "pricing_mode": resolved.pricing_mode if resolved else "on_demand",
                "service_tier": _served(extracted.served_service_tier if extracted else None, "default"),
                "latency_mode": _served(extracted.served_latency if extracted else None, "standard"),
                "error_code": error_code,
                "unpriced": unpriced,
                "downgraded_from": ctx.downgraded_from,
                "downgraded_by": ctx.notes.get("downgraded_by"),
                "budget_warnings": ctx.budget_warnings,
                "blocked_by": blocked_by,
                "family": ctx.family,
            }
        )


_DEFERRABLE = frozenset({"Converse", "ConverseStream"})


class _DeferredRequest:
    """Stands in for a RequestInfo and inspects the request on first attribute access."""

    __slots__ = ("_args", "_meter", "_value")

    def __init__(self, meter: Meter, operation: str, family: str, kwargs: dict[str, Any]) -> None:
        self._meter = meter
        self._args = (operation, family, kwargs)
        self._value: RequestInfo | None = None

    def __getattr__(self, name: str) -> Any:
        if self._value is None:
            operation, family, kwargs = self._args
            try:
                self._value = inspect_request(operation, family, kwargs)
            except Exception as exc:
                self._meter.failures.record("request inspection", exc)
                self._value = inspect_request(operation, family, {})
        return getattr(self._value, name)


def _request_or_empty(ctx: CallContext) -> RequestInfo:
    if ctx.request is not None:
        return ctx.request
    return inspect_request(ctx.operation.name, ctx.family, {})


def _served(value: str | None, default: str) -> str:
    return value if value else default


def _request_id(response: Any) -> str | None:
    # boto3 responses are plain dicts: the exact-type tests skip the slower ABC checks on the hot path.
    if type(response) is dict or isinstance(response, Mapping):
        metadata = response.get("ResponseMetadata")
        if type(metadata) is dict or isinstance(metadata, Mapping):
            value = metadata.get("RequestId")
            return value if isinstance(value, str) else None
    return None


def _error_code(exc: BaseException | None) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error")
        if isinstance(error, Mapping) and error.get("Code"):
            return str(error["Code"])
    return None
