"""A changed limit reaches a fleet of async processes in 2 s: four processes whose aiobotocore clients are
wrapped with ``budgets="store"`` follow a lowered limit and per-value overrides set from the real CLI (the
proof of tests/budgets/test_live_fleet.py, with async workers). On the Cluster only: the published budgets
are read by the follower's thread over the sync store, which the sync proof runs on Redis and the Cluster;
what is async here is the client and its ledger."""

from __future__ import annotations

import uuid

from backends import delete_prefix
from bedrock_budget.stores import from_uri
from bedrock_budget.testing import FakeBedrock
from budgets.test_live_fleet import fleet_follows_the_cli


def test_a_limit_changed_from_the_cli_reaches_every_async_process(
    fake: FakeBedrock, cluster_url: str
) -> None:
    base = cluster_url
    prefix = f"t-async-fleet-{uuid.uuid4().hex[:12]}:"
    store = from_uri(base, prefix=prefix)
    try:
        fleet_follows_the_cli(fake, store, f"{base}?prefix={prefix}", driver="async")
    finally:
        store.close()
        delete_prefix(base, prefix)
