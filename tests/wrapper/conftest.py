from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.testing import FakeBedrock


class Records(list[bb.CallRecord]):
    """A listener that keeps every record."""

    def __call__(self, record: bb.CallRecord) -> None:
        self.append(record)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeBedrock) -> Iterator[FakeBedrock]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture
def records() -> Records:
    return Records()


@pytest.fixture
def raw_client(fake: FakeBedrock) -> Any:
    return fake.client()


@pytest.fixture
def client(raw_client: Any, records: Records) -> Any:
    return bb.wrap(raw_client, listeners=[records])
