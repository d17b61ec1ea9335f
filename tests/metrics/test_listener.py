"""PrometheusListener against an injected registry: values, labels and their bounds."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry

import bedrock_budget as bb
from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.metrics import PrometheusListener, store_metrics
from bedrock_budget.metrics.labels import CappedLabels, ModelLabels, TopUsers
from bedrock_budget.pricing import default_price_table
from bedrock_budget.testing import FakeBedrock, UsageSpec
from bedrock_budget.usage import Usage

from .conftest import HAIKU, SONNET, make_record, sample, series, with_budgets


def test_import_creates_nothing_and_loads_no_prometheus_client() -> None:
    code = (
        "import sys, bedrock_budget, bedrock_budget.metrics as m; "
        "assert 'prometheus_client' not in sys.modules, 'loaded at import'; "
        "m.PrometheusListener; "
        "assert 'prometheus_client' not in sys.modules, 'loaded by attribute access'; "
        "m.PrometheusListener(); "
        "assert 'prometheus_client' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_values_after_a_few_records(registry: CollectorRegistry) -> None:
    listener = PrometheusListener(registry)
    usage = Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=500, cache_write_tokens=300)
    records = [make_record(usage=usage) for _ in range(3)]
    records.append(make_record(usage=usage, operation="ConverseStream", time_to_first_token_seconds=0.2))
    for record in records:
        listener(record)

    labels = {"operation": "Converse", "model": HAIKU, "app": "chat", "outcome": "ok"}
    assert sample(registry, "bedrock_budget_requests_total", **labels) == 3
    assert sample(registry, "bedrock_budget_requests_total", **{**labels, "operation": "ConverseStream"}) == 1
    for kind, per_call in (("input", 1000), ("output", 200), ("cache_read", 500), ("cache_write", 300)):
        assert (
            sample(registry, "bedrock_budget_tokens_total", model=HAIKU, app="chat", type=kind)
            == 4 * per_call
        )
    expected = float(sum((r.cost_usd for r in records), start=records[0].cost_usd * 0))
    assert sample(registry, "bedrock_budget_cost_usd_total", model=HAIKU, app="chat") == pytest.approx(
        expected
    )
    assert (
        sample(registry, "bedrock_budget_request_duration_seconds_count", operation="Converse", model=HAIKU)
        == 3
    )
    assert sample(
        registry, "bedrock_budget_request_duration_seconds_sum", operation="Converse", model=HAIKU
    ) == (pytest.approx(3 * 0.42))
    ttft = {"operation": "ConverseStream", "model": HAIKU}
    assert sample(registry, "bedrock_budget_time_to_first_token_seconds_count", **ttft) == 1
    assert sample(registry, "bedrock_budget_time_to_first_token_seconds_bucket", le="0.25", **ttft) == 1
    assert (
        sample(
            registry, "bedrock_budget_time_to_first_token_seconds_count", operation="Converse", model=HAIKU
        )
        == 0
    )


def test_cost_is_exact_decimal_until_the_boundary(registry: CollectorRegistry) -> None:
    listener = PrometheusListener(registry)
    record = make_record(usage=Usage(input_tokens=7, output_tokens=3))
    assert record.cost is not None
    listener(record)
    assert sample(registry, "bedrock_budget_cost_usd_total", model=HAIKU, app="chat") == float(
        record.cost.total_usd
    )


def test_model_labels_are_canonical_or_other(registry: CollectorRegistry) -> None:
    listener = PrometheusListener(registry)
    listener(make_record(model=SONNET))
    listener(make_record(model="anthropic.claude-nonexistent-v1:0", priced=False))
    listener(make_record(model="arn:aws:bedrock:us-east-1:123456789012:custom-model/x.y/abc", priced=False))
    listener(make_record(model=None, operation="ApplyGuardrail", priced=False, unpriced=None))
    models = {s["model"] for s in series(registry, "bedrock_budget_requests_total")}
    assert models == {SONNET, "other", "none"}
    assert sample(registry, "bedrock_budget_unpriced_total", model="other", reason="unknown_model") == 2


def test_unpriced_model_in_price_table_keeps_its_label(registry: CollectorRegistry) -> None:
    listener = PrometheusListener(registry)
    listener(make_record(model=HAIKU, priced=False, unpriced="image size 9999x9999 has no price"))
    assert sample(registry, "bedrock_budget_unpriced_total", model=HAIKU, reason="unsupported") == 1


def test_model_version_alias_maps_to_the_canonical_id() -> None:
    labels = ModelLabels(default_price_table())
    spec = default_price_table().find(HAIKU)
    assert spec is not None
    assert labels(HAIKU) == spec.id
    assert labels("not-a-model") == "other"
    assert labels(None) == "none"


def test_app_labels_are_capped_and_overflow_is_counted(registry: CollectorRegistry) -> None:
    listener = PrometheusListener(registry, app_labels=2)
    for app in ("a", "b", "c", "d", "a", None):
        listener(make_record(app=app))
    apps = sorted(s["app"] for s in series(registry, "bedrock_budget_requests_total"))
    assert apps == ["a", "b", "none", "other"]
    assert (
        sample(
            registry,
            "bedrock_budget_requests_total",
            operation="Converse",
            model=HAIKU,
            app="other",
            outcome="ok",
        )
        == 2
    )
    assert sample(registry, "bedrock_budget_label_overflow_total", label="app") == 2


def test_app_allow_list(registry: CollectorRegistry) -> None:
    listener = PrometheusListener(registry, app_labels=["search"])
    listener(make_record(app="chat"))
    listener(make_record(app="search"))
    assert sorted(s["app"] for s in series(registry, "bedrock_budget_cost_usd_total")) == ["other", "search"]


def test_user_labels_are_off_by_default(registry: CollectorRegistry) -> None:
    listener = PrometheusListener(registry)
    listener(make_record(user="alice"))
    for family in registry.collect():
        for s in family.samples:
            assert "user" not in s.labels
            assert "alice" not in s.labels.values()


def test_user_allow_list(registry: CollectorRegistry) -> None:
    listener = PrometheusListener(registry, user_labels=["alice"])
    for user in ("alice", "bob", None):
        listener(make_record(user=user))
    assert sorted(s["user"] for s in series(registry, "bedrock_budget_requests_total")) == [
        "alice",
        "none",
        "other",
    ]
    assert sample(registry, "bedrock_budget_label_overflow_total", label="user") == 1


def test_top_n_labels_the_heaviest_spenders_only(registry: CollectorRegistry) -> None:
    listener = PrometheusListener(registry, user_labels=True, top_n=2)
    heavy = Usage(input_tokens=1_000_000, output_tokens=100_000)
    for i in range(3000):
        listener(make_record(user=f"light-{i % 500}"))
        if i % 10 == 0:
            listener(make_record(user="whale", usage=heavy))
            listener(make_record(user="orca", usage=heavy))
    users = {s["user"] for s in series(registry, "bedrock_budget_cost_usd_total")}
    assert users == {"whale", "orca", "other"}


def test_top_users_policy_never_exceeds_n() -> None:
    policy = TopUsers(5, sketch_size=100, rank_every=50)
    labels = {policy(f"user-{i % 7919}", 1 + i % 13) for i in range(50_000)}
    assert policy.admitted <= 5
    assert len(labels - {"other"}) <= 5


def test_user_labels_true_needs_top_n() -> None:
    with pytest.raises(bb.ConfigurationError, match="top_n"):
        PrometheusListener(CollectorRegistry(), user_labels=True)
    with pytest.raises(bb.ConfigurationError, match="not both"):
        PrometheusListener(CollectorRegistry(), user_labels=["a"], top_n=3)
    with pytest.raises(bb.ConfigurationError, match="list of user ids"):
        PrometheusListener(CollectorRegistry(), user_labels="alice")
    with pytest.raises(bb.ConfigurationError):
        PrometheusListener(CollectorRegistry(), app_labels=-1)


def test_blocked_downgraded_and_warned_by_budget(registry: CollectorRegistry) -> None:
    listener = PrometheusListener(registry)
    for budget in ("chat-daily", "org-monthly", None):
        listener(
            make_record(outcome="blocked", usage=Usage(), priced=False, unpriced=None, blocked_by=budget)
        )
    listener(with_budgets(make_record(downgraded_from=SONNET), downgraded_by="chat-daily"))
    listener(make_record(downgraded_from=SONNET))
    listener(make_record(budget_warnings=("shadow-a", "shadow-b")))

    assert sample(registry, "bedrock_budget_blocked_total", budget="chat-daily") == 1
    assert sample(registry, "bedrock_budget_blocked_total", budget="org-monthly") == 1
    # Refused for another reason (store down under "deny", unpriceable model): no budget to name.
    assert sample(registry, "bedrock_budget_blocked_total", budget="unknown") == 1
    assert sample(registry, "bedrock_budget_downgraded_total", budget="chat-daily") == 1
    assert sample(registry, "bedrock_budget_downgraded_total", budget="unknown") == 1
    assert sample(registry, "bedrock_budget_budget_warnings_total", budget="shadow-a") == 1
    assert sample(registry, "bedrock_budget_budget_warnings_total", budget="shadow-b") == 1
    outcome = {"operation": "Converse", "model": HAIKU, "app": "chat"}
    assert sample(registry, "bedrock_budget_requests_total", outcome="blocked", **outcome) == 3
    # Blocked calls never reached Bedrock: they must not drag latency percentiles towards zero.
    duration = {"operation": "Converse", "model": HAIKU}
    assert sample(registry, "bedrock_budget_request_duration_seconds_count", **duration) == 3


def test_budget_events_through_a_wrapped_client(registry: CollectorRegistry, fake: FakeBedrock) -> None:
    listener = PrometheusListener(registry)
    fake.set_usage(HAIKU, UsageSpec(input_tokens=100, output_tokens=10))
    fake.set_usage(SONNET, UsageSpec(input_tokens=100, output_tokens=10))
    budgets = [
        Budget("intern-cap", scope={"app": "intern"}, limit_usd="0.000001"),
        Budget("batch-sonnet", scope={"app": "batch"}, model=SONNET, limit_usd="0.000001", action="downgrade",
               downgrade_to=HAIKU),
        Budget("search-shadow", scope={"app": "search"}, limit_usd="0.000001", action="warn"),
    ]  # fmt: skip
    client = bb.wrap(fake.client(), listeners=[listener], budgets=budgets)
    for app, model in (("intern", HAIKU), ("batch", SONNET), ("search", HAIKU)):
        with bb.attribute(app=app), contextlib.suppress(bb.BudgetExceededError):
            client.converse(modelId=model, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert sample(registry, "bedrock_budget_blocked_total", budget="intern-cap") == 1
    assert sample(registry, "bedrock_budget_downgraded_total", budget="batch-sonnet") == 1
    assert sample(registry, "bedrock_budget_budget_warnings_total", budget="search-shadow") == 1
    blocked = {"operation": "Converse", "model": HAIKU, "app": "intern", "outcome": "blocked"}
    assert sample(registry, "bedrock_budget_requests_total", **blocked) == 1
    assert (
        sample(
            registry,
            "bedrock_budget_requests_total",
            operation="Converse",
            model=HAIKU,
            app="batch",
            outcome="ok",
        )
        == 1
    )


def test_budget_labels_are_capped(registry: CollectorRegistry) -> None:
    listener = PrometheusListener(registry, budget_labels=3)
    listener(make_record(budget_warnings=tuple(f"b{i}" for i in range(10))))
    assert sorted(s["budget"] for s in series(registry, "bedrock_budget_budget_warnings_total")) == [
        "b0",
        "b1",
        "b2",
        "other",
    ]


def test_store_metrics_api(registry: CollectorRegistry) -> None:
    listener = PrometheusListener(registry)
    hooks = listener.store_metrics
    assert hooks is store_metrics(registry)
    hooks.error("settle", "unavailable")
    hooks.error("settle", "unavailable")
    hooks.error("made-up-op", "made-up-kind")
    hooks.journal(depth=7, dropped=2)
    hooks.journal(depth=3)
    assert sample(registry, "bedrock_budget_store_errors_total", operation="settle", kind="unavailable") == 2
    assert sample(registry, "bedrock_budget_store_errors_total", operation="other", kind="error") == 1
    assert sample(registry, "bedrock_budget_journal_entries") == 3
    assert sample(registry, "bedrock_budget_journal_dropped_total") == 2


def test_listeners_on_one_registry_share_metrics(registry: CollectorRegistry) -> None:
    first = PrometheusListener(registry, app_labels=1)
    second = PrometheusListener(registry, app_labels=1)
    first(make_record(app="a"))
    second(make_record(app="b"))
    # One shared cap: the second listener cannot admit an app of its own.
    assert sorted(s["app"] for s in series(registry, "bedrock_budget_cost_usd_total")) == ["a", "other"]
    with pytest.raises(bb.ConfigurationError, match="other label settings"):
        PrometheusListener(registry, app_labels=5)


def test_default_registry_is_the_global_one() -> None:
    from prometheus_client import REGISTRY

    listener = PrometheusListener()
    before = sample(
        REGISTRY, "bedrock_budget_requests_total", operation="Converse", model=HAIKU, app="g", outcome="ok"
    )
    listener(make_record(app="g"))
    after = sample(
        REGISTRY, "bedrock_budget_requests_total", operation="Converse", model=HAIKU, app="g", outcome="ok"
    )
    assert after == before + 1


def test_capped_labels_reject_bad_allow_lists() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        CappedLabels(["ok", ""])
    assert CappedLabels(0)("x") == "other"


def test_lease_metrics_through_a_wrapped_client(registry: CollectorRegistry, fake: FakeBedrock) -> None:
    from bedrock_budget.budgets import Ledger
    from bedrock_budget.stores.memory import MemoryStore

    listener = PrometheusListener(registry)
    fake.set_usage(HAIKU, UsageSpec(input_tokens=100, output_tokens=10))
    budgets = [
        Budget("org", limit_usd="10"),
        Budget("per-user", scope={"user": "*"}, limit_usd="10"),
        Budget("side-project", scope={"app": "side"}, limit_usd="1"),
    ]
    store = MemoryStore()
    ledger = Ledger(store, budgets, lease_fraction=0.01)
    client = bb.wrap(fake.client(), listeners=[listener], ledger=ledger)
    messages = [{"role": "user", "content": [{"text": "hi"}]}]
    for user in ("u1", "u1", "u1", "u2"):
        with bb.attribute(user=user, app="chat"):
            client.converse(modelId=HAIKU, messages=messages, inferenceConfig={"maxTokens": 64})
    # One request leased org and u1's budget, a second one u2's; u1's later calls needed none.
    assert sample(registry, "bedrock_budget_lease_requests_total", outcome="granted") == 2
    assert sample(registry, "bedrock_budget_lease_requests_total", outcome="refused") == 0
    assert sample(registry, "bedrock_budget_leases") == 3
    # Another process has spent all but half a cent of the side project's dollar: its 1 % lease no longer
    # fits, so the request is refused and the call, which does fit, takes the ordinary path.
    other = Ledger(store, budgets)
    held = other.reserve({"app": "side"}, HAIKU, "anthropic", 995_000_000, {})
    other.settle(held, 995_000_000, {})
    with bb.attribute(user="u1", app="side"):
        client.converse(modelId=HAIKU, messages=messages, inferenceConfig={"maxTokens": 64})
    assert sample(registry, "bedrock_budget_lease_requests_total", outcome="refused") == 1
    assert fake.request_count == 5
    ledger.close()
    assert ledger.leases_live == 0


def test_store_metrics_leases_api(registry: CollectorRegistry) -> None:
    hooks = PrometheusListener(registry).store_metrics
    hooks.leases(live=4, taken=3, refused=1)
    hooks.leases(live=2, taken=1)
    assert sample(registry, "bedrock_budget_leases") == 2
    assert sample(registry, "bedrock_budget_lease_requests_total", outcome="granted") == 4
    assert sample(registry, "bedrock_budget_lease_requests_total", outcome="refused") == 1


def test_calls_that_cost_more_than_their_hold_are_counted_logged_and_exported(
    registry: CollectorRegistry, fake: FakeBedrock, caplog: pytest.LogCaptureFixture
) -> None:
    listener = PrometheusListener(registry)
    # The fake bills far more input than the request holds (a template the bound does not know, say):
    # 50,000 input tokens for a two-byte prompt.
    fake.set_usage(HAIKU, UsageSpec(input_tokens=50_000, output_tokens=5))
    fake.set_usage(SONNET, UsageSpec(input_tokens=1, output_tokens=5))
    budgets = [Budget("team", limit_usd="10"), Budget("tokens", limit_tokens=10_000_000)]
    records: list[bb.CallRecord] = []
    client = bb.wrap(fake.client(), listeners=[listener, records.append], ledger=Ledger("memory://", budgets))
    messages = [{"role": "user", "content": [{"text": "hi"}]}]
    with caplog.at_level("WARNING", logger="bedrock_budget.ledger"):
        for _ in range(3):
            client.converse(modelId=HAIKU, messages=messages, inferenceConfig={"maxTokens": 5})
        client.converse(modelId=SONNET, messages=messages, inferenceConfig={"maxTokens": 5})
    table = default_price_table()
    hold = table.price(HAIKU, Usage(input_tokens=2 + 19 + 128 + 16, output_tokens=5)).total_nanos
    cost = table.price(HAIKU, Usage(input_tokens=50_000, output_tokens=5)).total_nanos
    assert [r.cost.total_nanos for r in records[:3] if r.cost is not None] == [cost] * 3
    for budget in ("team", "tokens"):
        assert sample(registry, "bedrock_budget_reservation_exceeded_total", budget=budget) == 3
        excess = sample(registry, "bedrock_budget_reservation_excess_usd_total", budget=budget)
        assert excess == pytest.approx(3 * (cost - hold) / 1e9)
    # The call that stayed within its hold is not counted; the warning names the model once.
    warnings = [r.getMessage() for r in caplog.records if "cost more than its reservation" in r.getMessage()]
    assert len(warnings) == 1
    assert HAIKU in warnings[0]


def test_store_metrics_renewals_and_journal_file_api(registry: CollectorRegistry) -> None:
    hooks = PrometheusListener(registry).store_metrics
    hooks.renewals(renewed=3, failed=1)
    hooks.renewals(renewed=2, overdue=1)
    hooks.journal(depth=0, file_errors=2)
    assert sample(registry, "bedrock_budget_hold_renewals_total", outcome="renewed") == 5
    assert sample(registry, "bedrock_budget_hold_renewals_total", outcome="failed") == 1
    assert sample(registry, "bedrock_budget_overdue_calls_total") == 1
    assert sample(registry, "bedrock_budget_journal_file_errors_total") == 2


def test_a_call_longer_than_the_reservation_ttl_shows_its_renewals(
    registry: CollectorRegistry, fake: FakeBedrock
) -> None:
    # A stream that takes 2.5 s against a 1 s TTL: its process renews the hold several times meanwhile.
    fake.set_usage(HAIKU, UsageSpec(input_tokens=10, output_tokens=5))
    fake.configure(HAIKU, latency=2.5, stream_deltas=3)
    client = bb.wrap(
        fake.client(),
        listeners=[PrometheusListener(registry)],
        budgets=[Budget("team", limit_usd="10")],
        reservation_ttl=1.0,
    )
    messages = [{"role": "user", "content": [{"text": "hi"}]}]
    response = client.converse_stream(modelId=HAIKU, messages=messages, inferenceConfig={"maxTokens": 5})
    assert sum(1 for _ in response["stream"]) > 0
    assert sample(registry, "bedrock_budget_hold_renewals_total", outcome="renewed") >= 2
    assert sample(registry, "bedrock_budget_hold_renewals_total", outcome="failed") == 0
