"""However many users, apps and model ids go through a listener, the series count stays as configured."""

from __future__ import annotations

import dataclasses
import time

import pytest
from prometheus_client import CollectorRegistry

import bedrock_budget as bb
from bedrock_budget.metrics import PrometheusListener
from bedrock_budget.testing import FakeBedrock, UsageSpec

from .conftest import HAIKU, SONNET, make_record, series

USERS = 100_000
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]


def total_series(registry: CollectorRegistry) -> int:
    return sum(len(family.samples) for family in registry.collect())


def feed_many(listener: PrometheusListener, users: int) -> None:
    known = make_record(model=HAIKU)
    other_known = make_record(model=SONNET)
    bogus = make_record(model="anthropic.claude-typo-v9:0", priced=False)
    replace = dataclasses.replace
    for i in range(users):
        base = (known, other_known, bogus)[i % 3]
        model = base.model_id if i % 3 != 2 else f"acme.model-{i % 1000}"
        listener(replace(base, model_id=model, attribution={"app": f"app-{i % 300}", "user": f"user-{i}"}))


@pytest.mark.parametrize(
    ("options", "max_users"),
    [({}, 0), ({"top_n": 20}, 20), ({"user_labels": [f"user-{i}" for i in range(0, 3000, 3)]}, 1000)],
    ids=["users-off", "top-20", "allow-list-1000"],
)
def test_100k_distinct_users_stay_within_the_configured_series(
    options: dict[str, object], max_users: int
) -> None:
    registry = CollectorRegistry()
    listener = PrometheusListener(registry, app_labels=10, **options)  # type: ignore[arg-type]
    started = time.perf_counter()
    feed_many(listener, USERS)
    elapsed = time.perf_counter() - started

    requests = series(registry, "bedrock_budget_requests_total")
    users = {s.get("user") for s in requests} - {None, "other"}
    apps = {s["app"] for s in requests}
    models = {s["model"] for s in requests}
    assert len(users) <= max_users
    if max_users:
        assert users, "the configured users should get labels"
    assert len(apps) <= 10 + 1
    assert models == {HAIKU, SONNET, "other"}
    user_values = max_users + 1 if max_users else 1
    assert len(requests) <= len(models) * len(apps) * user_values
    # Everything in the registry, histograms and _created samples included, is bounded by the same product.
    per_combination = 4 + 1 + 2 * (15 + 2) + 2 * (13 + 2)  # tokens, cost, two histograms, _created samples
    assert total_series(registry) <= len(requests) * (2 + per_combination) + 200
    assert elapsed < 30, f"{USERS} records took {elapsed:.1f}s"


def test_wrapped_client_against_fake_bedrock(fake: FakeBedrock) -> None:
    registry = CollectorRegistry()
    listener = PrometheusListener(registry, app_labels=5, top_n=5)
    fake.set_usage(HAIKU, UsageSpec(input_tokens=50, output_tokens=10))
    client = bb.wrap(fake.client(), listeners=[listener])
    calls = 150
    for i in range(calls):
        with bb.attribute(user=f"user-{i}", app=f"app-{i % 25}"):
            client.converse(modelId=HAIKU if i % 2 else f"us.{HAIKU}", messages=MESSAGES)
    requests = series(registry, "bedrock_budget_requests_total")
    assert {s["model"] for s in requests} == {HAIKU}
    assert len({s["app"] for s in requests}) <= 6
    assert len({s["user"] for s in requests}) <= 6
    counted = sum(
        registry.get_sample_value("bedrock_budget_requests_total", labels) or 0 for labels in requests
    )
    assert counted == calls
