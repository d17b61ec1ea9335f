"""Hostile attribution ids and model ids through aiobotocore clients and the async store, against a real
Redis holding other applications' keys (the cases and checks of tests/bad_input/test_hostile_ids.py).

Strict clients refuse anything outside the safe character set with ``AttributionError`` before any I/O;
``hash_ids=True`` clients accept any string up to 4,096 characters and store a digest. Either way the async
store reads, writes and deletes no key outside the client's prefix (the decoys are checked byte for byte,
and the store logs in as a user that may touch nothing else), every counter's keys stay in one hash slot,
and metric labels stay within their bounded sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any
from urllib.parse import quote

import pytest

import bedrock_budget as bb
from bad_input.conftest import KeyspaceWatch, keyspace
from bad_input.hostile_ids import HOSTILE, TOO_LONG, budgets, check_keys
from bedrock_budget.attribution import validate_value
from bedrock_budget.budgets import AsyncLedger, Budget
from bedrock_budget.testing import FakeBedrock, UsageSpec
from conftest import HAIKU, MESSAGES, Records, run

__all__ = ["keyspace"]

pytestmark = pytest.mark.redis


def fenced_ledger(keyspace: KeyspaceWatch, budgets: list[Budget], **options: Any) -> AsyncLedger:
    """An async ledger whose store logs in as the user fenced into the test's prefix."""
    return AsyncLedger(keyspace.url, budgets, store_options={"prefix": keyspace.prefix}, **options)


async def converse(client: Any, model: str = HAIKU, **extra: Any) -> None:
    await client.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 16}, **extra)


def test_hashed_ids_are_accepted_and_stay_in_their_namespace(
    module_loop: asyncio.Runner, fake: FakeBedrock, fake_raw: Any, keyspace: KeyspaceWatch, records: Records
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=10, output_tokens=5))

    async def main() -> None:
        ledger = fenced_ledger(keyspace, budgets())
        client = bb.wrap(fake_raw, ledger=ledger, listeners=[records], hash_ids=True)
        for value in HOSTILE:
            with bb.attribute(user=value, app=value):
                await converse(client)
        with pytest.raises(bb.AttributionError):
            bb.attribute(user=TOO_LONG)
        assert await ledger.flush() == 0
        for value, record in zip(HOSTILE, records, strict=True):
            hashed = record.attribution["user"]
            assert re.fullmatch(r"h-[0-9a-f]{32}", hashed)
            assert hashed == validate_value("user", value, hash_ids=True)
            assert record.cost is not None
            assert (await ledger.read("per-user", {"user": hashed})).spent_usd == record.cost.total_usd
        await ledger.aclose()

    run(main(), module_loop)
    assert fake.request_count == len(HOSTILE)
    keys = check_keys(keyspace)
    # Settled counters keep only their hash: one per user, per app, the one model and the total.
    assert sum(key.endswith(b":h") for key in keys) == 2 * len(HOSTILE) + 2
    assert len({r.attribution["user"] for r in records}) == len(HOSTILE)


def test_strict_clients_refuse_hostile_ids_before_any_io(
    module_loop: asyncio.Runner, fake: FakeBedrock, fake_raw: Any, keyspace: KeyspaceWatch, records: Records
) -> None:
    async def main() -> int:
        ledger = fenced_ledger(keyspace, budgets())
        client = bb.wrap(
            fake_raw, ledger=ledger, listeners=[records], metadata_attribution={"tenant_id": "tenant"}
        )

        async def accepted_from_context(value: str) -> bool:
            try:
                with bb.attribute(user=value):
                    await converse(client)
            except bb.AttributionError:
                return False
            return True

        async def accepted_from_metadata(value: str) -> bool:
            try:
                await converse(client, requestMetadata={"tenant_id": value})
            except bb.AttributionError:
                return False
            return True

        accepted = 0
        for value in HOSTILE:
            accepted += await accepted_from_context(value) + await accepted_from_metadata(value)
        for bad in (1, ["x"], {"x": "y"}):
            with pytest.raises(bb.AttributionError):
                await converse(client, requestMetadata={"tenant_id": bad})
        await ledger.aclose()
        return accepted

    accepted = run(main(), module_loop)
    # Only the two values made of safe characters get through (and are stored encoded).
    assert accepted == 4
    assert fake.request_count == accepted
    check_keys(keyspace)


def test_hostile_model_ids_under_a_per_model_budget(
    module_loop: asyncio.Runner, fake: FakeBedrock, fake_raw: Any, keyspace: KeyspaceWatch, records: Records
) -> None:
    # Served by the fake but not in the price table: counted per model (token budget), refused by the
    # dollar budgets with UnknownModelError before anything is sent.
    hostile = ["anthropic.claude-evil{x}*:v1:0", "anthropic.claude-evil\nx", "anthropic." + "é" * 300]
    for model in hostile:
        fake.map_model(model, HAIKU)
    per_model = Budget("per-model", model="*", window="hour", limit_tokens="1000000")

    async def main() -> None:
        tokens_only = fenced_ledger(keyspace, [per_model])
        strict_ledger = fenced_ledger(keyspace, budgets())
        client = bb.wrap(fake_raw, ledger=tokens_only, listeners=[records])
        for model in hostile:
            await converse(client, model=model)
        strict = bb.wrap(fake_raw, ledger=strict_ledger)
        for model in hostile:
            with pytest.raises(bb.UnknownModelError):
                await converse(strict, model=model)
        for model in hostile:
            counted = await tokens_only.read("per-model", {"model": model})
            assert counted.spent_tokens > 0
        await tokens_only.aclose()
        await strict_ledger.aclose()

    run(main(), module_loop)
    assert all(r.outcome == "ok" and r.unpriced for r in records)
    assert fake.request_count == len(hostile)
    check_keys(keyspace)


def test_the_namespace_fence_is_real_for_the_async_store(
    module_loop: asyncio.Runner, keyspace: KeyspaceWatch
) -> None:
    async def main() -> None:
        outside = AsyncLedger(keyspace.url, budgets(), store_options={"prefix": "elsewhere:"})
        with pytest.raises(bb.StoreUnavailableError, match=r"NOPERM|NoPermission"):
            await outside.reserve({"user": "u", "app": "a"}, HAIKU, None, 1, {})
        await outside.aclose()

    run(main(), module_loop)
    keyspace.assert_untouched()


@pytest.mark.parametrize("prefix", ["x{y}:", "*", "a b", "p\n", "[x]", "x" * 65, "é:"])
def test_hostile_prefixes_are_configuration_errors(
    keyspace: KeyspaceWatch, cluster_url: str, prefix: str
) -> None:
    for uri in (keyspace.url, cluster_url, f"{keyspace.url}?prefix={quote(prefix)}"):
        options = {} if "?" in uri else {"prefix": prefix}
        with pytest.raises(bb.ConfigurationError):
            AsyncLedger(uri, budgets(), store_options=options)


def test_metric_labels_stay_bounded(
    module_loop: asyncio.Runner, fake: FakeBedrock, fake_raw: Any, records: Records
) -> None:
    from prometheus_client import CollectorRegistry

    from bedrock_budget import metrics

    registry = CollectorRegistry()
    listener = metrics.PrometheusListener(registry, app_labels=5)
    fake.map_model("anthropic.claude-evil{x}*:v1:0", HAIKU)
    fake.set_usage(HAIKU, UsageSpec(input_tokens=10, output_tokens=5))

    async def main() -> None:
        ledger = AsyncLedger("memory://", [Budget("per-app", scope={"app": "*"}, limit_usd="1")])
        client = bb.wrap(fake_raw, ledger=ledger, listeners=[listener, records], hash_ids=True)
        for index, value in enumerate([*HOSTILE, *(f"app-{n}" for n in range(40))]):
            model = [HAIKU, f"us.{HAIKU}", "anthropic.claude-evil{x}*:v1:0", "nobody.nothing-v1:0"][index % 4]
            refused = contextlib.suppress(bb.UnknownModelError, client.exceptions.ValidationException)
            with bb.attribute(app=value, user=value), refused:
                await converse(client, model=model)
        await ledger.aclose()

    run(main(), module_loop)
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
