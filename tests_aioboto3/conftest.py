"""aioboto3 clients over HTTP to the local fake Bedrock, in .venv-aioboto3 (.ci/aioboto3-venv.sh).

aioboto3 (15.5, the newest) pins aiobotocore 2.25.1, which pins wrapt 1.x and botocore 1.40: that venv is
what an aioboto3 user has. `make aioboto3-check` (part of `make test`) builds it and runs tests_async there
too; the tests here are the aioboto3 ones (its Session, instrument() on its clients, llama-index).
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aioboto3
import pytest
from aiobotocore.config import AioConfig

import bedrock_budget as bb
from bedrock_budget.testing import FakeBedrock

# The fake Bedrock's fixtures and the no-skip rule are the main suite's (tests/).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_bedrock_fixtures import Records, fake, fake_server, records
from no_skips import pytest_make_collect_report, pytest_runtest_makereport

__all__ = [
    "Records",
    "fake",
    "fake_server",
    "pytest_make_collect_report",
    "pytest_runtest_makereport",
    "records",
]

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Say something short."}]}]


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
