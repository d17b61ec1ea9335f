"""instrument() for aiobotocore, the refusal of budgets on async clients, and the dependency check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiobotocore
import pytest
from aiobotocore.session import get_session

import bedrock_budget as bb
from bedrock_budget.dependencies import require
from bedrock_budget.errors import DependencyVersionError
from bedrock_budget.testing import FakeBedrock
from bedrock_budget.wrapper.async_proxy import AsyncBudgetedClient
from conftest import Records, client_config, converse, raw_client, run

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


def test_wrap_with_budgets_is_refused(fake: FakeBedrock) -> None:
    async def main() -> None:
        async with raw_client(fake) as client:
            for options in (
                {"budgets": [DAILY]},
                {"store": "memory://"},
                {"count_tokens": True},
                {"on_store_error": "allow"},
            ):
                with pytest.raises(bb.ConfigurationError, match="not enforced on async") as caught:
                    bb.wrap(client, **options)
                assert next(iter(options)) in str(caught.value)
            await converse(bb.wrap(client))  # without budget options it meters

    run(main())
    assert fake.request_count == 1


def test_instrument_with_budgets_refuses_async_clients_not_sync_ones(fake: FakeBedrock) -> None:
    bb.instrument(budgets=[DAILY])
    sync_client = fake.client()
    assert type(sync_client).__name__ == "BudgetedClient"

    async def main() -> None:
        with pytest.raises(bb.ConfigurationError, match="not enforced on async"):
            async with create(fake):
                pass

    run(main())
    assert fake.request_count == 0


def test_aiobotocore_out_of_range_is_a_typed_error(
    fake: FakeBedrock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aiobotocore, "__version__", "2.24.2")
    require.cache_clear()
    try:

        async def main() -> None:
            async with raw_client(fake) as client:
                with pytest.raises(DependencyVersionError) as caught:
                    bb.wrap(client)
                error = caught.value
                assert (error.package, error.found, error.needed) == ("aiobotocore", "2.24.2", ">=2.25.1,<4")
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
