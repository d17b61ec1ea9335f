"""Usage of a streamed call, accumulated event by event.

``feed`` runs on every event the caller reads, so it does the least work that keeps the count right:
Converse events are already dicts (no decoding); each InvokeModel chunk is decoded once with ``json.loads``.
Generated text is measured as it passes (UTF-8 bytes only, nothing kept) so a stream that dies before
reporting usage can still be charged for what it produced.

Preference per field: ConverseStream ``metadata`` / the last chunk's ``amazon-bedrock-invocationMetrics``
(final and complete); then the family's own stream fields; then estimates (input from the request, output
from the text received, one token per four bytes rounded up).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from bedrock_budget.extract.bodies import anthropic_usage, chat_usage, cohere_meta, nova_usage
from bedrock_budget.extract.content import string_bytes
from bedrock_budget.extract.counts import Counts, to_usage
from bedrock_budget.extract.estimate import tokens_from_output_bytes
from bedrock_budget.extract.guardrails import trace_units
from bedrock_budget.extract.responses import converse_counts
from bedrock_budget.extract.types import Extracted, RequestInfo, UsageSource, canonical_operation
from bedrock_budget.extract.values import as_count, as_mapping, as_text, dig, utf8_len

__all__ = ["StreamAccumulator"]

_METRICS_KEY: Final = "amazon-bedrock-invocationMetrics"
_TRACE_KEY: Final = "amazon-bedrock-trace"


class StreamAccumulator:
    """Collects the usage of one ConverseStream or InvokeModelWithResponseStream call.

    ``response`` is the boto3 response the stream came from; its top-level ``serviceTier`` /
    ``performanceConfigLatency`` (InvokeModel streams) give the served tier. Feed every event the caller
    receives, then call :meth:`result` once the stream ends, however it ends.
    """

    __slots__ = (
        "_converse",
        "_ended",
        "_failed",
        "_final",
        "_handler",
        "_latency",
        "_native",
        "_native_output_live",
        "_routed",
        "_text_bytes",
        "_tier",
        "_units",
    )

    def __init__(self, operation: str, family: str, response: Mapping[str, Any] | None = None) -> None:
        self._converse = canonical_operation(operation) == "ConverseStream"
        self._handler: _ChunkHandler = _CHUNK_HANDLERS.get(family, _sniff_chunk)
        # Final counts (stream metadata / invocation metrics) and the family's own, possibly provisional.
        self._final = Counts()
        self._native = Counts()
        # Whether the family's output count is current as of the last chunk (Llama, Titan), rather than a
        # placeholder waiting for a closing event (Anthropic's message_start).
        self._native_output_live = False
        self._text_bytes = 0
        self._units: dict[str, int] = {}
        self._routed: str | None = None
        self._failed = False
        # ConverseStream always closes with a metadata event; a stream that runs out without one was cut.
        self._ended = False
        headers = as_mapping(dig(response, "ResponseMetadata", "HTTPHeaders")) or {}
        top = response or {}
        self._tier = _lower(top.get("serviceTier")) or _lower(headers.get("x-amzn-bedrock-service-tier"))
        self._latency = _lower(top.get("performanceConfigLatency")) or _lower(
            headers.get("x-amzn-bedrock-performanceconfig-latency")
        )

    def feed(self, event: Mapping[str, Any]) -> None:
        """Account for one event as boto3 yields it. Never raises."""
        try:
            if self._converse:
                self._feed_converse(event)
            else:
                self._feed_chunk(event)
        except Exception:
            # Accounting must never break the caller's stream; a bad event simply counts for nothing.
            return

    def _add_text_bytes(self, count: int) -> None:
        """Generated text measured by a family handler."""
        self._text_bytes += count

    def _feed_converse(self, event: Mapping[str, Any]) -> None:
        block = event.get("contentBlockDelta")
        if block is not None:
            delta = block.get("delta")
            if delta:
                text = delta.get("text")
                if text.__class__ is str:
                    self._text_bytes += utf8_len(text)
                else:
                    self._text_bytes += _converse_delta_bytes(delta)
            return
        metadata = event.get("metadata")
        if metadata is not None:
            self._ended = True
            self._metadata(metadata)
            return
        self._note_exception(event)

    def _metadata(self, metadata: Mapping[str, Any]) -> None:
        counts = converse_counts(metadata.get("usage"))
        if counts.reported:
            self._final = counts
        self._tier = _lower(dig(metadata, "serviceTier", "type")) or self._tier
        self._latency = _lower(dig(metadata, "performanceConfig", "latency")) or self._latency
        trace = as_mapping(metadata.get("trace")) or {}
        trace_units(trace.get("guardrail"), self._units)
        self._routed = as_text(dig(trace, "promptRouter", "invokedModelId")) or self._routed

    def _feed_chunk(self, event: Mapping[str, Any]) -> None:
        chunk = event.get("chunk")
        if chunk is None:
            self._note_exception(event)
            return
        try:
            payload = json.loads(chunk.get("bytes"))
        except (ValueError, TypeError, RecursionError):
            return
        if payload.__class__ is not dict:
            return
        metrics = payload.get(_METRICS_KEY)
        if metrics is not None:
            self._invocation_metrics(metrics)
        trace = payload.get(_TRACE_KEY)
        if trace is not None:
            trace_units(dig(trace, "guardrail"), self._units)
        self._handler(self, payload)

    def _invocation_metrics(self, metrics: object) -> None:
        if not isinstance(metrics, Mapping):
            return
        counts = Counts(
            input=as_count(metrics.get("inputTokenCount")),
            output=as_count(metrics.get("outputTokenCount")),
            cache_read=as_count(metrics.get("cacheReadInputTokenCount")),
            cache_write=as_count(metrics.get("cacheWriteInputTokenCount")),
        )
        if counts.reported:
            # Cache fields are present only when caching applied, so a reported total means none otherwise.
            counts.cache_read = counts.cache_read or 0
            counts.cache_write = counts.cache_write or 0
            self._final = counts

    def _add_native(self, counts: Counts, *, output_live: bool) -> None:
        """Newer native counts from a family handler; fields it does not report keep their old values."""
        native = self._native
        if counts.input is not None:
            native.input = counts.input
        if counts.output is not None:
            native.output = counts.output
            self._native_output_live = output_live
        if counts.cache_read is not None:
            native.cache_read = counts.cache_read
        if counts.cache_write is not None:
            native.cache_write = counts.cache_write
        if counts.cache_write_1h is not None:
            native.cache_write_1h = counts.cache_write_1h

    def _live_counts(self, input_count: object, output_count: object) -> None:
        """Counts repeated on every chunk: the input once (null after), the output cumulative so far."""
        count = as_count(input_count)
        if count is not None:
            self._native.input = count
        count = as_count(output_count)
        if count is not None:
            self._native.output = count
            self._native_output_live = True

    def _note_exception(self, event: Mapping[str, Any]) -> None:
        # Modeled stream errors arrive as a single "...Exception" member when they are not raised.
        if any(isinstance(key, str) and key.endswith("Exception") for key in event):
            self._failed = True

    def result(self, *, complete: bool, request: RequestInfo) -> Extracted:
        """The usage so far. ``complete=False`` means the stream ended early (abandoned, closed, failed)."""
        partial = not complete or self._failed or (self._converse and not self._ended)
        counts = self._final.merged(self._native)
        text_tokens = tokens_from_output_bytes(self._text_bytes)
        forced = False
        if (
            partial
            and self._final.output is None
            and counts.output is not None
            and not self._native_output_live
            and text_tokens > counts.output
        ):
            # A placeholder count from the opening event lags the text that was actually generated.
            counts.output = text_tokens
            forced = True
        usage, estimated = to_usage(
            counts, request, output_estimate=text_tokens, guardrail_text_units=dict(self._units)
        )
        return Extracted(
            usage,
            self._source(),
            served_service_tier=self._tier,
            served_latency=self._latency,
            routed_model_id=self._routed,
            partial=partial,
            estimated=estimated or forced,
        )

    def _source(self) -> UsageSource:
        if self._final.reported:
            return "stream_metadata" if self._converse else "invocation_metrics"
        return "body" if self._native.reported else "estimate"


_ChunkHandler = Callable[[StreamAccumulator, dict[str, Any]], None]


def _lower(value: object) -> str | None:
    text = as_text(value)
    return text.lower() if text is not None else None


def _size(value: object) -> int:
    """UTF-8 size of generated text, with the common case (a plain string) kept cheap."""
    if value.__class__ is str:
        return utf8_len(value)
    return 0 if value is None else string_bytes(value)


def _converse_delta_bytes(delta: Mapping[str, Any]) -> int:
    """Tool input and reasoning deltas (Converse and Nova's native stream)."""
    return string_bytes((dig(delta, "toolUse", "input"), dig(delta, "reasoningContent", "text")))


def _anthropic_chunk(acc: StreamAccumulator, payload: dict[str, Any]) -> None:
    kind = payload.get("type")
    if kind == "content_block_delta":
        delta = payload.get("delta")
        if isinstance(delta, dict):
            text = delta.get("text")
            if text.__class__ is str:
                acc._add_text_bytes(utf8_len(text))
            else:
                acc._add_text_bytes(_size(delta.get("thinking")) + _size(delta.get("partial_json")))
    elif kind == "message_start":
        # output_tokens here is a placeholder; the cumulative count arrives on message_delta.
        acc._add_native(anthropic_usage(dig(payload, "message", "usage")), output_live=False)
    elif kind == "message_delta":
        acc._add_native(anthropic_usage(payload.get("usage")), output_live=True)


def _nova_chunk(acc: StreamAccumulator, payload: dict[str, Any]) -> None:
    block = payload.get("contentBlockDelta")
    if isinstance(block, dict):
        delta = block.get("delta")
        if isinstance(delta, dict):
            text = delta.get("text")
            acc._add_text_bytes(utf8_len(text) if text.__class__ is str else _converse_delta_bytes(delta))
        return
    metadata = payload.get("metadata")
    if isinstance(metadata, dict):
        acc._add_native(nova_usage(metadata.get("usage")), output_live=True)


def _titan_chunk(acc: StreamAccumulator, payload: dict[str, Any]) -> None:
    acc._add_text_bytes(_size(payload.get("outputText")))
    acc._live_counts(payload.get("inputTextTokenCount"), payload.get("totalOutputTextTokenCount"))


def _llama_chunk(acc: StreamAccumulator, payload: dict[str, Any]) -> None:
    acc._add_text_bytes(_size(payload.get("generation")))
    acc._live_counts(payload.get("prompt_token_count"), payload.get("generation_token_count"))


def _chat_chunk(acc: StreamAccumulator, payload: dict[str, Any]) -> None:
    """Chat Completions chunks (``choices[].delta``), Jamba/Mistral (``choices[].message``), DeepSeek R1
    (``choices[].text``) and Mistral text models (``outputs[].text``)."""
    choices = payload.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, dict):
                message = choice.get("delta") or choice.get("message")
                if isinstance(message, dict):
                    acc._add_text_bytes(
                        _size(message.get("content"))
                        + _size(message.get("reasoning_content"))
                        + _size(message.get("reasoning"))
                        + _size(message.get("tool_calls"))
                    )
                acc._add_text_bytes(_size(choice.get("text")))
    outputs = payload.get("outputs")
    if isinstance(outputs, list):
        acc._add_text_bytes(sum(_size(o.get("text")) for o in outputs if isinstance(o, dict)))
    usage = payload.get("usage")
    if usage is not None:
        acc._add_native(chat_usage(usage), output_live=True)


def _cohere_chunk(acc: StreamAccumulator, payload: dict[str, Any]) -> None:
    # Command R sends the whole answer again in its stream-end event: count only the incremental text.
    if payload.get("event_type") in (None, "text-generation"):
        acc._add_text_bytes(_size(payload.get("text")))
    final = payload.get("response")
    meta = cohere_meta(final if isinstance(final, dict) else payload)
    if meta.reported:
        acc._add_native(meta, output_live=True)


def _sniff_chunk(acc: StreamAccumulator, payload: dict[str, Any]) -> None:
    """Unknown family: pick the handler by the keys the chunk carries."""
    for key, handler in _SNIFF_KEYS:
        if key in payload:
            handler(acc, payload)
            return


_SNIFF_KEYS: Final[tuple[tuple[str, _ChunkHandler], ...]] = (
    ("type", _anthropic_chunk),
    ("contentBlockDelta", _nova_chunk),
    ("metadata", _nova_chunk),
    ("choices", _chat_chunk),
    ("outputs", _chat_chunk),
    ("generation", _llama_chunk),
    ("outputText", _titan_chunk),
    ("text", _cohere_chunk),
    ("usage", _chat_chunk),
)

_CHUNK_HANDLERS: Final[dict[str, _ChunkHandler]] = {
    "anthropic": _anthropic_chunk,
    "nova": _nova_chunk,
    "titan_text": _titan_chunk,
    "llama": _llama_chunk,
    "mistral": _chat_chunk,
    "mistral_chat": _chat_chunk,
    "jamba": _chat_chunk,
    "deepseek": _chat_chunk,
    "openai_chat": _chat_chunk,
    "cohere_text": _cohere_chunk,
    "cohere_chat": _cohere_chunk,
}
