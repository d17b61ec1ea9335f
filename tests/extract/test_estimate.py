"""worst_case_usage: the reservation made before a call, with hand-checked numbers.

The reservation's input is the bound: one token per UTF-8 byte, plus 128 per request, 8 per template part
(message, content block), 600 with tools, 1,300 per provider-defined tool, 5,000 per image, 288,000 per
video. ``estimate_input_tokens`` is the fill-in for unreported counts (3 or 3.5 bytes per token).
"""

from __future__ import annotations

import json

import pytest

from bedrock_budget.extract import RequestInfo, estimate_input_tokens, worst_case_usage
from bedrock_budget.extract.estimate import input_token_bound
from bedrock_budget.usage import Usage
from dense_text import DENSE_TEXTS

from .builders import converse_request, invoke_request

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"


def test_fill_in_for_text_input_images_and_documents() -> None:
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
def test_fill_in_bytes_per_token_by_family(family: str, tokens: int) -> None:
    # The fill-in for input Bedrock did not report: a typical ratio, not the bound reservations hold.
    assert estimate_input_tokens(RequestInfo("InvokeModel", family, input_bytes=3000)) == tokens


def test_output_from_request_then_model_then_default() -> None:
    base = RequestInfo("Converse", "anthropic", input_bytes=30)
    # 30 bytes + 128 per request.
    assert worst_case_usage(base, model_max_output_tokens=8192) == Usage(input_tokens=158, output_tokens=8192)
    assert worst_case_usage(base, model_max_output_tokens=None) == Usage(input_tokens=158, output_tokens=4096)
    assert worst_case_usage(base, model_max_output_tokens=None, default_max_output=100).output_tokens == 100
    capped = RequestInfo(
        "Converse", "anthropic", input_bytes=30, max_output_tokens=500, thinking_budget_tokens=400
    )
    # Claude's max_tokens already includes the thinking budget.
    assert worst_case_usage(capped, model_max_output_tokens=64000).output_tokens == 500


@pytest.mark.parametrize(("ttl", "write_1h"), [("5m", 0), ("1h", 3128)])
def test_cache_points_reserve_all_input_as_cache_writes(ttl: str, write_1h: int) -> None:
    request = RequestInfo("InvokeModel", "anthropic", input_bytes=3000, max_output_tokens=10, cache_ttl=ttl)
    # 3,000 bytes + 128 per request, all of it as cache writes.
    assert worst_case_usage(request, model_max_output_tokens=None) == Usage(
        output_tokens=10, cache_write_tokens=3128, cache_write_1h_tokens=write_1h
    )


def test_end_to_end_from_a_converse_request() -> None:
    request = converse_request(
        HAIKU,
        messages=[{"role": "user", "content": [{"text": "x" * 276}]}],
        inferenceConfig={"maxTokens": 256},
    )
    # 276 text bytes + 19 bytes of keys and role ("role", "user", "content", "text") = 295, one token per
    # byte; + 128 per request + 2 parts (the message and its block) × 8.
    assert worst_case_usage(request, model_max_output_tokens=8192) == Usage(
        input_tokens=295 + 128 + 16, output_tokens=256
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
    assert worst_case_usage(embed, model_max_output_tokens=None) == Usage(input_tokens=300 + 128)


def test_guardrails_reserve_text_units_for_every_paid_policy() -> None:
    apply = RequestInfo("ApplyGuardrail", "unknown", input_bytes=2500, guardrail=True)
    units = {"content_filters": 3, "denied_topics": 3, "sensitive_information": 3, "contextual_grounding": 3}
    assert worst_case_usage(apply, model_max_output_tokens=None) == Usage(guardrail_text_units=units)
    model = RequestInfo("Converse", "anthropic", input_bytes=1500, max_output_tokens=300, guardrail=True)
    reserved = worst_case_usage(model, model_max_output_tokens=None)
    # Input: 2 units (1,500 bytes); output: 300 tokens × 4 bytes = 1,200 bytes → 2 units.
    assert reserved.guardrail_text_units["content_filters"] == 4
    assert reserved.input_tokens == 1500 + 128


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


@pytest.mark.parametrize("kind", sorted(DENSE_TEXTS))
@pytest.mark.parametrize("family", ["anthropic", "nova", "llama", "openai_chat", "mistral_chat", "unknown"])
def test_the_reservation_covers_one_token_per_byte_for_dense_text(kind: str, family: str) -> None:
    text = DENSE_TEXTS[kind]
    model = {"anthropic": HAIKU, "nova": "amazon.nova-lite-v1:0", "llama": "meta.llama3-70b-instruct-v1:0"}
    request = converse_request(
        model.get(family, "mistral.mistral-large-2407-v1:0"),
        messages=[{"role": "user", "content": [{"text": text}]}],
        inferenceConfig={"maxTokens": 16},
    )
    request = RequestInfo(**{**_fields(request), "family": family})
    reserved = worst_case_usage(request, model_max_output_tokens=None).input_tokens
    assert reserved >= len(text.encode()) + 128


def _fields(request: RequestInfo) -> dict[str, object]:
    return {name: getattr(request, name) for name in RequestInfo.__dataclass_fields__}


def test_every_message_and_block_adds_template_tokens() -> None:
    one = converse_request(HAIKU, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    turns = [
        {"role": role, "content": [{"text": "hi"}, {"text": "there"}]}
        for role in ("user", "assistant", "user", "assistant", "user")
    ]
    five = converse_request(HAIKU, messages=turns)
    assert (one.template_parts, five.template_parts) == (2, 15)
    # Five messages of two blocks: 15 parts × 8 tokens of role markers and delimiters, on top of the text.
    assert input_token_bound(five) == five.input_bytes + 128 + 15 * 8


def test_tools_add_the_tool_use_system_prompt_and_are_measured_as_json_text() -> None:
    messages = [{"role": "user", "content": [{"text": "hi"}]}]
    bare = converse_request(HAIKU, messages=messages)
    spec = {"toolSpec": {"name": "q", "description": 'say "hi"\n', "inputSchema": {"json": {}}}}
    tools = converse_request(
        HAIKU, messages=messages, toolConfig={"tools": [spec, {"cachePoint": {"type": "default"}}]}
    )
    assert (tools.tools, tools.provider_tools, tools.cache_ttl) == (1, 0, "5m")
    # The tool-use system prompt (Anthropic documents up to 530 tokens) is held as 600.
    assert input_token_bound(tools) - tools.input_bytes - tools.template_parts * 8 == 128 + 600
    assert input_token_bound(bare) - bare.input_bytes - bare.template_parts * 8 == 128
    # Quotes and newlines in a definition become escapes when a template renders it as JSON.
    assert tools.input_bytes - bare.input_bytes > len(json.dumps([spec]))


def test_provider_defined_tools_add_their_documented_definitions() -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "tools": [
            {"type": "bash_20250124", "name": "bash"},
            {"type": "text_editor_20250429", "name": "str_replace_based_edit_tool"},
            {"name": "lookup", "input_schema": {"type": "object"}},
        ],
        "messages": [{"role": "user", "content": "hi"}],
    }
    request = invoke_request(HAIKU, body)
    assert (request.tools, request.provider_tools) == (3, 2)
    fixed = input_token_bound(request) - request.input_bytes - request.template_parts * 8
    assert fixed == 128 + 600 + 2 * 1300


def test_tool_call_arguments_count_their_json_text() -> None:
    call = {"toolUse": {"toolUseId": "t1", "name": "run", "input": {"cmd": '"' * 100}}}
    request = converse_request(HAIKU, messages=[{"role": "assistant", "content": [call]}])
    # Each quote is rendered as the two bytes \" inside the JSON arguments.
    assert request.input_bytes >= 200


def test_images_and_videos_reserve_their_largest_documented_counts() -> None:
    image = {"image": {"format": "png", "source": {"bytes": b"\x89PNG"}}}
    video = {"video": {"format": "mp4", "source": {"s3Location": {"uri": "s3://b/v.mp4"}}}}
    request = converse_request(
        "amazon.nova-pro-v1:0", messages=[{"role": "user", "content": [image, video, {"text": "what?"}]}]
    )
    assert (request.images, request.videos) == (1, 1)
    media = input_token_bound(request) - request.input_bytes - 128 - request.template_parts * 8
    assert media == 5_000 + 960 * 300


def test_hostile_nesting_in_tool_arguments_still_yields_a_bound() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    call = {"toolUse": {"toolUseId": "t1", "name": "run", "input": deep}}
    request = converse_request(HAIKU, messages=[{"role": "user", "content": [call]}])
    # JSON rendering gives up on the depth; the walk still counts every key.
    assert request.input_bytes >= 5000


def test_text_that_nfkc_expands_is_counted_expanded() -> None:
    # U+FDFA is 3 UTF-8 bytes; NFKC (which the public Claude tokenizer applies) makes it 33 bytes, and that
    # tokenizer bills it 15 tokens: more than one token per raw byte.
    text = "\ufdfa" * 100
    request = converse_request(HAIKU, messages=[{"role": "user", "content": [{"text": text}]}])
    assert input_token_bound(request) >= 3300 + 128
    call = {"toolUse": {"toolUseId": "t1", "name": "run", "input": {"say": text}}}
    in_arguments = converse_request(HAIKU, messages=[{"role": "user", "content": [call]}])
    assert in_arguments.input_bytes >= 3300


def test_inline_text_documents_and_keys_count_their_nfkc_form() -> None:
    text = "\ufdfa" * 10
    document = {"document": {"format": "txt", "name": "n", "source": {"text": text}}}
    request = converse_request(HAIKU, messages=[{"role": "user", "content": [document]}])
    assert request.input_bytes >= 330
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": [{text: "x"}]}
    assert invoke_request(HAIKU, body).input_bytes >= 330
