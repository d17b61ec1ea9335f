"""Unknown, malformed and hostile model ids and ARNs.

Without budgets the wrapped client behaves exactly like the unwrapped one: what Bedrock (the fake) or
botocore refuses is refused the same way and recorded as an error; what Bedrock serves but the price table
does not know is recorded ``unpriced`` (never $0). With a dollar budget an unpriceable model is refused
with ``UnknownModelError`` before anything is sent; with a token-only budget it proceeds and its tokens are
counted.
"""

from __future__ import annotations

from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.budgets.enforcement import usage_tokens
from bedrock_budget.testing import FakeBedrock
from fake_bedrock_fixtures import Records

from .conftest import HAIKU, MESSAGES

SERVED_UNPRICED = "anthropic.claude-9-secret-v1:0"
ACCOUNT = "arn:aws:bedrock:us-east-1:123456789012"
MODEL_IDS: list[object] = [
    "nobody.nothing-v1:0",
    SERVED_UNPRICED,
    "",
    " ",
    "x" * 3000,
    "anthropic.claude\nx",
    "ünïcode.model-v1:0",
    "../../etc/passwd",
    "{all}:*",
    "\ud800",
    "us.",
    "global.nobody.x",
    f"{ACCOUNT}:application-inference-profile/abc123",
    f"{ACCOUNT}:provisioned-model/zzz",
    f"{ACCOUNT}:imported-model/zzz",
    f"{ACCOUNT}:custom-model/{HAIKU}/abc",
    "arn:aws:bedrock:us-east-1::foundation-model/",
    "arn:aws:bedrock:::",
    "arn:aws:iam::123:role/x",
    None,
    42,
]


def call(client: Any, model: object) -> str:
    try:
        client.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 16})
    except Exception as exc:
        return type(exc).__name__
    return "ok"


@pytest.fixture
def served(fake: FakeBedrock) -> FakeBedrock:
    fake.map_model(SERVED_UNPRICED, HAIKU)
    return fake


@pytest.mark.parametrize("model", MODEL_IDS, ids=repr)
def test_without_budgets_the_caller_sees_what_it_would_unwrapped(
    served: FakeBedrock, records: Records, model: object
) -> None:
    expected = call(served.client(), model)
    sent = served.request_count
    assert call(bb.wrap(served.client(), listeners=[records]), model) == expected
    assert served.request_count - sent == sent  # the same requests went out
    (record,) = records
    assert record.cost is None
    if expected == "ok":
        assert record.outcome == "ok"
        assert record.unpriced
    else:
        assert (record.outcome, record.error_code) == ("error", expected)


@pytest.mark.parametrize("model", MODEL_IDS, ids=repr)
def test_a_dollar_budget_refuses_before_anything_is_sent(
    served: FakeBedrock, records: Records, model: object
) -> None:
    with Ledger("memory://", [bb.Budget("all", limit_usd="1")]) as ledger:
        client = bb.wrap(served.client(), ledger=ledger, listeners=[records])
        with pytest.raises(bb.UnknownModelError, match="no price known"):
            client.converse(modelId=model, messages=MESSAGES)
        assert served.request_count == 0
        assert [(r.outcome, r.error_code) for r in records] == [("blocked", "UnknownModelError")]
        assert ledger.read("all").reserved_usd == 0


@pytest.mark.parametrize("model", MODEL_IDS, ids=repr)
def test_a_token_budget_counts_what_was_served(served: FakeBedrock, records: Records, model: object) -> None:
    per_model = bb.Budget("per-model", model="*", window="lifetime", limit_tokens="1000000")
    with Ledger("memory://", [per_model]) as ledger:
        outcome = call(bb.wrap(served.client(), ledger=ledger, listeners=[records]), model)
        (record,) = records
        statuses = ledger.status()
        if outcome == "ok":
            (status,) = statuses
            assert status.spent_tokens == sum(usage_tokens(record.usage).values())
            assert record.unpriced
        assert all(s.reserved_tokens == 0 and s.spent_usd == 0 for s in statuses)


def test_application_profile_without_a_resolver_is_recorded_unpriced(
    fake: FakeBedrock, records: Records
) -> None:
    arn = fake.add_inference_profile(HAIKU, regions=["us-east-1"])
    client = bb.wrap(fake.client(), listeners=[records])
    client.converse(modelId=arn, messages=MESSAGES)
    (record,) = records
    assert (record.outcome, record.cost) == ("ok", None)
    assert record.unpriced
    assert record.usage.input_tokens > 0  # tokens are still recorded
    with Ledger("memory://", [bb.Budget("all", limit_usd="1")]) as ledger:
        refused = bb.wrap(fake.client(), ledger=ledger)
        with pytest.raises(bb.UnknownModelError):
            refused.converse(modelId=arn, messages=MESSAGES)
    assert fake.request_count == 1
