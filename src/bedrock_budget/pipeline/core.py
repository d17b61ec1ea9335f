"""The call pipeline's core, without I/O: prepare a call, read its usage, price it, build its record.

A driver (the sync proxy's :class:`~bedrock_budget.wrapper.meter.Meter`; an async one later) does the I/O
around it — the budget layer's store calls, the Bedrock call, the listeners — in this order:

    prepare → [guard.admit → apply the decision] → Bedrock → extract → price → [guard.settle] → record

The core never calls back into its driver. Everything it does after the call is guarded: a failure of our
own is counted in ``failures`` and turns into an estimated or unpriced figure, never an exception.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from bedrock_budget._frozen import fast_builder
from bedrock_budget.attribution import resolve_attribution
from bedrock_budget.errors import BedrockBudgetError, UnknownModelError
from bedrock_budget.extract.families import family_of
from bedrock_budget.extract.request import inspect_request
from bedrock_budget.extract.responses import (
    converse_self_contained,
    converse_tokens_only,
    extract_response,
    reads_body,
)
from bedrock_budget.extract.streams import StreamAccumulator
from bedrock_budget.extract.types import Extracted, RequestInfo
from bedrock_budget.pipeline.context import CallContext, Clamp, StreamOverdueError
from bedrock_budget.pipeline.operations import Operation
from bedrock_budget.pipeline.output_cap import cap_output
from bedrock_budget.pipeline.safely import run_safely
from bedrock_budget.pipeline.tags import TAGGED_OPERATIONS, RequestTagger
from bedrock_budget.pricing.cost import Cost
from bedrock_budget.records import CallRecord, FailureCounter, Outcome, build_record
from bedrock_budget.resolver import ModelResolver, ResolvedModel
from bedrock_budget.usage import Usage

if TYPE_CHECKING:
    from bedrock_budget.pricing.rate_card import RateCard
    from bedrock_budget.pricing.table import PriceTable

logger = logging.getLogger("bedrock_budget")

_FREE_MODES = ("provisioned", "custom_model_import")
# Converse kwargs are plain data that stay as they were sent, so reading them after the call is the same as
# reading them before; other bodies may be streams or bytes the caller reuses.
_DEFERRABLE = frozenset({"Converse", "ConverseStream"})
# Only Converse and ConverseStream bodies are the same for every model family; an InvokeModel body written
# for one family cannot go to another.
_REDIRECTABLE_ANY_FAMILY = frozenset({"Converse", "ConverseStream"})
_NO_USAGE = Usage()


@dataclass(frozen=True, slots=True)
class Priced:
    """A call's price, or why it has none (``cost`` is then ``None``)."""

    cost: Cost | None
    unpriced: str | None = None


_build_priced = fast_builder(Priced)


class PipelineCore:
    """Shared by every proxy built with one configuration. Thread-safe; holds no per-call state."""

    def __init__(
        self,
        *,
        price_table: PriceTable,
        resolver: ModelResolver,
        defaults: Mapping[str, str],
        metadata_keys: Mapping[str, str],
        hash_ids: bool,
        failures: FailureCounter,
        read_requests_eagerly: bool,
        request_tagger: RequestTagger | None = None,
    ) -> None:
        self.price_table = price_table
        self.resolver = resolver
        self.defaults = dict(defaults)
        self.metadata_keys = dict(metadata_keys)
        self.hash_ids = hash_ids
        self.failures = failures
        # A budget estimates from the request before the call; without one the request is read only when
        # Bedrock's usage is missing.
        self.read_requests_eagerly = read_requests_eagerly
        self.request_tagger = request_tagger
        self._warned_models: set[str] = set()
        self._warn_lock = threading.Lock()
        # The last (table, model, region, served tier and latency) found to price quietly, and until when:
        # most clients call one model over and over, and comparing keys costs less than a table lookup.
        self._quiet: tuple[tuple[object, ...], float] = ((), 0.0)
        self._last_card: tuple[tuple[object, ...], RateCard | None, float] = ((), None, 0.0)

    # --- before the call --------------------------------------------------------------------------------

    def prepare(self, operation: Operation, kwargs: dict[str, Any], region: str) -> CallContext:
        """Attribution errors raise here, before any I/O; resolution problems are recorded, not raised.

        ``kwargs`` is the request about to be sent, and the only thing here that changes it: request tags
        are added to its ``requestMetadata``, and a file-like InvokeModel body is replaced by its bytes.
        """
        started = time.perf_counter()
        attribution = resolve_attribution(
            self.defaults, kwargs.get("requestMetadata"), self.metadata_keys, hash_ids=self.hash_ids
        )
        tagger = self.request_tagger
        if tagger is not None and attribution and operation.name in TAGGED_OPERATIONS:
            tags = tagger.merged(attribution, kwargs.get("requestMetadata"))
            if tags is not None:
                kwargs["requestMetadata"] = tags
        if operation.has_model:
            model_id = str(kwargs.get("modelId", ""))
            resolved, error, family = self._resolve(model_id, region)
        else:
            model_id, resolved, error, family = "", None, None, "guardrail"
        ctx = CallContext(operation, model_id, region, attribution, resolved, error, family, started)
        if operation.name in _DEFERRABLE and not self.read_requests_eagerly:
            ctx.kwargs = kwargs
        else:
            ctx.request = run_safely(
                self.failures, "request inspection", inspect_request, operation.name, family, kwargs
            )
        return ctx

    def redirect(self, ctx: CallContext, model_id: str) -> bool:
        """Point the call at ``model_id`` (a budget's downgrade), if its request can go there unchanged.

        On ``True`` the driver sends the request with this ``modelId``; on ``False`` the context is as it was.
        """
        resolved, error, family = self._resolve(model_id, ctx.region)
        previous = ctx.resolved
        if resolved is None or (previous is not None and resolved.base_id == previous.base_id):
            return False
        if ctx.operation.name not in _REDIRECTABLE_ANY_FAMILY and family != ctx.family:
            logger.warning(
                "budget asked to downgrade %s to %s, but %s bodies differ between model families; blocking",
                ctx.requested_model_id,
                model_id,
                ctx.operation.name,
            )
            return False
        ctx.downgraded_from = ctx.downgraded_from or ctx.requested_model_id
        ctx.requested_model_id = model_id
        ctx.resolved, ctx.resolution_error, ctx.family = resolved, error, family
        return True

    def clamp(self, ctx: CallContext, kwargs: dict[str, Any], clamp: Clamp) -> bool:
        """Lower the request's output cap to ``clamp.max_output_tokens`` (a ``clamp`` budget's decision).

        On ``True`` ``kwargs`` carry the new cap and ``ctx.request`` says so; on ``False`` (a request whose
        cap cannot be set: see ``pipeline.output_cap``) both are as they were and the call is refused.
        """
        request = ctx.request
        thinking = (request.thinking_budget_tokens or 0) if request is not None else 0
        if not cap_output(ctx.operation.name, ctx.family, kwargs, clamp.max_output_tokens, thinking):
            return False
        ctx.request = (
            dataclasses.replace(request, max_output_tokens=clamp.max_output_tokens)
            if request is not None
            else inspect_request(ctx.operation.name, ctx.family, kwargs)
        )
        if ctx.clamped_from is None:
            ctx.clamped_from = clamp.from_tokens
        ctx.clamped_to = clamp.max_output_tokens
        ctx.clamped_by = clamp.budget
        return True

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

    def request_of(self, ctx: CallContext) -> RequestInfo:
        """The request's counts: read now if ``prepare`` deferred it; empty if it cannot be read."""
        request = ctx.request
        if request is None:
            if ctx.kwargs is not None:
                request = run_safely(
                    self.failures,
                    "request inspection",
                    inspect_request,
                    ctx.operation.name,
                    ctx.family,
                    ctx.kwargs,
                )
                ctx.kwargs = None
            if request is None:
                request = inspect_request(ctx.operation.name, ctx.family, {})
            ctx.request = request
        return request

    # --- after the call ---------------------------------------------------------------------------------

    def extract(self, ctx: CallContext, response: Any) -> Extracted:
        if ctx.operation.name == "Converse":
            # Most Converse responses report plain token counts: read them without the general path.
            quick = converse_tokens_only(response)
            if quick is not None:
                return quick
        try:
            request = ctx.request if ctx.request is not None else _lazy(self, ctx)
            return extract_response(ctx.operation.name, ctx.family, request, response)
        except Exception as exc:
            self.failures.record("usage extraction", exc)
            return Extracted(usage=_NO_USAGE, source="none", estimated=True)

    def reads_body(self, ctx: CallContext, response: Any) -> bool:
        """Whether :meth:`extract` will read ``response["body"]`` (an InvokeModel whose headers do not settle
        the call): a driver whose bodies are read by awaiting reads it first and passes the bytes in."""
        if ctx.operation.name != "InvokeModel" or not isinstance(response, Mapping):
            return False
        try:
            return reads_body(ctx.operation.name, ctx.family, self.request_of(ctx), response)
        except Exception as exc:
            self.failures.record("usage extraction", exc)
            return False

    def stream_state(self, ctx: CallContext, response: Mapping[str, Any]) -> StreamAccumulator | None:
        """The plain state a stream's usage accumulates in (``None`` when it cannot be set up)."""
        return run_safely(
            self.failures, "stream setup", StreamAccumulator, ctx.operation.name, ctx.family, response
        )

    def feed(self, state: StreamAccumulator, event: dict[str, Any]) -> None:
        try:
            state.feed(event)
        except Exception as exc:
            self.failures.record("stream usage", exc)

    def stream_result(
        self, ctx: CallContext, state: StreamAccumulator, complete: bool, error: BaseException | None
    ) -> tuple[Extracted, Outcome, BaseException | None]:
        """A finished stream's usage, outcome and the error to record."""
        if isinstance(error, StreamOverdueError) and ctx.worst_case is not None:
            # Nobody read it, but Bedrock may have generated all of it: charge what was held, so the spend
            # is never undercounted, and give the hold back.
            extracted = Extracted(usage=ctx.worst_case, source="estimate", estimated=True, partial=True)
            error = None
        else:
            try:
                extracted = state.result(complete=complete, request=self.request_of(ctx))
            except Exception as exc:
                self.failures.record("stream usage", exc)
                extracted = Extracted(usage=_NO_USAGE, source="none", estimated=True, partial=not complete)
        outcome: Outcome = "ok" if complete and not extracted.partial else "partial"
        return extracted, outcome, error

    def price(self, ctx: CallContext, extracted: Extracted) -> Priced:
        """Never raises: a failure of our own pricing is counted and leaves the call unpriced."""
        try:
            resolved = ctx.resolved
            if (
                resolved is not None
                and not extracted.routed_model_id
                and not extracted.usage.guardrail_text_units
                and ctx.operation.has_model
                and resolved.pricing_mode not in _FREE_MODES
            ):
                # The commonest call, priced by the last rate card while it holds (the same test as _card's,
                # without the frames around it).
                table = self.price_table
                key = (table, resolved, ctx.region, extracted.served_service_tier, extracted.served_latency)
                last_key, card, until = self._last_card
                if last_key == key and card is not None and time.time() < until:
                    return _build_priced(card.price(extracted.usage))
            return self._price(ctx, extracted)
        except Exception as exc:
            self.failures.record("pricing", exc)
            return Priced(None, f"internal pricing error: {type(exc).__name__}")

    def _price(self, ctx: CallContext, extracted: Extracted) -> Priced:
        usage = extracted.usage
        guardrail = self._price_guardrail(usage) if usage.guardrail_text_units else None
        if not ctx.operation.has_model:
            return Priced(guardrail)
        resolved = ctx.resolved
        if extracted.routed_model_id:
            resolved = self.resolver.resolve(extracted.routed_model_id, client_region=ctx.region)
        if resolved is None:
            return Priced(None, ctx.resolution_error or "model not resolved")
        if resolved.pricing_mode in _FREE_MODES:
            # Capacity is billed by the hour, not per call: the call itself adds nothing.
            cost = Cost(resolved.base_id, 0, (), {"pricing_mode": resolved.pricing_mode})
        else:
            try:
                cost = self._card(resolved, ctx.region, extracted).price(usage)
            except UnknownModelError as exc:
                self._warn_unpriced(resolved.base_id, exc)
                return Priced(None, f"unknown model {resolved.base_id}")
            except BedrockBudgetError as exc:
                self._warn_unpriced(resolved.base_id, exc)
                return Priced(None, str(exc))
        return Priced(cost + guardrail if guardrail is not None else cost)

    def _card(self, resolved: ResolvedModel, region: str, extracted: Extracted) -> RateCard:
        """The rate card of the call's model, region, route, served tier and latency. The last one is kept
        until the UTC day ends (an undated card holds that long, see ``PriceTable.rate_card``): most clients
        call one model over and over, and comparing keys costs less than the table's lookup."""
        table = self.price_table
        key = (table, resolved, region, extracted.served_service_tier, extracted.served_latency)
        last_key, card, until = self._last_card
        if last_key == key and card is not None and time.time() < until:
            return card
        now = time.time()
        card = table.rate_card(
            resolved.base_id,
            region=region,
            route=resolved.route,
            service_tier=extracted.served_service_tier or "default",  # type: ignore[arg-type]
            latency=extracted.served_latency or "standard",  # type: ignore[arg-type]
        )
        self._last_card = (key, card, now // 86400 * 86400 + 86400)
        return card

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

    # --- the stage nobody consumes ----------------------------------------------------------------------

    def settles_quietly(self, ctx: CallContext, response: Any) -> bool:
        """Whether extracting and pricing this Converse response could neither log nor count anything, so a
        driver with no listener and no budget may skip both. A self-contained response
        (``converse_self_contained``) cannot fail to extract, and its token-only usage can only fail to price
        in building the rate card, which :meth:`_prices_quietly` tries."""
        if ctx.operation.name != "Converse":
            return False
        served = converse_self_contained(response)
        if served is None:
            return False
        resolved = ctx.resolved
        if resolved is None:
            return True  # left unpriced without a word, as price() would
        key = (self.price_table, resolved, ctx.region, served)
        last_key, until = self._quiet
        return (last_key == key and time.time() < until) or self._prices_quietly(key)

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

    # --- the record -------------------------------------------------------------------------------------

    def record(
        self,
        ctx: CallContext,
        outcome: Outcome,
        *,
        extracted: Extracted | None = None,
        priced: Priced | None = None,
        request_id: str | None = None,
        error_code: str | None = None,
        ttft: float | None = None,
        blocked_by: str | None = None,
    ) -> CallRecord:
        resolved = ctx.resolved
        return build_record(
            operation=ctx.operation.name,
            model_id=resolved.base_id if resolved else None,
            requested_model_id=ctx.requested_model_id,
            region=ctx.region,
            route=resolved.route if resolved else "in_region",
            attribution=ctx.attribution,
            usage=extracted.usage if extracted else _NO_USAGE,
            cost=priced.cost if priced else None,
            outcome=outcome,
            request_id=request_id,
            latency_seconds=time.perf_counter() - ctx.started,
            time_to_first_token_seconds=ttft,
            usage_source=extracted.source if extracted else "none",
            estimated=extracted.estimated if extracted else False,
            partial=extracted.partial if extracted else False,
            pricing_mode=resolved.pricing_mode if resolved else "on_demand",
            service_tier=(extracted.served_service_tier if extracted else None) or "default",
            latency_mode=(extracted.served_latency if extracted else None) or "standard",
            error_code=error_code,
            unpriced=priced.unpriced if priced else None,
            downgraded_from=ctx.downgraded_from,
            downgraded_by=ctx.downgraded_by,
            budget_warnings=ctx.budget_warnings,
            blocked_by=blocked_by,
            family=ctx.family,
            clamped_from=ctx.clamped_from,
            clamped_to=ctx.clamped_to,
            clamped_by=ctx.clamped_by,
        )


class _LazyRequest:
    """The request's counts, read on first use: extraction asks for them only when Bedrock's usage is
    missing, so a call with complete usage never reads its (possibly large) request."""

    __slots__ = ("_core", "_ctx")

    def __init__(self, core: PipelineCore, ctx: CallContext) -> None:
        self._core = core
        self._ctx = ctx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core.request_of(self._ctx), name)


def _lazy(core: PipelineCore, ctx: CallContext) -> RequestInfo:
    return cast(RequestInfo, _LazyRequest(core, ctx))


def request_id(response: Any) -> str | None:
    # boto3 responses are plain dicts: the exact-type tests skip the slower ABC checks on the hot path.
    if type(response) is dict or isinstance(response, Mapping):
        metadata = response.get("ResponseMetadata")
        if type(metadata) is dict or isinstance(metadata, Mapping):
            value = metadata.get("RequestId")
            return value if isinstance(value, str) else None
    return None


def error_code(exc: BaseException | None) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error")
        if isinstance(error, Mapping) and error.get("Code"):
            return str(error["Code"])
    return None
