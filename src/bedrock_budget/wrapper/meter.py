"""The sync driver of the call pipeline: the I/O around :class:`~bedrock_budget.pipeline.core.PipelineCore`.

    prepare → admit (budgets) → Bedrock → extract → price → settle (budgets) → listeners

Everything after a successful Bedrock call is guarded: a failure in our own accounting is logged once,
counted, and never takes the caller's response away. When nothing consumes a call's usage and cost (no
listener, no budget), the stages after the call run only where they could log or count something
(``PipelineCore.settles_quietly``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bedrock_budget.errors import BedrockBudgetError
from bedrock_budget.extract.types import Extracted
from bedrock_budget.pipeline.context import Admission, Admitted, CallContext, Clamp, Downgrade, Guard
from bedrock_budget.pipeline.core import PipelineCore, error_code, request_id
from bedrock_budget.pipeline.operations import Operation
from bedrock_budget.pipeline.safely import run_safely
from bedrock_budget.pipeline.tags import RequestTagger
from bedrock_budget.pricing.table import PriceTable
from bedrock_budget.records import FailureCounter, Listener, Outcome, notify, plain_call_observers
from bedrock_budget.resolver import ModelResolver
from bedrock_budget.usage import Usage
from bedrock_budget.wrapper.streams import MeteredEventStream, StreamSettlement

if TYPE_CHECKING:
    from bedrock_budget.wrapper.price_reload import PriceReloader

#: Puts a driver's stream proxy around a response's event stream: ``stream_proxy(stream, settlement)``.
StreamProxy = Callable[[Any, StreamSettlement], Any]

#: How many times one call may be changed by the budget layer (switched to a cheaper model by ``downgrade``
#: budgets, its output cap lowered by ``clamp`` budgets, which may take a second try when another call took
#: the room in between) before it is refused.
MAX_DOWNGRADES = 2


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
        request_tagger: RequestTagger | None = None,
    ) -> None:
        self.failures = FailureCounter()
        self._listeners = listeners
        self._observers = plain_call_observers(listeners)
        self.price_reloader = price_reloader
        self.core = PipelineCore(
            price_table=price_table,
            resolver=resolver,
            defaults=defaults,
            metadata_keys=metadata_keys,
            hash_ids=hash_ids,
            failures=self.failures,
            read_requests_eagerly=guard is not None,
            request_tagger=request_tagger,
        )
        self._guard = guard

    @property
    def listeners(self) -> tuple[Listener, ...]:
        return self._listeners

    @listeners.setter
    def listeners(self, listeners: tuple[Listener, ...]) -> None:
        self._observers = plain_call_observers(listeners)
        self._listeners = listeners

    @property
    def guard(self) -> Guard | None:
        return self._guard

    @guard.setter
    def guard(self, guard: Guard | None) -> None:
        self._guard = guard
        self.core.read_requests_eagerly = guard is not None

    @property
    def price_table(self) -> PriceTable:
        return self.core.price_table

    @price_table.setter
    def price_table(self, table: PriceTable) -> None:
        self.core.price_table = table

    @property
    def request_tagger(self) -> RequestTagger | None:
        return self.core.request_tagger

    @property
    def resolver(self) -> ModelResolver:
        return self.core.resolver

    # --- the call ---------------------------------------------------------------------------------------

    def call(
        self, operation: Operation, func: Callable[..., Any], kwargs: dict[str, Any], region: str
    ) -> Any:
        """One call through the pipeline: ``prepare`` → admit (with budgets, raising before any I/O when
        refused) → ``func(**kwargs)`` → ``completed`` (or ``abort``).

        ``kwargs`` is the request about to be sent, and may be changed before it goes (request tags, a
        downgrade's ``modelId``). ``func`` is the client's bound method that sends it.
        """
        ctx = self.prepare(operation, kwargs, region, func)
        guard = self._guard
        if guard is not None:
            self._admit(guard, ctx, kwargs)
        try:
            response = func(**kwargs)
        except BaseException as exc:
            self.abort(ctx, exc)
            raise
        return self.completed(ctx, response, MeteredEventStream)

    # The steps of ``call``, public for a driver that does the I/O its own way (the async proxy awaits the
    # budget layer's decision and the call between ``prepare`` and ``completed``). Each is the one
    # implementation of its step.

    def prepare(
        self, operation: Operation, kwargs: dict[str, Any], region: str, func: Callable[..., Any]
    ) -> CallContext:
        """Before the call, without the budget layer's decision: a driver admits the call itself, through
        :meth:`apply_admission` (``call`` through ``guard.admit``; the async proxy awaits the decision)."""
        if self.price_reloader is not None:
            self.price_reloader.check()
        ctx = self.core.prepare(operation, kwargs, region)
        if self._guard is not None:
            ctx.client = getattr(func, "__self__", None)
        return ctx

    def completed(self, ctx: CallContext, response: Any, stream_proxy: StreamProxy) -> Any:
        """After a successful call: meter ``response`` and return it for the caller. Never raises.

        A streaming response's event stream is replaced by ``stream_proxy(stream, settlement)``, which must
        feed the settlement every event and finish it exactly once; the call settles then.
        """
        stream_key = ctx.operation.stream_key
        if stream_key is not None and isinstance(response, dict):
            stream = response.get(stream_key)
            if stream is not None:
                response[stream_key] = self._meter_stream(ctx, stream, response, stream_proxy)
                return response
        core = self.core
        if self._guard is None and not self._listeners and core.settles_quietly(ctx, response):
            return response
        self.finish(ctx, core.extract(ctx, response), "ok", response)
        return response

    def _admit(self, guard: Guard, ctx: CallContext, kwargs: dict[str, Any]) -> None:
        """Apply the budget layer's decision: go out, go to a cheaper model, go with a lower output cap, or
        raise before any I/O."""
        for attempt in range(MAX_DOWNGRADES + 1):
            if self.apply_admission(ctx, kwargs, guard.admit(ctx, kwargs), attempt):
                return

    def apply_admission(
        self, ctx: CallContext, kwargs: dict[str, Any], admission: Admission, attempt: int
    ) -> bool:
        """One decision of the budget layer, the ``attempt``-th for this call: True when the call may go
        out, False when it was changed (a downgrade, a clamp) and must be admitted again; raises the
        refusal (before any I/O) otherwise."""
        if isinstance(admission, Admitted):
            ctx.admit(admission)
            return True
        if (
            isinstance(admission, Downgrade)
            and attempt < MAX_DOWNGRADES
            and self.core.redirect(ctx, admission.model_id)
        ):
            kwargs["modelId"] = admission.model_id
            ctx.downgraded_by = ctx.downgraded_by or admission.budget
            return False
        if (
            isinstance(admission, Clamp)
            and attempt < MAX_DOWNGRADES
            and self.core.clamp(ctx, kwargs, admission)
        ):
            return False
        self._blocked(ctx, admission.error)
        raise admission.error

    # --- after the call ---------------------------------------------------------------------------------

    def _meter_stream(
        self, ctx: CallContext, stream: Any, response: Mapping[str, Any], stream_proxy: StreamProxy
    ) -> Any:
        core = self.core
        # What ``finish`` reads the request id from: not the response itself, which will hold the stream
        # proxy, whose collection settles an abandoned stream (a reference from here would keep it alive).
        metadata = {"ResponseMetadata": response.get("ResponseMetadata")}
        state = core.stream_state(ctx, response)
        if state is None:
            self.finish(ctx, Extracted(usage=Usage(), source="none", estimated=True), "ok", metadata)
            return stream

        def feed(event: dict[str, Any]) -> None:
            core.feed(state, event)

        def finish(complete: bool, error: BaseException | None, first_event_at: float | None) -> None:
            extracted, outcome, error = core.stream_result(ctx, state, complete, error)
            ttft = None if first_event_at is None else first_event_at - ctx.started
            self.finish(ctx, extracted, outcome, metadata, error_code=error_code(error), ttft=ttft)

        settlement = StreamSettlement(feed, finish)
        if self._guard is not None:
            run_safely(self.failures, "stream lifetime", self._guard.on_overdue, ctx, settlement.overdue)
        return stream_proxy(stream, settlement)

    def _blocked(self, ctx: CallContext, exc: BedrockBudgetError) -> None:
        """Refused before any I/O (a budget, an unpriceable model, the store under 'deny')."""
        if not self._listeners:
            return
        budget = getattr(exc, "budget", None)
        record = run_safely(
            self.failures,
            "blocked-call accounting",
            self.core.record,
            ctx,
            "blocked",
            error_code=type(exc).__name__,
            blocked_by=budget if isinstance(budget, str) else None,
        )
        if record is not None:
            notify(self._listeners, record, self.failures)

    def abort(self, ctx: CallContext, exc: BaseException) -> None:
        """Bedrock refused or failed before inference: nothing was billed; release the hold."""
        try:
            if self._guard is not None:
                self._guard.release(ctx)
            record = self.core.record(ctx, "error", error_code=error_code(exc) or type(exc).__name__)
            notify(self._listeners, record, self.failures)
        except Exception as inner:
            self.failures.record("error accounting", inner)

    def finish(
        self,
        ctx: CallContext,
        extracted: Extracted,
        outcome: Outcome,
        response: Any,
        *,
        error_code: str | None = None,
        ttft: float | None = None,
    ) -> None:
        """Price, settle and notify. Never raises. ``response`` is read for its request id only when the
        call's record is built (listeners that take a plain call do not need it)."""
        core = self.core
        priced = core.price(ctx, extracted)
        if self._guard is not None:
            run_safely(self.failures, "settlement", self._guard.settle, ctx, priced.cost, extracted.usage)
        if not self._listeners:
            return
        observers = self._observers
        cost = priced.cost
        if (
            observers is not None
            and cost is not None
            and ctx.downgraded_from is None
            and ctx.clamped_by is None
            and not ctx.budget_warnings
        ):
            # A plain call and listeners that take one without its record (see PlainCallObserver).
            resolved = ctx.resolved
            latency = time.perf_counter() - ctx.started
            for observe in observers:
                try:
                    observe(
                        ctx.operation.name,
                        resolved.base_id if resolved is not None else None,
                        ctx.attribution,
                        outcome,
                        extracted.usage,
                        cost,
                        latency,
                        ttft,
                    )
                except Exception as exc:  # a listener bug must never reach the caller
                    self.failures.record("listener", exc)
            return
        record = run_safely(
            self.failures,
            "call record",
            core.record,
            ctx,
            outcome,
            extracted=extracted,
            priced=priced,
            request_id=request_id(response),
            error_code=error_code,
            ttft=ttft,
        )
        if record is not None:
            notify(self._listeners, record, self.failures)
