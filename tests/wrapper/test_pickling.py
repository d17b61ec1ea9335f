"""Call records and budgets cross process boundaries: a multiprocessing queue, a worker pool's arguments."""

from __future__ import annotations

import multiprocessing
import pickle
from decimal import Decimal
from typing import Any

import bedrock_budget as bb
from bedrock_budget.testing import FakeBedrock, UsageSpec
from fake_bedrock_fixtures import Records

HAIKU_45 = "anthropic.claude-haiku-4-5-20251001-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Say something short."}]}]


def _describe(record: bb.CallRecord, budget: bb.Budget) -> tuple[Any, ...]:
    # Runs in a spawned interpreter: what it sees is what unpickling rebuilt.
    assert record.cost is not None
    return (
        record.model_id,
        record.cost.total_usd,
        [(line.dimension, line.quantity, line.usd) for line in record.cost.lines],
        record.as_dict(),
        budget.name,
        budget.limit_nanos,
        dict(budget.weight_milli),
        budget.window.timezone,
        budget.downgrade_to,
    )


def test_a_record_and_a_budget_survive_a_trip_to_another_process(
    client: Any, records: Records, fake: FakeBedrock
) -> None:
    fake.set_usage(
        HAIKU_45,
        UsageSpec(input_tokens=1000, output_tokens=200, cache_read_tokens=3000, cache_write_tokens=400),
    )
    with bb.attribute(user="u-17"):
        client.converse(modelId=f"us.{HAIKU_45}", messages=MESSAGES, inferenceConfig={"maxTokens": 64})
    (record,) = records
    budget = bb.Budget(
        "per-user",
        scope={"user": "*"},
        window="month",
        timezone="Europe/Berlin",
        limit_usd="12.5",
        limit_tokens=50_000,
        token_weights={"cache_read": "0.1"},
        thresholds=[25, 75],
        action="downgrade",
        downgrade_to="amazon.nova-micro-v1:0",
        model_family="anthropic",
    )
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        seen = pool.apply(_describe, (record, budget))
    assert record.cost is not None
    assert seen == _describe(record, budget)
    assert seen[1] > Decimal(0)
    assert {line[0] for line in seen[2]} >= {"input_tokens", "output_tokens", "cache_read_tokens"}


def test_an_unpickled_budget_is_an_equal_budget_that_weighs_alike() -> None:
    budget = bb.Budget("team", scope={"team": "search"}, limit_tokens="1000.5", token_weights={"output": 3})
    copy = pickle.loads(pickle.dumps(budget))
    assert copy == budget
    assert copy.weigh({"input": 10, "output": 5}) == budget.weigh({"input": 10, "output": 5}) == 25_000
