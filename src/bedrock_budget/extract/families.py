"""Which body format a base model id speaks.

The family picks the request inspector, the InvokeModel body parser and the stream-chunk handler. It is a
prefix table, first match wins, so the more specific prefixes come first. Unknown ids map to ``unknown``,
whose parsers sniff every known usage shape instead of guessing one.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final, Literal

from bedrock_budget.model_ids import GEO_PREFIXES

__all__ = ["FAMILIES", "FamilyKind", "family_of", "kind_of"]

FamilyKind = Literal["text", "embedding", "image", "video", "rerank"]

_PREFIXES: Final[tuple[tuple[str, str], ...]] = (
    ("anthropic.", "anthropic"),
    ("amazon.nova-canvas", "nova_canvas"),
    ("amazon.nova-reel", "nova_reel"),
    # Sonic speaks only the bidirectional stream (not callable from boto3); the multimodal embedding model
    # has its own body format. Neither is a Nova chat model.
    ("amazon.nova-sonic", "unknown"),
    ("amazon.nova-2-sonic", "unknown"),
    ("amazon.nova-2-multimodal-embeddings", "unknown"),
    ("amazon.nova", "nova"),
    ("amazon.titan-text", "titan_text"),
    ("amazon.titan-tg1", "titan_text"),
    ("amazon.titan-embed", "titan_embed"),
    ("amazon.titan-e1t", "titan_embed"),
    ("amazon.titan-image", "titan_image"),
    ("amazon.rerank", "rerank"),
    ("meta.llama", "llama"),
    # Only these early Mistral models take a raw prompt; everything released since uses chat messages.
    ("mistral.mistral-7b", "mistral"),
    ("mistral.mixtral", "mistral"),
    ("mistral.mistral-large-2402", "mistral"),
    ("mistral.mistral-small-2402", "mistral"),
    ("mistral.", "mistral_chat"),
    ("cohere.embed", "cohere_embed"),
    ("cohere.rerank", "rerank"),
    ("cohere.command-r", "cohere_chat"),
    ("cohere.command", "cohere_text"),
    ("ai21.jamba", "jamba"),
    ("ai21.j2", "jurassic"),
    ("deepseek.r1", "deepseek"),
    # DeepSeek V3.x and later answer in the Chat Completions format.
    ("deepseek.", "openai_chat"),
    ("openai.", "openai_chat"),
    ("qwen.", "openai_chat"),
    ("stability.", "stability"),
)

_KINDS: Final[dict[str, FamilyKind]] = {
    "titan_embed": "embedding",
    "cohere_embed": "embedding",
    "titan_image": "image",
    "nova_canvas": "image",
    "stability": "image",
    "nova_reel": "video",
    "rerank": "rerank",
}

FAMILIES: Final = frozenset({name for _, name in _PREFIXES} | {"unknown"})


@lru_cache(maxsize=1024)
def family_of(base_model_id: str) -> str:
    """The body family of a base model id such as ``anthropic.claude-3-5-haiku-20241022-v1:0``."""
    model = base_model_id.strip().lower()
    for prefix, family in _PREFIXES:
        if model.startswith(prefix):
            return family
    # Tolerate a profile id that was not stripped: the geo prefix never names a provider.
    head, sep, rest = model.partition(".")
    if sep and head in GEO_PREFIXES:
        return family_of(rest)
    return "unknown"


def kind_of(family: str) -> FamilyKind:
    """What a family bills: tokens (text, embedding), images, video seconds or rerank queries."""
    return _KINDS.get(family, "text")
