"""extract_response: usage of non-streaming calls, per operation and family, as boto3 returns them."""

from __future__ import annotations

import base64
import json
from types import MappingProxyType
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.response import StreamingBody

from bedrock_budget.extract import Extracted, RequestInfo, extract_response, family_of
from bedrock_budget.usage import Usage

from .builders import UntouchableBody, converse_request, invoke_request, invoke_response, token_headers

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
ROUTED = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
ANTHROPIC_BODY = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 512, "messages": []}


def claude_body(usage: dict[str, Any], text: str = "Hello there.") -> dict[str, Any]:
    return {
        "id": "msg_bdrk_01XYZ",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


def invoke(model_id: str, response: dict[str, Any], request: RequestInfo | None = None) -> Extracted:
    family = family_of(model_id)
    return extract_response("InvokeModel", family, request or RequestInfo("InvokeModel", family), response)


def converse_response(usage: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    response: dict[str, Any] = {
        "ResponseMetadata": {"RequestId": "r", "HTTPStatusCode": 200, "HTTPHeaders": {}, "RetryAttempts": 0},
        "output": {"message": {"role": "assistant", "content": [{"text": "x" * 41}]}},
        "stopReason": "end_turn",
        "metrics": {"latencyMs": 640},
        **extra,
    }
    if usage is not None:
        response["usage"] = usage
    return response


# --- Converse ----------------------------------------------------------------------------------------------


def test_converse_usage_with_cache_ttl_split_and_served_tier() -> None:
    usage = {
        "inputTokens": 120,
        "outputTokens": 45,
        "totalTokens": 4165,
        "cacheReadInputTokens": 1000,
        "cacheWriteInputTokens": 3000,
        "cacheDetails": [{"ttl": "1h", "inputTokens": 2000}, {"ttl": "5m", "inputTokens": 1000}],
    }
    response = converse_response(
        usage, serviceTier={"type": "priority"}, performanceConfig={"latency": "standard"}
    )
    got = extract_response("Converse", "anthropic", converse_request(HAIKU, messages=[]), response)
    assert got == Extracted(
        Usage(
            input_tokens=120,
            output_tokens=45,
            cache_read_tokens=1000,
            cache_write_tokens=3000,
            cache_write_1h_tokens=2000,
        ),
        "converse_usage",
        served_service_tier="priority",
        served_latency="standard",
    )


@pytest.mark.parametrize(("ttl", "expected_1h"), [("1h", 500), (None, 0)])
def test_converse_without_cache_details_uses_the_request_ttl(ttl: str | None, expected_1h: int) -> None:
    point: dict[str, Any] = {"type": "default"} if ttl is None else {"type": "default", "ttl": ttl}
    request = converse_request(
        HAIKU, messages=[{"role": "user", "content": [{"text": "a"}, {"cachePoint": point}]}]
    )
    usage = {"inputTokens": 3, "outputTokens": 4, "totalTokens": 507, "cacheWriteInputTokens": 500}
    got = extract_response("Converse", "anthropic", request, converse_response(usage))
    assert got.usage.cache_write_tokens == 500
    assert got.usage.cache_write_1h_tokens == expected_1h
    assert got.estimated is False


def test_converse_guardrail_trace_units_sum_input_and_output_assessments() -> None:
    def assessment(**units: int) -> dict[str, Any]:
        return {
            "contentPolicy": {"filters": []},
            "invocationMetrics": {
                "guardrailProcessingLatency": 210,
                "usage": {
                    "topicPolicyUnits": 0,
                    "contentPolicyUnits": 0,
                    "wordPolicyUnits": 0,
                    "sensitiveInformationPolicyUnits": 0,
                    "sensitiveInformationPolicyFreeUnits": 5,
                    "contextualGroundingPolicyUnits": 0,
                    **units,
                },
                "guardrailCoverage": {"textCharacters": {"guarded": 900, "total": 900}},
            },
        }

    trace = {
        "guardrail": {
            "modelOutput": ["..."],
            "inputAssessment": {
                "gr-1": assessment(
                    topicPolicyUnits=1,
                    contentPolicyUnits=1,
                    wordPolicyUnits=1,
                    sensitiveInformationPolicyUnits=1,
                )
            },
            "outputAssessments": {
                "gr-1": [
                    assessment(contentPolicyUnits=2),
                    assessment(contentPolicyUnits=1, contextualGroundingPolicyUnits=3),
                ]
            },
        },
        "promptRouter": {"invokedModelId": ROUTED},
    }
    usage = {"inputTokens": 10, "outputTokens": 20, "totalTokens": 30}
    got = extract_response(
        "Converse", "anthropic", converse_request(HAIKU, messages=[]), converse_response(usage, trace=trace)
    )
    assert dict(got.usage.guardrail_text_units) == {
        "denied_topics": 1,
        "content_filters": 4,
        "word_filters": 1,
        "sensitive_information": 1,
        "contextual_grounding": 3,
    }
    assert got.routed_model_id == ROUTED


def test_converse_without_usage_is_estimated() -> None:
    request = RequestInfo("Converse", "anthropic", input_bytes=300)
    got = extract_response("Converse", "anthropic", request, converse_response(None))
    # 300 bytes at 3 bytes/token; 41 generated bytes at 4 bytes/token, rounded up.
    assert got == Extracted(Usage(input_tokens=100, output_tokens=11), "estimate", estimated=True)


@pytest.mark.parametrize("bad", [-5, "10", 10.0, True, None, 10**10, [1]])
def test_converse_unbelievable_counts_become_estimates(bad: object) -> None:
    request = RequestInfo("Converse", "anthropic", input_bytes=30)
    got = extract_response(
        "Converse", "anthropic", request, converse_response({"inputTokens": bad, "outputTokens": 7})
    )
    assert got.usage == Usage(input_tokens=10, output_tokens=7)
    assert got.source == "converse_usage"
    assert got.estimated is True


# --- InvokeModel: headers first ----------------------------------------------------------------------------


def test_header_complete_text_call_never_touches_the_body() -> None:
    body = UntouchableBody()
    response = invoke_response(body, headers=token_headers(25, 11), serviceTier="default")
    got = invoke(HAIKU, response, invoke_request(HAIKU, ANTHROPIC_BODY))
    assert got == Extracted(
        Usage(input_tokens=25, output_tokens=11), "headers", served_service_tier="default"
    )
    assert response["body"] is body


def test_header_cache_counts_with_five_minute_ttl_need_no_body() -> None:
    request = invoke_request(
        HAIKU,
        {**ANTHROPIC_BODY, "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}]},
    )
    response = invoke_response(
        UntouchableBody(), headers=token_headers(5, 6, cache_read=700, cache_write=300)
    )
    got = invoke(HAIKU, response, request)
    assert got.usage == Usage(
        input_tokens=5,
        output_tokens=6,
        cache_read_tokens=700,
        cache_write_tokens=300,
        cache_write_1h_tokens=0,
    )
    assert got.source == "headers"


def test_one_hour_ttl_reads_the_split_from_the_body_and_returns_it_unread() -> None:
    request = invoke_request(
        HAIKU,
        {
            **ANTHROPIC_BODY,
            "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "q", "cache_control": {"type": "ephemeral"}}],
                }
            ],
        },
    )
    usage = {
        "input_tokens": 5,
        "output_tokens": 6,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 300,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
    }
    raw = json.dumps(claude_body(usage)).encode()
    response = invoke_response(raw, headers=token_headers(5, 6, cache_write=300))
    got = invoke(HAIKU, response, request)
    assert got.usage == Usage(
        input_tokens=5, output_tokens=6, cache_write_tokens=300, cache_write_1h_tokens=200
    )
    assert got.source == "headers"
    assert isinstance(response["body"], StreamingBody)
    assert response["body"].read() == raw


def test_body_replacement_reads_identically_for_every_api() -> None:
    raw = json.dumps(claude_body({"input_tokens": 9, "output_tokens": 3}), indent=1).encode()
    for reader in ("read", "iter_lines", "iter_chunks", "chunked_read"):
        response = invoke_response(raw)
        assert invoke(HAIKU, response).usage == Usage(input_tokens=9, output_tokens=3)
        body = response["body"]
        if reader == "read":
            assert body.read() == raw
            assert body.read() == b""
        elif reader == "iter_lines":
            assert list(body.iter_lines()) == raw.splitlines()
        elif reader == "iter_chunks":
            assert b"".join(body.iter_chunks(chunk_size=7)) == raw
        else:
            pieces = []
            while piece := body.read(5):
                pieces.append(piece)
            assert b"".join(pieces) == raw


def test_headers_win_over_the_body_field_by_field() -> None:
    request = invoke_request(HAIKU, ANTHROPIC_BODY, guardrailIdentifier="gr-1", guardrailVersion="1")
    body = claude_body({"input_tokens": 999, "output_tokens": 999, "cache_read_input_tokens": 50})
    body["amazon-bedrock-guardrailAction"] = "NONE"
    body["amazon-bedrock-trace"] = {
        "guardrail": {
            "input": {
                "gr-1": {"invocationMetrics": {"usage": {"contentPolicyUnits": 2, "topicPolicyUnits": 1}}}
            },
            "outputs": [{"gr-1": {"invocationMetrics": {"usage": {"contentPolicyUnits": 1}}}}],
        }
    }
    got = invoke(HAIKU, invoke_response(body, headers=token_headers(10, 20)), request)
    # A header-complete response has no cache tokens unless a cache header says so; the body cannot add them.
    assert got.usage == Usage(
        input_tokens=10, output_tokens=20, guardrail_text_units={"content_filters": 3, "denied_topics": 1}
    )
    assert got.source == "headers"


def test_missing_output_header_is_filled_from_the_body() -> None:
    headers = {"x-amzn-bedrock-input-token-count": "40"}
    body = {"generation": "Hi", "prompt_token_count": 41, "generation_token_count": 7, "stop_reason": "stop"}
    got = invoke("meta.llama3-1-8b-instruct-v1:0", invoke_response(body, headers=headers))
    assert got.usage == Usage(input_tokens=40, output_tokens=7)
    assert (got.source, got.estimated) == ("headers", False)


@pytest.mark.parametrize("bad", ["-5", "abc", "1e3", "99999999999", "", "１２"])
def test_unbelievable_headers_fall_back_to_the_body(bad: str) -> None:
    headers = {"x-amzn-bedrock-input-token-count": bad, "x-amzn-bedrock-output-token-count": bad}
    got = invoke(
        HAIKU, invoke_response(claude_body({"input_tokens": 8, "output_tokens": 2}), headers=headers)
    )
    assert got.usage == Usage(input_tokens=8, output_tokens=2)
    assert got.source == "body"


# --- InvokeModel: family bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "body", "expected"),
    [
        (
            HAIKU,
            claude_body(
                {
                    "input_tokens": 12,
                    "output_tokens": 30,
                    "cache_read_input_tokens": 100,
                    "cache_creation_input_tokens": 0,
                }
            ),
            Usage(input_tokens=12, output_tokens=30, cache_read_tokens=100),
        ),
        (
            "amazon.nova-lite-v1:0",
            {
                "output": {"message": {"role": "assistant", "content": [{"text": "Hi"}]}},
                "stopReason": "end_turn",
                "usage": {
                    "inputTokens": 14,
                    "outputTokens": 3,
                    "totalTokens": 17,
                    "cacheReadInputTokenCount": 9,
                    "cacheWriteInputTokenCount": 4,
                },
            },
            Usage(input_tokens=14, output_tokens=3, cache_read_tokens=9, cache_write_tokens=4),
        ),
        (
            "amazon.titan-text-express-v1",
            {
                "inputTextTokenCount": 7,
                "results": [
                    {"tokenCount": 3, "outputText": "a", "completionReason": "FINISH"},
                    {"tokenCount": 4, "outputText": "b", "completionReason": "LENGTH"},
                ],
            },
            Usage(input_tokens=7, output_tokens=7),
        ),
        (
            "meta.llama3-1-70b-instruct-v1:0",
            {
                "generation": "Paris.",
                "prompt_token_count": 21,
                "generation_token_count": 3,
                "stop_reason": "stop",
            },
            Usage(input_tokens=21, output_tokens=3),
        ),
        (
            "openai.gpt-oss-120b-1:0",
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "ok", "reasoning_content": "..."},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": 100,
                    "completion_tokens": 30,
                    "total_tokens": 130,
                    "prompt_tokens_details": {"cached_tokens": 40},
                },
            },
            Usage(input_tokens=60, output_tokens=30, cache_read_tokens=40),
        ),
        (
            "ai21.jamba-1-5-large-v1:0",
            {
                "id": "j",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 19, "completion_tokens": 2, "total_tokens": 21},
            },
            Usage(input_tokens=19, output_tokens=2),
        ),
        (
            "deepseek.v3-v1:0",
            {
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1},
            },
            Usage(input_tokens=5, output_tokens=1),
        ),
        (
            "ai21.j2-ultra-v1",
            {
                "id": 1,
                "prompt": {"text": "p", "tokens": [{}, {}, {}]},
                "completions": [
                    {"data": {"text": "c", "tokens": [{}, {}]}, "finishReason": {"reason": "endoftext"}}
                ],
            },
            Usage(input_tokens=3, output_tokens=2),
        ),
        (
            "cohere.command-r-v1:0",
            {
                "response_id": "r",
                "text": "ok",
                "generation_id": "g",
                "finish_reason": "COMPLETE",
                "meta": {"billed_units": {"input_tokens": 33, "output_tokens": 4}},
            },
            Usage(input_tokens=33, output_tokens=4),
        ),
        (
            "amazon.titan-embed-text-v2:0",
            {"embedding": [0.1, 0.2], "inputTextTokenCount": 6},
            Usage(input_tokens=6),
        ),
    ],
)
def test_family_body_usage_without_headers(model_id: str, body: dict[str, Any], expected: Usage) -> None:
    got = invoke(model_id, invoke_response(body))
    assert got.usage == expected
    assert (got.source, got.estimated) == ("body", False)


def test_bodies_without_usage_estimate_from_request_and_generated_text() -> None:
    request = RequestInfo("InvokeModel", "mistral", input_bytes=90)
    body = {"outputs": [{"text": "y" * 18, "stop_reason": "stop"}]}
    got = invoke("mistral.mistral-7b-instruct-v0:2", invoke_response(body), request)
    assert got == Extracted(Usage(input_tokens=30, output_tokens=5), "estimate", estimated=True)


def test_embeddings_need_only_the_input_header() -> None:
    headers = {"x-amzn-bedrock-input-token-count": "12"}
    got = invoke("cohere.embed-english-v3", invoke_response(UntouchableBody(), headers=headers))
    assert got == Extracted(Usage(input_tokens=12), "headers")


def test_embeddings_without_any_count_estimate_input_only() -> None:
    request = invoke_request("cohere.embed-english-v3", {"texts": ["a" * 60], "input_type": "search_query"})
    got = invoke(
        "cohere.embed-english-v3",
        invoke_response({"id": "e", "embeddings": [[0.1]], "response_type": "embeddings_floats"}),
        request,
    )
    # "texts" + 60 bytes at 3.5 bytes/token, rounded up; embeddings have no output.
    assert got == Extracted(Usage(input_tokens=19), "estimate", estimated=True)


# --- InvokeModel: images and rerank ------------------------------------------------------------------------

PNG_B64 = base64.b64encode(b"\x89PNG....").decode()


def test_nova_canvas_images_priced_by_request_size_and_quality() -> None:
    request = invoke_request(
        "amazon.nova-canvas-v1:0",
        {
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": "t"},
            "imageGenerationConfig": {
                "numberOfImages": 3,
                "width": 2048,
                "height": 2048,
                "quality": "premium",
            },
        },
    )
    raw = json.dumps({"images": [PNG_B64] * 3, "error": None}).encode()
    response = invoke_response(raw)
    got = invoke("amazon.nova-canvas-v1:0", response, request)
    assert got == Extracted(Usage(images=3, image_size="2048x2048", image_quality="premium"), "body")
    assert response["body"].read() == raw


def test_image_error_without_images_charges_none() -> None:
    got = invoke(
        "amazon.titan-image-generator-v2:0", invoke_response({"images": [], "error": "blocked by filter"})
    )
    assert got.usage.images == 0


@pytest.mark.parametrize(
    ("body", "images"),
    [
        (
            {
                "seeds": [1, 2],
                "finish_reasons": [None, "Filter reason: output image"],
                "images": [PNG_B64, PNG_B64],
            },
            1,
        ),
        ({"seeds": [1], "finish_reasons": [None], "images": [PNG_B64]}, 1),
        (
            {
                "result": "success",
                "artifacts": [
                    {"seed": 1, "base64": PNG_B64, "finishReason": "SUCCESS"},
                    {"seed": 2, "base64": "", "finishReason": "CONTENT_FILTERED"},
                ],
            },
            1,
        ),
    ],
)
def test_stability_counts_delivered_images(body: dict[str, Any], images: int) -> None:
    got = invoke("stability.sd3-5-large-v1:0", invoke_response(body))
    assert got.usage.images == images
    assert got.source == "body"


def test_unreadable_image_body_charges_the_requested_images() -> None:
    request = invoke_request(
        "amazon.titan-image-generator-v2:0",
        {"taskType": "TEXT_IMAGE", "imageGenerationConfig": {"numberOfImages": 2}},
    )
    got = invoke("amazon.titan-image-generator-v2:0", invoke_response(b"<html>oops</html>"), request)
    assert got == Extracted(Usage(images=2), "estimate", estimated=True)


def test_rerank_queries_per_hundred_documents() -> None:
    request = invoke_request(
        "cohere.rerank-v3-5:0", {"query": "q", "documents": ["d"] * 250, "top_n": 3, "api_version": 2}
    )
    body = {
        "id": "x",
        "results": [
            {"index": 4, "relevance_score": 0.9},
            {"index": 1, "relevance_score": 0.5},
            {"index": 0, "relevance_score": 0.1},
        ],
    }
    assert invoke("cohere.rerank-v3-5:0", invoke_response(body), request).usage == Usage(rerank_queries=3)
    # Without a readable request the results count stands in (all documents come back without top_n).
    bare = invoke("amazon.rerank-v1:0", invoke_response({"results": [{"index": i} for i in range(101)]}))
    assert (bare.usage.rerank_queries, bare.estimated) == (2, False)


# --- Hostile and broken responses --------------------------------------------------------------------------


def test_body_read_failure_is_estimated_and_the_caller_sees_the_same_error() -> None:
    class Failing:
        def read(self, *_: object) -> bytes:
            raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")

    response = invoke_response(Failing())
    got = invoke(HAIKU, response, RequestInfo("InvokeModel", "anthropic", input_bytes=6))
    assert got == Extracted(Usage(input_tokens=2), "estimate", estimated=True)
    with pytest.raises(ReadTimeoutError):
        response["body"].read()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"null",
        json.dumps(claude_body({"input_tokens": -1, "output_tokens": "many"})).encode(),
        json.dumps(claude_body({"input_tokens": 10**12, "output_tokens": None})).encode(),
        json.dumps({"usage": "???", "content": 5}).encode(),
        b"[" * 200_000,
    ],
)
def test_hostile_bodies_estimate_and_never_raise(body: bytes) -> None:
    response = invoke_response(body)
    got = invoke(HAIKU, response, RequestInfo("InvokeModel", "anthropic", input_bytes=9))
    assert got.usage.input_tokens == 3
    assert got.estimated is True
    assert response["body"].read() == body


def test_read_only_response_is_not_read() -> None:
    body = UntouchableBody()
    response: Any = MappingProxyType(invoke_response(body))
    got = extract_response(
        "InvokeModel", "anthropic", RequestInfo("InvokeModel", "anthropic", input_bytes=3), response
    )
    assert got == Extracted(Usage(input_tokens=1), "estimate", estimated=True)


def test_served_values_from_top_level_keys_and_headers() -> None:
    headers = {
        **token_headers(1, 1),
        "x-amzn-bedrock-service-tier": "flex",
        "x-amzn-bedrock-performanceconfig-latency": "optimized",
    }
    got = invoke(HAIKU, invoke_response(UntouchableBody(), headers=headers))
    assert (got.served_service_tier, got.served_latency) == ("flex", "optimized")
    top = invoke(
        HAIKU,
        invoke_response(
            UntouchableBody(),
            headers=token_headers(1, 1),
            serviceTier="priority",
            performanceConfigLatency="standard",
        ),
    )
    assert (top.served_service_tier, top.served_latency) == ("priority", "standard")


# --- Other operations --------------------------------------------------------------------------------------


def test_apply_guardrail_units_by_policy() -> None:
    response = {
        "usage": {
            "topicPolicyUnits": 2,
            "contentPolicyUnits": 3,
            "wordPolicyUnits": 1,
            "sensitiveInformationPolicyUnits": 4,
            "sensitiveInformationPolicyFreeUnits": 9,
            "contextualGroundingPolicyUnits": 5,
            "contentPolicyImageUnits": 1,
            "automatedReasoningPolicyUnits": 6,
            "automatedReasoningPolicies": 2,
        },
        "action": "NONE",
        "outputs": [],
        "assessments": [],
        "guardrailCoverage": {"textCharacters": {"guarded": 2500, "total": 2500}},
    }
    got = extract_response("ApplyGuardrail", "unknown", RequestInfo("ApplyGuardrail", "unknown"), response)
    assert dict(got.usage.guardrail_text_units) == {
        "denied_topics": 2,
        "content_filters": 3,
        "word_filters": 1,
        "sensitive_information": 4,
        "contextual_grounding": 5,
        "content_filters_image": 1,
        "automated_reasoning": 6,
    }
    assert (got.source, got.estimated) == ("body", False)
    hostile = {"usage": {"topicPolicyUnits": -1, "contentPolicyUnits": "3", "wordPolicyUnits": 2**40}}
    assert (
        extract_response(
            "apply_guardrail", "unknown", RequestInfo("ApplyGuardrail", "unknown"), hostile
        ).usage
        == Usage()
    )


def test_guardrail_checks_units() -> None:
    response = {
        "results": {},
        "usage": {
            "contentFilter": {"textUnits": 2},
            "promptAttack": {"textUnits": 1},
            "sensitiveInformation": {"textUnits": 2},
        },
    }
    got = extract_response(
        "InvokeGuardrailChecks", "unknown", RequestInfo("InvokeGuardrailChecks", "unknown"), response
    )
    assert dict(got.usage.guardrail_text_units) == {"content_filters": 3, "sensitive_information": 2}


def test_free_and_async_operations() -> None:
    free = extract_response(
        "CountTokens",
        "anthropic",
        RequestInfo("CountTokens", "anthropic", input_bytes=900),
        {"inputTokens": 300},
    )
    assert free == Extracted(Usage(), "none")
    reel = RequestInfo("StartAsyncInvoke", "nova_reel", video_seconds=12)
    started = extract_response(
        "start_async_invoke",
        "nova_reel",
        reel,
        {"invocationArn": "arn:aws:bedrock:us-east-1:123456789012:async-invoke/abcdefghijkl"},
    )
    assert started == Extracted(Usage(video_seconds=12), "estimate", estimated=True)
    assert extract_response("GetAsyncInvoke", "nova_reel", reel, {"status": "Completed"}).source == "none"
