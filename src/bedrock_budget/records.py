"""What every metered call leaves behind: a :class:`CallRecord`, handed to listeners.

A record holds ids, counts and money only. Prompt and completion text never enter it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from bedrock_budget._frozen import fast_builder
from bedrock_budget.pricing.cost import Cost
from bedrock_budget.pricing.money import format_usd
from bedrock_budget.usage import Usage

Outcome = Literal["ok", "error", "blocked", "partial"]

logger = logging.getLogger("bedrock_budget")


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One billable call, after it settled.

    ``cost`` is ``None`` when the call could not be priced (unknown model, unpriced dimension); ``unpriced``
    then says why. ``estimated`` means some counts were estimated rather than reported by Bedrock;
    ``partial`` means a stream ended before Bedrock reported its final usage.
    """

    operation: str
    model_id: str | None
    requested_model_id: str
    region: str
    route: str
    attribution: Mapping[str, str]
    usage: Usage
    cost: Cost | None
    outcome: Outcome
    request_id: str | None = None
    latency_seconds: float = 0.0
    time_to_first_token_seconds: float | None = None
    usage_source: str = "none"
    estimated: bool = False
    partial: bool = False
    pricing_mode: str = "on_demand"
    service_tier: str = "default"
    latency_mode: str = "standard"
    error_code: str | None = None
    unpriced: str | None = None
    downgraded_from: str | None = None
    # The budget that switched the call to a cheaper model.
    downgraded_by: str | None = None
    budget_warnings: tuple[str, ...] = ()
    # The budget that refused the call (outcome "blocked").
    blocked_by: str | None = None
    family: str | None = None
    # A clamp budget lowered the request's output-token cap from ``clamped_from`` (the model's maximum
    # when the request set none) to ``clamped_to``.
    clamped_from: int | None = None
    clamped_to: int | None = None
    clamped_by: str | None = None
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def cost_usd(self) -> Decimal:
        return self.cost.total_usd if self.cost is not None else Decimal(0)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view (money as decimal strings)."""
        usage = self.usage
        return {
            "timestamp": self.timestamp.isoformat(),
            "request_id": self.request_id,
            "operation": self.operation,
            "model_id": self.model_id,
            "requested_model_id": self.requested_model_id,
            "family": self.family,
            "region": self.region,
            "route": self.route,
            "pricing_mode": self.pricing_mode,
            "service_tier": self.service_tier,
            "latency_mode": self.latency_mode,
            "attribution": dict(self.attribution),
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "cache_write_1h_tokens": usage.cache_write_1h_tokens,
            "images": usage.images,
            "video_seconds": usage.video_seconds,
            "guardrail_text_units": dict(usage.guardrail_text_units),
            "cost_usd": format_usd(self.cost_usd) if self.cost is not None else None,
            "outcome": self.outcome,
            "usage_source": self.usage_source,
            "estimated": self.estimated,
            "partial": self.partial,
            "latency_seconds": round(self.latency_seconds, 6),
            "time_to_first_token_seconds": self.time_to_first_token_seconds,
            "error_code": self.error_code,
            "unpriced": self.unpriced,
            "downgraded_from": self.downgraded_from,
            "downgraded_by": self.downgraded_by,
            "budget_warnings": list(self.budget_warnings),
            "blocked_by": self.blocked_by,
            "clamped_from": self.clamped_from,
            "clamped_to": self.clamped_to,
            "clamped_by": self.clamped_by,
        }


#: Builds a :class:`CallRecord` from the same arguments, for the per-call path (see ``_frozen``).
build_record = fast_builder(CallRecord)

Listener = Callable[[CallRecord], None]


class PlainCallObserver:
    """A listener that can also take a *plain* call's figures without a :class:`CallRecord` being built.

    Plain: the call was priced, and no budget refused, downgraded, clamped or warned about it. When every
    listener of a client is a ``PlainCallObserver``, the driver calls :meth:`observe_plain_call` for such
    calls instead of building their record (which costs more than a metrics update); every other call still
    reaches ``__call__``. ``observe_plain_call`` must do exactly what ``__call__`` does with the record these
    fields describe (every other field at its default or irrelevant to the listener).
    """

    __slots__ = ()

    def __call__(self, record: CallRecord) -> None:
        raise NotImplementedError

    def observe_plain_call(
        self,
        operation: str,
        model_id: str | None,
        attribution: Mapping[str, str],
        outcome: Outcome,
        usage: Usage,
        cost: Cost,
        latency_seconds: float,
        time_to_first_token_seconds: float | None,
    ) -> None:
        raise NotImplementedError


#: A bound :meth:`PlainCallObserver.observe_plain_call`.
ObservePlain = Callable[[str, str | None, Mapping[str, str], Outcome, Usage, Cost, float, float | None], None]


def plain_call_observers(listeners: tuple[Listener, ...]) -> tuple[ObservePlain, ...] | None:
    """The ``observe_plain_call`` methods of ``listeners`` when there are some and each is a
    :class:`PlainCallObserver`, else ``None``."""
    if listeners and all(isinstance(listener, PlainCallObserver) for listener in listeners):
        return tuple(listener.observe_plain_call for listener in listeners)  # type: ignore[attr-defined]
    return None


class LogListener:
    """Writes one structured JSON line per call to the ``bedrock_budget.calls`` logger."""

    def __init__(self, logger_name: str = "bedrock_budget.calls", level: int = logging.INFO) -> None:
        self._logger = logging.getLogger(logger_name)
        self._level = level

    def __call__(self, record: CallRecord) -> None:
        if self._logger.isEnabledFor(self._level):
            self._logger.log(self._level, json.dumps(record.as_dict(), separators=(",", ":")))


class FailureCounter:
    """Counts failures of our own accounting, logging each kind once so a broken listener cannot flood
    the log. The caller's response is never affected by anything counted here."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def record(self, stage: str, exc: BaseException) -> None:
        with self._lock:
            seen = self.counts.get(stage, 0)
            self.counts[stage] = seen + 1
        if seen == 0:
            logger.warning(
                "bedrock-budget %s failed (%s: %s); the call's response is unaffected. "
                "Further failures of this stage are counted, not logged.",
                stage,
                type(exc).__name__,
                exc,
                exc_info=exc,
            )

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())


def notify(listeners: tuple[Listener, ...], record: CallRecord, failures: FailureCounter) -> None:
    for listener in listeners:
        try:
            listener(record)
        except Exception as exc:  # a listener bug must never reach the caller
            failures.record("listener", exc)
