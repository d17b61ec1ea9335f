"""Model families and how a base model id maps to one.

A family decides the InvokeModel request check and the native response / stream bodies. The mapping is
a prefix table, first match wins, so more specific prefixes come first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .ai21 import AI21
from .amazon import Nova, NovaCanvas, NovaReel, TitanEmbed, TitanImage, TitanText
from .anthropic import Anthropic
from .base import Family, Generation, Kind
from .chat_completions import OpenAI, Qwen
from .cohere import Cohere, CohereEmbed
from .deepseek import DeepSeek
from .meta import Llama
from .mistral import Mistral
from .stability import Stability

__all__ = ["FAMILIES", "Family", "Generation", "Kind", "family_for"]

_ALL: Final[tuple[Family, ...]] = (
    Anthropic(),
    Nova(),
    NovaCanvas(),
    NovaReel(),
    TitanText(),
    TitanEmbed(),
    TitanImage(),
    Llama(),
    Mistral(),
    Cohere(),
    CohereEmbed(),
    AI21(),
    DeepSeek(),
    OpenAI(),
    Qwen(),
    Stability(),
)

FAMILIES: Final[Mapping[str, Family]] = {family.name: family for family in _ALL}

_PREFIXES: Final[tuple[tuple[str, str | None], ...]] = (
    ("anthropic.", "anthropic"),
    ("amazon.nova-canvas", "nova-canvas"),
    ("amazon.nova-reel", "nova-reel"),
    # Nova Sonic only speaks the bidirectional stream, which boto3 cannot call.
    ("amazon.nova-sonic", None),
    ("amazon.nova", "nova"),
    ("amazon.titan-embed", "titan-embed"),
    ("amazon.titan-image", "titan-image"),
    ("amazon.titan-text", "titan-text"),
    ("amazon.titan-tg1", "titan-text"),
    ("meta.llama", "llama"),
    ("mistral.", "mistral"),
    ("cohere.embed", "cohere-embed"),
    ("cohere.command", "cohere"),
    ("ai21.", "ai21"),
    ("deepseek.", "deepseek"),
    ("openai.", "openai"),
    ("qwen.", "qwen"),
    ("stability.", "stability"),
)


def family_for(base_model_id: str) -> Family | None:
    """The family serving ``base_model_id`` (no geo prefix, no ARN), or ``None`` if none does."""
    for prefix, name in _PREFIXES:
        if base_model_id.startswith(prefix):
            return None if name is None else FAMILIES[name]
    return None
