"""Base model id → body family and billing kind."""

from __future__ import annotations

import pytest

from bedrock_budget.extract import FAMILIES, family_of, kind_of


@pytest.mark.parametrize(
    ("model_id", "family"),
    [
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic"),
        ("anthropic.claude-sonnet-4-6", "anthropic"),
        ("amazon.nova-pro-v1:0", "nova"),
        ("amazon.nova-2-lite-v1:0", "nova"),
        ("amazon.nova-canvas-v1:0", "nova_canvas"),
        ("amazon.nova-reel-v1:1", "nova_reel"),
        ("amazon.nova-sonic-v1:0", "unknown"),
        ("amazon.titan-text-express-v1", "titan_text"),
        ("amazon.titan-tg1-large", "titan_text"),
        ("amazon.titan-embed-text-v2:0", "titan_embed"),
        ("amazon.titan-embed-image-v1", "titan_embed"),
        ("amazon.titan-image-generator-v2:0", "titan_image"),
        ("amazon.rerank-v1:0", "rerank"),
        ("meta.llama3-1-70b-instruct-v1:0", "llama"),
        ("meta.llama4-maverick-17b-instruct-v1:0", "llama"),
        ("mistral.mistral-7b-instruct-v0:2", "mistral"),
        ("mistral.mixtral-8x7b-instruct-v0:1", "mistral"),
        ("mistral.mistral-large-2402-v1:0", "mistral"),
        ("mistral.mistral-small-2402-v1:0", "mistral"),
        ("mistral.mistral-large-2407-v1:0", "mistral_chat"),
        ("mistral.pixtral-large-2502-v1:0", "mistral_chat"),
        ("cohere.command-text-v14", "cohere_text"),
        ("cohere.command-light-text-v14", "cohere_text"),
        ("cohere.command-r-v1:0", "cohere_chat"),
        ("cohere.command-r-plus-v1:0", "cohere_chat"),
        ("cohere.embed-english-v3", "cohere_embed"),
        ("cohere.embed-v4:0", "cohere_embed"),
        ("cohere.rerank-v3-5:0", "rerank"),
        ("ai21.jamba-1-5-large-v1:0", "jamba"),
        ("ai21.j2-ultra-v1", "jurassic"),
        ("deepseek.r1-v1:0", "deepseek"),
        ("deepseek.v3-v1:0", "openai_chat"),
        ("openai.gpt-oss-120b-1:0", "openai_chat"),
        ("qwen.qwen3-32b-v1:0", "openai_chat"),
        ("stability.sd3-5-large-v1:0", "stability"),
        ("stability.stable-image-ultra-v1:1", "stability"),
        ("writer.palmyra-x5-v1:0", "unknown"),
        # A profile id that slipped through unstripped still finds its family.
        ("us.anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic"),
        ("global.amazon.nova-2-lite-v1:0", "nova"),
    ],
)
def test_family_of(model_id: str, family: str) -> None:
    assert family_of(model_id) == family
    assert family in FAMILIES


@pytest.mark.parametrize(
    ("family", "kind"),
    [
        ("anthropic", "text"),
        ("unknown", "text"),
        ("titan_embed", "embedding"),
        ("cohere_embed", "embedding"),
        ("stability", "image"),
        ("nova_canvas", "image"),
        ("titan_image", "image"),
        ("nova_reel", "video"),
        ("rerank", "rerank"),
    ],
)
def test_kind_of(family: str, kind: str) -> None:
    assert kind_of(family) == kind
