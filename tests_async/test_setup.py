"""instrument() for aiobotocore, budget options on async clients, and the dependency check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiobotocore
import pytest
from aiobotocore.session import get_session

import bedrock_budget as bb
from bedrock_budget.budgets import AsyncLedger
from bedrock_budget.dependencies import require
from bedrock_budget.errors import DependencyVersionError
from bedrock_budget.testing import FakeBedrock, UsageSpec
from bedrock_budget.wrapper.async_proxy import AsyncBudgetedClient
from conftest import HAIKU, MESSAGES, Records, client_config, converse, raw_client, run

DAILY = bb.Budget(name="daily", scope={}, window="day", timezone="UTC", limit_usd="1.00", action="block")


@pytest.fixture(autouse=True)
def _not_instrumented() -> Iterator[None]:
    yield
    bb.uninstrument()


def create(fake: FakeBedrock, service: str = "bedrock-runtime") -> Any:
    return get_session().create_client(
        service,
        endpoint_url=fake.endpoint_url,
        region_name=fake.region,
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=client_config(),
    )


def test_instrument_meters_clients_created_afterwards(fake: FakeBedrock, records: Records) -> None:
    async def main() -> None:
        async with create(fake) as before:
            bb.instrument(listeners=[records])
            bb.instrument(listeners=[records])  # again: replaces, never stacks
            async with create(fake) as client, create(fake, "s3") as s3:
                assert type(client) is AsyncBudgetedClient
                assert type(s3) is not AsyncBudgetedClient
                await converse(client)
                assert len(records) == 1
                # wrapping an instrumented client replaces its configuration
                other = Records()
                await converse(bb.wrap(client, listeners=[other]))
                assert (len(records), len(other)) == (1, 1)
                await converse(before)  # created before instrument(): not metered
                assert len(records) == 1
                bb.uninstrument()
                async with create(fake) as after:
                    assert type(after) is not AsyncBudgetedClient
                    await converse(after)
                await converse(client)  # still metered
        assert len(records) == 2

    run(main())


def test_wrap_with_budget_options_builds_an_async_budget_layer(fake: FakeBedrock) -> None:
    async def main() -> None:
        async with raw_client(fake) as client:
            for options in ({"budgets": [DAILY]}, {"store": "memory://"}, {"on_store_error": "allow"}):
                wrapped = bb.wrap(client, **options)
                ledger = wrapped.bedrock_budget_meter.guard.ledger
                assert isinstance(ledger, AsyncLedger)
                await converse(wrapped)
                await ledger.aclose()

    run(main())
    assert fake.request_count == 3


def test_instrument_with_budgets_holds_sync_and_async_clients_to_one_budget(fake: FakeBedrock) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=12, output_tokens=30))
    small = bb.Budget(name="small", limit_usd="0.002")
    bb.instrument(budgets=[small])
    sync_client = fake.client()
    assert type(sync_client).__name__ == "BudgetedClient"
    sync_calls = 0
    refused = None
    for _ in range(100):
        try:
            sync_client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64})
        except bb.BudgetExceededError as exc:
            refused = exc
            break
        sync_calls += 1
    assert refused is not None
    assert sync_calls > 0

    async def main() -> None:
        async with create(fake) as client:
            assert isinstance(client, AsyncBudgetedClient)
            # The memory store the sync clients spent from: the budget is exhausted for async calls too.
            with pytest.raises(bb.BudgetExceededError):
                await converse(client)

    run(main())
    assert fake.request_count == sync_calls


def test_aiobotocore_out_of_range_is_a_typed_error(
    fake: FakeBedrock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aiobotocore, "__version__", "2.25.1")
    require.cache_clear()
    try:

        async def main() -> None:
            async with raw_client(fake) as client:
                with pytest.raises(DependencyVersionError) as caught:
                    bb.wrap(client)
                error = caught.value
                assert (error.package, error.found, error.needed) == ("aiobotocore", "2.25.1", ">=3.0,<4")
                assert "bedrock-budget[async]" in str(error)

        run(main())
        with pytest.raises(DependencyVersionError, match="aiobotocore"):
            bb.instrument()
    finally:
        require.cache_clear()


def test_wrapping_the_create_client_context_says_what_to_wrap(fake: FakeBedrock) -> None:
    context = create(fake)
    with pytest.raises(bb.ConfigurationError, match=r"async with session\.create_client"):
        bb.wrap(context)
    context._coro.close()  # never entered: nothing was created
