"""ApplyGuardrail, CountTokens, guardrail traces and the async-invoke operations."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bedrock_budget.testing import FakeBedrock, GuardrailUsageSpec, UsageSpec

from .fakebedrock_support import CLAUDE, TEXT_CASES, USER_HELLO


def test_apply_guardrail_default_units(fake: FakeBedrock, client: Any) -> None:
    response = client.apply_guardrail(
        guardrailIdentifier="gr-1",
        guardrailVersion="DRAFT",
        source="INPUT",
        content=[{"text": {"text": "a" * 2500}}],
    )
    assert response["usage"]["contentPolicyUnits"] == 3
    assert response["usage"]["topicPolicyUnits"] == 0
    assert response["action"] == "NONE"
    assert response["outputs"] == []
    assert response["guardrailCoverage"]["textCharacters"] == {"guarded": 2500, "total": 2500}
    assert fake.requests[-1].operation == "ApplyGuardrail"


def test_apply_guardrail_configured_units_and_intervention(fake: FakeBedrock, client: Any) -> None:
    spec = GuardrailUsageSpec(
        content_policy_units=4,
        topic_policy_units=2,
        sensitive_information_policy_free_units=1,
        action="GUARDRAIL_INTERVENED",
    )
    fake.set_guardrail_usage(spec, "gr-2")
    response = client.apply_guardrail(
        guardrailIdentifier="gr-2", guardrailVersion="1", source="OUTPUT", content=[{"text": {"text": "x"}}]
    )
    usage = response["usage"]
    assert (
        usage["contentPolicyUnits"],
        usage["topicPolicyUnits"],
        usage["sensitiveInformationPolicyFreeUnits"],
    ) == (
        4,
        2,
        1,
    )
    assert response["action"] == "GUARDRAIL_INTERVENED"
    assert response["outputs"] == [{"text": spec.blocked_message}]


def test_apply_guardrail_rejects_a_bad_source(fake: FakeBedrock, client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationException):
        client.apply_guardrail(guardrailIdentifier="g", guardrailVersion="1", source="BOTH", content=[])


def test_converse_guardrail_trace_carries_units(fake: FakeBedrock, client: Any) -> None:
    fake.set_guardrail_usage(GuardrailUsageSpec(content_policy_units=2, word_policy_units=1), "gr-3")
    response = client.converse(
        modelId=CLAUDE,
        messages=USER_HELLO,
        guardrailConfig={"guardrailIdentifier": "gr-3", "guardrailVersion": "1", "trace": "enabled"},
    )
    guardrail = response["trace"]["guardrail"]
    assert guardrail["inputAssessment"]["gr-3"]["invocationMetrics"]["usage"]["contentPolicyUnits"] == 2
    outputs = guardrail["outputAssessments"]["gr-3"]
    assert outputs[0]["invocationMetrics"]["usage"]["wordPolicyUnits"] == 1
    untraced = client.converse(
        modelId=CLAUDE,
        messages=USER_HELLO,
        guardrailConfig={"guardrailIdentifier": "gr-3", "guardrailVersion": "1"},
    )
    assert "trace" not in untraced


def test_count_tokens_matches_what_the_call_would_report(fake: FakeBedrock, client: Any) -> None:
    messages = [{"role": "user", "content": [{"text": "y" * 80}]}]
    counted = client.count_tokens(modelId=CLAUDE, input={"converse": {"messages": messages}})["inputTokens"]
    charged = client.converse(modelId=CLAUDE, messages=messages)["usage"]["inputTokens"]
    assert counted == charged == 20
    fake.set_usage(CLAUDE, UsageSpec(input_tokens=10, cache_read_tokens=5, cache_write_tokens=2))
    counted = client.count_tokens(modelId=CLAUDE, input={"converse": {"messages": messages}})["inputTokens"]
    assert counted == 17  # CountTokens has no cache notion: it counts all input


def test_count_tokens_with_an_invoke_model_body(fake: FakeBedrock, client: Any) -> None:
    fake.set_usage("anthropic", UsageSpec(input_tokens=33))
    body = json.dumps(TEXT_CASES[0].body).encode()
    assert client.count_tokens(modelId=CLAUDE, input={"invokeModel": {"body": body}})["inputTokens"] == 33
    sent = fake.requests[-1].json()["input"]["invokeModel"]["body"]
    assert base64.b64decode(sent) == body
    with pytest.raises(client.exceptions.ValidationException, match="required key"):
        client.count_tokens(modelId=CLAUDE, input={"invokeModel": {"body": b'{"messages": []}'}})


def test_count_tokens_refuses_embedding_models(fake: FakeBedrock, client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationException, match="counting tokens"):
        client.count_tokens(
            modelId="amazon.titan-embed-text-v2:0", input={"converse": {"messages": USER_HELLO}}
        )


NOVA_REEL_INPUT = {
    "taskType": "TEXT_VIDEO",
    "textToVideoParams": {"text": "a lighthouse at dusk"},
    "videoGenerationConfig": {"durationSeconds": 6, "fps": 24, "dimension": "1280x720"},
}
OUTPUT = {"s3OutputDataConfig": {"s3Uri": "s3://bucket/videos"}}


def test_async_invoke_start_get_list(fake: FakeBedrock, client: Any) -> None:
    arn = client.start_async_invoke(
        modelId="amazon.nova-reel-v1:1", modelInput=NOVA_REEL_INPUT, outputDataConfig=OUTPUT
    )["invocationArn"]
    assert arn.startswith("arn:aws:bedrock:us-east-1:123456789012:async-invoke/")
    job = client.get_async_invoke(invocationArn=arn)
    assert job["status"] == "Completed"
    assert job["modelArn"] == "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-reel-v1:1"
    assert job["outputDataConfig"] == OUTPUT
    assert "endTime" in job
    fake.set_async_status("Failed", failure_message="quota", invocation_arn=arn)
    failed = client.get_async_invoke(invocationArn=arn)
    assert (failed["status"], failed["failureMessage"]) == ("Failed", "quota")
    fake.set_async_status("InProgress")
    second = client.start_async_invoke(
        modelId="amazon.nova-reel-v1:1", modelInput=NOVA_REEL_INPUT, outputDataConfig=OUTPUT
    )["invocationArn"]
    assert client.get_async_invoke(invocationArn=second)["status"] == "InProgress"
    listed = client.list_async_invokes(statusEquals="InProgress")["asyncInvokeSummaries"]
    assert [j["invocationArn"] for j in listed] == [second]
    assert [r.operation for r in fake.requests][:2] == ["StartAsyncInvoke", "GetAsyncInvoke"]


def test_async_invoke_is_idempotent_per_client_token(fake: FakeBedrock, client: Any) -> None:
    first = client.start_async_invoke(
        clientRequestToken="tok-1",
        modelId="amazon.nova-reel-v1:0",
        modelInput=NOVA_REEL_INPUT,
        outputDataConfig=OUTPUT,
    )
    again = client.start_async_invoke(
        clientRequestToken="tok-1",
        modelId="amazon.nova-reel-v1:0",
        modelInput=NOVA_REEL_INPUT,
        outputDataConfig=OUTPUT,
    )
    assert first["invocationArn"] == again["invocationArn"]


def test_nova_reel_only_runs_asynchronously(fake: FakeBedrock, client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationException, match="synchronous"):
        client.invoke_model(modelId="amazon.nova-reel-v1:1", body=json.dumps(NOVA_REEL_INPUT))
    with pytest.raises(client.exceptions.ValidationException, match="asynchronous"):
        client.start_async_invoke(modelId=CLAUDE, modelInput=NOVA_REEL_INPUT, outputDataConfig=OUTPUT)


def test_unknown_async_invocation(fake: FakeBedrock, client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationException):
        client.get_async_invoke(
            invocationArn="arn:aws:bedrock:us-east-1:123456789012:async-invoke/zzzzzzzzzzzz"
        )
