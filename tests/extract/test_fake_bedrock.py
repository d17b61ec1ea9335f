"""Real boto3 against the fake Bedrock: botocore's own responses and event streams go through the extractors,
and the numbers must match what the fake reported."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import EventStreamError

from bedrock_budget.extract import (
    Extracted,
    RequestInfo,
    StreamAccumulator,
    extract_response,
    family_of,
    inspect_request,
)
from bedrock_budget.testing import FakeBedrock, GuardrailUsageSpec, ReportedUsage, UsageSpec
from bedrock_budget.usage import Usage

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
CLAUDE = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 200,
    "messages": [{"role": "user", "content": "hi"}],
}
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 200}
FIXED = UsageSpec(input_tokens=21, output_tokens=9)

# (model id, InvokeModel body, whether the fake puts usage in the body)
TEXT_MODELS = [
    (HAIKU, CLAUDE, True),
    (
        "amazon.nova-pro-v1:0",
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}], "inferenceConfig": {"maxTokens": 200}},
        True,
    ),
    (
        "amazon.titan-text-express-v1",
        {"inputText": "hi", "textGenerationConfig": {"maxTokenCount": 200}},
        True,
    ),
    ("meta.llama3-1-70b-instruct-v1:0", {"prompt": "hi", "max_gen_len": 200}, True),
    ("mistral.mistral-7b-instruct-v0:2", {"prompt": "<s>[INST] hi [/INST]", "max_tokens": 200}, False),
    ("mistral.mistral-large-2407-v1:0", CHAT, False),
    ("cohere.command-r-plus-v1:0", {"message": "hi", "max_tokens": 200}, False),
    ("cohere.command-text-v14", {"prompt": "hi", "max_tokens": 200}, False),
    ("ai21.jamba-1-5-large-v1:0", CHAT, True),
    ("deepseek.r1-v1:0", {"prompt": "hi", "max_tokens": 200}, False),
    ("deepseek.v3-v1:0", CHAT, True),
    (
        "openai.gpt-oss-120b-1:0",
        {"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 200},
        True,
    ),
    ("qwen.qwen3-32b-v1:0", CHAT, True),
]


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture
def fake(shared_fake: FakeBedrock) -> Iterator[FakeBedrock]:
    shared_fake.reset()
    shared_fake.set_usage("*", FIXED)
    yield shared_fake
    assert not shared_fake.server_errors


@pytest.fixture(scope="module")
def client(shared_fake: FakeBedrock) -> Any:
    return shared_fake.client()


def reported(fake: FakeBedrock) -> Usage:
    """The usage the fake says it reported for its last call, in the library's terms."""
    usage = fake.requests[-1].usage
    assert isinstance(usage, ReportedUsage)
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_total,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
    )


def invoke(
    client: Any, model_id: str, body: dict[str, Any], **kwargs: Any
) -> tuple[RequestInfo, dict[str, Any], Extracted]:
    call = {"modelId": model_id, "body": json.dumps(body).encode(), **kwargs}
    request = inspect_request("InvokeModel", family_of(model_id), call)
    response = client.invoke_model(**call)
    return request, response, extract_response("InvokeModel", family_of(model_id), request, response)


def stream(
    client: Any,
    operation: str,
    model_id: str,
    call: dict[str, Any],
    *,
    stop_after: int | None = None,
    seen: list[dict[str, Any]] | None = None,
) -> Extracted:
    family = family_of(model_id)
    request = inspect_request(operation, family, call)
    response = getattr(
        client, "converse_stream" if operation == "ConverseStream" else "invoke_model_with_response_stream"
    )(modelId=model_id, **call)
    events = response["stream" if operation == "ConverseStream" else "body"]
    acc = StreamAccumulator(operation, family, response)
    complete = True
    try:
        for index, event in enumerate(events):
            if stop_after is not None and index == stop_after:
                complete = False
                break
            acc.feed(event)
            if seen is not None:
                seen.append(event)
    except EventStreamError:
        complete = False
    finally:
        events.close()
    return acc.result(complete=complete, request=request)


# --- Converse ----------------------------------------------------------------------------------------------


def test_converse_with_cache_split_and_served_tier(fake: FakeBedrock, client: Any) -> None:
    fake.configure(
        "anthropic",
        usage=UsageSpec(
            input_tokens=40,
            output_tokens=12,
            cache_read_tokens=500,
            cache_write_tokens=70,
            cache_write_1h_tokens=30,
        ),
        served_service_tier="flex",
    )
    call = {
        "modelId": "us." + HAIKU,
        "messages": [
            {"role": "user", "content": [{"text": "hi"}, {"cachePoint": {"type": "default", "ttl": "1h"}}]}
        ],
        "serviceTier": {"type": "priority"},
    }
    request = inspect_request("Converse", "anthropic", call)
    got = extract_response("Converse", "anthropic", request, client.converse(**call))
    assert (
        got.usage
        == reported(fake)
        == Usage(
            input_tokens=40,
            output_tokens=12,
            cache_read_tokens=500,
            cache_write_tokens=100,
            cache_write_1h_tokens=30,
        )
    )
    assert (got.source, got.served_service_tier, got.estimated) == ("converse_usage", "flex", False)


def test_converse_guardrail_trace_units(fake: FakeBedrock, client: Any) -> None:
    fake.set_guardrail_usage(GuardrailUsageSpec(content_policy_units=2, topic_policy_units=1))
    call = {
        "modelId": HAIKU,
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "guardrailConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": "1", "trace": "enabled"},
    }
    request = inspect_request("Converse", "anthropic", call)
    got = extract_response("Converse", "anthropic", request, client.converse(**call))
    # One input assessment and one output assessment, each reporting the scripted units.
    assert dict(got.usage.guardrail_text_units) == {"content_filters": 4, "denied_topics": 2}


# --- InvokeModel -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model_id", "body", "body_usage"), TEXT_MODELS, ids=[m[0] for m in TEXT_MODELS])
def test_invoke_model_headers(
    fake: FakeBedrock, client: Any, model_id: str, body: dict[str, Any], body_usage: bool
) -> None:
    _, response, got = invoke(client, model_id, body)
    assert got == Extracted(reported(fake), "headers")
    # The caller still gets a readable native body.
    assert isinstance(json.loads(response["body"].read()), dict)


@pytest.mark.parametrize(("model_id", "body", "body_usage"), TEXT_MODELS, ids=[m[0] for m in TEXT_MODELS])
def test_invoke_model_without_headers_falls_back_to_body_or_estimate(
    fake: FakeBedrock, client: Any, model_id: str, body: dict[str, Any], body_usage: bool
) -> None:
    fake.configure("*", token_headers=False)
    request, response, got = invoke(client, model_id, body)
    raw = response["body"].read()
    assert json.loads(raw)
    if body_usage:
        assert (got.usage, got.source, got.estimated) == (reported(fake), "body", False)
    else:
        assert (got.source, got.estimated) == ("estimate", True)
        assert got.usage.input_tokens == -(
            -request.input_bytes * 10 // (35 if "cohere" in model_id or "deepseek" in model_id else 30)
        )
        # The filler answer is nine words of "lorem ipsum …"; four bytes per token, rounded up.
        assert got.usage.output_tokens > 0


def test_invoke_model_anthropic_one_hour_split_from_body(fake: FakeBedrock, client: Any) -> None:
    fake.set_usage(
        "anthropic",
        UsageSpec(input_tokens=5, output_tokens=6, cache_write_tokens=100, cache_write_1h_tokens=200),
    )
    body = {
        **CLAUDE,
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
    }
    _, response, got = invoke(client, HAIKU, body, serviceTier="priority")
    assert (
        got.usage
        == reported(fake)
        == Usage(input_tokens=5, output_tokens=6, cache_write_tokens=300, cache_write_1h_tokens=200)
    )
    assert (got.source, got.served_service_tier) == ("headers", "priority")
    assert json.loads(response["body"].read())["usage"]["cache_creation_input_tokens"] == 300


def test_file_like_request_body_reaches_bedrock_unchanged(fake: FakeBedrock, client: Any) -> None:
    raw = json.dumps(CLAUDE).encode()
    call: dict[str, Any] = {"modelId": HAIKU, "body": io.BytesIO(raw)}
    request = inspect_request("InvokeModel", "anthropic", call)
    client.invoke_model(**call)
    assert fake.requests[-1].body == raw
    assert request.max_output_tokens == 200


@pytest.mark.parametrize(
    ("model_id", "body"),
    [
        ("amazon.titan-embed-text-v2:0", {"inputText": "hello there"}),
        ("cohere.embed-english-v3", {"texts": ["a", "b"], "input_type": "search_document"}),
    ],
)
def test_embeddings(fake: FakeBedrock, client: Any, model_id: str, body: dict[str, Any]) -> None:
    _, _, got = invoke(client, model_id, body)
    assert got.usage == Usage(input_tokens=21)
    assert (got.source, got.estimated) == ("headers", False)


@pytest.mark.parametrize(
    ("model_id", "body", "expected"),
    [
        (
            "amazon.nova-canvas-v1:0",
            {
                "taskType": "TEXT_IMAGE",
                "textToImageParams": {"text": "cat"},
                "imageGenerationConfig": {
                    "numberOfImages": 3,
                    "width": 1024,
                    "height": 1024,
                    "quality": "premium",
                },
            },
            Usage(images=3, image_size="1024x1024", image_quality="premium"),
        ),
        (
            "amazon.titan-image-generator-v2:0",
            {"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": "aGk="}},
            Usage(images=1),
        ),
        ("stability.sd3-5-large-v1:0", {"prompt": "cat"}, Usage(images=1)),
        (
            "stability.stable-diffusion-xl-v1",
            {"text_prompts": [{"text": "cat"}], "width": 1024, "height": 1024},
            Usage(images=1, image_size="1024x1024"),
        ),
    ],
)
def test_image_models(
    fake: FakeBedrock, client: Any, model_id: str, body: dict[str, Any], expected: Usage
) -> None:
    _, response, got = invoke(client, model_id, body)
    assert got == Extracted(expected, "body")
    assert json.loads(response["body"].read())


def test_apply_guardrail(fake: FakeBedrock, client: Any) -> None:
    fake.set_guardrail_usage(
        GuardrailUsageSpec(topic_policy_units=2, sensitive_information_policy_free_units=5)
    )
    call = {
        "guardrailIdentifier": "gr-1",
        "guardrailVersion": "1",
        "source": "INPUT",
        "content": [{"text": {"text": "x" * 1500}}],
    }
    request = inspect_request("ApplyGuardrail", "unknown", call)
    got = extract_response("ApplyGuardrail", "unknown", request, client.apply_guardrail(**call))
    assert dict(got.usage.guardrail_text_units) == {"content_filters": 2, "denied_topics": 2}


def test_nova_reel_async(fake: FakeBedrock, client: Any) -> None:
    call = {
        "modelId": "amazon.nova-reel-v1:1",
        "modelInput": {
            "taskType": "TEXT_VIDEO",
            "textToVideoParams": {"text": "waves"},
            "videoGenerationConfig": {"durationSeconds": 12, "fps": 24, "dimension": "1280x720"},
        },
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://bucket/out"}},
    }
    request = inspect_request("StartAsyncInvoke", "nova_reel", call)
    got = extract_response("StartAsyncInvoke", "nova_reel", request, client.start_async_invoke(**call))
    assert got.usage == Usage(video_seconds=12)


# --- Streams -----------------------------------------------------------------------------------------------


def test_converse_stream_complete(fake: FakeBedrock, client: Any) -> None:
    fake.set_usage("anthropic", UsageSpec(input_tokens=33, output_tokens=30, cache_read_tokens=4))
    got = stream(
        client, "ConverseStream", HAIKU, {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    )
    assert got == Extracted(reported(fake), "stream_metadata")


def test_converse_stream_abandoned(fake: FakeBedrock, client: Any) -> None:
    fake.configure("anthropic", usage=UsageSpec(input_tokens=33, output_tokens=30), stream_deltas=3)
    call = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    seen: list[dict[str, Any]] = []
    got = stream(client, "ConverseStream", HAIKU, call, stop_after=3, seen=seen)
    request = inspect_request("ConverseStream", "anthropic", call)
    assert got.partial
    assert got.estimated
    assert got.usage.input_tokens == -(-request.input_bytes // 3)
    received = sum(
        len(e["contentBlockDelta"]["delta"]["text"].encode()) for e in seen if "contentBlockDelta" in e
    )
    assert received > 0
    assert got.usage.output_tokens == -(-received // 4)


def test_converse_stream_failed_mid_stream(fake: FakeBedrock, client: Any) -> None:
    fake.fail_mid_stream(2, operation="converse_stream")
    got = stream(
        client, "ConverseStream", HAIKU, {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    )
    assert got.partial
    assert got.estimated
    assert got.usage.output_tokens > 0


@pytest.mark.parametrize(("model_id", "body", "body_usage"), TEXT_MODELS, ids=[m[0] for m in TEXT_MODELS])
def test_invoke_stream_invocation_metrics(
    fake: FakeBedrock, client: Any, model_id: str, body: dict[str, Any], body_usage: bool
) -> None:
    got = stream(client, "InvokeModelWithResponseStream", model_id, {"body": json.dumps(body)})
    assert (got.usage, got.source, got.partial, got.estimated) == (
        reported(fake),
        "invocation_metrics",
        False,
        False,
    )


@pytest.mark.parametrize(("model_id", "body", "body_usage"), TEXT_MODELS, ids=[m[0] for m in TEXT_MODELS])
def test_invoke_stream_without_metrics(
    fake: FakeBedrock, client: Any, model_id: str, body: dict[str, Any], body_usage: bool
) -> None:
    fake.configure("*", invocation_metrics=False)
    got = stream(client, "InvokeModelWithResponseStream", model_id, {"body": json.dumps(body)})
    if body_usage:
        assert (got.usage, got.source, got.estimated) == (reported(fake), "body", False)
    else:
        assert (got.source, got.estimated) == ("estimate", True)
        assert got.usage.output_tokens > 0


def test_invoke_stream_cut_and_failed(fake: FakeBedrock, client: Any) -> None:
    fake.configure("anthropic", usage=UsageSpec(input_tokens=17, output_tokens=30), stream_deltas=5)
    cut = stream(client, "InvokeModelWithResponseStream", HAIKU, {"body": json.dumps(CLAUDE)}, stop_after=4)
    assert cut.usage.input_tokens == 17
    assert cut.partial
    assert cut.estimated
    assert 1 < cut.usage.output_tokens < 30
    fake.fail_mid_stream(3, operation="invoke_model_with_response_stream")
    failed = stream(client, "InvokeModelWithResponseStream", HAIKU, {"body": json.dumps(CLAUDE)})
    assert failed.partial
    assert failed.usage.input_tokens == 17


def test_invoke_stream_served_tier_from_response(fake: FakeBedrock, client: Any) -> None:
    fake.configure("*", served_service_tier="flex", served_latency="standard")
    got = stream(
        client,
        "InvokeModelWithResponseStream",
        "meta.llama3-1-70b-instruct-v1:0",
        {
            "body": json.dumps({"prompt": "hi"}),
            "serviceTier": "flex",
            "performanceConfigLatency": "optimized",
        },
    )
    assert (got.served_service_tier, got.served_latency) == ("flex", "standard")
