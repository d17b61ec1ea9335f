"""Usage modes, layering, response toggles, served tier/latency, timing and the request record."""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

import pytest

from bedrock_budget.testing import FakeBedrock, UsageContext, UsageSpec

from .fakebedrock_support import CLAUDE, TEXT_CASES, USER_HELLO, read_chunks, read_events

ANTHROPIC_BODY = json.dumps(TEXT_CASES[0].body)


def test_default_usage_is_proportional_to_the_prompt(fake: FakeBedrock, client: Any) -> None:
    text = "x" * 401
    response = client.converse(modelId=CLAUDE, messages=[{"role": "user", "content": [{"text": text}]}])
    assert response["usage"]["inputTokens"] == math.ceil(401 / 4)
    assert response["usage"]["outputTokens"] == 16
    assert "cacheReadInputTokens" not in response["usage"]
    capped = client.converse(
        modelId=CLAUDE,
        messages=[{"role": "user", "content": [{"text": text}]}],
        inferenceConfig={"maxTokens": 5},
    )
    assert capped["usage"]["outputTokens"] == 5
    assert capped["stopReason"] == "max_tokens"
    assert fake.requests[-1].usage is not None
    assert fake.requests[-1].usage.output_tokens == 5


def test_default_usage_counts_system_and_tools(fake: FakeBedrock, client: Any) -> None:
    bare = client.converse(modelId=CLAUDE, messages=USER_HELLO)["usage"]["inputTokens"]
    fuller = client.converse(modelId=CLAUDE, messages=USER_HELLO, system=[{"text": "s" * 400}])["usage"][
        "inputTokens"
    ]
    assert fuller == bare + 100


def test_proportional_rate_is_configurable(fake: FakeBedrock, client: Any) -> None:
    fake.set_usage("*", UsageSpec(bytes_per_token=2.0, default_output_tokens=3))
    usage = client.converse(modelId=CLAUDE, messages=[{"role": "user", "content": [{"text": "abcdefgh"}]}])[
        "usage"
    ]
    assert (usage["inputTokens"], usage["outputTokens"]) == (4, 3)


def test_callable_usage_sees_the_request(fake: FakeBedrock, client: Any) -> None:
    seen: list[UsageContext] = []

    def usage(context: UsageContext) -> UsageSpec:
        seen.append(context)
        return UsageSpec(input_tokens=context.prompt_bytes * 10, output_tokens=context.max_tokens or 1)

    fake.set_usage("nova", usage)
    response = client.converse(
        modelId="us.amazon.nova-pro-v1:0", messages=USER_HELLO, inferenceConfig={"maxTokens": 7}
    )
    assert response["usage"]["inputTokens"] == len("hello there") * 10
    assert response["usage"]["outputTokens"] == 7
    (context,) = seen
    assert (context.operation, context.model_id, context.base_model_id, context.family) == (
        "Converse",
        "us.amazon.nova-pro-v1:0",
        "amazon.nova-pro-v1:0",
        "nova",
    )
    assert context.body["inferenceConfig"] == {"maxTokens": 7}


def test_layering_requested_id_over_base_over_family_over_default(fake: FakeBedrock, client: Any) -> None:
    fake.set_usage("*", UsageSpec(input_tokens=1, output_tokens=1))
    fake.set_usage("anthropic", UsageSpec(input_tokens=2, output_tokens=2))
    fake.set_usage(CLAUDE, UsageSpec(input_tokens=3, output_tokens=3))
    fake.set_usage("eu." + CLAUDE, UsageSpec(input_tokens=4, output_tokens=4))

    def input_tokens(model_id: str) -> int:
        return int(client.converse(modelId=model_id, messages=USER_HELLO)["usage"]["inputTokens"])

    assert input_tokens("amazon.nova-lite-v1:0") == 1
    assert input_tokens("anthropic.claude-3-haiku-20240307-v1:0") == 2
    assert input_tokens("us." + CLAUDE) == 3
    assert input_tokens("eu." + CLAUDE) == 4


def test_callable_that_fails_answers_internal_server_error(
    fake: FakeBedrock, single_attempt_client: Any
) -> None:
    def broken(context: UsageContext) -> UsageSpec:
        raise RuntimeError("bug in test")

    fake.set_usage("*", broken)
    with pytest.raises(single_attempt_client.exceptions.InternalServerException):
        single_attempt_client.converse(modelId=CLAUDE, messages=USER_HELLO)
    assert [type(e) for e in fake.server_errors] == [RuntimeError]
    fake.reset()  # the fixture would otherwise fail the test for the recorded error


def test_converse_cache_fields_details_and_totals(fake: FakeBedrock, client: Any) -> None:
    fake.set_usage(
        CLAUDE,
        UsageSpec(
            input_tokens=12,
            output_tokens=30,
            cache_read_tokens=5,
            cache_write_tokens=3,
            cache_write_1h_tokens=7,
        ),
    )
    expected = {
        "inputTokens": 12,
        "outputTokens": 30,
        "totalTokens": 57,
        "cacheReadInputTokens": 5,
        "cacheWriteInputTokens": 10,
        "cacheDetails": [{"ttl": "1h", "inputTokens": 7}, {"ttl": "5m", "inputTokens": 3}],
    }
    assert client.converse(modelId="us." + CLAUDE, messages=USER_HELLO)["usage"] == expected
    events = read_events(client.converse_stream(modelId="us." + CLAUDE, messages=USER_HELLO))
    assert events[-1]["metadata"]["usage"] == expected


def test_cache_details_can_be_left_out(fake: FakeBedrock, client: Any) -> None:
    fake.set_usage(
        CLAUDE, UsageSpec(input_tokens=1, output_tokens=1, cache_write_tokens=9, cache_details=False)
    )
    usage = client.converse(modelId=CLAUDE, messages=USER_HELLO)["usage"]
    assert usage["cacheWriteInputTokens"] == 9
    assert "cacheDetails" not in usage


def test_cache_point_in_request_reports_zero_cache_fields(fake: FakeBedrock, client: Any) -> None:
    messages = [{"role": "user", "content": [{"text": "hello"}, {"cachePoint": {"type": "default"}}]}]
    usage = client.converse(modelId=CLAUDE, messages=messages)["usage"]
    assert (usage["cacheReadInputTokens"], usage["cacheWriteInputTokens"]) == (0, 0)


def test_served_tier_and_latency_echo_the_request_by_default(fake: FakeBedrock, client: Any) -> None:
    response = client.converse(
        modelId=CLAUDE,
        messages=USER_HELLO,
        serviceTier={"type": "flex"},
        performanceConfig={"latency": "optimized"},
    )
    assert response["serviceTier"] == {"type": "flex"}
    assert response["performanceConfig"] == {"latency": "optimized"}
    plain = client.converse(modelId=CLAUDE, messages=USER_HELLO)
    assert "serviceTier" not in plain
    assert "performanceConfig" not in plain


def test_served_values_override_what_was_asked(fake: FakeBedrock, client: Any) -> None:
    fake.configure("anthropic", served_latency="standard", served_service_tier="default")
    response = client.converse(
        modelId=CLAUDE,
        messages=USER_HELLO,
        serviceTier={"type": "priority"},
        performanceConfig={"latency": "optimized"},
    )
    assert (response["serviceTier"], response["performanceConfig"]) == (
        {"type": "default"},
        {"latency": "standard"},
    )
    metadata = read_events(
        client.converse_stream(
            modelId=CLAUDE, messages=USER_HELLO, performanceConfig={"latency": "optimized"}
        )
    )[-1]["metadata"]
    assert metadata["performanceConfig"] == {"latency": "standard"}
    invoked = client.invoke_model(
        modelId=CLAUDE, body=ANTHROPIC_BODY, performanceConfigLatency="optimized", serviceTier="priority"
    )
    assert (invoked["performanceConfigLatency"], invoked["serviceTier"]) == ("standard", "default")
    streamed = client.invoke_model_with_response_stream(
        modelId=CLAUDE, body=ANTHROPIC_BODY, performanceConfigLatency="optimized"
    )
    assert streamed["performanceConfigLatency"] == "standard"
    read_chunks(streamed)


def test_invoke_model_echoes_requested_tier_headers(fake: FakeBedrock, client: Any) -> None:
    invoked = client.invoke_model(modelId=CLAUDE, body=ANTHROPIC_BODY, serviceTier="flex")
    assert invoked["serviceTier"] == "flex"
    assert "performanceConfigLatency" not in invoked
    invoked["body"].read()


def test_token_headers_can_be_switched_off_per_family(fake: FakeBedrock, client: Any) -> None:
    fake.configure("cohere", token_headers=False)
    body = json.dumps({"message": "hi", "max_tokens": 5})
    headers = client.invoke_model(modelId="cohere.command-r-v1:0", body=body)["ResponseMetadata"][
        "HTTPHeaders"
    ]
    assert not [h for h in headers if h.startswith("x-amzn-bedrock-") and h.endswith("token-count")]
    headers = client.invoke_model(modelId=CLAUDE, body=ANTHROPIC_BODY)["ResponseMetadata"]["HTTPHeaders"]
    assert "x-amzn-bedrock-input-token-count" in headers


def test_body_usage_and_invocation_metrics_can_be_switched_off(fake: FakeBedrock, client: Any) -> None:
    fake.configure("anthropic", body_usage=False, invocation_metrics=False)
    body = json.loads(client.invoke_model(modelId=CLAUDE, body=ANTHROPIC_BODY)["body"].read())
    assert "usage" not in body
    chunks = read_chunks(client.invoke_model_with_response_stream(modelId=CLAUDE, body=ANTHROPIC_BODY))
    assert all("usage" not in c and "usage" not in c.get("message", {}) for c in chunks)
    assert all("amazon-bedrock-invocationMetrics" not in c for c in chunks)
    # Converse always reports usage: it is a required member.
    assert client.converse(modelId=CLAUDE, messages=USER_HELLO)["usage"]["outputTokens"] == 16


def test_latency_delays_the_response_and_is_reported(fake: FakeBedrock, client: Any) -> None:
    fake.set_latency(0.3)
    started = time.perf_counter()
    response = client.converse(modelId=CLAUDE, messages=USER_HELLO)
    assert time.perf_counter() - started >= 0.3
    assert response["metrics"]["latencyMs"] == 300
    invoked = client.invoke_model(modelId=CLAUDE, body=ANTHROPIC_BODY)
    assert invoked["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-invocation-latency"] == "300"


def test_first_byte_delay_then_paced_events(fake: FakeBedrock, client: Any) -> None:
    fake.set_latency(0.5, first_byte_delay=0.2)
    started = time.perf_counter()
    response = client.invoke_model_with_response_stream(modelId=CLAUDE, body=ANTHROPIC_BODY)
    stamps: list[float] = []
    chunks = []
    for event in response["body"]:
        stamps.append(time.perf_counter() - started)
        chunks.append(json.loads(event["chunk"]["bytes"]))
    assert stamps[0] >= 0.2
    assert stamps[-1] >= 0.5
    assert stamps[-1] - stamps[0] >= 0.25  # the first event came early, the rest were paced
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert (metrics["firstByteLatency"], metrics["invocationLatency"]) == (200, 500)


def test_every_request_is_recorded_with_headers_and_body(fake: FakeBedrock, client: Any) -> None:
    client.invoke_model(
        modelId="us." + CLAUDE,
        body=ANTHROPIC_BODY,
        requestMetadata=json.dumps({"team": "a"}),
        serviceTier="flex",
    )
    client.converse(modelId=CLAUDE, messages=USER_HELLO, requestMetadata={"user": "u1"})
    first, second = fake.requests
    assert (first.operation, first.model_id, first.base_model_id) == ("InvokeModel", "us." + CLAUDE, CLAUDE)
    assert first.path == "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke"
    assert first.headers["x-amzn-bedrock-request-metadata"] == '{"team": "a"}'
    assert first.headers["x-amzn-bedrock-service-tier"] == "flex"
    assert first.json() == json.loads(ANTHROPIC_BODY)
    assert second.json()["requestMetadata"] == {"user": "u1"}
    assert second.sequence > first.sequence
    assert fake.request_count == 2
    assert [r.operation for r in fake.calls(model="anthropic")] == ["InvokeModel", "Converse"]
    fake.clear_requests()
    assert fake.requests == []


def test_record_is_complete_under_concurrency(fake: FakeBedrock, client: Any) -> None:
    def work(index: int) -> None:
        for _ in range(10):
            client.converse(modelId=CLAUDE, messages=[{"role": "user", "content": [{"text": f"t{index}"}]}])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = fake.requests
    assert len(records) == 80
    first = records[0].sequence
    assert [r.sequence for r in records] == list(range(first, first + 80))
    texts = sorted(r.json()["messages"][0]["content"][0]["text"] for r in records)
    assert texts == sorted(f"t{i}" for i in range(8) for _ in range(10))


def test_reset_forgets_scripting(fake: FakeBedrock, client: Any) -> None:
    fake.set_usage("*", UsageSpec(input_tokens=99, output_tokens=99))
    fake.fail_next("invoke_model", "AccessDeniedException")
    fake.reset()
    assert client.converse(modelId=CLAUDE, messages=USER_HELLO)["usage"]["outputTokens"] == 16
    client.invoke_model(modelId=CLAUDE, body=ANTHROPIC_BODY)["body"].read()
    assert [r.status for r in fake.requests] == [200, 200]


def test_invalid_scripting_values_are_rejected(fake: FakeBedrock) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        UsageSpec(input_tokens=-1)
    with pytest.raises(ValueError, match="latency"):
        fake.set_latency(-1)
    with pytest.raises(ValueError, match="stream_deltas"):
        fake.configure(stream_deltas=0)
