"""inspect_request: what each family's request says about price, without keeping any text."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest

from bedrock_budget.extract import RequestInfo, family_of, inspect_request

from .builders import converse_request, invoke_request

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 92  # 100 bytes of "image"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- Converse ----------------------------------------------------------------------------------------------


def test_converse_text_size_counts_utf8_bytes_and_structure() -> None:
    info = converse_request(HAIKU, messages=[{"role": "user", "content": [{"text": "hello"}]}])
    # "role"+"user"+"content"+"text"+"hello": the keys stand in for the chat template's own tokens.
    assert info.input_bytes == 4 + 4 + 7 + 4 + 5
    accented = converse_request(HAIKU, messages=[{"role": "user", "content": [{"text": "héllo"}]}])
    assert accented.input_bytes == info.input_bytes + 1


def test_converse_system_and_tools_are_input() -> None:
    messages = [{"role": "user", "content": [{"text": "hi"}]}]
    bare = converse_request(HAIKU, messages=messages)
    with_system = converse_request(HAIKU, messages=messages, system=[{"text": "Be brief."}])
    assert with_system.input_bytes - bare.input_bytes == len("text") + len("Be brief.")
    tool = {
        "toolSpec": {
            "name": "get_weather",
            "description": "Weather for a city",
            "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
        }
    }
    with_tools = converse_request(HAIKU, messages=messages, toolConfig={"tools": [tool]})
    # Templates render tool definitions as JSON text: every key, string, quote, bracket and indentation
    # counts, measured as the longest rendering (ASCII escapes, four-space indent), under the "tools" key.
    words = ["toolSpec", "name", "get_weather", "description", "Weather for a city", "inputSchema", "json"]
    words += ["type", "object", "properties", "city", "type", "string"]
    rendered = len("tools") + len(json.dumps([tool], indent=4))
    assert with_tools.input_bytes - bare.input_bytes == rendered
    assert rendered > len(json.dumps([tool], separators=(",", ":"))) > sum(map(len, words))
    assert (with_tools.tools, bare.tools) == (1, 0)


def test_converse_pricing_fields() -> None:
    info = converse_request(
        SONNET,
        messages=[
            {
                "role": "user",
                "content": [
                    {"text": "Compare these."},
                    {"image": {"format": "png", "source": {"bytes": PNG}}},
                    {"image": {"format": "png", "source": {"s3Location": {"uri": "s3://b/k.png"}}}},
                    {
                        "document": {
                            "format": "pdf",
                            "name": "report",
                            "source": {"bytes": b"%PDF" + b"0" * 996},
                        }
                    },
                    {"cachePoint": {"type": "default"}},
                ],
            },
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "look", "input": {}}}]},
            {
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": "t1",
                            "content": [{"image": {"format": "png", "source": {"bytes": PNG}}}],
                        }
                    },
                    {"cachePoint": {"type": "default", "ttl": "1h"}},
                ],
            },
        ],
        system=[{"text": "sys"}, {"cachePoint": {"type": "default"}}],
        inferenceConfig={"maxTokens": 2048, "temperature": 0.2},
        additionalModelRequestFields={"thinking": {"type": "enabled", "budget_tokens": 1024}},
        serviceTier={"type": "priority"},
        performanceConfig={"latency": "optimized"},
        guardrailConfig={"guardrailIdentifier": "gr-1", "guardrailVersion": "1", "trace": "enabled"},
    )
    assert info.operation == "Converse"
    assert info.family == "anthropic"
    assert info.max_output_tokens == 2048
    assert info.thinking_budget_tokens == 1024
    assert info.images == 3
    assert info.document_bytes == 1000
    assert info.cache_ttl == "1h"
    assert info.service_tier == "priority"
    assert info.latency == "optimized"
    assert info.guardrail is True
    # The image and document bytes never leak into the text size.
    assert info.input_bytes < 300


def test_converse_defaults_without_optional_fields() -> None:
    info = converse_request(
        "amazon.nova-lite-v1:0",
        messages=[{"role": "user", "content": [{"text": "x"}, {"cachePoint": {"type": "default"}}]}],
    )
    assert info.max_output_tokens is None
    assert info.thinking_budget_tokens is None
    assert info.cache_ttl == "5m"
    assert (info.service_tier, info.latency, info.guardrail) == (None, None, False)
    assert converse_request(HAIKU, messages=[]).cache_ttl is None


def test_converse_stream_and_snake_case_operation() -> None:
    kwargs: dict[str, Any] = {
        "modelId": HAIKU,
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "inferenceConfig": {"maxTokens": 50},
    }
    for operation in ("ConverseStream", "converse_stream"):
        info = inspect_request(operation, "anthropic", dict(kwargs))
        assert info.operation == "ConverseStream"
        assert info.max_output_tokens == 50


# --- InvokeModel: output caps per family -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "body", "expected"),
    [
        (HAIKU, {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 300, "messages": []}, 300),
        ("amazon.nova-pro-v1:0", {"messages": [], "inferenceConfig": {"maxTokens": 301}}, 301),
        ("amazon.nova-pro-v1:0", {"messages": [], "inferenceConfig": {"max_new_tokens": 302}}, 302),
        (
            "amazon.titan-text-express-v1",
            {"inputText": "x", "textGenerationConfig": {"maxTokenCount": 303}},
            303,
        ),
        ("meta.llama3-1-70b-instruct-v1:0", {"prompt": "x", "max_gen_len": 304}, 304),
        ("mistral.mistral-7b-instruct-v0:2", {"prompt": "x", "max_tokens": 305}, 305),
        ("mistral.mistral-large-2407-v1:0", {"messages": [], "max_tokens": 306}, 306),
        ("cohere.command-text-v14", {"prompt": "x", "max_tokens": 307}, 307),
        ("cohere.command-r-plus-v1:0", {"message": "x", "max_tokens": 308}, 308),
        ("ai21.jamba-1-5-mini-v1:0", {"messages": [], "max_tokens": 309}, 309),
        ("ai21.j2-mid-v1", {"prompt": "x", "maxTokens": 310}, 310),
        ("deepseek.r1-v1:0", {"prompt": "x", "max_tokens": 311}, 311),
        ("openai.gpt-oss-20b-1:0", {"messages": [], "max_completion_tokens": 312, "max_tokens": 1}, 312),
        ("qwen.qwen3-32b-v1:0", {"messages": [], "max_tokens": 313}, 313),
        ("writer.palmyra-x5-v1:0", {"messages": [], "max_tokens": 314}, 314),
        (HAIKU, {"anthropic_version": "bedrock-2023-05-31", "messages": []}, None),
    ],
)
def test_max_output_tokens_field_per_family(
    model_id: str, body: dict[str, Any], expected: int | None
) -> None:
    assert invoke_request(model_id, body).max_output_tokens == expected


@pytest.mark.parametrize("bad", ["300", -1, True, 1.5, 10**12, None, [300]])
def test_unbelievable_max_tokens_is_unknown(bad: object) -> None:
    info = invoke_request(
        HAIKU, {"anthropic_version": "bedrock-2023-05-31", "max_tokens": bad, "messages": []}
    )
    assert info.max_output_tokens is None


def test_anthropic_native_body() -> None:
    pdf = b"%PDF-1.7" + b"1" * 292
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "anthropic_beta": ["context-1m-2025-08-07"],
        "max_tokens": 8000,
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": b64(PNG)},
                    },
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": b64(pdf)},
                    },
                    {"type": "text", "text": "Summarise.", "cache_control": {"type": "ephemeral"}},
                ],
            }
        ],
    }
    info = invoke_request(SONNET, body, serviceTier="flex", performanceConfigLatency="standard")
    assert info.max_output_tokens == 8000
    assert info.thinking_budget_tokens == 4000
    assert info.images == 1
    assert info.document_bytes == 300
    assert info.cache_ttl == "1h"
    assert (info.service_tier, info.latency, info.guardrail) == ("flex", "standard", False)
    # base64 payloads are not text; only structure and the two short texts remain.
    assert info.input_bytes < 200


def test_nova_native_body_images_and_cache_point() -> None:
    body = {
        "schemaVersion": "messages-v1",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"image": {"format": "jpeg", "source": {"bytes": b64(PNG)}}},
                    {"document": {"format": "txt", "name": "n", "source": {"bytes": b64(b"a" * 60)}}},
                    {"text": "Describe"},
                    {"cachePoint": {"type": "default"}},
                ],
            }
        ],
        "inferenceConfig": {"maxTokens": 500},
    }
    info = invoke_request(
        "us.amazon.nova-pro-v1:0", body, guardrailIdentifier="gr-1", guardrailVersion="DRAFT"
    )
    assert (info.images, info.document_bytes, info.cache_ttl) == (1, 60, "5m")
    assert info.guardrail is True


def test_llama_vision_images_and_prompt_size() -> None:
    body = {"prompt": "<|begin_of_text|>hi", "images": [b64(PNG), b64(PNG)], "max_gen_len": 64}
    info = invoke_request("meta.llama3-2-90b-instruct-v1:0", body)
    assert info.images == 2
    assert info.input_bytes == len("prompt") + len("<|begin_of_text|>hi")


@pytest.mark.parametrize(
    ("model_id", "body", "expected"),
    [
        (
            "amazon.nova-canvas-v1:0",
            {
                "taskType": "TEXT_IMAGE",
                "textToImageParams": {"text": "a lighthouse"},
                "imageGenerationConfig": {
                    "numberOfImages": 3,
                    "width": 1280,
                    "height": 720,
                    "quality": "premium",
                },
            },
            (3, "1280x720", "premium"),
        ),
        (
            "amazon.titan-image-generator-v2:0",
            {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a cat"}},
            (1, None, None),
        ),
        (
            "amazon.titan-image-generator-v2:0",
            {"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": b64(PNG)}},
            (1, None, None),
        ),
        (
            "stability.sd3-5-large-v1:0",
            {"prompt": "a fox", "aspect_ratio": "16:9", "output_format": "png"},
            (1, None, None),
        ),
        (
            "stability.stable-diffusion-xl-v1",
            {"text_prompts": [{"text": "a fox"}], "samples": 2, "width": 1024, "height": 1024, "steps": 50},
            (2, "1024x1024", None),
        ),
    ],
)
def test_image_generation_requests(
    model_id: str, body: dict[str, Any], expected: tuple[int, str | None, str | None]
) -> None:
    info = invoke_request(model_id, body)
    assert (info.output_images, info.image_size, info.image_quality) == expected


def test_image_variation_inputs_are_input_images() -> None:
    body = {
        "taskType": "IMAGE_VARIATION",
        "imageVariationParams": {"text": "brighter", "images": [b64(PNG), b64(PNG)]},
        "imageGenerationConfig": {"numberOfImages": 2},
    }
    info = invoke_request("amazon.nova-canvas-v1:0", body)
    assert (info.images, info.output_images) == (2, 2)


@pytest.mark.parametrize(
    ("model_input", "seconds"),
    [
        (
            {
                "taskType": "TEXT_VIDEO",
                "textToVideoParams": {"text": "waves"},
                "videoGenerationConfig": {"durationSeconds": 6, "fps": 24, "dimension": "1280x720"},
            },
            6,
        ),
        (
            {
                "taskType": "MULTI_SHOT_AUTOMATED",
                "multiShotAutomatedParams": {"text": "x"},
                "videoGenerationConfig": {"durationSeconds": 48},
            },
            48,
        ),
        (
            {
                "taskType": "MULTI_SHOT_MANUAL",
                "multiShotManualParams": {"shots": [{"text": "a"}, {"text": "b"}, {"text": "c"}]},
            },
            18,
        ),
        ({"taskType": "TEXT_VIDEO", "textToVideoParams": {"text": "waves"}}, 6),
    ],
)
def test_nova_reel_async_duration(model_input: dict[str, Any], seconds: int) -> None:
    kwargs = {"modelId": "amazon.nova-reel-v1:1", "modelInput": model_input, "outputDataConfig": {}}
    info = inspect_request("StartAsyncInvoke", "nova_reel", kwargs)
    assert info.video_seconds == seconds


def test_embedding_and_rerank_counts() -> None:
    titan = invoke_request("amazon.titan-embed-text-v2:0", {"inputText": "abc", "dimensions": 512})
    assert (titan.embedding_texts, titan.input_bytes) == (1, len("inputText") + 3)
    cohere = invoke_request(
        "cohere.embed-english-v3", {"texts": ["a", "b", "c"], "input_type": "search_document"}
    )
    assert cohere.embedding_texts == 3
    image_embed = invoke_request("amazon.titan-embed-image-v1", {"inputImage": b64(PNG)})
    assert (image_embed.images, image_embed.embedding_texts) == (1, 0)
    rerank = invoke_request(
        "cohere.rerank-v3-5:0", {"query": "q", "documents": ["d"] * 250, "api_version": 2}
    )
    assert rerank.rerank_documents == 250


# --- Bodies as callers pass them ---------------------------------------------------------------------------


def test_file_like_body_is_replaced_by_the_same_bytes() -> None:
    raw = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 77, "messages": []}).encode()
    stream = io.BytesIO(raw)
    kwargs: dict[str, Any] = {"modelId": HAIKU, "body": stream}
    info = inspect_request("InvokeModel", "anthropic", kwargs)
    assert info.max_output_tokens == 77
    assert kwargs["body"] == raw
    assert isinstance(kwargs["body"], bytes)


def test_text_file_and_str_bodies() -> None:
    raw = json.dumps({"prompt": "hi", "max_gen_len": 9})
    kwargs: dict[str, Any] = {"body": io.StringIO(raw)}
    assert inspect_request("InvokeModel", "llama", kwargs).max_output_tokens == 9
    assert kwargs["body"] == raw.encode()
    as_str: dict[str, Any] = {"body": raw}
    assert inspect_request("InvokeModel", "llama", as_str).max_output_tokens == 9
    assert as_str["body"] is raw


def test_failing_file_body_fails_the_call_not_the_inspection() -> None:
    class Broken:
        def read(self, *_: object) -> bytes:
            raise OSError("disk gone")

    kwargs: dict[str, Any] = {"body": Broken(), "serviceTier": "default"}
    info = inspect_request("InvokeModel", "anthropic", kwargs)
    assert info == RequestInfo("InvokeModel", "anthropic", service_tier="default")
    with pytest.raises(OSError, match="disk gone"):
        kwargs["body"].read()


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe", b"", None, 42, b"{" * 100_000])
def test_bad_bodies_yield_what_is_knowable(body: object) -> None:
    kwargs = {"modelId": HAIKU, "body": body, "serviceTier": "priority", "guardrailIdentifier": "g"}
    info = inspect_request("InvokeModel", "anthropic", kwargs)
    assert info == RequestInfo("InvokeModel", "anthropic", service_tier="priority", guardrail=True)


def test_hostile_converse_shapes_do_not_raise() -> None:
    deep: Any = "x"
    for _ in range(50_000):
        deep = [deep]
    info = converse_request(HAIKU, messages=[{"role": "user", "content": deep}], inferenceConfig="nope")
    assert info.input_bytes > 0
    assert info.max_output_tokens is None
    weird = inspect_request(
        "Converse", "anthropic", {"messages": 5, "system": {"text": None}, "serviceTier": "x"}
    )
    assert weird.service_tier is None


# --- Other operations --------------------------------------------------------------------------------------


def test_apply_guardrail_and_checks() -> None:
    info = inspect_request(
        "ApplyGuardrail",
        "unknown",
        {
            "guardrailIdentifier": "gr",
            "guardrailVersion": "1",
            "source": "INPUT",
            "content": [
                {"text": {"text": "x" * 1500}},
                {"image": {"format": "png", "source": {"bytes": PNG}}},
            ],
        },
    )
    assert info.guardrail is True
    assert info.images == 1
    assert info.input_bytes == len("text") * 2 + 1500
    checks = inspect_request(
        "invoke_guardrail_checks", "unknown", {"messages": [{"role": "user", "content": [{"text": "abc"}]}]}
    )
    assert checks.operation == "InvokeGuardrailChecks"
    assert checks.input_bytes == len("role") + len("user") + len("content") + len("text") + 3


def test_count_tokens_reads_either_input_form() -> None:
    converse = inspect_request(
        "CountTokens",
        "anthropic",
        {
            "modelId": HAIKU,
            "input": {"converse": {"messages": [{"role": "user", "content": [{"text": "hello"}]}]}},
        },
    )
    assert converse.input_bytes == 24
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": []}).encode()
    native = inspect_request("CountTokens", "anthropic", {"input": {"invokeModel": {"body": body}}})
    assert native.max_output_tokens == 5


def test_unknown_operation_is_empty() -> None:
    assert inspect_request("ListAsyncInvokes", "unknown", {}) == RequestInfo("ListAsyncInvokes", "unknown")
    assert family_of(HAIKU) == "anthropic"
