"""Exact money on the async path: the same calls through a boto3 client and an aiobotocore client give the
same exact costs (Decimal, with their fractions of a nano-dollar), and the async ledger's store, like the
sync ledger's, records each call rounded up to the nano-dollar, on memory, Redis and the Cluster. (Record by
record parity for every billable operation is tests_async/test_operations.py.)"""

from __future__ import annotations

from decimal import Decimal

import bedrock_budget as bb
from bedrock_budget.budgets import AsyncLedger, Ledger
from bedrock_budget.stores import from_uri
from bedrock_budget.stores.memory import MemoryStore
from bedrock_budget.testing import FakeBedrock, UsageSpec
from conftest import MESSAGES, Records, raw_client, run

NOVA_MICRO = "amazon.nova-micro-v1:0"
CALLS = 9
#: 7 input, 3 output and 3 cache-read tokens of Nova Micro: $0.00000069125, 691.25 nano-dollars.
USAGE = UsageSpec(input_tokens=7, output_tokens=3, cache_read_tokens=3)
EXACT = Decimal("0.00000069125")


def test_async_costs_and_store_spend_equal_the_sync_paths_exactly(fake: FakeBedrock, store_uri: str) -> None:
    fake.set_usage(NOVA_MICRO, USAGE)
    sync_budget = bb.Budget("sync-money", window="lifetime", limit_usd="1")
    async_budget = bb.Budget("async-money", window="lifetime", limit_usd="1")
    store = MemoryStore() if store_uri == "memory://" else from_uri(store_uri)
    sync_records, async_records = Records(), Records()
    sync_ledger = Ledger(store, [sync_budget])
    try:
        client = bb.wrap(fake.client(), ledger=sync_ledger, listeners=[sync_records])
        for _ in range(CALLS):
            client.converse(modelId=NOVA_MICRO, messages=MESSAGES, inferenceConfig={"maxTokens": 16})
        sync_spent = sync_ledger.read("sync-money").spent_usd

        async def main() -> Decimal:
            ledger = AsyncLedger(store if isinstance(store, MemoryStore) else store_uri, [async_budget])
            async with raw_client(fake) as raw:
                client = bb.wrap(raw, ledger=ledger, listeners=[async_records])
                for _ in range(CALLS):
                    await client.converse(
                        modelId=NOVA_MICRO, messages=MESSAGES, inferenceConfig={"maxTokens": 16}
                    )
            spent = (await ledger.read("async-money")).spent_usd
            await ledger.aclose()
            return spent

        async_spent = run(main())
    finally:
        sync_ledger.close()
        store.close()
    assert len(sync_records) == len(async_records) == CALLS
    for sync_record, async_record in zip(sync_records, async_records, strict=True):
        assert sync_record.cost is not None
        assert async_record.cost == sync_record.cost
        assert async_record.cost.total_usd == EXACT  # exact, not rounded
        assert async_record.cost.total_nanos == 692  # what a store adds: rounded up to the nano-dollar
    assert async_spent == sync_spent == Decimal(CALLS * 692) / 10**9
