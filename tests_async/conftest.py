"""Real aiobotocore clients over HTTP to the local fake Bedrock, in the async venv (.venv-async).

These tests live outside tests/ because aiobotocore pins its own botocore: `make async-check` (run by
`make test`) builds .venv-async from the `async` extra and runs them there.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

import bedrock_budget as bb

# Imported lazily by AsyncLedger.read. Under pytest every bedrock_budget module is rewritten as it is first
# imported (the package is a pytest plugin), and CPython 3.11.7's AST conversion has been seen to fail there
# ("AST constructor recursion depth mismatch") when that happens inside a running loop: import it up front.
import bedrock_budget.reporting.budget_admin
from bedrock_budget.testing import FakeBedrock

# The real services and their helpers are the main suite's (tests/): the same Redis, the same Cluster fixture.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from backends import delete_prefix
from bad_input.conftest import ScriptedServer
from fake_bedrock_fixtures import Records, fake, fake_server, records
from no_skips import pytest_make_collect_report, pytest_runtest_makereport
from service_fixtures import cluster_url, redis_server_binary, redis_url

__all__ = [
    "Records",
    "cluster_url",
    "fake",
    "fake_server",
    "pytest_make_collect_report",
    "pytest_runtest_makereport",
    "records",
    "redis_server_binary",
    "redis_url",
]

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Say something short."}]}]


def client_config(**extra: Any) -> AioConfig:
    # SigV4 with dummy keys, as the fake's own boto3 clients use; one attempt unless a test asks for more.
    options: dict[str, Any] = {"retries": {"total_max_attempts": 1}, "max_pool_connections": 50}
    options.update(extra)
    return AioConfig(**options)


def raw_client(fake: FakeBedrock | str, **config: Any) -> Any:
    """An aiobotocore client context (``async with raw_client(fake) as client``) for the fake Bedrock, or
    for another server given by its URL (in us-east-1)."""
    endpoint, region = (fake, "us-east-1") if isinstance(fake, str) else (fake.endpoint_url, fake.region)
    return get_session().create_client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=client_config(**config),
    )


@asynccontextmanager
async def wrapped(fake: FakeBedrock, records: Records, **options: Any) -> AsyncIterator[Any]:
    """A wrapped client whose records go to ``records`` (and to any ``listeners`` given besides)."""
    async with raw_client(fake) as client:
        yield bb.wrap(client, listeners=[records, *options.pop("listeners", ())], **options)


@pytest.fixture(scope="module")
def module_loop() -> Iterator[asyncio.Runner]:
    """One event loop for a module's tests, so that they can share clients (each takes ~80 ms to make):
    ``run(coroutine, module_loop)``."""
    with asyncio.Runner() as runner:
        yield runner


def open_on(loop: asyncio.Runner, context: Any) -> Iterator[Any]:
    """Enter the async context ``context`` (an aiobotocore client's, say) on ``loop``, yield what it gives,
    and leave it there: the body of a module-scoped fixture."""
    entered = loop.run(context.__aenter__())
    try:
        yield entered
    finally:
        loop.run(context.__aexit__(None, None, None))


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedServer]:
    """The bad-input suite's server that answers with exactly the bytes a test scripts, one per module."""
    server = ScriptedServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def scripted_raw(module_loop: asyncio.Runner, scripted: ScriptedServer) -> Iterator[Any]:
    """An aiobotocore client for the scripted server, without retries, shared by the module's tests."""
    yield from open_on(module_loop, raw_client(scripted.url, read_timeout=5, connect_timeout=2))


@pytest.fixture(scope="module")
def fake_raw(module_loop: asyncio.Runner, fake_server: FakeBedrock) -> Iterator[Any]:
    """An aiobotocore client for the fake Bedrock, shared by the module's tests."""
    yield from open_on(module_loop, raw_client(fake_server))


def cases(names: Iterable[str], *cut_short: str) -> list[Any]:
    """Test parameters for ``names``; those in ``cut_short`` are responses cut short, whose connection
    aiohttp leaves for the collector, which warns about it, wrapped or not: that warning is ignored."""
    leaves = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    return [pytest.param(name, marks=leaves) if name in cut_short else name for name in names]


def run(coro: Any, loop: asyncio.Runner | None = None) -> Any:
    """Run a test's coroutine on a fresh loop (or on ``loop``), then collect what it left behind (abandoned
    streams)."""
    result = asyncio.run(coro) if loop is None else loop.run(coro)
    gc.collect()
    return result


async def converse(client: Any, model: str = f"us.{HAIKU}", **extra: Any) -> Any:
    return await client.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 64}, **extra)


@pytest.fixture(params=["memory", "redis", "cluster"])
def store_uri(request: pytest.FixtureRequest) -> Iterator[str]:
    """A budget store URI of each kind, under a key prefix of the test's own (deleted afterwards)."""
    prefix = f"t-async2-{uuid.uuid4().hex[:12]}:"
    if request.param == "memory":
        yield "memory://"
        return
    base = request.getfixturevalue("redis_url" if request.param == "redis" else "cluster_url")
    yield f"{base}?prefix={prefix}"
    delete_prefix(base, prefix)
