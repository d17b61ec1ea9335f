"""Usage of a finished (non-streaming) call, per operation.

Order of preference (reference/bedrock-wire.md §6.1): Converse ``usage``; for InvokeModel the
``x-amzn-bedrock-*-token-count`` headers, then the family's own body fields, field by field; then an
estimate, flagged. The InvokeModel body is read only when the headers cannot answer (image and rerank
models, missing or unbelievable headers, a guardrail trace to collect, a 1-hour cache TTL split), and the
caller always gets an equivalent unread body back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from bedrock_budget.extract.bodies import Parsed, converse_text, parse_body
from bedrock_budget.extract.body import parse_json, take_body
from bedrock_budget.extract.counts import Counts, to_usage
from bedrock_budget.extract.estimate import (
    estimate_input_tokens,
    rerank_queries,
    tokens_from_output_bytes,
)
from bedrock_budget.extract.families import kind_of
from bedrock_budget.extract.guardrails import add_guardrail_usage, checks_units, trace_units
from bedrock_budget.extract.types import (
    Extracted,
    RequestInfo,
    UsageSource,
    build_extracted,
    canonical_operation,
)
from bedrock_budget.extract.values import MAX_COUNT, as_count, as_mapping, as_text, dig, header_count
from bedrock_budget.usage import Usage, trusted_usage

__all__ = [
    "converse_counts",
    "converse_self_contained",
    "converse_served",
    "converse_tokens_only",
    "extract_response",
]

_INPUT_HEADER: Final = "x-amzn-bedrock-input-token-count"
_OUTPUT_HEADER: Final = "x-amzn-bedrock-output-token-count"
_CACHE_READ_HEADER: Final = "x-amzn-bedrock-cache-read-input-token-count"
_CACHE_WRITE_HEADER: Final = "x-amzn-bedrock-cache-write-input-token-count"
_TIER_HEADER: Final = "x-amzn-bedrock-service-tier"
_LATENCY_HEADER: Final = "x-amzn-bedrock-performanceconfig-latency"
_TRACE_KEY: Final = "amazon-bedrock-trace"
# Only these bodies carry the cache-write TTL split the headers lack.
_TTL_SPLIT_FAMILIES: Final = frozenset({"anthropic", "unknown"})

_Handler = Callable[[str, RequestInfo, Mapping[str, Any]], Extracted]


def converse_counts(usage: object) -> Counts:
    """Converse ``usage`` / ConverseStream ``metadata.usage``, with the ``cacheDetails`` TTL split."""
    # botocore hands out plain dicts; the exact-type test skips the slow ABC check on the hot path.
    if type(usage) is not dict and not isinstance(usage, Mapping):
        return Counts()
    counts = Counts(
        input=as_count(usage.get("inputTokens")),
        output=as_count(usage.get("outputTokens")),
        cache_read=as_count(usage.get("cacheReadInputTokens")),
        cache_write=as_count(usage.get("cacheWriteInputTokens")),
    )
    details = usage.get("cacheDetails")
    if isinstance(details, list):
        by_ttl: dict[str, int] = {}
        for detail in details:
            tokens = as_count(dig(detail, "inputTokens"))
            ttl = dig(detail, "ttl")
            if tokens is not None and isinstance(ttl, str):
                by_ttl[ttl] = by_ttl.get(ttl, 0) + tokens
        counts.cache_write_1h = by_ttl.get("1h", 0)
        if counts.cache_write is None and by_ttl:
            counts.cache_write = sum(by_ttl.values())
    return counts


def _served(value: object) -> str | None:
    text = as_text(value)
    return text.lower() if text is not None else None


def _served_values(response: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """InvokeModel's served tier and latency: modeled top-level keys, else the raw headers."""
    headers = as_mapping(dig(response, "ResponseMetadata", "HTTPHeaders")) or {}
    tier = _served(response.get("serviceTier")) or _served(headers.get(_TIER_HEADER))
    latency = _served(response.get("performanceConfigLatency")) or _served(headers.get(_LATENCY_HEADER))
    return tier, latency


_Served = tuple[str | None, str | None]
_NOT_SAID: Final[_Served] = (None, None)


def converse_served(response: Mapping[str, Any]) -> _Served:
    """The service tier and latency that served a Converse call, ``None`` where the response does not say."""
    # Both blocks are absent from most responses: look inside only when present.
    tier = response.get("serviceTier")
    latency = response.get("performanceConfig")
    return (
        None if tier is None else _served(dig(tier, "type")),
        None if latency is None else _served(dig(latency, "latency")),
    )


def converse_self_contained(response: object) -> _Served | None:
    """The served tier and latency (as :func:`converse_served`) of a self-contained Converse response, and
    ``None`` for any other response.

    Self-contained: Bedrock reported input and output tokens, a cache write comes with its TTL split, and
    there is no trace (guardrail units, a prompt router's model) to follow. Extracting such a response reads
    nothing but the response (never the request), cannot fail, and yields token counts only. Conservative:
    a response this does not recognise is still extracted correctly, only not declared self-contained.
    """
    if type(response) is not dict or response.get("trace"):
        return None
    usage = response.get("usage")
    if type(usage) is not dict:
        return None
    # as_count's test, inline: this runs on every call of a client that nothing listens to.
    reported_in = usage.get("inputTokens")
    reported_out = usage.get("outputTokens")
    if not (type(reported_in) is int and 0 <= reported_in <= MAX_COUNT):
        return None
    if not (type(reported_out) is int and 0 <= reported_out <= MAX_COUNT):
        return None
    # Without the cacheDetails split, a cache write takes its TTL from the request (see to_usage).
    if usage.get("cacheWriteInputTokens") and not isinstance(usage.get("cacheDetails"), list):
        return None
    if "serviceTier" not in response and "performanceConfig" not in response:
        return _NOT_SAID
    return converse_served(response)


def converse_tokens_only(response: object) -> Extracted | None:
    """What :func:`extract_response` gives for the commonest Converse response — self-contained (see
    :func:`converse_self_contained`) with no prompt-cache tokens — built without the general path's merging
    of sources; ``None`` for any other response, which the general path then reads."""
    # converse_self_contained's tests, inline (this runs on every call a listener or budget consumes), with
    # its cache-write test widened: cache counts, or a cacheDetails split that may imply a write, need
    # converse_counts' reading.
    if type(response) is not dict or response.get("trace"):
        return None
    usage = response.get("usage")
    if type(usage) is not dict:
        return None
    reported_in = usage.get("inputTokens")
    reported_out = usage.get("outputTokens")
    if not (type(reported_in) is int and 0 <= reported_in <= MAX_COUNT):
        return None
    if not (type(reported_out) is int and 0 <= reported_out <= MAX_COUNT):
        return None
    if usage.get("cacheReadInputTokens") or usage.get("cacheWriteInputTokens") or usage.get("cacheDetails"):
        return None
    if "serviceTier" not in response and "performanceConfig" not in response:
        return build_extracted(trusted_usage(reported_in, reported_out), "converse_usage")
    tier, latency = converse_served(response)
    return build_extracted(trusted_usage(reported_in, reported_out), "converse_usage", tier, latency)


def _converse(family: str, request: RequestInfo, response: Mapping[str, Any]) -> Extracted:
    counts = converse_counts(response.get("usage"))
    trace = as_mapping(response.get("trace"))
    units: dict[str, int] = {}
    routed: str | None = None
    # A trace is absent from most responses: look inside only when present.
    if trace:
        trace_units(trace.get("guardrail"), units)
        routed = as_text(dig(trace, "promptRouter", "invokedModelId"))
    tier, latency = converse_served(response)
    # Measuring the reply only matters when Bedrock did not report output tokens.
    output_estimate = (
        tokens_from_output_bytes(converse_text(dig(response, "output", "message", "content")))
        if counts.output is None
        else 0
    )
    usage, estimated = to_usage(counts, request, output_estimate=output_estimate, guardrail_text_units=units)
    return Extracted(
        usage,
        "converse_usage" if counts.reported else "estimate",
        served_service_tier=tier,
        served_latency=latency,
        routed_model_id=routed,
        estimated=estimated,
    )


def _header_counts(headers: Mapping[str, Any]) -> Counts:
    return Counts(
        input=header_count(headers.get(_INPUT_HEADER)),
        output=header_count(headers.get(_OUTPUT_HEADER)),
        cache_read=header_count(headers.get(_CACHE_READ_HEADER)),
        cache_write=header_count(headers.get(_CACHE_WRITE_HEADER)),
    )


def _headers_answer(counts: Counts, family: str, request: RequestInfo) -> bool:
    """Whether the headers alone settle the call, so the body need not be touched."""
    kind = kind_of(family)
    if kind not in ("text", "embedding") or counts.input is None or request.guardrail:
        return False
    if kind == "text" and counts.output is None:
        return False
    return not (counts.cache_write and request.cache_ttl == "1h" and family in _TTL_SPLIT_FAMILIES)


def reads_body(operation: str, family: str, request: RequestInfo, response: Mapping[str, Any]) -> bool:
    """Whether :func:`extract_response` will read this response's ``body`` (an InvokeModel whose headers do
    not settle the call), so a driver whose body reads are awaitable can read it first."""
    if canonical_operation(operation) != "InvokeModel":
        return False
    headers = as_mapping(dig(response, "ResponseMetadata", "HTTPHeaders")) or {}
    return not _headers_answer(_header_counts(headers), family, request)


def _invoke_model(family: str, request: RequestInfo, response: Mapping[str, Any]) -> Extracted:
    headers = as_mapping(dig(response, "ResponseMetadata", "HTTPHeaders")) or {}
    tier, latency = _served_values(response)
    from_headers = _header_counts(headers)
    units: dict[str, int] = {}
    parsed = Parsed()
    if not _headers_answer(from_headers, family, request):
        body = parse_json(take_body(response))
        if body is not None:
            parsed = parse_body(family, body)
            trace_units(dig(body, _TRACE_KEY, "guardrail"), units)
    kind = kind_of(family)
    if kind == "image":
        return _images(request, parsed, tier, latency)
    if kind == "rerank":
        return _rerank(request, parsed, tier, latency)
    if kind == "video":
        return _video(request)
    # The headers never carry cached tokens when caching did not apply, so a header-complete call has none.
    if from_headers.input is not None and (from_headers.output is not None or kind == "embedding"):
        from_headers.cache_read = from_headers.cache_read or 0
        from_headers.cache_write = from_headers.cache_write or 0
    counts = from_headers.merged(parsed.counts)
    usage, estimated = to_usage(
        counts,
        request,
        output_estimate=tokens_from_output_bytes(parsed.text_bytes),
        output_expected=kind == "text",
        guardrail_text_units=units,
    )
    source: UsageSource = (
        "headers" if from_headers.reported else "body" if parsed.counts.reported else "estimate"
    )
    return Extracted(usage, source, served_service_tier=tier, served_latency=latency, estimated=estimated)


def _images(request: RequestInfo, parsed: Parsed, tier: str | None, latency: str | None) -> Extracted:
    images = parsed.images
    usage = Usage(
        images=request.output_images if images is None else images,
        image_size=request.image_size,
        image_quality=request.image_quality,
    )
    return Extracted(
        usage,
        "estimate" if images is None else "body",
        served_service_tier=tier,
        served_latency=latency,
        estimated=images is None,
    )


def _rerank(request: RequestInfo, parsed: Parsed, tier: str | None, latency: str | None) -> Extracted:
    # The request's document count decides the queries; the results count is the fallback when the request
    # could not be read (without top_n every document comes back).
    documents = max(request.rerank_documents, parsed.rerank_results or 0)
    known = request.rerank_documents > 0 or parsed.rerank_results is not None
    return Extracted(
        Usage(rerank_queries=rerank_queries(documents)),
        "body" if known else "estimate",
        served_service_tier=tier,
        served_latency=latency,
        estimated=not known,
    )


def _video(request: RequestInfo) -> Extracted:
    # Async video reports no usage anywhere; the price follows the requested duration once the job
    # completes (GetAsyncInvoke status "Completed").
    return Extracted(Usage(video_seconds=request.video_seconds), "estimate", estimated=True)


def _start_async(family: str, request: RequestInfo, response: Mapping[str, Any]) -> Extracted:
    if kind_of(family) == "video":
        return _video(request)
    return _nothing(family, request, response)


def _apply_guardrail(family: str, request: RequestInfo, response: Mapping[str, Any]) -> Extracted:
    usage = response.get("usage")
    units: dict[str, int] = {}
    add_guardrail_usage(usage, units)
    reported = isinstance(usage, Mapping)
    return Extracted(
        Usage(guardrail_text_units=units), "body" if reported else "estimate", estimated=not reported
    )


def _guardrail_checks(family: str, request: RequestInfo, response: Mapping[str, Any]) -> Extracted:
    usage = response.get("usage")
    reported = isinstance(usage, Mapping)
    return Extracted(
        Usage(guardrail_text_units=checks_units(usage)),
        "body" if reported else "estimate",
        estimated=not reported,
    )


def _invoke_stream(family: str, request: RequestInfo, response: Mapping[str, Any]) -> Extracted:
    """Streams report usage through their events (see StreamAccumulator); only the served tier is here."""
    tier, latency = _served_values(response)
    return Extracted(Usage(), "none", served_service_tier=tier, served_latency=latency)


def _nothing(family: str, request: RequestInfo, response: Mapping[str, Any]) -> Extracted:
    return Extracted(Usage(), "none")


_HANDLERS: Final[dict[str, _Handler]] = {
    "Converse": _converse,
    "InvokeModel": _invoke_model,
    "ApplyGuardrail": _apply_guardrail,
    "InvokeGuardrailChecks": _guardrail_checks,
    "StartAsyncInvoke": _start_async,
    "ConverseStream": _nothing,
    "InvokeModelWithResponseStream": _invoke_stream,
    # Free, or reporting nothing billable.
    "CountTokens": _nothing,
    "GetAsyncInvoke": _nothing,
    "ListAsyncInvokes": _nothing,
}


def extract_response(
    operation: str, family: str, request: RequestInfo, response: dict[str, Any]
) -> Extracted:
    """The usage of one successful call, read from its boto3 response. Never raises.

    For InvokeModel, ``response["body"]`` may be replaced by an equivalent unread ``StreamingBody``.
    """
    handler = _HANDLERS.get(canonical_operation(operation), _nothing)
    try:
        return handler(family, request, response)
    except Exception:
        # A response shape nobody foresaw must not fail the caller's (already billed) call.
        kind = kind_of(family)
        fallback = Usage(input_tokens=estimate_input_tokens(request) if kind in ("text", "embedding") else 0)
        return Extracted(fallback, "estimate", estimated=True)
