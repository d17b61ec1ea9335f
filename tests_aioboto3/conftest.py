"""aioboto3 clients over HTTP to the local fake Bedrock, in .venv-aioboto3 (.ci/aioboto3-venv.sh).

aioboto3 (15.5, the newest) pins aiobotocore 2.25.1, which pins wrapt 1.x and botocore 1.40: that venv is
what an aioboto3 user has. `make aioboto3-check` (part of `make test`) builds it and runs tests_async there
too; the tests here are the aioboto3 ones (its Session, instrument() on its clients, llama-index).
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from typing import Any

import aioboto3
import pytest
from aiobotocore.config import AioConfig

import bedrock_budget as bb
from bedrock_budget.testing import FakeBedrock

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Say something short."}]}]


class Records(list[bb.CallRecord]):
    """A thread-safe listener that keeps every record."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def __call__(self, record: bb.CallRecord) -> None:
        with self._lock:
            self.append(record)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeBedrock) -> Iterator[FakeBedrock]:
    fake_server.reset()
    yield fake_server
    errors = fake_server.server_errors
    fake_server.reset()
    assert not errors, f"fake Bedrock raised while answering: {errors[0]!r}"


@pytest.fixture
def records() -> Records:
    return Records()


@pytest.fixture(autouse=True)
def _not_instrumented() -> Iterator[None]:
    yield
    bb.uninstrument()


def session(fake: FakeBedrock) -> Any:
    # SigV4 with dummy keys, as the fake's own boto3 clients use.
    return aioboto3.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name=fake.region)


def client(fake: FakeBedrock, service: str = "bedrock-runtime") -> Any:
    """An aioboto3 client context (``async with client(fake) as bedrock``), one attempt per call."""
    config = AioConfig(retries={"total_max_attempts": 1})
    return session(fake).client(service, endpoint_url=fake.endpoint_url, config=config)


def run(coro: Any) -> Any:
    """Run a test's coroutine on a fresh loop, then collect what it left behind (abandoned streams)."""
    result = asyncio.run(coro)
    gc.collect()
    return result


async def converse(bedrock: Any, model: str = f"us.{HAIKU}", **extra: Any) -> Any:
    return await bedrock.converse(
        modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 64}, **extra
    )
