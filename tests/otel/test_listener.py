"""The OpenTelemetry listener, read back with the SDK's in-memory reader after real boto3 calls (over HTTP
to the fake Bedrock) went through ``bb.wrap``: names, units, attributes and values against the records."""

from __future__ import annotations

import contextlib
import io
import json
from decimal import Decimal

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets import Budget
from bedrock_budget.otel import OTelListener
from bedrock_budget.testing import FakeBedrock, UsageSpec
from bedrock_budget.usage import Usage

from .conftest import HAIKU, MESSAGES, SONNET, TITAN_EMBED, Collected, where

COMMON = {
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "server.address",
    "server.port",
}


def test_one_call_gives_the_semantic_convention_metrics(
    collected: Collected, fake: FakeBedrock, records: list[bb.CallRecord]
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=120, output_tokens=30, cache_read_tokens=400,
                                    cache_write_tokens=50))  # fmt: skip
    client = bb.wrap(fake.client(), listeners=[OTelListener(collected.provider), records])
    with bb.attribute(app="chat"):
        client.converse(modelId=HAIKU, messages=MESSAGES)
    [record] = records
    points = collected.points()
    assert {p.name for p in points} == {
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "bedrock_budget.client.cost",
        "bedrock_budget.client.requests",
    }
    units = {p.name: p.unit for p in points}
    assert units == {
        "gen_ai.client.token.usage": "{token}",
        "gen_ai.client.operation.duration": "s",
        "bedrock_budget.client.cost": "USD",
        "bedrock_budget.client.requests": "{request}",
    }
    [duration] = collected.named("gen_ai.client.operation.duration")
    assert duration.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "aws.bedrock",
        "gen_ai.request.model": HAIKU,
        "gen_ai.response.model": HAIKU,
        "server.address": f"bedrock-runtime.{record.region}.amazonaws.com",
        "server.port": 443,
    }
    assert duration.count == 1
    assert duration.value == record.latency_seconds

    tokens = collected.named("gen_ai.client.token.usage")
    by_type = {p.attributes["gen_ai.token.type"]: p for p in tokens}
    assert set(by_type) == {"input", "output"}
    # The conventions' input count includes cache reads and writes; Bedrock's does not.
    usage = record.usage
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (120, 400, 50)
    assert by_type["input"].value == usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    assert by_type["output"].value == usage.output_tokens == 30
    assert all(p.count == 1 for p in tokens)
    assert set(by_type["input"].attributes) == COMMON | {"gen_ai.token.type", "bedrock_budget.app"}
    assert by_type["input"].attributes["bedrock_budget.app"] == "chat"

    [cost] = collected.named("bedrock_budget.client.cost")
    assert record.cost is not None
    assert record.cost_usd > 0
    assert cost.value == float(record.cost_usd)
    [requests] = collected.named("bedrock_budget.client.requests")
    assert requests.value == 1
    assert requests.attributes["bedrock_budget.outcome"] == "ok"
    assert "error.type" not in requests.attributes


def test_values_add_up_over_many_calls(
    collected: Collected, fake: FakeBedrock, records: list[bb.CallRecord]
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=7, output_tokens=3))
    fake.set_usage(SONNET, UsageSpec(input_tokens=1000, output_tokens=250, cache_read_tokens=9))
    client = bb.wrap(fake.client(), listeners=[OTelListener(collected.provider), records])
    for model in (HAIKU, SONNET, HAIKU, SONNET, SONNET):
        client.converse(modelId=model, messages=MESSAGES)
    points = collected.points()
    for model in (HAIKU, SONNET):
        mine = [r for r in records if r.model_id == model]
        [cost] = where(
            [p for p in points if p.name == "bedrock_budget.client.cost"], gen_ai__response__model=model
        )
        assert cost.value == pytest.approx(float(sum((r.cost_usd for r in mine), Decimal(0))), rel=1e-12)
        [inputs] = where(
            [p for p in points if p.name == "gen_ai.client.token.usage"],
            gen_ai__response__model=model,
            gen_ai__token__type="input",
        )
        assert inputs.count == len(mine)
        assert inputs.value == sum(r.usage.input_tokens + r.usage.cache_read_tokens for r in mine)
        [duration] = where(
            [p for p in points if p.name == "gen_ai.client.operation.duration"], gen_ai__response__model=model
        )
        assert duration.count == len(mine)
        assert duration.value == pytest.approx(sum(r.latency_seconds for r in mine))


def test_a_failed_call_carries_its_error_type(
    collected: Collected, fake: FakeBedrock, records: list[bb.CallRecord]
) -> None:
    fake.fail_next("Converse", "ValidationException")
    client = bb.wrap(fake.client(), listeners=[OTelListener(collected.provider), records])
    with pytest.raises(client.exceptions.ValidationException):
        client.converse(modelId=HAIKU, messages=MESSAGES)
    [record] = records
    assert (record.outcome, record.error_code) == ("error", "ValidationException")
    [duration] = collected.named("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "ValidationException"
    assert duration.value == record.latency_seconds
    [requests] = collected.named("bedrock_budget.client.requests")
    assert requests.attributes["bedrock_budget.outcome"] == "error"
    assert requests.attributes["error.type"] == "ValidationException"
    # Bedrock reported no usage: the default token metric must not invent any.
    assert record.usage_source == "none"
    assert collected.named("gen_ai.client.token.usage") == []


def test_a_stream_records_time_to_first_chunk(
    collected: Collected, fake: FakeBedrock, records: list[bb.CallRecord]
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=11, output_tokens=5))
    client = bb.wrap(fake.client(), listeners=[OTelListener(collected.provider), records])
    response = client.converse_stream(modelId=HAIKU, messages=MESSAGES)
    for _ in response["stream"]:
        pass
    [record] = records
    assert record.time_to_first_token_seconds is not None
    [first] = collected.named("gen_ai.client.operation.time_to_first_chunk")
    assert first.unit == "s"
    assert first.value == record.time_to_first_token_seconds
    assert first.attributes["gen_ai.operation.name"] == "chat"
    outputs = where(collected.named("gen_ai.client.token.usage"), gen_ai__token__type="output")
    assert [p.value for p in outputs] == [5]


def test_an_embedding_call_is_named_embeddings(
    collected: Collected, fake: FakeBedrock, records: list[bb.CallRecord]
) -> None:
    client = bb.wrap(fake.client(), listeners=[OTelListener(collected.provider), records])
    client.invoke_model(modelId=TITAN_EMBED, body=json.dumps({"inputText": "some words"}))
    [record] = records
    [duration] = collected.named("gen_ai.client.operation.duration")
    assert duration.attributes["gen_ai.operation.name"] == "embeddings"
    assert duration.attributes["gen_ai.request.model"] == TITAN_EMBED
    [inputs] = where(collected.named("gen_ai.client.token.usage"), gen_ai__token__type="input")
    assert inputs.value == record.usage.input_tokens > 0


def test_blocked_calls_are_counted_but_not_timed(collected: Collected, fake: FakeBedrock) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=100, output_tokens=10))
    budgets = [Budget("intern-cap", scope={"app": "intern"}, limit_usd="0.000001")]
    client = bb.wrap(fake.client(), listeners=[OTelListener(collected.provider)], budgets=budgets)
    for app in ("intern", "chat"):
        with bb.attribute(app=app), contextlib.suppress(bb.BudgetExceededError):
            client.converse(modelId=HAIKU, messages=MESSAGES)
    requests = collected.named("bedrock_budget.client.requests")
    blocked = where(requests, bedrock_budget__outcome="blocked")
    ok = where(requests, bedrock_budget__outcome="ok")
    assert [p.value for p in ok] == [1]
    assert [p.value for p in blocked] == [1]
    assert blocked[0].attributes["error.type"] == "BudgetExceededError"
    [duration] = collected.named("gen_ai.client.operation.duration")
    assert duration.count == 1  # the call that went through only


def test_model_and_app_attributes_are_bounded(collected: Collected, fake: FakeBedrock) -> None:
    client = bb.wrap(fake.client(), listeners=[OTelListener(collected.provider, app_labels=2)])
    for app in ("a", "b", "c", "d"):
        with bb.attribute(app=app):
            client.converse(modelId=HAIKU, messages=MESSAGES)
    apps = sorted(
        p.attributes["bedrock_budget.app"] for p in collected.named("bedrock_budget.client.requests")
    )
    assert apps == ["a", "b", "other"]
    [other] = where(collected.named("bedrock_budget.client.requests"), bedrock_budget__app="other")
    assert other.value == 2


def test_unknown_models_are_folded_into_other(collected: Collected) -> None:
    listener = OTelListener(collected.provider)
    for model in ("custom.model-one", "custom.model-two"):
        listener(
            bb.CallRecord(
                operation="Converse",
                model_id=model,
                requested_model_id=model,
                region="us-east-1",
                route="in_region",
                attribution={},
                usage=Usage(input_tokens=3, output_tokens=1),
                cost=None,
                outcome="ok",
                unpriced=f"unknown model {model}",
            )
        )
    [requests] = collected.named("bedrock_budget.client.requests")
    assert requests.value == 2
    assert requests.attributes["gen_ai.request.model"] == "other"


def test_user_ids_only_when_allow_listed(collected: Collected, fake: FakeBedrock) -> None:
    client = bb.wrap(fake.client(), listeners=[OTelListener(collected.provider, user_labels=["alice"])])
    for user in ("alice", "bob", "carol"):
        with bb.attribute(app="chat", user=user):
            client.converse(modelId=HAIKU, messages=MESSAGES)
    users = sorted(
        p.attributes["bedrock_budget.user"] for p in collected.named("bedrock_budget.client.requests")
    )
    assert users == ["alice", "other"]


def test_user_ids_are_off_by_default(collected: Collected, fake: FakeBedrock) -> None:
    client = bb.wrap(fake.client(), listeners=[OTelListener(collected.provider)])
    with bb.attribute(app="chat", user="alice"):
        client.converse(modelId=HAIKU, messages=MESSAGES)
    for point in collected.points():
        assert "bedrock_budget.user" not in point.attributes
        assert "alice" not in point.attributes.values()


def test_unbounded_user_attributes_are_refused() -> None:
    with pytest.raises(bb.ConfigurationError, match="top_n"):
        OTelListener(user_labels=True)


def test_server_address_can_be_given(collected: Collected, fake: FakeBedrock) -> None:
    client = bb.wrap(
        fake.client(),
        listeners=[OTelListener(collected.provider, server_address="vpce.example", server_port=8443)],
    )
    client.converse(modelId=HAIKU, messages=MESSAGES)
    [duration] = collected.named("gen_ai.client.operation.duration")
    assert duration.attributes["server.address"] == "vpce.example"
    assert duration.attributes["server.port"] == 8443


def test_the_latest_experimental_names_on_opt_in(
    collected: Collected, fake: FakeBedrock, records: list[bb.CallRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http, gen_ai_latest_experimental")
    fake.set_usage(HAIKU, UsageSpec(input_tokens=120, output_tokens=30, cache_read_tokens=400,
                                    cache_write_tokens=50))  # fmt: skip
    listener = OTelListener(collected.provider)
    assert listener.latest_experimental
    client = bb.wrap(fake.client(), listeners=[listener, records])
    client.converse(modelId=HAIKU, messages=MESSAGES)
    [record] = records
    usage = record.usage
    names = {p.name for p in collected.points()}
    assert "gen_ai.client.token.usage" not in names
    counters = {
        "gen_ai.client.inference.usage.input_tokens": usage.input_tokens + 400 + 50,
        "gen_ai.client.inference.usage.output_tokens": usage.output_tokens,
        "gen_ai.client.inference.usage.cache_read.input_tokens": 400,
        "gen_ai.client.inference.usage.cache_write.input_tokens": 50,
    }
    for name, value in counters.items():
        [point] = collected.named(name)
        assert (point.unit, point.value) == ("{token}", value), name
        assert point.attributes["gen_ai.token.modality"] == "unknown"
        assert point.attributes["gen_ai.provider.name"] == "aws.bedrock"
    [per_call_input] = collected.named("gen_ai.client.inference.operation.input_tokens")
    assert (per_call_input.count, per_call_input.value) == (1, usage.input_tokens + 450)
    [per_call_output] = collected.named("gen_ai.client.inference.operation.output_tokens")
    assert (per_call_output.count, per_call_output.value) == (1, 30)
    assert {"gen_ai.client.operation.duration", "bedrock_budget.client.cost"} <= names


def test_the_opt_in_switch_is_read_as_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    from bedrock_budget.otel.names import latest_experimental

    assert not latest_experimental({})
    assert not latest_experimental({"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest"})
    assert latest_experimental({"OTEL_SEMCONV_STABILITY_OPT_IN": "database,gen_ai_latest_experimental"})


def test_prompts_never_reach_an_attribute(collected: Collected, fake: FakeBedrock) -> None:
    client = bb.wrap(fake.client(), listeners=[OTelListener(collected.provider)])
    secret = "the launch code is 0000"
    client.converse(modelId=HAIKU, messages=[{"role": "user", "content": [{"text": secret}]}])
    out = io.StringIO()
    for point in collected.points():
        out.write(repr(point))
    assert secret not in out.getvalue()
