"""Async calls lacking the key a "*" budget needs: pooled under "(none)" at the budget's limit, refused
before any request, or (only when asked) skipped — and counted in the metric whatever the policy (the sync
proof is tests/budgets/test_unattributed.py)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import bedrock_budget as bb
from bedrock_budget.budgets import AsyncLedger
from bedrock_budget.errors import UnattributedCallError
from bedrock_budget.metrics import PrometheusListener
from bedrock_budget.testing import FakeBedrock, UsageSpec
from budgets.test_unattributed import per_user, unattributed_counted
from conftest import HAIKU, Records, converse, run, wrapped


def ledger_of(client: Any) -> AsyncLedger:
    ledger = client.bedrock_budget_meter.guard.ledger
    assert isinstance(ledger, AsyncLedger)
    return ledger


def test_forgotten_attribution_is_pooled_under_the_per_user_cap(
    fake: FakeBedrock, records: Records, store_uri: str
) -> None:
    # 20 calls at once without bb.attribute, each costing $0.000056: together $0.00112, over the $0.001 cap.
    fake.set_usage(HAIKU, UsageSpec(input_tokens=20, output_tokens=10))
    limit = Decimal("0.001")
    registry = CollectorRegistry()
    budget = bb.Budget("per-user", scope={"user": "*"}, limit_usd=limit)
    refused: list[dict[str, str]] = []

    async def main() -> None:
        listeners = {"listeners": [PrometheusListener(registry=registry)]}
        async with wrapped(fake, records, store=store_uri, budgets=[budget], **listeners) as client:
            ledger = ledger_of(client)

            async def one() -> None:
                try:
                    await client.converse(
                        modelId=HAIKU,
                        messages=[{"role": "user", "content": [{"text": "Write one line."}]}],
                        inferenceConfig={"maxTokens": 50},
                    )
                except bb.BudgetExceededError as exc:
                    refused.append(dict(exc.scope))

            await asyncio.gather(*(one() for _ in range(20)))
            pooled = await ledger.read("per-user", {"user": "(none)"})
            spent = sum((r.cost_usd for r in records if r.outcome == "ok"), Decimal(0))
            assert 0 < spent <= limit
            assert pooled.spent_usd == spent
            assert (pooled.reserved_usd, pooled.active_reservations) == (0, 0)
            assert ledger.unattributed.totals() == {("per-user", "pool"): 20}
            await ledger.aclose()

    run(main())
    admitted = 20 - len(refused)
    assert 0 < admitted < 20
    assert refused == [{"user": "(none)"}] * (20 - admitted)
    assert fake.request_count == admitted
    assert unattributed_counted(registry, "pool") == 20


def test_refused_unattributed_calls_never_reach_bedrock(
    fake: FakeBedrock, records: Records, store_uri: str
) -> None:
    registry = CollectorRegistry()
    company = bb.Budget("company", limit_usd="100")

    async def main() -> None:
        listeners = {"listeners": [PrometheusListener(registry=registry)]}
        budgets = [per_user("refuse"), company]
        async with wrapped(fake, records, store=store_uri, budgets=budgets, **listeners) as client:
            ledger = ledger_of(client)
            for _ in range(3):
                with pytest.raises(UnattributedCallError) as caught:
                    await converse(client)
                assert caught.value.missing == ("user",)
            with bb.attribute(app="batch"), pytest.raises(UnattributedCallError):  # other keys do not help
                await converse(client)
            assert fake.request_count == 0
            # Nothing was held against the refusing budget or the others.
            assert (await ledger.read("company")).reserved_usd == 0
            with bb.attribute(user="u1"):
                await converse(client)
            assert fake.request_count == 1
            assert (await ledger.read("company")).spent_usd > 0
            assert ledger.unattributed.totals() == {("per-user", "refuse"): 4}
            await ledger.aclose()

    run(main())
    assert [(r.outcome, r.blocked_by, r.error_code) for r in records[:4]] == [
        ("blocked", "per-user", "UnattributedCallError")
    ] * 4
    assert records[4].outcome == "ok"
    assert unattributed_counted(registry, "refuse") == 4


def test_skipped_unattributed_calls_are_uncapped_but_counted(
    fake: FakeBedrock, records: Records, store_uri: str
) -> None:
    registry = CollectorRegistry()
    # Far below one call's cost: only a skipped budget lets calls through.
    tiny = bb.Budget("per-user", scope={"user": "*"}, limit_usd="0.0000001", on_unattributed="skip")

    async def main() -> None:
        listeners = {"listeners": [PrometheusListener(registry=registry)]}
        async with wrapped(fake, records, store=store_uri, budgets=[tiny], **listeners) as client:
            ledger = ledger_of(client)
            await asyncio.gather(*(converse(client) for _ in range(5)))
            assert (await ledger.read("per-user", {"user": "(none)"})).spent_usd == 0
            with bb.attribute(user="u1"), pytest.raises(bb.BudgetExceededError):
                await converse(client)  # an attributed user is capped as ever
            assert ledger.unattributed.totals() == {("per-user", "skip"): 5}
            await ledger.aclose()

    run(main())
    assert fake.request_count == 5
    assert [r.outcome for r in records] == ["ok"] * 5 + ["blocked"]
    assert unattributed_counted(registry, "skip") == 5
