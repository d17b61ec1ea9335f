"""Hostile attribution ids and model ids against a real Redis holding other applications' keys.

Strict clients refuse anything outside the safe character set with ``AttributionError`` before any I/O;
``hash_ids=True`` clients accept any string up to 4,096 characters and store a digest. Either way no key
outside the client's prefix is ever read, written or deleted (the decoys are checked byte for byte), every
counter's keys stay in one hash slot, and metric labels stay within their bounded sets.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bedrock_budget as bb
from bedrock_budget.attribution import validate_value
from bedrock_budget.budgets import Ledger
from bedrock_budget.stores import from_uri
from bedrock_budget.stores.base import CounterRef
from bedrock_budget.stores.keys import counter_tag
from bedrock_budget.testing import FakeBedrock, UsageSpec
from fake_bedrock_fixtures import Records

from .conftest import HAIKU, MESSAGES, KeyspaceWatch
from .hostile_ids import HOSTILE, TOO_LONG, budgets, check_keys

pytestmark = pytest.mark.redis


@pytest.fixture
def ledger(keyspace: KeyspaceWatch) -> Iterator[Ledger]:
    with Ledger(from_uri(keyspace.url, prefix=keyspace.prefix), budgets()) as made:
        yield made
        made.store.close()


def converse(client: Any, model: str = HAIKU, **extra: Any) -> None:
    client.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 16}, **extra)


def test_hashed_ids_are_accepted_and_stay_in_their_namespace(
    fake: FakeBedrock, keyspace: KeyspaceWatch, ledger: Ledger, records: Records
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=10, output_tokens=5))
    client = bb.wrap(fake.client(), ledger=ledger, listeners=[records], hash_ids=True)
    for value in HOSTILE:
        with bb.attribute(user=value, app=value):
            converse(client)
    with pytest.raises(bb.AttributionError):
        bb.attribute(user=TOO_LONG)
    assert fake.request_count == len(HOSTILE)
    keys = check_keys(keyspace)
    # Settled counters keep only their hash: one per user, per app, the one model and the total.
    assert sum(key.endswith(b":h") for key in keys) == 2 * len(HOSTILE) + 2
    for value, record in zip(HOSTILE, records, strict=True):
        hashed = record.attribution["user"]
        assert re.fullmatch(r"h-[0-9a-f]{32}", hashed)
        assert hashed == validate_value("user", value, hash_ids=True)
        assert record.cost is not None
        assert ledger.read("per-user", {"user": hashed}).spent_usd == record.cost.total_usd
    assert len({r.attribution["user"] for r in records}) == len(HOSTILE)


def test_strict_clients_refuse_hostile_ids_before_any_io(
    fake: FakeBedrock, keyspace: KeyspaceWatch, ledger: Ledger, records: Records
) -> None:
    client = bb.wrap(
        fake.client(), ledger=ledger, listeners=[records], metadata_attribution={"tenant_id": "tenant"}
    )

    def accepted_from_context(value: str) -> bool:
        try:
            with bb.attribute(user=value):
                converse(client)
        except bb.AttributionError:
            return False
        return True

    def accepted_from_metadata(value: str) -> bool:
        try:
            converse(client, requestMetadata={"tenant_id": value})
        except bb.AttributionError:
            return False
        return True

    accepted = sum(accepted_from_context(v) + accepted_from_metadata(v) for v in HOSTILE)
    # Only the two values made of safe characters get through (and are stored encoded).
    assert accepted == 4
    assert fake.request_count == accepted
    check_keys(keyspace)
    for bad in (1, ["x"], {"x": "y"}):
        with pytest.raises(bb.AttributionError):
            converse(client, requestMetadata={"tenant_id": bad})
    with pytest.raises(bb.AttributionError):
        bb.attribute(**{"User{x}": "a"})
    assert fake.request_count == accepted


def test_hostile_model_ids_under_a_per_model_budget(
    fake: FakeBedrock, keyspace: KeyspaceWatch, ledger: Ledger, records: Records
) -> None:
    # Served by the fake but not in the price table: counted per model (token budget), refused by the
    # dollar budgets with UnknownModelError before anything is sent.
    hostile = ["anthropic.claude-evil{x}*:v1:0", "anthropic.claude-evil\nx", "anthropic." + "é" * 300]
    for model in hostile:
        fake.map_model(model, HAIKU)
    tokens_only = Ledger(
        from_uri(keyspace.url, prefix=keyspace.prefix),
        [bb.Budget("per-model", model="*", window="hour", limit_tokens="1000000")],
    )
    try:
        client = bb.wrap(fake.client(), ledger=tokens_only, listeners=[records])
        for model in hostile:
            converse(client, model=model)
        assert all(r.outcome == "ok" and r.unpriced for r in records)
        strict = bb.wrap(fake.client(), ledger=ledger)
        for model in hostile:
            with pytest.raises(bb.UnknownModelError):
                converse(strict, model=model)
        assert fake.request_count == len(hostile)
        check_keys(keyspace)
        assert {s.scope["model"] for s in tokens_only.status("per-model")} == set(hostile)
    finally:
        tokens_only.close()
        tokens_only.store.close()


def test_the_namespace_fence_is_real(keyspace: KeyspaceWatch) -> None:
    with Ledger(from_uri(keyspace.url, prefix="elsewhere:"), budgets(), on_store_error="deny") as outside:
        with pytest.raises(bb.StoreUnavailableError, match=r"NOPERM|NoPermission"):
            outside.reserve({"user": "u", "app": "a"}, HAIKU, None, 1, {})
        outside.store.close()
    keyspace.assert_untouched()


@pytest.mark.parametrize("prefix", ["x{y}:", "*", "a b", "p\n", "[x]", "x" * 65, "é:"])
def test_hostile_prefixes_are_configuration_errors(keyspace: KeyspaceWatch, prefix: str) -> None:
    with pytest.raises(bb.ConfigurationError):
        from_uri(keyspace.url, prefix=prefix)


@settings(max_examples=200, deadline=None)
@given(
    budget=st.text(min_size=1, max_size=80),
    pairs=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=100)), max_size=3),
    other=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=100)), max_size=3),
    start=st.integers(min_value=0, max_value=2**40),
)
def test_counter_tags_are_injective_and_inert(
    budget: str, pairs: list[tuple[str, str]], other: list[tuple[str, str]], start: int
) -> None:
    scope, other_scope = tuple(sorted(pairs)), tuple(sorted(other))
    tag = counter_tag(budget, scope, "day", start)
    assert tag.startswith("{")
    assert tag.endswith("}")
    assert not set(tag[1:-1]) & set("{}*?[]\\ \r\n\t\x00")
    if other_scope != scope:
        assert counter_tag(budget, other_scope, "day", start) != tag
    assert counter_tag(budget + "x", scope, "day", start) != tag
    ref = CounterRef(budget=budget, scope=scope, window="day", timezone="UTC", start=start, end=start + 86400)
    assert CounterRef.from_meta(ref.meta()) == ref


def test_metric_labels_stay_bounded(fake: FakeBedrock, records: Records) -> None:
    from prometheus_client import CollectorRegistry

    from bedrock_budget import metrics

    registry = CollectorRegistry()
    listener = metrics.PrometheusListener(registry, app_labels=5)
    fake.map_model("anthropic.claude-evil{x}*:v1:0", HAIKU)
    fake.set_usage(HAIKU, UsageSpec(input_tokens=10, output_tokens=5))
    with Ledger("memory://", [bb.Budget("per-app", scope={"app": "*"}, limit_usd="1")]) as ledger:
        client = bb.wrap(fake.client(), ledger=ledger, listeners=[listener, records], hash_ids=True)
        for index, value in enumerate([*HOSTILE, *(f"app-{n}" for n in range(40))]):
            model = [HAIKU, f"us.{HAIKU}", "anthropic.claude-evil{x}*:v1:0", "nobody.nothing-v1:0"][index % 4]
            refused = contextlib.suppress(bb.UnknownModelError, client.exceptions.ValidationException)
            with bb.attribute(app=value, user=value), refused:
                converse(client, model=model)
    assert {r.outcome for r in records} == {"ok", "blocked"}
    known_models = {*bb.default_price_table().models, "other", "none"}
    apps: set[str] = set()
    for family in registry.collect():
        for sample in family.samples:
            labels = sample.labels
            assert "user" not in labels
            for name, value in labels.items():
                assert len(value) <= 128, (name, value)
                assert value.isprintable(), (name, value)
            if "model" in labels:
                assert labels["model"] in known_models, labels["model"]
            if "app" in labels:
                apps.add(labels["app"])
    assert len(apps - {"other", "none"}) <= 5
    assert "other" in apps
