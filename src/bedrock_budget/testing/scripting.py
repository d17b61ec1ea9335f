"""Per-test scripting: layered model behaviour, error-injection rules, and the request record."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final, Literal

from .errors import canonical_error_code, stream_member_name
from .usage import ReportedUsage, UsageFn, UsageSpec

__all__ = [
    "OPERATIONS",
    "STREAMING_OPERATIONS",
    "Effective",
    "FailureRules",
    "ModelBehavior",
    "RecordedRequest",
    "RequestLog",
    "StreamFailure",
    "normalize_operation",
]

# Every operation the fake serves, by API name; boto3 method names are accepted everywhere too.
OPERATIONS: Final[Mapping[str, str]] = {
    "apply_guardrail": "ApplyGuardrail",
    "converse": "Converse",
    "converse_stream": "ConverseStream",
    "count_tokens": "CountTokens",
    "invoke_model": "InvokeModel",
    "invoke_model_with_response_stream": "InvokeModelWithResponseStream",
    "start_async_invoke": "StartAsyncInvoke",
    "get_async_invoke": "GetAsyncInvoke",
    "list_async_invokes": "ListAsyncInvokes",
    "get_inference_profile": "GetInferenceProfile",
    "get_provisioned_model_throughput": "GetProvisionedModelThroughput",
    "list_foundation_models": "ListFoundationModels",
    "get_products": "GetProducts",
}
STREAMING_OPERATIONS: Final = frozenset({"ConverseStream", "InvokeModelWithResponseStream"})


def normalize_operation(name: str) -> str:
    """``"converse_stream"`` or ``"ConverseStream"`` → ``"ConverseStream"``."""
    if name in OPERATIONS:
        return OPERATIONS[name]
    if name in OPERATIONS.values():
        return name
    raise ValueError(f"unknown operation {name!r}; known: {', '.join(sorted(OPERATIONS.values()))}")


ServiceTierName = Literal["priority", "default", "flex", "reserved"]
LatencyName = Literal["standard", "optimized"]


@dataclass(frozen=True, slots=True)
class ModelBehavior:
    """How one target (``"*"``, a family name, a base model id, or an exact requested id) behaves.
    ``None`` fields inherit from the less specific layer."""

    usage: UsageSpec | UsageFn | None = None
    latency: float | None = None
    first_byte_delay: float | None = None
    token_headers: bool | None = None
    body_usage: bool | None = None
    invocation_metrics: bool | None = None
    served_service_tier: ServiceTierName | None = None
    served_latency: LatencyName | None = None
    stream_deltas: int | None = None

    def over(self, base: ModelBehavior) -> ModelBehavior:
        """``self`` layered on top of ``base``."""
        changes = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        return replace(base, **changes)


@dataclass(frozen=True, slots=True)
class Effective:
    """Concrete behaviour for one request after layering."""

    usage: UsageSpec | UsageFn
    latency: float
    first_byte_delay: float
    token_headers: bool
    body_usage: bool
    invocation_metrics: bool
    served_service_tier: str | None
    served_latency: str | None
    stream_deltas: int


class Behaviors:
    """The layered behaviour table. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: dict[str, ModelBehavior] = {}

    def clear(self) -> None:
        with self._lock:
            self._table.clear()

    def update(self, target: str, change: ModelBehavior) -> None:
        with self._lock:
            self._table[target] = change.over(self._table.get(target, ModelBehavior()))

    def effective(self, keys: Iterable[str], family_token_headers: bool) -> Effective:
        merged = ModelBehavior()
        with self._lock:
            for key in keys:  # least specific first
                layer = self._table.get(key)
                if layer is not None:
                    merged = layer.over(merged)
        return Effective(
            usage=merged.usage if merged.usage is not None else UsageSpec(),
            latency=merged.latency or 0.0,
            first_byte_delay=merged.first_byte_delay or 0.0,
            token_headers=family_token_headers if merged.token_headers is None else merged.token_headers,
            body_usage=True if merged.body_usage is None else merged.body_usage,
            invocation_metrics=True if merged.invocation_metrics is None else merged.invocation_metrics,
            served_service_tier=merged.served_service_tier,
            served_latency=merged.served_latency,
            stream_deltas=merged.stream_deltas or 3,
        )


@dataclass(frozen=True, slots=True)
class StreamFailure:
    """An exception event to send after ``after_events`` normal events."""

    after_events: int
    member: str
    message: str | None


@dataclass
class _Rule:
    error: str
    operation: str | None
    model: str | None
    message: str | None
    remaining: int | None
    nth: int | None = None
    probability: float | None = None
    rng: random.Random | None = None
    after_events: int | None = None
    seen: int = 0

    def matches(self, operation: str, model_keys: frozenset[str]) -> bool:
        if self.operation is not None and self.operation != operation:
            return False
        return self.model is None or self.model in model_keys

    def fires(self) -> bool:
        self.seen += 1
        if self.nth is not None:
            return self.seen == self.nth
        if self.probability is not None and self.rng is not None:
            return self.rng.random() < self.probability
        return True


class FailureRules:
    """Error-injection rules, checked in the order they were added. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def add(
        self,
        error: str,
        *,
        operation: str | None = None,
        model: str | None = None,
        message: str | None = None,
        times: int | None = 1,
        nth: int | None = None,
        probability: float | None = None,
        seed: int | None = None,
        after_events: int | None = None,
    ) -> None:
        op = normalize_operation(operation) if operation is not None else None
        if after_events is not None:
            if after_events < 0:
                raise ValueError("after_events must be >= 0")
            if op is not None and op not in STREAMING_OPERATIONS:
                raise ValueError(
                    f"{op} does not stream; mid-stream errors need ConverseStream or "
                    "InvokeModelWithResponseStream"
                )
            code = stream_member_name(error)
        else:
            code = canonical_error_code(error)
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None for no limit)")
        if nth is not None and nth < 1:
            raise ValueError("nth is 1-based")
        if probability is not None and not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        rule = _Rule(
            error=code,
            operation=op,
            model=model,
            message=message,
            remaining=times,
            nth=nth,
            probability=probability,
            rng=random.Random(seed) if probability is not None else None,
            after_events=after_events,
        )
        with self._lock:
            self._rules.append(rule)

    def _take(self, operation: str, model_keys: frozenset[str], *, stream: bool) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if (rule.after_events is not None) != stream or not rule.matches(operation, model_keys):
                    continue
                if rule.fires():
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining == 0:
                            self._rules.remove(rule)
                    return rule
        return None

    def http_failure(self, operation: str, model_keys: frozenset[str]) -> tuple[str, str | None] | None:
        rule = self._take(operation, model_keys, stream=False)
        return None if rule is None else (rule.error, rule.message)

    def stream_failure(self, operation: str, model_keys: frozenset[str]) -> StreamFailure | None:
        if operation not in STREAMING_OPERATIONS:
            return None
        rule = self._take(operation, model_keys, stream=True)
        if rule is None or rule.after_events is None:
            return None
        return StreamFailure(rule.after_events, rule.error, rule.message)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One HTTP request the fake received, and what it answered.

    ``status`` is the HTTP status sent; ``error_code`` is the modelled error (HTTP or mid-stream) or
    ``None``; ``usage`` is the usage the response reported (``None`` for errors, including streams cut
    by a mid-stream exception, and for operations without usage).
    """

    sequence: int
    operation: str
    model_id: str | None
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    status: int
    error_code: str | None = None
    usage: ReportedUsage | None = None
    base_model_id: str | None = None
    family: str | None = None
    received_at: float = field(default=0.0, compare=False)

    def json(self) -> Any:
        """The request body parsed as JSON (raises ``ValueError`` if it is not JSON)."""
        return json.loads(self.body)


class RequestLog:
    """Append-only, thread-safe record of requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[RecordedRequest] = []
        self._sequence = 0

    def next_sequence(self) -> int:
        with self._lock:
            self._sequence += 1
            return self._sequence

    def append(self, item: RecordedRequest) -> None:
        with self._lock:
            self._items.append(item)

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return sorted(self._items, key=lambda r: r.sequence)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
