"""worst_case_usage: the reservation made before a call, with hand-checked numbers."""

from __future__ import annotations

import pytest

from bedrock_budget.extract import RequestInfo, estimate_input_tokens, worst_case_usage
from bedrock_budget.usage import Usage

from .builders import converse_request, invoke_request

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"


def test_text_input_images_and_documents() -> None:
    request = RequestInfo("Converse", "anthropic", input_bytes=3001, images=2, document_bytes=300)
    # ceil(3001 / 3) + ceil(300 / 3) + 2 × 1,600
    assert estimate_input_tokens(request) == 1001 + 100 + 3200


@pytest.mark.parametrize(
    ("family", "tokens"),
    [
        ("anthropic", 1000),
        ("nova", 1000),
        ("unknown", 1000),
        ("llama", 858),
        ("openai_chat", 858),
        ("cohere_chat", 858),
    ],
)
def test_bytes_per_token_by_family(family: str, tokens: int) -> None:
    assert estimate_input_tokens(RequestInfo("InvokeModel", family, input_bytes=3000)) == tokens


def test_output_from_request_then_model_then_default() -> None:
    base = RequestInfo("Converse", "anthropic", input_bytes=30)
    assert worst_case_usage(base, model_max_output_tokens=8192) == Usage(input_tokens=10, output_tokens=8192)
    assert worst_case_usage(base, model_max_output_tokens=None) == Usage(input_tokens=10, output_tokens=4096)
    assert worst_case_usage(base, model_max_output_tokens=None, default_max_output=100).output_tokens == 100
    capped = RequestInfo(
        "Converse", "anthropic", input_bytes=30, max_output_tokens=500, thinking_budget_tokens=400
    )
    # Claude's max_tokens already includes the thinking budget.
    assert worst_case_usage(capped, model_max_output_tokens=64000).output_tokens == 500


@pytest.mark.parametrize(("ttl", "write_1h"), [("5m", 0), ("1h", 1000)])
def test_cache_points_reserve_all_input_as_cache_writes(ttl: str, write_1h: int) -> None:
    request = RequestInfo("InvokeModel", "anthropic", input_bytes=3000, max_output_tokens=10, cache_ttl=ttl)
    assert worst_case_usage(request, model_max_output_tokens=None) == Usage(
        output_tokens=10, cache_write_tokens=1000, cache_write_1h_tokens=write_1h
    )


def test_end_to_end_from_a_converse_request() -> None:
    request = converse_request(
        HAIKU,
        messages=[{"role": "user", "content": [{"text": "x" * 276}]}],
        inferenceConfig={"maxTokens": 256},
    )
    # 276 text bytes + 19 bytes of keys and role ("role", "user", "content", "text") = 295 → ceil(295/3).
    assert worst_case_usage(request, model_max_output_tokens=8192) == Usage(
        input_tokens=99, output_tokens=256
    )


def test_non_token_models() -> None:
    image = invoke_request(
        "amazon.nova-canvas-v1:0",
        {
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": "t"},
            "imageGenerationConfig": {
                "numberOfImages": 4,
                "width": 1024,
                "height": 1024,
                "quality": "standard",
            },
        },
    )
    assert worst_case_usage(image, model_max_output_tokens=None) == Usage(
        images=4, image_size="1024x1024", image_quality="standard"
    )
    video = RequestInfo("StartAsyncInvoke", "nova_reel", video_seconds=30)
    assert worst_case_usage(video, model_max_output_tokens=None) == Usage(video_seconds=30)
    rerank = RequestInfo("InvokeModel", "rerank", rerank_documents=201)
    assert worst_case_usage(rerank, model_max_output_tokens=None) == Usage(rerank_queries=3)
    assert worst_case_usage(RequestInfo("InvokeModel", "rerank"), model_max_output_tokens=None) == Usage(
        rerank_queries=1
    )
    embed = RequestInfo("InvokeModel", "titan_embed", input_bytes=300, embedding_texts=1)
    assert worst_case_usage(embed, model_max_output_tokens=None) == Usage(input_tokens=100)


def test_guardrails_reserve_text_units_for_every_paid_policy() -> None:
    apply = RequestInfo("ApplyGuardrail", "unknown", input_bytes=2500, guardrail=True)
    units = {"content_filters": 3, "denied_topics": 3, "sensitive_information": 3, "contextual_grounding": 3}
    assert worst_case_usage(apply, model_max_output_tokens=None) == Usage(guardrail_text_units=units)
    model = RequestInfo("Converse", "anthropic", input_bytes=1500, max_output_tokens=300, guardrail=True)
    reserved = worst_case_usage(model, model_max_output_tokens=None)
    # Input: 2 units (1,500 bytes); output: 300 tokens × 4 bytes = 1,200 bytes → 2 units.
    assert reserved.guardrail_text_units["content_filters"] == 4
    assert reserved.input_tokens == 500


def test_free_and_unbilled_operations_reserve_nothing() -> None:
    assert (
        worst_case_usage(
            RequestInfo("CountTokens", "anthropic", input_bytes=9000), model_max_output_tokens=100
        )
        == Usage()
    )
    assert (
        worst_case_usage(RequestInfo("GetAsyncInvoke", "nova_reel"), model_max_output_tokens=None) == Usage()
    )
