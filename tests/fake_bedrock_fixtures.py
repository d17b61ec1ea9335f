"""The fake Bedrock and a record-keeping listener, shared by every test directory."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import bedrock_budget as bb
from bedrock_budget.testing import FakeBedrock


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
    """The session's fake, reset before and after; a test fails if the fake itself raised while answering."""
    fake_server.reset()
    yield fake_server
    errors = fake_server.server_errors
    fake_server.reset()
    assert not errors, f"fake Bedrock raised while answering: {errors[0]!r}"


@pytest.fixture
def records() -> Records:
    return Records()
