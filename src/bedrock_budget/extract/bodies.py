"""Per-family parsers for non-streaming InvokeModel response bodies.

Each parser reports what the body says: token counts (when the family puts them in the body), the size of
the generated text (the fallback for output when nothing reports it), images returned, rerank results.
Shapes follow reference/bedrock-wire.md §2; fields that are absent or not believable read as ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from bedrock_budget.extract.content import string_bytes
from bedrock_budget.extract.counts import Counts
from bedrock_budget.extract.values import as_count, as_mapping, dig

__all__ = [
    "BODY_PARSERS",
    "Parsed",
    "anthropic_usage",
    "chat_usage",
    "cohere_meta",
    "converse_text",
    "nova_usage",
    "parse_body",
]


@dataclass(slots=True)
class Parsed:
    counts: Counts = field(default_factory=Counts)
    text_bytes: int = 0
    images: int | None = None
    rerank_results: int | None = None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _sum_counts(values: list[Any]) -> int | None:
    """Sum of per-result counts, or ``None`` unless every one of them is a believable count."""
    counts = [as_count(v) for v in values]
    if not counts or any(c is None for c in counts):
        return None
    return sum(c for c in counts if c is not None)


def anthropic_usage(usage: object) -> Counts:
    """Anthropic ``usage`` (also ``message_start.message.usage`` on streams)."""
    if not isinstance(usage, Mapping):
        return Counts()
    write_1h = None
    creation = usage.get("cache_creation")
    if isinstance(creation, Mapping):
        write_1h = as_count(creation.get("ephemeral_1h_input_tokens"))
        if write_1h is None and as_count(creation.get("ephemeral_5m_input_tokens")) is not None:
            write_1h = 0
    return Counts(
        input=as_count(usage.get("input_tokens")),
        output=as_count(usage.get("output_tokens")),
        cache_read=as_count(usage.get("cache_read_input_tokens")),
        cache_write=as_count(usage.get("cache_creation_input_tokens")),
        cache_write_1h=write_1h,
    )


def nova_usage(usage: object) -> Counts:
    """Nova's native ``usage``: cache fields end in ``TokenCount`` (Converse's ``Tokens`` also accepted)."""
    if not isinstance(usage, Mapping):
        return Counts()
    read = as_count(usage.get("cacheReadInputTokenCount"))
    write = as_count(usage.get("cacheWriteInputTokenCount"))
    return Counts(
        input=as_count(usage.get("inputTokens")),
        output=as_count(usage.get("outputTokens")),
        cache_read=read if read is not None else as_count(usage.get("cacheReadInputTokens")),
        cache_write=write if write is not None else as_count(usage.get("cacheWriteInputTokens")),
    )


def chat_usage(usage: object) -> Counts:
    """OpenAI Chat Completions ``usage``: ``prompt_tokens`` includes cached tokens, unlike Bedrock's input."""
    if not isinstance(usage, Mapping):
        return Counts()
    prompt = as_count(usage.get("prompt_tokens"))
    cached = as_count(dig(usage, "prompt_tokens_details", "cached_tokens"))
    if prompt is not None and cached is not None:
        if cached > prompt:
            cached = None
        else:
            prompt -= cached
    return Counts(input=prompt, output=as_count(usage.get("completion_tokens")), cache_read=cached)


def cohere_meta(body: Mapping[str, Any]) -> Counts:
    billed = as_mapping(dig(body, "meta", "billed_units")) or {}
    return Counts(input=as_count(billed.get("input_tokens")), output=as_count(billed.get("output_tokens")))


def _anthropic(body: Mapping[str, Any]) -> Parsed:
    blocks = [b for b in _list(body.get("content")) if isinstance(b, Mapping)]
    text = sum(string_bytes([b.get("text"), b.get("thinking"), b.get("input")]) for b in blocks)
    return Parsed(anthropic_usage(body.get("usage")), text)


def _nova(body: Mapping[str, Any]) -> Parsed:
    return Parsed(nova_usage(body.get("usage")), converse_text(dig(body, "output", "message", "content")))


def converse_text(content: object) -> int:
    """Generated text in Converse-shaped content blocks (also Nova's native output)."""
    total = 0
    for block in _list(content):
        if isinstance(block, Mapping):
            total += string_bytes(
                [block.get("text"), dig(block, "reasoningContent", "reasoningText", "text")]
            )
            total += string_bytes(dig(block, "toolUse", "input"))
    return total


def _titan_text(body: Mapping[str, Any]) -> Parsed:
    results = [r for r in _list(body.get("results")) if isinstance(r, Mapping)]
    counts = Counts(
        input=as_count(body.get("inputTextTokenCount")),
        output=_sum_counts([r.get("tokenCount") for r in results]),
    )
    return Parsed(counts, sum(string_bytes(r.get("outputText")) for r in results))


def _titan_embed(body: Mapping[str, Any]) -> Parsed:
    return Parsed(Counts(input=as_count(body.get("inputTextTokenCount"))))


def _llama(body: Mapping[str, Any]) -> Parsed:
    counts = Counts(
        input=as_count(body.get("prompt_token_count")), output=as_count(body.get("generation_token_count"))
    )
    return Parsed(counts, string_bytes(body.get("generation")))


def _choices_text(body: Mapping[str, Any]) -> int:
    total = 0
    for choice in _list(body.get("choices")):
        if isinstance(choice, Mapping):
            message = as_mapping(choice.get("message")) or as_mapping(choice.get("delta")) or {}
            total += string_bytes(
                [
                    message.get("content"),
                    message.get("reasoning_content"),
                    message.get("reasoning"),
                    message.get("tool_calls"),
                    choice.get("text"),
                ]
            )
    for output in _list(body.get("outputs")):
        if isinstance(output, Mapping):
            total += string_bytes(output.get("text"))
    return total


def _chat(body: Mapping[str, Any]) -> Parsed:
    """OpenAI-shaped bodies (gpt-oss, Qwen, DeepSeek, Jamba, Mistral chat) and Mistral ``outputs``."""
    return Parsed(chat_usage(body.get("usage")), _choices_text(body))


def _cohere(body: Mapping[str, Any]) -> Parsed:
    generations = [g.get("text") for g in _list(body.get("generations")) if isinstance(g, Mapping)]
    return Parsed(cohere_meta(body), string_bytes([body.get("text"), generations]))


def _cohere_embed(body: Mapping[str, Any]) -> Parsed:
    return Parsed(Counts(input=cohere_meta(body).input))


def _jurassic(body: Mapping[str, Any]) -> Parsed:
    # Jurassic-2 returns its tokenization: the counts are the lengths of the token lists.
    prompt_tokens = dig(body, "prompt", "tokens")
    completions = [c for c in _list(body.get("completions")) if isinstance(c, Mapping)]
    generated = [dig(c, "data", "tokens") for c in completions]
    lists = [tokens for tokens in generated if isinstance(tokens, list)]
    counts = Counts(
        input=len(prompt_tokens) if isinstance(prompt_tokens, list) else None,
        output=sum(len(tokens) for tokens in lists) if lists and len(lists) == len(generated) else None,
    )
    return Parsed(counts, sum(string_bytes(dig(c, "data", "text")) for c in completions))


def _generated_images(body: Mapping[str, Any]) -> Parsed:
    """Titan Image Generator and Nova Canvas: one priced image per image returned."""
    images = body.get("images")
    if isinstance(images, list):
        return Parsed(images=sum(1 for image in images if isinstance(image, str) and image))
    return Parsed(images=0 if body.get("error") else None)


_DELIVERED: Final = frozenset({"SUCCESS"})


def _delivered(reason: object) -> bool:
    # Stability reports null for a delivered image and "Filter reason: …" / "Inference error" otherwise.
    return reason is None or reason in _DELIVERED


def _stability(body: Mapping[str, Any]) -> Parsed:
    reasons = body.get("finish_reasons")
    if isinstance(reasons, list):
        return Parsed(images=sum(1 for reason in reasons if _delivered(reason)))
    artifacts = body.get("artifacts")  # legacy SDXL
    if isinstance(artifacts, list):
        return Parsed(
            images=sum(1 for a in artifacts if isinstance(a, Mapping) and _delivered(a.get("finishReason")))
        )
    return _generated_images(body)


def _rerank(body: Mapping[str, Any]) -> Parsed:
    results = body.get("results")
    return Parsed(rerank_results=len(results) if isinstance(results, list) else None)


_TEXT_PARSERS: Final[tuple[Callable[[Mapping[str, Any]], Parsed], ...]] = (
    _anthropic,
    _nova,
    _chat,
    _llama,
    _titan_text,
    _cohere,
)


def _sniff(body: Mapping[str, Any]) -> Parsed:
    """Unknown family: the first known shape that reports usage, else the generated text of any shape."""
    best = Parsed()
    for parser in _TEXT_PARSERS:
        parsed = parser(body)
        if parsed.counts.reported:
            return parsed
        best.text_bytes = max(best.text_bytes, parsed.text_bytes)
    return best


BODY_PARSERS: Final[dict[str, Callable[[Mapping[str, Any]], Parsed]]] = {
    "anthropic": _anthropic,
    "nova": _nova,
    "titan_text": _titan_text,
    "titan_embed": _titan_embed,
    "llama": _llama,
    "mistral": _chat,
    "mistral_chat": _chat,
    "jamba": _chat,
    "deepseek": _chat,
    "openai_chat": _chat,
    "cohere_text": _cohere,
    "cohere_chat": _cohere,
    "cohere_embed": _cohere_embed,
    "jurassic": _jurassic,
    "titan_image": _generated_images,
    "nova_canvas": _generated_images,
    "stability": _stability,
    "rerank": _rerank,
}


def parse_body(family: str, body: Mapping[str, Any]) -> Parsed:
    return BODY_PARSERS.get(family, _sniff)(body)
