"""Converse and ConverseStream: request checks and the normalised response / event sequence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .errors import BedrockError, stream_error_body
from .eventstream import encode_event, encode_exception
from .families import Generation
from .scripting import StreamFailure
from .usage import ReportedUsage

__all__ = ["converse_response", "converse_stream_events", "uses_cache_points", "validate_converse"]

_UNSUPPORTED_MODEL: Final = (
    "This action doesn't support the model that you provided. Try again with a supported text or chat model."
)


def validate_converse(body: Mapping[str, Any], *, supported: bool) -> None:
    if not supported:
        raise BedrockError("ValidationException", _UNSUPPORTED_MODEL)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BedrockError(
            "ValidationException",
            "A conversation must start with a user message. Try again with a conversation that starts "
            "with a user message.",
        )
    for message in messages:
        if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant"):
            raise BedrockError("ValidationException", "Each message must have a role of user or assistant.")
        if not isinstance(message.get("content"), list):
            raise BedrockError("ValidationException", "Each message must have a content list.")
    if messages[0].get("role") != "user":
        raise BedrockError(
            "ValidationException",
            "A conversation must start with a user message. Try again with a conversation that starts "
            "with a user message.",
        )


def uses_cache_points(body: Mapping[str, Any]) -> bool:
    stack: list[Any] = [body.get("messages"), body.get("system"), body.get("toolConfig")]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "cachePoint" in item:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def token_usage(usage: ReportedUsage, *, cache_fields: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": usage.total_tokens,
    }
    if cache_fields or usage.uses_cache:
        out["cacheReadInputTokens"] = usage.cache_read_tokens
        out["cacheWriteInputTokens"] = usage.cache_write_total
    if usage.cache_details and usage.cache_write_total:
        # The service model documents 1h before 5m; zero entries are left out.
        details = [("1h", usage.cache_write_1h_tokens), ("5m", usage.cache_write_tokens)]
        out["cacheDetails"] = [{"ttl": ttl, "inputTokens": n} for ttl, n in details if n]
    return out


def _served(tier: str | None, latency: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if tier is not None:
        out["serviceTier"] = {"type": tier}
    if latency is not None:
        out["performanceConfig"] = {"latency": latency}
    return out


def converse_response(
    gen: Generation,
    *,
    latency_ms: int,
    cache_fields: bool,
    tier: str | None,
    performance: str | None,
    trace: Mapping[str, Any] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": [{"text": gen.text}]}},
        "stopReason": "max_tokens" if gen.hit_limit else "end_turn",
        "usage": token_usage(gen.usage, cache_fields=cache_fields),
        "metrics": {"latencyMs": latency_ms},
    }
    if trace:
        body["trace"] = dict(trace)
    body.update(_served(tier, performance))
    return body


def converse_stream_events(
    gen: Generation,
    *,
    latency_ms: int,
    cache_fields: bool,
    tier: str | None,
    performance: str | None,
    trace: Mapping[str, Any] | None,
    failure: StreamFailure | None,
) -> tuple[bytes, ...]:
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    events.extend(
        ("contentBlockDelta", {"delta": {"text": piece}, "contentBlockIndex": 0}) for piece in gen.pieces
    )
    events.append(("contentBlockStop", {"contentBlockIndex": 0}))
    events.append(("messageStop", {"stopReason": "max_tokens" if gen.hit_limit else "end_turn"}))
    metadata: dict[str, Any] = {
        "usage": token_usage(gen.usage, cache_fields=cache_fields),
        "metrics": {"latencyMs": latency_ms},
    }
    if trace:
        metadata["trace"] = dict(trace)
    metadata.update(_served(tier, performance))
    events.append(("metadata", metadata))
    if failure is not None:
        events = events[: failure.after_events]
    frames = [encode_event(name, body, pad=index) for index, (name, body) in enumerate(events)]
    if failure is not None:
        frames.append(encode_exception(failure.member, stream_error_body(failure.member, failure.message)))
    return tuple(frames)
