"""InvokeModel and InvokeModelWithResponseStream: native bodies wrapped in Bedrock's headers and
``chunk`` events."""

from __future__ import annotations

import json
from typing import Any

from .errors import stream_error_body
from .eventstream import encode_chunk_event, encode_exception
from .families import Family, Generation
from .scripting import StreamFailure
from .usage import ReportedUsage

__all__ = ["invocation_metrics", "invoke_body", "invoke_stream_events", "served_headers", "token_headers"]


def token_headers(usage: ReportedUsage, latency_ms: int) -> list[tuple[str, str]]:
    headers = [
        ("X-Amzn-Bedrock-Invocation-Latency", str(latency_ms)),
        ("X-Amzn-Bedrock-Output-Token-Count", str(usage.output_tokens)),
        ("X-Amzn-Bedrock-Input-Token-Count", str(usage.input_tokens)),
    ]
    if usage.uses_cache:
        headers.append(("X-Amzn-Bedrock-Cache-Read-Input-Token-Count", str(usage.cache_read_tokens)))
        headers.append(("X-Amzn-Bedrock-Cache-Write-Input-Token-Count", str(usage.cache_write_total)))
    return headers


def served_headers(tier: str | None, performance: str | None) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    if performance is not None:
        headers.append(("X-Amzn-Bedrock-PerformanceConfig-Latency", performance))
    if tier is not None:
        headers.append(("X-Amzn-Bedrock-Service-Tier", tier))
    return headers


def invocation_metrics(usage: ReportedUsage, latency_ms: int, first_byte_ms: int) -> dict[str, int]:
    metrics = {
        "inputTokenCount": usage.input_tokens,
        "outputTokenCount": usage.output_tokens,
        "invocationLatency": latency_ms,
        "firstByteLatency": first_byte_ms,
    }
    if usage.uses_cache:
        metrics["cacheReadInputTokenCount"] = usage.cache_read_tokens
        metrics["cacheWriteInputTokenCount"] = usage.cache_write_total
    return metrics


def invoke_body(family: Family, gen: Generation) -> bytes:
    return json.dumps(family.response(gen), separators=(",", ":")).encode("utf-8")


def invoke_stream_events(
    family: Family,
    gen: Generation,
    *,
    metrics: dict[str, int] | None,
    failure: StreamFailure | None,
) -> tuple[bytes, ...]:
    chunks: list[dict[str, Any]] = family.stream(gen)
    if metrics is not None and chunks:
        # The same block for every family, on the last model chunk.
        chunks[-1] = {**chunks[-1], "amazon-bedrock-invocationMetrics": metrics}
    if failure is not None:
        chunks = chunks[: failure.after_events]
    frames = [encode_chunk_event(chunk, pad=index) for index, chunk in enumerate(chunks)]
    if failure is not None:
        frames.append(encode_exception(failure.member, stream_error_body(failure.member, failure.message)))
    return tuple(frames)
