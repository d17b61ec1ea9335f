"""Unknown, malformed and hostile model ids and ARNs through aiobotocore clients (the ids of
tests/bad_input/test_unknown_models.py).

Without budgets the wrapped client behaves exactly like the unwrapped one: what Bedrock (the fake) or
botocore refuses is refused the same way and recorded as an error; what Bedrock serves but the price table
does not know is recorded ``unpriced`` (never $0). With a dollar budget an unpriceable model is refused
with ``UnknownModelError`` before anything is sent; with a token-only budget it proceeds and its tokens are
counted.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import bedrock_budget as bb
from bad_input.test_unknown_models import MODEL_IDS, SERVED_UNPRICED
from bedrock_budget.budgets import AsyncLedger, Ledger
from bedrock_budget.budgets.enforcement import usage_tokens
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.testing import FakeBedrock
from conftest import HAIKU, MESSAGES, Records, run


async def call(client: Any, model: object) -> str:
    try:
        await client.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 16})
    except Exception as exc:
        return type(exc).__name__
    return "ok"


@pytest.fixture
def served(fake: FakeBedrock) -> FakeBedrock:
    fake.map_model(SERVED_UNPRICED, HAIKU)
    return fake


# One test per id for the three rules (each a separate test on the sync side): the rules are the sync
# driver's, and one test instead of three keeps 21 ids quick.
@pytest.mark.parametrize("model", MODEL_IDS, ids=repr)
def test_an_unknown_or_hostile_model_id(
    module_loop: asyncio.Runner, served: FakeBedrock, fake_raw: Any, model: object
) -> None:
    async def main() -> None:
        await without_budgets_the_caller_sees_what_it_would_unwrapped(served, fake_raw, model)
        served.clear_requests()
        await a_dollar_budget_refuses_before_anything_is_sent(served, fake_raw, model)
        await a_token_budget_counts_what_was_served(fake_raw, model)

    run(main(), module_loop)


async def without_budgets_the_caller_sees_what_it_would_unwrapped(
    served: FakeBedrock, raw: Any, model: object
) -> None:
    records = Records()
    expected = await call(raw, model)
    sent = served.request_count
    assert await call(bb.wrap(raw, listeners=[records]), model) == expected
    assert served.request_count - sent == sent  # the same requests went out
    (record,) = records
    assert record.cost is None
    if expected == "ok":
        assert record.outcome == "ok"
        assert record.unpriced
    else:
        assert (record.outcome, record.error_code) == ("error", expected)


async def a_dollar_budget_refuses_before_anything_is_sent(
    served: FakeBedrock, raw: Any, model: object
) -> None:
    records = Records()
    ledger = AsyncLedger("memory://", [bb.Budget("all", limit_usd="1")])
    client = bb.wrap(raw, ledger=ledger, listeners=[records])
    with pytest.raises(bb.UnknownModelError, match="no price known"):
        await client.converse(modelId=model, messages=MESSAGES)
    assert served.request_count == 0
    assert [(r.outcome, r.error_code) for r in records] == [("blocked", "UnknownModelError")]
    assert (await ledger.read("all")).reserved_usd == 0
    await ledger.aclose()


async def a_token_budget_counts_what_was_served(raw: Any, model: object) -> None:
    records = Records()
    per_model = bb.Budget("per-model", model="*", window="lifetime", limit_tokens="1000000")
    store = MemoryStore()
    ledger = AsyncLedger(store, [per_model])
    outcome = await call(bb.wrap(raw, ledger=ledger, listeners=[records]), model)
    await ledger.flush()
    (record,) = records
    # Every window of the wildcard budget, listed by a sync ledger reading the same memory store.
    with Ledger(store, [per_model]) as reader:
        statuses = reader.status()
    if outcome == "ok":
        (status,) = statuses
        assert status.spent_tokens == sum(usage_tokens(record.usage).values())
        assert record.unpriced
    assert all(s.reserved_tokens == 0 and s.spent_usd == 0 for s in statuses)
    await ledger.aclose()
    store.close()


def test_application_profile_without_a_resolver_is_recorded_unpriced(
    module_loop: asyncio.Runner, fake: FakeBedrock, fake_raw: Any, records: Records
) -> None:
    arn = fake.add_inference_profile(HAIKU, regions=["us-east-1"])

    async def main() -> None:
        await bb.wrap(fake_raw, listeners=[records]).converse(modelId=arn, messages=MESSAGES)
        (record,) = records
        assert (record.outcome, record.cost) == ("ok", None)
        assert record.unpriced
        assert record.usage.input_tokens > 0  # tokens are still recorded
        ledger = AsyncLedger("memory://", [bb.Budget("all", limit_usd="1")])
        with pytest.raises(bb.UnknownModelError):
            await bb.wrap(fake_raw, ledger=ledger).converse(modelId=arn, messages=MESSAGES)
        await ledger.aclose()

    run(main(), module_loop)
    assert fake.request_count == 1
