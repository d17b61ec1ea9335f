"""Crashed async holders give capacity back: an async process SIGKILLed while its streams hold reservations
(renewed by its loop until then) loses them after the reservation TTL, its settled spend untouched; with
``on_expired_hold="charge"`` their worst case is charged once (the proofs of
tests/faults/test_worker_crash.py, with an aiobotocore worker)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from backends import delete_prefix
from bedrock_budget.testing import FakeBedrock
from faults.test_worker_crash import holds_are_charged, holds_come_back


@contextmanager
def own_prefix(uri: str) -> Iterator[str]:
    """A key prefix of this test's own behind ``uri``, deleted afterwards."""
    prefix = f"t-async-crash-{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        delete_prefix(uri, prefix)


# One backend each: what is async is the worker (its loop renews the holds until the kill); the store's
# handling of expired holds is the sync store's, proven on every backend by its contract suite.
def test_a_killed_async_worker_gives_its_holds_back_after_the_ttl(fake: FakeBedrock, redis_url: str) -> None:
    with own_prefix(redis_url) as prefix:
        holds_come_back(fake, redis_url, prefix, driver="async")


def test_a_killed_async_workers_holds_are_charged_once_when_the_budget_says_so(
    fake: FakeBedrock, cluster_url: str
) -> None:
    with own_prefix(cluster_url) as prefix:
        holds_are_charged(fake, cluster_url, prefix, driver="async")
