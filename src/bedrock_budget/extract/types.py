"""The values the extract layer hands to the rest of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from bedrock_budget._frozen import fast_builder
from bedrock_budget.usage import Usage

__all__ = ["Extracted", "RequestInfo", "UsageSource", "canonical_operation"]

UsageSource = Literal[
    "converse_usage", "stream_metadata", "headers", "invocation_metrics", "body", "estimate", "none"
]

_OPERATIONS: Final = {
    "converse": "Converse",
    "converse_stream": "ConverseStream",
    "invoke_model": "InvokeModel",
    "invoke_model_with_response_stream": "InvokeModelWithResponseStream",
    "apply_guardrail": "ApplyGuardrail",
    "invoke_guardrail_checks": "InvokeGuardrailChecks",
    "count_tokens": "CountTokens",
    "start_async_invoke": "StartAsyncInvoke",
    "get_async_invoke": "GetAsyncInvoke",
    "list_async_invokes": "ListAsyncInvokes",
}


def canonical_operation(operation: str) -> str:
    """The botocore operation name (``InvokeModel``); boto3 method names (``invoke_model``) are accepted."""
    return _OPERATIONS.get(operation, operation)


@dataclass(frozen=True, slots=True)
class Extracted:
    """The usage of one call and where it came from.

    ``served_service_tier`` / ``served_latency`` are what the response says served the call (price by
    these, not by the request); ``None`` when the response does not say. ``estimated`` is true when any
    count was not reported by Bedrock.
    """

    usage: Usage
    source: UsageSource
    served_service_tier: str | None = None
    served_latency: str | None = None
    routed_model_id: str | None = None
    partial: bool = False
    estimated: bool = False


#: Builds an :class:`Extracted` from the same arguments, for the per-call path (see ``_frozen``).
build_extracted = fast_builder(Extracted)


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What a request says that matters for pricing and estimation. Counts only: never any text.

    ``input_bytes`` is the UTF-8 size of the text the model reads (messages, system, tool specs, document
    text, including the JSON keys around it, which stand in for the chat template's own tokens).
    ``cache_ttl`` is the longest TTL of the request's cache points (``"5m"``/``"1h"``), ``None`` without
    cache points. ``rerank_documents`` is the number of documents a rerank request scores. ``template_parts``
    counts the objects (messages, content blocks, sources) a chat template may wrap in markers; ``tools`` the
    tool definitions, of which ``provider_tools`` are provider-defined (Anthropic's bash, text editor,
    computer use); ``videos`` the input videos.
    """

    operation: str
    family: str
    max_output_tokens: int | None = None
    thinking_budget_tokens: int | None = None
    input_bytes: int = 0
    images: int = 0
    document_bytes: int = 0
    cache_ttl: str | None = None
    service_tier: str | None = None
    latency: str | None = None
    guardrail: bool = False
    output_images: int = 0
    image_size: str | None = None
    image_quality: str | None = None
    video_seconds: int = 0
    embedding_texts: int = 0
    rerank_documents: int = 0
    template_parts: int = 0
    tools: int = 0
    provider_tools: int = 0
    videos: int = 0
