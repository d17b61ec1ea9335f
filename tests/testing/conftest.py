"""Shared fixtures: one server for the whole package (reset before every test) and real boto3 clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.retries.standard import ExponentialBackoff

from bedrock_budget.testing import FakeBedrock


@pytest.fixture(scope="session")
def server() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeBedrock) -> Iterator[FakeBedrock]:
    server.reset()
    yield server
    errors = server.server_errors
    server.reset()
    assert not errors, f"fake raised while answering: {errors!r}"


@pytest.fixture(scope="session")
def client(server: FakeBedrock) -> Any:
    return server.client()


@pytest.fixture(scope="session")
def single_attempt_client(server: FakeBedrock) -> Any:
    return server.client(config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


@pytest.fixture(autouse=True)
def _no_retry_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore sleeps up to 1 s, then 2 s between throttled attempts; retry tests only count attempts.
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
