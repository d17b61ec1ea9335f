"""Bedrock throttling and 5xx answers retried by botocore (standard mode, no back-off sleeps): a call is
priced once, on the response that finally arrived; when the retries run out nothing is charged and the
hold is released. The store is a real Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.pricing import default_price_table
from bedrock_budget.stores import from_uri
from bedrock_budget.testing import FakeBedrock, UsageSpec
from fake_bedrock_fixtures import Records

from .conftest import HAIKU, MESSAGES, NANOS_PER_USD, recorded_nanos

pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("no_backoff")]

RETRYABLE = ["ThrottlingException", "InternalServerException", "ServiceUnavailableException"]
OPERATIONS = ["converse", "invoke_model", "converse_stream", "invoke_model_with_response_stream"]
USAGE = UsageSpec(input_tokens=300, output_tokens=40)
COST = default_price_table().price(HAIKU, bb.Usage(input_tokens=300, output_tokens=40))
INVOKE_BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Write one short line about rivers."}],
    }
)


@pytest.fixture
def ledger(redis_url: str, prefix: str, ledgers: Callable[[Ledger], Ledger]) -> Ledger:
    return ledgers(
        Ledger(from_uri(redis_url, prefix=prefix), [bb.Budget("all", window="lifetime", limit_usd="50")])
    )


def metered(fake: FakeBedrock, ledger: Ledger, records: Records, attempts: int = 3) -> Any:
    fake.set_usage(HAIKU, USAGE)
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts})
    return bb.wrap(fake.client(config=config), ledger=ledger, listeners=[records])


def call(client: Any, operation: str) -> dict[str, Any]:
    """Make one call and read it to the end, as a caller would."""
    if operation == "converse":
        response: dict[str, Any] = client.converse(
            modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64}
        )
    elif operation == "converse_stream":
        response = client.converse_stream(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64})
        list(response["stream"])
    elif operation == "invoke_model":
        response = client.invoke_model(modelId=HAIKU, body=INVOKE_BODY)
        response["body"].read()
    else:
        response = client.invoke_model_with_response_stream(modelId=HAIKU, body=INVOKE_BODY)
        list(response["body"])
    return response


def assert_store_matches(ledger: Ledger, records: Records) -> None:
    status = ledger.read("all")
    assert status.spent_usd * NANOS_PER_USD == recorded_nanos(records)
    assert status.reserved_usd == 0
    assert status.active_reservations == 0


@pytest.mark.parametrize("error", RETRYABLE)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_retried_call_is_priced_once_on_the_final_response(
    fake: FakeBedrock, ledger: Ledger, records: Records, operation: str, error: str
) -> None:
    client = metered(fake, ledger, records)
    fake.fail_next(operation, error, times=2)
    response = call(client, operation)
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert [r.status for r in fake.requests] == [fake.requests[0].status] * 2 + [200]
    (record,) = records
    assert record.outcome == "ok"
    assert record.cost == COST
    assert not record.estimated
    assert_store_matches(ledger, records)
    assert ledger.read("all").spent_usd == COST.total_usd


@pytest.mark.parametrize("error", RETRYABLE)
@pytest.mark.parametrize("operation", ["converse", "converse_stream"])
def test_retries_exhausted_charge_nothing_and_release_the_hold(
    fake: FakeBedrock, ledger: Ledger, records: Records, operation: str, error: str
) -> None:
    client = metered(fake, ledger, records)
    fake.fail_next(operation, error, times=10)
    with pytest.raises(getattr(client.exceptions, error)):
        call(client, operation)
    assert fake.request_count == 3
    (record,) = records
    assert (record.outcome, record.error_code, record.cost) == ("error", error, None)
    status = ledger.read("all")
    assert (status.spent_usd, status.reserved_usd, status.active_reservations) == (0, 0, 0)


def test_a_retry_answered_with_a_client_error_charges_nothing(
    fake: FakeBedrock, ledger: Ledger, records: Records
) -> None:
    client = metered(fake, ledger, records)
    fake.fail_next("converse", "ThrottlingException")
    fake.fail_nth(1, "converse", "ValidationException")  # rules are consulted in order: the 2nd call
    with pytest.raises(client.exceptions.ValidationException):
        call(client, "converse")
    assert fake.request_count == 2
    assert [r.outcome for r in records] == ["error"]
    assert ledger.read("all").spent_usd == 0
    assert ledger.read("all").reserved_usd == 0


def test_random_throttling_under_load(fake: FakeBedrock, ledger: Ledger, records: Records) -> None:
    client = metered(fake, ledger, records, attempts=2)
    fake.fail_randomly(0.45, seed=7, error="ThrottlingException")
    outcomes = {"ok": 0, "error": 0}
    for index in range(30):
        try:
            call(client, OPERATIONS[index % len(OPERATIONS)])
            outcomes["ok"] += 1
        except client.exceptions.ThrottlingException:
            outcomes["error"] += 1
    # The seed gives both.
    assert outcomes["ok"]
    assert outcomes["error"]
    assert len(records) == 30
    assert sum(r.outcome == "ok" for r in records) == outcomes["ok"]
    assert all(r.cost == COST for r in records if r.outcome == "ok")
    assert_store_matches(ledger, records)
    assert ledger.read("all").spent_usd == COST.total_usd * outcomes["ok"]
