"""Every operation × every family through a real boto3 client: botocore must parse exactly what was
configured."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bedrock_budget.testing import FakeBedrock, UsageSpec

from .fakebedrock_support import PROMPT, TEXT_CASES, TextCase, case_id, filler, read_chunks, read_events

FIXED = UsageSpec(input_tokens=21, output_tokens=13)


@pytest.mark.parametrize("case", TEXT_CASES, ids=case_id)
def test_invoke_model_body_and_token_headers(fake: FakeBedrock, client: Any, case: TextCase) -> None:
    fake.set_usage(case.family, FIXED)
    response = client.invoke_model(modelId=case.model_id, body=json.dumps(case.body))
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert response["contentType"] == "application/json"
    assert headers["x-amzn-bedrock-input-token-count"] == "21"
    assert headers["x-amzn-bedrock-output-token-count"] == "13"
    assert "x-amzn-bedrock-cache-read-input-token-count" not in headers
    text, input_tokens, output_tokens = case.read(json.loads(response["body"].read()))
    assert text == filler(13)
    assert PROMPT not in text
    assert input_tokens in (21, None)
    assert output_tokens in (13, None)
    recorded = fake.requests[-1]
    assert (recorded.operation, recorded.model_id, recorded.family) == (
        "InvokeModel",
        case.model_id,
        case.family,
    )


@pytest.mark.parametrize("case", TEXT_CASES, ids=case_id)
def test_invoke_model_body_usage_where_the_family_has_it(
    fake: FakeBedrock, client: Any, case: TextCase
) -> None:
    fake.set_usage(case.family, FIXED)
    body = json.loads(client.invoke_model(modelId=case.model_id, body=json.dumps(case.body))["body"].read())
    _, input_tokens, output_tokens = case.read(body)
    has_usage = case.family not in ("mistral", "cohere") and case.model_id != "deepseek.r1-v1:0"
    assert (input_tokens, output_tokens) == ((21, 13) if has_usage else (None, None))


@pytest.mark.parametrize("case", TEXT_CASES, ids=case_id)
def test_invoke_model_stream_chunks_and_invocation_metrics(
    fake: FakeBedrock, client: Any, case: TextCase
) -> None:
    fake.set_usage(case.family, FIXED)
    response = client.invoke_model_with_response_stream(modelId=case.model_id, body=json.dumps(case.body))
    assert response["contentType"] == "application/json"
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"
    chunks = read_chunks(response)
    assert len(chunks) >= 3
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics == {
        "inputTokenCount": 21,
        "outputTokenCount": 13,
        "invocationLatency": 0,
        "firstByteLatency": 0,
    }
    assert all("amazon-bedrock-invocationMetrics" not in c for c in chunks[:-1])
    text, input_tokens, output_tokens = case.read_stream(chunks)
    assert text == filler(13)
    assert input_tokens in (21, None)
    assert output_tokens in (13, None)


@pytest.mark.parametrize("case", TEXT_CASES, ids=case_id)
def test_converse_and_converse_stream_for_every_text_family(
    fake: FakeBedrock, client: Any, case: TextCase
) -> None:
    fake.set_usage(case.family, FIXED)
    messages = [{"role": "user", "content": [{"text": PROMPT}]}]
    response = client.converse(modelId=case.model_id, messages=messages)
    assert response["usage"] == {"inputTokens": 21, "outputTokens": 13, "totalTokens": 34}
    assert response["output"]["message"]["content"][0]["text"] == filler(13)
    events = read_events(client.converse_stream(modelId=case.model_id, messages=messages))
    assert events[-1]["metadata"]["usage"] == {"inputTokens": 21, "outputTokens": 13, "totalTokens": 34}
    streamed = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert streamed == filler(13)


def test_anthropic_cache_fields_in_body_headers_stream_and_metrics(fake: FakeBedrock, client: Any) -> None:
    case = TEXT_CASES[0]
    fake.set_usage(
        "anthropic",
        UsageSpec(
            input_tokens=10,
            output_tokens=4,
            cache_read_tokens=300,
            cache_write_tokens=50,
            cache_write_1h_tokens=7,
        ),
    )
    response = client.invoke_model(modelId=case.model_id, body=json.dumps(case.body))
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    # Like Converse inputTokens, the input header excludes cached tokens.
    assert headers["x-amzn-bedrock-input-token-count"] == "10"
    assert headers["x-amzn-bedrock-cache-read-input-token-count"] == "300"
    assert headers["x-amzn-bedrock-cache-write-input-token-count"] == "57"
    usage = json.loads(response["body"].read())["usage"]
    assert usage == {
        "input_tokens": 10,
        "cache_creation_input_tokens": 57,
        "cache_read_input_tokens": 300,
        "output_tokens": 4,
        "cache_creation": {"ephemeral_5m_input_tokens": 50, "ephemeral_1h_input_tokens": 7},
    }
    chunks = read_chunks(
        client.invoke_model_with_response_stream(modelId=case.model_id, body=json.dumps(case.body))
    )
    assert chunks[0]["message"]["usage"]["cache_read_input_tokens"] == 300
    assert chunks[-1]["type"] == "message_stop"
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["cacheReadInputTokenCount"] == 300
    assert metrics["cacheWriteInputTokenCount"] == 57


def test_nova_native_cache_field_names(fake: FakeBedrock, client: Any) -> None:
    case = TEXT_CASES[1]
    fake.set_usage(
        "nova", UsageSpec(input_tokens=9, output_tokens=3, cache_read_tokens=40, cache_write_tokens=6)
    )
    usage = json.loads(client.invoke_model(modelId=case.model_id, body=json.dumps(case.body))["body"].read())[
        "usage"
    ]
    assert usage == {
        "inputTokens": 9,
        "outputTokens": 3,
        "totalTokens": 58,
        "cacheReadInputTokenCount": 40,
        "cacheWriteInputTokenCount": 6,
    }


@pytest.mark.parametrize(
    ("model_id", "body", "dims"),
    [
        ("amazon.titan-embed-text-v2:0", {"inputText": PROMPT, "dimensions": 256}, 256),
        ("amazon.titan-embed-text-v1", {"inputText": PROMPT}, 1536),
        ("amazon.titan-embed-image-v1", {"inputText": PROMPT}, 1024),
    ],
)
def test_titan_embeddings(
    fake: FakeBedrock, client: Any, model_id: str, body: dict[str, Any], dims: int
) -> None:
    fake.set_usage("titan-embed", UsageSpec(input_tokens=8))
    response = client.invoke_model(modelId=model_id, body=json.dumps(body))
    out = json.loads(response["body"].read())
    assert len(out["embedding"]) == dims
    assert out["inputTextTokenCount"] == 8
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert (headers["x-amzn-bedrock-input-token-count"], headers["x-amzn-bedrock-output-token-count"]) == (
        "8",
        "0",
    )


def test_titan_embeddings_by_type(client: Any, fake: FakeBedrock) -> None:
    body = {"inputText": PROMPT, "dimensions": 512, "embeddingTypes": ["float", "binary"]}
    out = json.loads(
        client.invoke_model(modelId="amazon.titan-embed-text-v2:0", body=json.dumps(body))["body"].read()
    )
    assert len(out["embeddingsByType"]["float"]) == 512
    assert set(out["embeddingsByType"]["binary"]) <= {0, 1}


def test_cohere_embed(fake: FakeBedrock, client: Any) -> None:
    body = {"texts": ["one", "two", "three"], "input_type": "search_document"}
    response = client.invoke_model(modelId="cohere.embed-english-v3", body=json.dumps(body))
    out = json.loads(response["body"].read())
    assert out["response_type"] == "embeddings_floats"
    assert [len(v) for v in out["embeddings"]] == [1024, 1024, 1024]
    assert "texts" not in out  # the fake never echoes request text
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-input-token-count"] == "3"
    typed = dict(body, embedding_types=["float", "int8"])
    out = json.loads(
        client.invoke_model(modelId="cohere.embed-english-v3", body=json.dumps(typed))["body"].read()
    )
    assert out["response_type"] == "embeddings_by_type"
    assert sorted(out["embeddings"]) == ["float", "int8"]


@pytest.mark.parametrize(
    ("model_id", "body", "images"),
    [
        (
            "amazon.titan-image-generator-v2:0",
            {
                "taskType": "TEXT_IMAGE",
                "textToImageParams": {"text": PROMPT},
                "imageGenerationConfig": {"numberOfImages": 3},
            },
            3,
        ),
        ("amazon.nova-canvas-v1:0", {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": PROMPT}}, 1),
    ],
)
def test_titan_and_nova_canvas_images(
    fake: FakeBedrock, client: Any, model_id: str, body: dict[str, Any], images: int
) -> None:
    response = client.invoke_model(modelId=model_id, body=json.dumps(body))
    out = json.loads(response["body"].read())
    assert len(out["images"]) == images
    assert out["error"] is None
    assert base64.b64decode(out["images"][0]).startswith(b"\x89PNG\r\n\x1a\n")
    assert "x-amzn-bedrock-input-token-count" not in response["ResponseMetadata"]["HTTPHeaders"]


def test_stability_current_and_legacy(fake: FakeBedrock, client: Any) -> None:
    out = json.loads(
        client.invoke_model(
            modelId="stability.sd3-5-large-v1:0", body=json.dumps({"prompt": PROMPT, "seed": 7})
        )["body"].read()
    )
    assert out["seeds"] == [7]
    assert out["finish_reasons"] == [None]
    assert len(out["images"]) == 1
    legacy = {"text_prompts": [{"text": PROMPT}], "seed": 3}
    out = json.loads(
        client.invoke_model(modelId="stability.stable-diffusion-xl-v1", body=json.dumps(legacy))[
            "body"
        ].read()
    )
    assert out["result"] == "success"
    assert out["artifacts"][0]["seed"] == 3
    assert out["artifacts"][0]["finishReason"] == "SUCCESS"


@pytest.mark.parametrize(
    ("model_id", "body"),
    [
        ("amazon.titan-embed-text-v2:0", {"inputText": PROMPT}),
        ("cohere.embed-english-v3", {"texts": [PROMPT]}),
        ("stability.sd3-5-large-v1:0", {"prompt": PROMPT}),
    ],
)
def test_non_text_models_refuse_streams_and_converse(
    fake: FakeBedrock, client: Any, model_id: str, body: dict[str, Any]
) -> None:
    with pytest.raises(client.exceptions.ValidationException, match="unsupported for streaming"):
        client.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(body))
    with pytest.raises(client.exceptions.ValidationException, match="doesn't support the model"):
        client.converse(modelId=model_id, messages=[{"role": "user", "content": [{"text": PROMPT}]}])


def test_stream_deltas_setting_controls_event_count(fake: FakeBedrock, client: Any) -> None:
    case = TEXT_CASES[0]
    fake.configure("anthropic", usage=UsageSpec(output_tokens=10), stream_deltas=5)
    chunks = read_chunks(
        client.invoke_model_with_response_stream(modelId=case.model_id, body=json.dumps(case.body))
    )
    assert [c["type"] for c in chunks].count("content_block_delta") == 5
