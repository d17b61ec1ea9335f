"""The fake service itself, independent of HTTP: takes a parsed request, returns a :class:`Reply`,
and records what happened."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import parse_qs

from .async_jobs import AsyncJobs
from .converse import converse_response, converse_stream_events, uses_cache_points, validate_converse
from .errors import BedrockError, canonical_error_code
from .families import Generation
from .families.base import int_at
from .guardrail import apply_guardrail_response, converse_guardrail_trace, guarded_content
from .invocation_log_writer import InvocationLogWriter
from .invoke import invocation_metrics, invoke_body, invoke_stream_events, served_headers, token_headers
from .models import ModelDirectory, ResolvedModel
from .price_list_api import PriceListCatalog, pricing_operation
from .reply import Reply, error_reply, json_reply
from .routing import Route, match_route
from .scripting import Behaviors, Effective, FailureRules, RecordedRequest, RequestLog, StreamFailure
from .usage import (
    GuardrailUsageSpec,
    ReportedUsage,
    UsageContext,
    UsageSpec,
    filler_text,
    prompt_bytes,
    split_text,
)

__all__ = ["Engine", "Incoming"]

logger = logging.getLogger(__name__)

# Filler text stops growing here; token counts are still reported as configured.
_MAX_FILLER_WORDS: Final = 2048
_EVENT_STREAM: Final = "application/vnd.amazon.eventstream"


@dataclass(frozen=True, slots=True)
class Incoming:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


@dataclass
class _Outcome:
    """What the recorder learns while a request is handled."""

    model_id: str | None = None
    base_model_id: str | None = None
    family: str | None = None
    usage: ReportedUsage | None = None
    error_code: str | None = None
    request_metadata: Mapping[str, str] | None = None


def _json_object(raw: bytes, *, native: bool) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else None
    except (UnicodeDecodeError, ValueError):
        value = None
    if isinstance(value, dict):
        return value
    if native:
        # The wording Bedrock uses when a model-native body is not a JSON object.
        message = (
            "Malformed input request: expected type: JSONObject, please reformat your input and try again."
        )
    else:
        message = "The request body is not a valid JSON object."
    raise BedrockError("ValidationException", message)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


#: The operations Bedrock writes model-invocation log records for.
_LOGGED: Final = frozenset({"Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream"})


class Engine:
    def __init__(self, region: str = "us-east-1", invocation_logs: InvocationLogWriter | None = None) -> None:
        self.region = region
        self.behaviors = Behaviors()
        self.failures = FailureRules()
        self.log = RequestLog()
        self.directory = ModelDirectory(region=region)
        self.jobs = AsyncJobs(region)
        self.price_list = PriceListCatalog()
        self._guardrails: dict[str, GuardrailUsageSpec] = {}
        self._lock = threading.Lock()
        self.server_errors: list[BaseException] = []
        self._configured_logs = invocation_logs
        self.invocation_logs = invocation_logs
        self._handlers: dict[str, Callable[[Route, Incoming, _Outcome], Reply]] = {
            "Converse": functools.partial(self._converse, stream=False),
            "ConverseStream": functools.partial(self._converse, stream=True),
            "InvokeModel": functools.partial(self._invoke, stream=False),
            "InvokeModelWithResponseStream": functools.partial(self._invoke, stream=True),
            "CountTokens": self._count_tokens,
            "ApplyGuardrail": self._apply_guardrail,
            "StartAsyncInvoke": self._start_async,
            "GetAsyncInvoke": self._get_async,
            "ListAsyncInvokes": self._list_async,
            "GetInferenceProfile": self._get_inference_profile,
            "GetProvisionedModelThroughput": self._get_provisioned,
            "ListFoundationModels": self._list_foundation_models,
        }

    def reset(self) -> None:
        self.behaviors.clear()
        self.failures.clear()
        self.log.clear()
        self.directory.clear()
        self.jobs.clear()
        self.price_list.clear()
        self.invocation_logs = self._configured_logs
        with self._lock:
            self._guardrails.clear()
            self.server_errors.clear()

    def set_guardrail_usage(self, spec: GuardrailUsageSpec, guardrail_id: str) -> None:
        with self._lock:
            self._guardrails[guardrail_id] = spec

    def _guardrail_spec(self, guardrail_id: str) -> GuardrailUsageSpec:
        with self._lock:
            return self._guardrails.get(guardrail_id) or self._guardrails.get("*") or GuardrailUsageSpec()

    # --- entry point ---------------------------------------------------------------------------

    def handle(self, request: Incoming) -> Reply:
        received = time.time()
        request_id = str(uuid.uuid4())
        sequence = self.log.next_sequence()
        outcome = _Outcome()
        pricing = pricing_operation(request.method, request.path, request.headers)
        route = Route(pricing, {}) if pricing is not None else match_route(request.method, request.path)
        operation = route.operation if route is not None else "Unknown"
        try:
            if pricing is not None:
                # The Price List API (JSON 1.1) has errors of its own shape; it answers them itself.
                reply = self.price_list.handle_pricing(pricing, request.body)
            elif route is None:
                raise BedrockError("UnknownOperationException")
            else:
                reply = self._dispatch(route, request, outcome)
        except BedrockError as error:
            reply = error_reply(error)
            outcome.error_code = error.code
        except Exception as error:  # a bug here or in a test's usage callable: answer, and keep it
            logger.exception("fake Bedrock failed to answer %s", operation)
            with self._lock:
                self.server_errors.append(error)
            reply = error_reply(
                BedrockError("InternalServerException", f"fake Bedrock: {type(error).__name__}")
            )
            outcome.error_code = "InternalServerException"
        if self.invocation_logs is not None and operation in _LOGGED and reply.status == 200:
            self._log_invocation(self.invocation_logs, request, operation, request_id, received, outcome)
        self.log.append(
            RecordedRequest(
                sequence=sequence,
                operation=operation,
                model_id=outcome.model_id,
                method=request.method,
                path=request.path,
                headers=dict(request.headers),
                body=request.body,
                status=reply.status,
                error_code=outcome.error_code,
                usage=outcome.usage,
                base_model_id=outcome.base_model_id,
                family=outcome.family,
                received_at=received,
            )
        )
        return replace(reply, request_id=request_id)

    def _log_invocation(
        self,
        writer: InvocationLogWriter,
        request: Incoming,
        operation: str,
        request_id: str,
        received: float,
        outcome: _Outcome,
    ) -> None:
        """The log record of an answered invocation: the counts the response reported (none for a
        stream cut by an exception event, which names the error instead). Never prompt or completion."""
        if outcome.model_id is None:
            return
        record = writer.record(
            request_id=request_id,
            operation=operation,
            model_id=outcome.model_id,
            received=received,
            authorization=request.headers.get("authorization"),
            usage=outcome.usage,
            error_code=outcome.error_code,
            request_metadata=outcome.request_metadata,
        )
        try:
            writer.write([record], at=received)
        except OSError as error:  # the answer still goes out; the test sees the failure
            with self._lock:
                self.server_errors.append(error)

    def _dispatch(self, route: Route, request: Incoming, outcome: _Outcome) -> Reply:
        return self._handlers[route.operation](route, request, outcome)

    # --- shared steps --------------------------------------------------------------------------

    def _resolve(self, model_id: str, outcome: _Outcome) -> tuple[ResolvedModel, tuple[str, ...]]:
        outcome.model_id = model_id
        resolved = self.directory.resolve(model_id)
        outcome.base_model_id = resolved.base_model_id
        outcome.family = resolved.family.name
        # Least specific first: defaults, family, base model, the id exactly as sent.
        return resolved, ("*", resolved.family.name, resolved.base_model_id, model_id)

    def _inject(self, operation: str, keys: frozenset[str], model_id: str | None = None) -> None:
        found = self.failures.http_failure(operation, keys)
        if found is None:
            return
        code, message = found
        extra: dict[str, Any] = {}
        if code == "ModelErrorException":
            extra = {"originalStatusCode": 500, "resourceName": model_id or "model"}
        elif code == "ModelStreamErrorException":
            extra = {"originalStatusCode": 500, "originalMessage": "The model failed."}
        raise BedrockError(code, message, **extra)

    def _stream_failure(
        self, operation: str, keys: tuple[str, ...], outcome: _Outcome
    ) -> StreamFailure | None:
        failure = self.failures.stream_failure(operation, frozenset(keys))
        if failure is not None:
            # The stream is cut before its usage-bearing events, so the call reported no usage.
            outcome.error_code = canonical_error_code(failure.member)
            outcome.usage = None
        return failure

    def _effective(self, resolved: ResolvedModel, keys: tuple[str, ...]) -> Effective:
        return self.behaviors.effective(keys, resolved.family.token_headers)

    def _generate(
        self,
        operation: str,
        resolved: ResolvedModel,
        body: dict[str, Any],
        headers: Mapping[str, str],
        size: int,
        max_tokens: int | None,
        effective: Effective,
    ) -> Generation:
        source = effective.usage
        if isinstance(source, UsageSpec):
            spec = source
        else:
            context = UsageContext(
                operation=operation,
                model_id=resolved.requested,
                base_model_id=resolved.base_model_id,
                family=resolved.family.name,
                body=body,
                headers=headers,
                prompt_bytes=size,
                max_tokens=max_tokens,
            )
            spec = source(context)
            if not isinstance(spec, UsageSpec):
                raise TypeError(f"usage callable returned {type(spec).__name__}, expected UsageSpec")
        if resolved.family.kind != "text" and spec.output_tokens is None:
            spec = replace(spec, output_tokens=0)
        usage = spec.resolve(size, max_tokens)
        text = filler_text(min(usage.output_tokens, _MAX_FILLER_WORDS))
        return Generation(
            model_id=resolved.base_model_id,
            usage=usage,
            text=text,
            pieces=split_text(text, effective.stream_deltas),
            hit_limit=max_tokens is not None and usage.output_tokens >= max_tokens,
            body_usage=effective.body_usage,
            response_id=uuid.uuid4().hex,
            created=int(time.time()),
            body=body,
        )

    # --- operations ----------------------------------------------------------------------------

    def _converse(self, route: Route, request: Incoming, outcome: _Outcome, *, stream: bool) -> Reply:
        op = route.operation
        resolved, keys = self._resolve(route.params["modelId"], outcome)
        self._inject(op, frozenset(keys), resolved.requested)
        body = _json_object(request.body, native=False)
        validate_converse(body, supported=resolved.family.converse)
        metadata = body.get("requestMetadata")
        if isinstance(metadata, Mapping):
            outcome.request_metadata = {str(k): str(v) for k, v in metadata.items()}
        effective = self._effective(resolved, keys)
        size = prompt_bytes([body.get("messages"), body.get("system"), body.get("toolConfig")])
        gen = self._generate(
            op, resolved, body, request.headers, size, int_at(body, "inferenceConfig", "maxTokens"), effective
        )
        outcome.usage = gen.usage
        tier = effective.served_service_tier or _nested_str(body, "serviceTier", "type")
        performance = effective.served_latency or _nested_str(body, "performanceConfig", "latency")
        trace = self._converse_trace(body, size, gen)
        latency = max(effective.latency, effective.first_byte_delay)
        common: dict[str, Any] = {
            "latency_ms": _ms(latency),
            "cache_fields": uses_cache_points(body),
            "tier": tier,
            "performance": performance,
            "trace": trace,
        }
        if not stream:
            return json_reply(converse_response(gen, **common), latency=latency)
        failure = self._stream_failure(op, keys, outcome)
        events = converse_stream_events(gen, failure=failure, **common)
        return Reply(
            200,
            (("Content-Type", _EVENT_STREAM),),
            events=events,
            latency=latency,
            first_byte_delay=effective.first_byte_delay,
        )

    def _converse_trace(self, body: Mapping[str, Any], size: int, gen: Generation) -> dict[str, Any] | None:
        config = body.get("guardrailConfig")
        if not isinstance(config, Mapping) or config.get("trace") not in ("enabled", "enabled_full"):
            return None
        guardrail_id = str(config.get("guardrailIdentifier", ""))
        spec = self._guardrail_spec(guardrail_id)
        return converse_guardrail_trace(spec, guardrail_id, size, [len(gen.text)])

    def _invoke(self, route: Route, request: Incoming, outcome: _Outcome, *, stream: bool) -> Reply:
        op = route.operation
        resolved, keys = self._resolve(route.params["modelId"], outcome)
        family = resolved.family
        self._inject(op, frozenset(keys), resolved.requested)
        if not family.synchronous:
            raise BedrockError(
                "ValidationException",
                "This model doesn't support synchronous invocation. Use StartAsyncInvoke.",
            )
        if stream and not family.streaming:
            raise BedrockError("ValidationException", "The model is unsupported for streaming.")
        body = _json_object(request.body, native=True)
        family.validate(body)
        effective = self._effective(resolved, keys)
        gen = self._generate(
            op, resolved, body, request.headers, prompt_bytes(body), family.max_tokens(body), effective
        )
        outcome.usage = gen.usage
        tier = effective.served_service_tier or request.headers.get("x-amzn-bedrock-service-tier")
        performance = effective.served_latency or request.headers.get(
            "x-amzn-bedrock-performanceconfig-latency"
        )
        latency = max(effective.latency, effective.first_byte_delay)
        served = served_headers(tier, performance)
        if not stream:
            headers = [("Content-Type", "application/json"), *served]
            if effective.token_headers:
                headers.extend(token_headers(gen.usage, _ms(latency)))
            return Reply(200, tuple(headers), invoke_body(family, gen), latency=latency)
        failure = self._stream_failure(op, keys, outcome)
        metrics = (
            invocation_metrics(gen.usage, _ms(latency), _ms(effective.first_byte_delay))
            if effective.invocation_metrics
            else None
        )
        headers = [
            ("Content-Type", _EVENT_STREAM),
            ("X-Amzn-Bedrock-Content-Type", "application/json"),
            *served,
        ]
        return Reply(
            200,
            tuple(headers),
            events=invoke_stream_events(family, gen, metrics=metrics, failure=failure),
            latency=latency,
            first_byte_delay=effective.first_byte_delay,
        )

    def _count_tokens(self, route: Route, request: Incoming, outcome: _Outcome) -> Reply:
        resolved, keys = self._resolve(route.params["modelId"], outcome)
        self._inject("CountTokens", frozenset(keys), resolved.requested)
        body = _json_object(request.body, native=False)
        payload = body.get("input")
        if not isinstance(payload, Mapping) or len(payload) != 1:
            raise BedrockError(
                "ValidationException", "input must contain exactly one of converse or invokeModel."
            )
        if not resolved.family.converse:
            raise BedrockError("ValidationException", "The provided model doesn't support counting tokens.")
        if "converse" in payload and isinstance(payload["converse"], dict):
            inner: dict[str, Any] = payload["converse"]
            validate_converse(inner, supported=True)
            size = prompt_bytes([inner.get("messages"), inner.get("system"), inner.get("toolConfig")])
            max_tokens = None
        elif "invokeModel" in payload and isinstance(payload["invokeModel"], Mapping):
            try:
                raw = base64.b64decode(str(payload["invokeModel"].get("body", "")), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise BedrockError("ValidationException", "invokeModel.body must be base64.") from exc
            inner = _json_object(raw, native=True)
            resolved.family.validate(inner)
            size = prompt_bytes(inner)
            max_tokens = resolved.family.max_tokens(inner)
        else:
            raise BedrockError(
                "ValidationException", "input must contain exactly one of converse or invokeModel."
            )
        effective = self._effective(resolved, keys)
        gen = self._generate("CountTokens", resolved, inner, request.headers, size, max_tokens, effective)
        return json_reply({"inputTokens": gen.usage.total_input_tokens})

    def _apply_guardrail(self, route: Route, request: Incoming, outcome: _Outcome) -> Reply:
        guardrail_id = route.params["guardrailIdentifier"]
        self._inject("ApplyGuardrail", frozenset({"*", guardrail_id}))
        body = _json_object(request.body, native=False)
        characters, images = guarded_content(body)
        spec = self._guardrail_spec(guardrail_id)
        return json_reply(apply_guardrail_response(spec, characters, images))

    def _start_async(self, route: Route, request: Incoming, outcome: _Outcome) -> Reply:
        body = _json_object(request.body, native=False)
        model_id = body.get("modelId")
        if not isinstance(model_id, str):
            raise BedrockError("ValidationException", "modelId is required.")
        resolved, keys = self._resolve(model_id, outcome)
        self._inject("StartAsyncInvoke", frozenset(keys), model_id)
        if resolved.family.synchronous:
            raise BedrockError(
                "ValidationException", "The provided model doesn't support asynchronous invocation."
            )
        model_input = body.get("modelInput")
        output = body.get("outputDataConfig")
        if not isinstance(model_input, Mapping) or "taskType" not in model_input:
            raise BedrockError("ValidationException", "modelInput must be an object with a taskType.")
        if not isinstance(output, Mapping) or not isinstance(output.get("s3OutputDataConfig"), Mapping):
            raise BedrockError("ValidationException", "outputDataConfig.s3OutputDataConfig is required.")
        token = body.get("clientRequestToken")
        arn = self.jobs.start(resolved.base_model_id, token if isinstance(token, str) else None, output)
        return json_reply({"invocationArn": arn})

    def _get_async(self, route: Route, request: Incoming, outcome: _Outcome) -> Reply:
        self._inject(route.operation, frozenset())
        return json_reply(self.jobs.get(route.params["invocationArn"]))

    def _list_async(self, route: Route, request: Incoming, outcome: _Outcome) -> Reply:
        self._inject(route.operation, frozenset())
        query = parse_qs(request.query)
        status = query.get("statusEquals", [None])[0]
        raw_max = query.get("maxResults", [None])[0]
        max_results = int(raw_max) if raw_max and raw_max.isdigit() else None
        return json_reply(self.jobs.list(status, max_results, query.get("nextToken", [None])[0]))

    def _get_inference_profile(self, route: Route, request: Incoming, outcome: _Outcome) -> Reply:
        self._inject(route.operation, frozenset())
        return json_reply(self.directory.inference_profile(route.params["inferenceProfileIdentifier"]))

    def _get_provisioned(self, route: Route, request: Incoming, outcome: _Outcome) -> Reply:
        self._inject(route.operation, frozenset())
        return json_reply(self.directory.provisioned_throughput(route.params["provisionedModelId"]))

    def _list_foundation_models(self, route: Route, request: Incoming, outcome: _Outcome) -> Reply:
        self._inject(route.operation, frozenset())
        return self.price_list.list_foundation_models(request.query)


def _nested_str(body: Mapping[str, Any], outer: str, inner: str) -> str | None:
    node = body.get(outer)
    if isinstance(node, Mapping) and isinstance(node.get(inner), str):
        return str(node[inner])
    return None
