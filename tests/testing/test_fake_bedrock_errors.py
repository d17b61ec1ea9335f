"""Modelled errors, botocore's retries, mid-stream exceptions and injection rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, EventStreamError

from bedrock_budget.testing import FakeBedrock

from .fakebedrock_support import CLAUDE, TEXT_CASES, USER_HELLO, read_chunks, read_events

ANTHROPIC_BODY = json.dumps(TEXT_CASES[0].body)

MODELLED = [
    ("ThrottlingException", 429),
    ("ValidationException", 400),
    ("ModelTimeoutException", 408),
    ("AccessDeniedException", 403),
    ("ServiceQuotaExceededException", 400),
    ("ModelNotReadyException", 429),
    ("ModelErrorException", 424),
    ("ServiceUnavailableException", 503),
    ("InternalServerException", 500),
    ("ResourceNotFoundException", 404),
]


@pytest.mark.parametrize(("code", "status"), MODELLED)
def test_modelled_error_raises_the_client_exception_class(
    fake: FakeBedrock, single_attempt_client: Any, code: str, status: int
) -> None:
    fake.fail_next("invoke_model", code)
    with pytest.raises(getattr(single_attempt_client.exceptions, code)) as caught:
        single_attempt_client.invoke_model(modelId=CLAUDE, body=ANTHROPIC_BODY)
    response = caught.value.response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    error_type = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"]
    assert error_type.startswith(code + ":http://internal.amazon.com/coral/com.amazon.bedrock/")
    assert fake.requests[-1].status == status
    assert fake.requests[-1].error_code == code


def test_model_error_carries_original_status(fake: FakeBedrock, single_attempt_client: Any) -> None:
    fake.fail_next("converse", "ModelErrorException", message="upstream broke")
    with pytest.raises(single_attempt_client.exceptions.ModelErrorException) as caught:
        single_attempt_client.converse(modelId=CLAUDE, messages=USER_HELLO)
    assert caught.value.response["Error"]["Message"] == "upstream broke"
    assert caught.value.response["originalStatusCode"] == 500
    assert caught.value.response["resourceName"] == CLAUDE


def test_two_throttles_then_success_is_retried_by_botocore(fake: FakeBedrock, client: Any) -> None:
    fake.fail_next("converse", "ThrottlingException", times=2)
    response = client.converse(modelId=CLAUDE, messages=USER_HELLO)
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert [r.status for r in fake.calls("Converse")] == [429, 429, 200]


def test_retries_exhausted_raise_and_every_attempt_reached_the_server(fake: FakeBedrock, client: Any) -> None:
    fake.fail_next("converse", "ThrottlingException", times=5)
    with pytest.raises(client.exceptions.ThrottlingException) as caught:
        client.converse(modelId=CLAUDE, messages=USER_HELLO)
    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(fake.calls("converse")) == 3


@pytest.mark.parametrize(
    "code", ["ModelNotReadyException", "ServiceUnavailableException", "InternalServerException"]
)
def test_transient_errors_are_retried(fake: FakeBedrock, client: Any, code: str) -> None:
    fake.fail_next("converse", code)
    assert client.converse(modelId=CLAUDE, messages=USER_HELLO)["ResponseMetadata"]["RetryAttempts"] == 1


def test_validation_errors_are_not_retried(fake: FakeBedrock, client: Any) -> None:
    fake.fail_next("converse", "ValidationException", times=3)
    with pytest.raises(client.exceptions.ValidationException):
        client.converse(modelId=CLAUDE, messages=USER_HELLO)
    assert len(fake.requests) == 1


def test_http_error_on_a_streaming_operation_comes_before_the_stream(
    fake: FakeBedrock, single_attempt_client: Any
) -> None:
    fake.fail_next("converse_stream", "ValidationException", message="bad")
    with pytest.raises(single_attempt_client.exceptions.ValidationException):
        single_attempt_client.converse_stream(modelId=CLAUDE, messages=USER_HELLO)


@pytest.mark.parametrize(
    "member",
    [
        "throttlingException",
        "modelStreamErrorException",
        "validationException",
        "internalServerException",
        "serviceUnavailableException",
    ],
)
def test_converse_stream_mid_stream_exception(fake: FakeBedrock, client: Any, member: str) -> None:
    fake.fail_mid_stream(2, operation="ConverseStream", error=member, message="went wrong")
    response = client.converse_stream(modelId=CLAUDE, messages=USER_HELLO)
    received: list[dict[str, Any]] = []

    def drain() -> None:
        received.extend(response["stream"])

    with pytest.raises(EventStreamError) as caught:
        drain()
    assert [next(iter(e)) for e in received] == ["messageStart", "contentBlockDelta"]
    assert caught.value.response["Error"] == {"Code": member, "Message": "went wrong"}
    assert fake.requests[-1].status == 200
    assert fake.requests[-1].error_code == member[0].upper() + member[1:]
    assert fake.requests[-1].usage is None  # cut before the metadata event


@pytest.mark.parametrize(
    "member", ["modelTimeoutException", "throttlingException", "modelStreamErrorException"]
)
def test_invoke_model_stream_mid_stream_exception(fake: FakeBedrock, client: Any, member: str) -> None:
    fake.fail_mid_stream(3, operation="invoke_model_with_response_stream", error=member)
    response = client.invoke_model_with_response_stream(modelId=CLAUDE, body=ANTHROPIC_BODY)
    with pytest.raises(EventStreamError) as caught:
        read_chunks(response)
    assert caught.value.response["Error"]["Code"] == member
    # The next stream is whole again: the rule fired once.
    chunks = read_chunks(client.invoke_model_with_response_stream(modelId=CLAUDE, body=ANTHROPIC_BODY))
    assert "amazon-bedrock-invocationMetrics" in chunks[-1]


def test_mid_stream_error_at_zero_events(fake: FakeBedrock, client: Any) -> None:
    fake.fail_mid_stream(0, error="throttlingException")
    with pytest.raises(EventStreamError):
        read_events(client.converse_stream(modelId=CLAUDE, messages=USER_HELLO))


def test_mid_stream_rule_ignores_non_streaming_calls(fake: FakeBedrock, client: Any) -> None:
    fake.fail_mid_stream(1)
    client.converse(modelId=CLAUDE, messages=USER_HELLO)
    with pytest.raises(EventStreamError):
        read_events(client.converse_stream(modelId=CLAUDE, messages=USER_HELLO))


def test_fail_nth_counts_matching_calls(fake: FakeBedrock, single_attempt_client: Any) -> None:
    fake.fail_nth(3, "converse", "ServiceUnavailableException")
    outcomes = []
    for _ in range(5):
        try:
            single_attempt_client.converse(modelId=CLAUDE, messages=USER_HELLO)
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    assert outcomes == ["ok", "ok", "ServiceUnavailableException", "ok", "ok"]


def _random_outcomes(fake: FakeBedrock, client: Any, seed: int) -> list[bool]:
    fake.reset()
    fake.fail_randomly(0.4, seed=seed, operation="converse")
    outcomes = []
    for _ in range(30):
        try:
            client.converse(modelId=CLAUDE, messages=USER_HELLO)
            outcomes.append(True)
        except client.exceptions.ThrottlingException:
            outcomes.append(False)
    return outcomes


def test_probability_injection_is_deterministic_per_seed(
    fake: FakeBedrock, single_attempt_client: Any
) -> None:
    first = _random_outcomes(fake, single_attempt_client, seed=1234)
    second = _random_outcomes(fake, single_attempt_client, seed=1234)
    other = _random_outcomes(fake, single_attempt_client, seed=99)
    assert first == second
    assert first != other
    assert 0 < first.count(False) < 30


def test_rules_filter_by_model_and_family(fake: FakeBedrock, single_attempt_client: Any) -> None:
    fake.fail_next(model="nova", error="AccessDeniedException", times=1)
    single_attempt_client.converse(modelId=CLAUDE, messages=USER_HELLO)
    with pytest.raises(single_attempt_client.exceptions.AccessDeniedException):
        single_attempt_client.converse(modelId="us.amazon.nova-lite-v1:0", messages=USER_HELLO)
    single_attempt_client.converse(modelId="us.amazon.nova-lite-v1:0", messages=USER_HELLO)


def test_bad_rule_arguments_are_rejected(fake: FakeBedrock) -> None:
    with pytest.raises(ValueError, match="unknown Bedrock error"):
        fake.fail_next("converse", "NoSuchException")
    with pytest.raises(ValueError, match="unknown operation"):
        fake.fail_next("conversation")
    with pytest.raises(ValueError, match="does not stream"):
        fake.fail_mid_stream(1, operation="converse")
    with pytest.raises(ValueError, match="not a stream exception"):
        fake.fail_mid_stream(1, error="AccessDeniedException")
