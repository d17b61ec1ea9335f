"""The wrapper end to end: real boto3 over HTTP against the local fake Bedrock."""

from __future__ import annotations

import gc
import json
from decimal import Decimal
from typing import Any

import boto3
import botocore.client
import pytest
from botocore.exceptions import ClientError, EventStreamError

import bedrock_budget as bb
from bedrock_budget.pricing import default_price_table
from bedrock_budget.testing import FakeBedrock, UsageSpec
from fake_bedrock_fixtures import Records

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU_45 = "anthropic.claude-haiku-4-5-20251001-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Say something short."}]}]


def converse(client: Any, model: str = f"us.{HAIKU}", **extra: Any) -> Any:
    return client.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 64}, **extra)


def usd(text: str) -> Decimal:
    return Decimal(text)


# --- the proxy is the client ---------------------------------------------------------------------------


def test_proxy_behaves_like_the_client(client: Any, raw_client: Any) -> None:
    assert isinstance(client, botocore.client.BaseClient)
    assert client.meta.region_name == raw_client.meta.region_name
    assert client.exceptions.ThrottlingException is raw_client.exceptions.ThrottlingException
    assert client.can_paginate("list_async_invokes") == raw_client.can_paginate("list_async_invokes")
    assert bb.unwrap(client) is raw_client


def test_wrap_refuses_other_services() -> None:
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with pytest.raises(bb.ConfigurationError, match="bedrock-runtime"):
        bb.wrap(s3)


def test_wrapped_and_unwrapped_responses_are_identical(
    client: Any, raw_client: Any, fake: FakeBedrock
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=10, output_tokens=5))
    plain = converse(raw_client)
    metered = converse(client)
    for response in (plain, metered):
        response.pop("ResponseMetadata")
    assert metered == plain


def test_count_tokens_passes_through_uncharged(client: Any, records: Records, fake: FakeBedrock) -> None:
    response = client.count_tokens(modelId=HAIKU, input={"converse": {"messages": MESSAGES}})
    assert response["inputTokens"] > 0
    assert records == []
    assert fake.request_count == 1


# --- pricing of each operation -------------------------------------------------------------------------


def test_converse_priced_exactly_with_cache_split(client: Any, records: Records, fake: FakeBedrock) -> None:
    fake.set_usage(
        HAIKU_45,
        UsageSpec(
            input_tokens=1000,
            output_tokens=200,
            cache_read_tokens=3000,
            cache_write_tokens=400,
            cache_write_1h_tokens=600,
        ),
    )
    with bb.attribute(user="u-17", team="search"):
        response = converse(client, model=f"us.{HAIKU_45}")
    assert response["usage"]["cacheWriteInputTokens"] == 1000
    (record,) = records
    assert record.operation == "Converse"
    assert record.model_id == HAIKU_45
    assert record.route == "geo"
    assert record.region == "us-east-1"
    assert record.attribution == {"user": "u-17", "team": "search"}
    assert (record.usage.input_tokens, record.usage.output_tokens) == (1000, 200)
    assert (record.usage.cache_read_tokens, record.usage.cache_write_tokens) == (3000, 1000)
    assert record.usage.cache_write_1h_tokens == 600
    # Claude Haiku 4.5 (geo rate): $1.10 in, $5.50 out, $0.11 cache read, $1.375 5-minute write and
    # $2.20 1-hour write per 1M tokens.
    expected = (
        1000 * usd("1.10") + 200 * usd("5.50") + 3000 * usd("0.11") + 400 * usd("1.375") + 600 * usd("2.20")
    )
    assert record.cost is not None
    assert record.cost.total_usd == expected / 1_000_000
    assert record.request_id == response["ResponseMetadata"]["RequestId"]
    assert record.outcome == "ok"
    assert not record.estimated


def test_model_without_1h_cache_price_falls_back_to_5m_rate(
    client: Any, records: Records, fake: FakeBedrock
) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=0, output_tokens=0, cache_write_1h_tokens=1_000_000))
    converse(client)
    (record,) = records
    assert record.cost is not None
    assert record.cost.total_usd == usd("1.00")


def test_global_profile_priced_at_global_rate(client: Any, records: Records, fake: FakeBedrock) -> None:
    fake.set_usage(SONNET_45, UsageSpec(input_tokens=1000, output_tokens=1000))
    converse(client, model=f"global.{SONNET_45}")
    converse(client, model=f"us.{SONNET_45}")
    global_record, geo_record = records
    table = default_price_table()
    usage = bb.Usage(input_tokens=1000, output_tokens=1000)
    assert global_record.cost is not None
    assert geo_record.cost is not None
    assert global_record.cost.total_usd == table.price(f"global.{SONNET_45}", usage).total_usd
    assert geo_record.cost.total_usd == table.price(SONNET_45, usage).total_usd
    assert global_record.cost.total_usd < geo_record.cost.total_usd


INVOKE_BODIES: dict[str, dict[str, Any]] = {
    HAIKU: {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}],
    },
    "amazon.nova-lite-v1:0": {
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "inferenceConfig": {"maxTokens": 50},
    },
    "amazon.titan-text-express-v1": {"inputText": "hi", "textGenerationConfig": {"maxTokenCount": 50}},
    "meta.llama3-1-70b-instruct-v1:0": {"prompt": "hi", "max_gen_len": 50},
    "mistral.mistral-large-2407-v1:0": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50},
    "mistral.mixtral-8x7b-instruct-v0:1": {"prompt": "<s>[INST] hi [/INST]", "max_tokens": 50},
    "cohere.command-r-v1:0": {"message": "hi", "max_tokens": 50},
    "ai21.jamba-1-5-mini-v1:0": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50},
    "deepseek.r1-v1:0": {"prompt": "hi", "max_tokens": 50},
    "openai.gpt-oss-20b-1:0": {"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 50},
    "qwen.qwen3-32b-v1:0": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50},
}


@pytest.mark.parametrize("model", sorted(INVOKE_BODIES))
def test_invoke_model_each_family_priced(
    model: str, client: Any, records: Records, fake: FakeBedrock
) -> None:
    fake.set_usage(model, UsageSpec(input_tokens=321, output_tokens=45))
    response = client.invoke_model(modelId=model, body=json.dumps(INVOKE_BODIES[model]))
    body = json.loads(response["body"].read())  # the caller still gets an unread body
    assert body
    (record,) = records
    assert (record.usage.input_tokens, record.usage.output_tokens) == (321, 45)
    expected = default_price_table().price(model, bb.Usage(input_tokens=321, output_tokens=45))
    assert record.cost is not None
    assert record.cost.total_usd == expected.total_usd
    assert record.cost.total_usd > 0


def test_embeddings_priced_on_input(client: Any, records: Records, fake: FakeBedrock) -> None:
    model = "amazon.titan-embed-text-v2:0"
    fake.set_usage(model, UsageSpec(input_tokens=2000, output_tokens=0))
    client.invoke_model(modelId=model, body=json.dumps({"inputText": "hello"}))
    (record,) = records
    assert record.cost is not None
    assert record.cost.total_usd == 2000 * usd("0.02") / 1_000_000


def test_image_generation_priced_per_image(client: Any, records: Records) -> None:
    body = {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a lighthouse"},
        "imageGenerationConfig": {"numberOfImages": 2, "width": 512, "height": 512, "quality": "standard"},
    }
    response = client.invoke_model(modelId="amazon.titan-image-generator-v2:0", body=json.dumps(body))
    assert len(json.loads(response["body"].read())["images"]) == 2
    (record,) = records
    assert record.usage.images == 2
    expected = default_price_table().price(
        "amazon.titan-image-generator-v2:0",
        bb.Usage(images=2, image_size="512x512", image_quality="standard"),
    )
    assert record.cost is not None
    assert record.cost.total_usd == expected.total_usd


def test_apply_guardrail_priced_by_policy_units(client: Any, records: Records) -> None:
    response = client.apply_guardrail(
        guardrailIdentifier="gr-1",
        guardrailVersion="1",
        source="INPUT",
        content=[{"text": {"text": "x" * 2500}}],
    )
    units = response["usage"]
    (record,) = records
    assert record.operation == "ApplyGuardrail"
    charged = {
        "content_filters": units["contentPolicyUnits"],
        "denied_topics": units["topicPolicyUnits"],
        "contextual_grounding": units["contextualGroundingPolicyUnits"],
        "sensitive_information": units["sensitiveInformationPolicyUnits"],
    }
    expected = default_price_table().price_guardrail({k: v for k, v in charged.items() if v})
    assert record.cost is not None
    assert record.cost.total_usd == expected.total_usd


# --- streams settle exactly once -------------------------------------------------------------------------


def test_converse_stream_read_to_the_end(client: Any, records: Records, fake: FakeBedrock) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=77, output_tokens=12))
    response = client.converse_stream(modelId=HAIKU, messages=MESSAGES)
    events = list(response["stream"])
    assert "metadata" in events[-1]
    assert len(records) == 1
    (record,) = records
    assert (record.usage.input_tokens, record.usage.output_tokens) == (77, 12)
    assert not record.partial
    assert record.time_to_first_token_seconds is not None


def test_invoke_stream_read_to_the_end(client: Any, records: Records, fake: FakeBedrock) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=88, output_tokens=9, cache_read_tokens=100))
    response = client.invoke_model_with_response_stream(modelId=HAIKU, body=json.dumps(INVOKE_BODIES[HAIKU]))
    chunks = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]
    assert chunks[-1]["type"] == "message_stop"
    (record,) = records
    assert (record.usage.input_tokens, record.usage.output_tokens, record.usage.cache_read_tokens) == (
        88,
        9,
        100,
    )
    assert record.outcome == "ok"


def test_stream_closed_early_settles_once_as_partial(client: Any, records: Records) -> None:
    response = client.converse_stream(modelId=HAIKU, messages=MESSAGES)
    stream = response["stream"]
    next(iter(stream))
    stream.close()
    stream.close()
    assert len(records) == 1
    assert records[0].partial
    assert records[0].outcome == "partial"


def test_stream_abandoned_settles_once(client: Any, records: Records) -> None:
    response = client.converse_stream(modelId=HAIKU, messages=MESSAGES)
    for _ in response["stream"]:
        break
    del response
    gc.collect()
    assert len(records) == 1
    assert records[0].partial


def test_stream_never_iterated_settles_on_collection(client: Any, records: Records) -> None:
    response = client.converse_stream(modelId=HAIKU, messages=MESSAGES)
    response["stream"].close()
    assert len(records) == 1
    del response
    gc.collect()
    assert len(records) == 1


def test_stream_failing_midway_settles_once(client: Any, records: Records, fake: FakeBedrock) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=50, output_tokens=40))
    fake.fail_mid_stream(3, operation="converse_stream", error="modelStreamErrorException")
    response = client.converse_stream(modelId=HAIKU, messages=MESSAGES)
    with pytest.raises(EventStreamError):
        for _ in response["stream"]:
            pass
    (record,) = records
    assert record.partial
    assert record.error_code == "modelStreamErrorException"
    assert record.usage.input_tokens > 0  # charged what is known or estimated, never nothing


# --- failures ------------------------------------------------------------------------------------------


def test_bedrock_errors_propagate_unchanged(client: Any, records: Records, fake: FakeBedrock) -> None:
    fake.fail_next("converse", "AccessDeniedException")
    with pytest.raises(client.exceptions.AccessDeniedException):
        converse(client)
    (record,) = records
    assert record.outcome == "error"
    assert record.error_code == "AccessDeniedException"


def test_retries_are_priced_once(raw_client: Any, fake: FakeBedrock) -> None:
    records = Records()
    client = bb.wrap(raw_client, listeners=[records])
    fake.set_usage(HAIKU, UsageSpec(input_tokens=10, output_tokens=10))
    fake.fail_next("converse", "ThrottlingException", times=2)
    response = converse(client)
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(records) == 1
    assert records[0].usage.input_tokens == 10


def test_a_broken_listener_never_breaks_the_call(raw_client: Any, fake: FakeBedrock) -> None:
    def explode(record: bb.CallRecord) -> None:
        raise RuntimeError("listener bug")

    records = Records()
    client = bb.wrap(raw_client, listeners=[explode, records])
    response = converse(client)
    assert response["output"]["message"]["role"] == "assistant"
    assert len(records) == 1


def test_unknown_model_recorded_unpriced_not_zero(client: Any, records: Records, fake: FakeBedrock) -> None:
    fake.map_model("anthropic.claude-9-secret-v1:0", HAIKU)
    converse(client, model="anthropic.claude-9-secret-v1:0")
    (record,) = records
    assert record.cost is None
    assert record.unpriced is not None
    assert "unknown model" in record.unpriced


# --- attribution ---------------------------------------------------------------------------------------


def test_attribution_precedence(raw_client: Any, fake: FakeBedrock) -> None:
    records = Records()
    client = bb.wrap(
        raw_client,
        listeners=[records],
        attribution={"app": "default-app", "team": "t0"},
        metadata_attribution={"tenant_id": "tenant", "team": "team"},
    )
    converse(client, requestMetadata={"tenant_id": "acme", "team": "t-meta"})
    with bb.attribute(team="t-context"):
        converse(client, requestMetadata={"team": "t-meta"})
    first, second = records
    assert first.attribution == {"app": "default-app", "team": "t-meta", "tenant": "acme"}
    assert second.attribution == {"app": "default-app", "team": "t-context"}


@pytest.mark.parametrize("hostile", ["a{b}", "x*", "line\nbreak", "é", "x" * 10_000, ""])
def test_hostile_attribution_refused_before_any_io(client: Any, fake: FakeBedrock, hostile: str) -> None:
    with pytest.raises(bb.AttributionError), bb.attribute(user=hostile):
        converse(client)
    assert fake.request_count == 0


def test_hash_ids_accepts_any_value(raw_client: Any) -> None:
    records = Records()
    client = bb.wrap(raw_client, listeners=[records], hash_ids=True)
    with bb.attribute(user="someone@example.com {weird}"):
        converse(client)
    value = records[0].attribution["user"]
    assert value.startswith("h-")
    assert "@" not in value


# --- instrument / double wrapping -------------------------------------------------------------------------


def test_wrapping_twice_counts_once(raw_client: Any) -> None:
    records = Records()
    twice = bb.wrap(bb.wrap(raw_client, listeners=[records]), listeners=[records])
    converse(twice)
    assert len(records) == 1


def test_instrument_meters_new_clients_once(fake: FakeBedrock) -> None:
    records = Records()
    bb.instrument(listeners=[records])
    try:
        created = fake.client()
        assert type(created) is bb.BudgetedClient
        converse(created)
        converse(bb.wrap(created, listeners=[records]))
    finally:
        bb.uninstrument()
    assert len(records) == 2
    assert type(fake.client()) is not bb.BudgetedClient


def test_application_profile_resolved_through_control_plane(fake: FakeBedrock) -> None:
    arn = fake.add_inference_profile(HAIKU, regions=["us-east-1"])
    fake.set_usage(HAIKU, UsageSpec(input_tokens=1000, output_tokens=0))
    records = Records()
    client = bb.wrap(fake.client(), listeners=[records], control_plane=fake.control_client())
    converse(client, model=arn)
    (record,) = records
    assert record.model_id == HAIKU
    assert record.cost is not None
    assert record.cost.total_usd == usd("0.0008")


def test_static_mapping_for_offline_use(fake: FakeBedrock) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/zzz999yyy888"
    fake.map_model(arn, HAIKU)
    records = Records()
    client = bb.wrap(fake.client(), listeners=[records], model_mapping={arn: f"us.{HAIKU}"})
    converse(client, model=arn)
    assert records[0].model_id == HAIKU
    assert records[0].route == "geo"


def test_client_errors_are_client_errors(client: Any) -> None:
    with pytest.raises(ClientError):
        client.converse(modelId="nobody.nothing-v1:0", messages=MESSAGES)
