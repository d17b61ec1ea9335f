"""Crashed async holders give capacity back: an async process SIGKILLed while its streams hold reservations
(renewed by its loop until then) loses them after the reservation TTL, its settled spend untouched; with
``on_expired_hold="charge"`` their worst case is charged once (the proofs of
tests/faults/test_worker_crash.py, with an aiobotocore worker), on Redis and the Cluster."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from backends import delete_prefix
from bedrock_budget.testing import FakeBedrock
from faults.test_worker_crash import holds_are_charged, holds_come_back


@pytest.fixture(params=["redis", "cluster"])
def service(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A store URI and a key prefix of this test's own, deleted afterwards."""
    uri: str = request.getfixturevalue(f"{request.param}_url")
    prefix = f"t-async-crash-{uuid.uuid4().hex[:12]}:"
    yield uri, prefix
    delete_prefix(uri, prefix)


def test_a_killed_async_worker_gives_its_holds_back_after_the_ttl(
    fake: FakeBedrock, service: tuple[str, str]
) -> None:
    holds_come_back(fake, *service, driver="async")


def test_a_killed_async_workers_holds_are_charged_once_when_the_budget_says_so(
    fake: FakeBedrock, service: tuple[str, str]
) -> None:
    holds_are_charged(fake, *service, driver="async")
