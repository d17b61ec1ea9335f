"""Estimates: the worst case reserved before a call, and the fill-in for counts Bedrock did not report.

Bytes per token, by family (``_TENTHS`` holds tenths of a byte). English prose averages about four UTF-8
bytes per token in every tokenizer used on Bedrock; code, JSON, numbers and non-Latin scripts are denser
(CJK is about one token per three-byte character). The ratios sit below the prose average so the estimate
errs towards reserving too much:

* 3.0 for Anthropic, Amazon (Nova, Titan), Mistral, AI21 Jurassic and unknown models: roughly 25-35 % over
  for prose, close to exact for code and JSON;
* 3.5 for families whose vocabularies have 128K+ entries and so pack text more densely (Meta Llama 3+,
  OpenAI gpt-oss, Qwen, DeepSeek, Cohere, AI21 Jamba).

Every input image counts as 1,600 tokens (Claude's ceiling for an image of about 1.15 megapixels, larger
than Nova's per-image count). Document bytes (PDF, DOCX, ...) use the text ratio, which over-reserves for
compressed formats. Generated text seen on a stream that never reported usage counts as one token per four
bytes (rounded up), the prose average: it is what was actually produced, not a reservation.
"""

from __future__ import annotations

from typing import Final

from bedrock_budget.extract.families import kind_of
from bedrock_budget.extract.types import RequestInfo
from bedrock_budget.usage import Usage

__all__ = [
    "IMAGE_INPUT_TOKENS",
    "OUTPUT_BYTES_PER_TOKEN",
    "estimate_input_tokens",
    "guardrail_text_units",
    "rerank_queries",
    "tokens_from_output_bytes",
    "worst_case_usage",
]

IMAGE_INPUT_TOKENS: Final = 1_600
OUTPUT_BYTES_PER_TOKEN: Final = 4
_DEFAULT_TENTHS: Final = 30
_TENTHS: Final[dict[str, int]] = {
    "llama": 35,
    "openai_chat": 35,
    "deepseek": 35,
    "cohere_text": 35,
    "cohere_chat": 35,
    "cohere_embed": 35,
    "jamba": 35,
}
# A guardrail text unit is up to 1,000 characters; UTF-8 bytes never undercount characters.
_TEXT_UNIT_BYTES: Final = 1_000
# The paid text policies a guardrail of unknown configuration may apply (word filters are free; automated
# reasoning is rare and priced separately), reserved for all of them.
_WORST_CASE_POLICIES: Final = (
    "content_filters",
    "denied_topics",
    "sensitive_information",
    "contextual_grounding",
)
_GUARDRAIL_OPERATIONS: Final = frozenset({"ApplyGuardrail", "InvokeGuardrailChecks"})
_MODEL_OPERATIONS: Final = frozenset(
    {"Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream", "StartAsyncInvoke"}
)
_DOCUMENTS_PER_QUERY: Final = 100


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def estimate_input_tokens(request: RequestInfo) -> int:
    """Conservative input tokens for the request's text, images and documents."""
    tenths = _TENTHS.get(request.family, _DEFAULT_TENTHS)
    text = _ceil_div(request.input_bytes * 10, tenths)
    documents = _ceil_div(request.document_bytes * 10, tenths)
    return text + documents + request.images * IMAGE_INPUT_TOKENS


def tokens_from_output_bytes(output_bytes: int) -> int:
    return _ceil_div(output_bytes, OUTPUT_BYTES_PER_TOKEN)


def guardrail_text_units(text_bytes: int) -> int:
    return _ceil_div(text_bytes, _TEXT_UNIT_BYTES)


def rerank_queries(documents: int) -> int:
    """Rerank bills one query per started block of 100 documents, and at least one per call."""
    return max(1, _ceil_div(documents, _DOCUMENTS_PER_QUERY))


def _guardrail_reservation(units: int) -> dict[str, int]:
    return dict.fromkeys(_WORST_CASE_POLICIES, units) if units else {}


def worst_case_usage(
    request: RequestInfo, *, model_max_output_tokens: int | None, default_max_output: int = 4096
) -> Usage:
    """The most a call can consume, for the budget reservation made before it is sent.

    Output is the request's own cap (for Claude with thinking it already includes the thinking budget),
    else the model's maximum output, else ``default_max_output``. With cache points all input counts as
    cache writes at the longest TTL, the dearest way the same tokens can be billed.
    """
    if request.operation in _GUARDRAIL_OPERATIONS:
        return Usage(guardrail_text_units=_guardrail_reservation(guardrail_text_units(request.input_bytes)))
    if request.operation not in _MODEL_OPERATIONS:
        return Usage()
    kind = kind_of(request.family)
    if kind == "image":
        return Usage(
            images=request.output_images, image_size=request.image_size, image_quality=request.image_quality
        )
    if kind == "video":
        return Usage(video_seconds=request.video_seconds)
    if kind == "rerank":
        return Usage(rerank_queries=rerank_queries(request.rerank_documents))
    prompt = estimate_input_tokens(request)
    output = 0
    if kind == "text":
        output = request.max_output_tokens or model_max_output_tokens or default_max_output
    guardrail: dict[str, int] = {}
    if request.guardrail:
        # Input and output are assessed separately, each rounding up to whole units.
        units = guardrail_text_units(request.input_bytes) + guardrail_text_units(
            output * OUTPUT_BYTES_PER_TOKEN
        )
        guardrail = _guardrail_reservation(units)
    if request.cache_ttl is None:
        return Usage(input_tokens=prompt, output_tokens=output, guardrail_text_units=guardrail)
    return Usage(
        output_tokens=output,
        cache_write_tokens=prompt,
        cache_write_1h_tokens=prompt if request.cache_ttl == "1h" else 0,
        guardrail_text_units=guardrail,
    )
