"""Every identifier form Bedrock accepts, and the ones it must refuse."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any
from urllib.parse import quote

import pytest

from bedrock_budget.errors import BedrockBudgetError, InvalidModelIdError
from bedrock_budget.model_ids import (
    GEO_PREFIXES,
    MAX_MODEL_ID_LENGTH,
    ModelRef,
    parse_model_id,
    strip_version,
)

A = "123456789012"
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"

# (id, expected fields). Fields not listed must be None (or "in_region" for route).
VALID: list[tuple[str, dict[str, Any]]] = [
    # -- base foundation-model ids
    (HAIKU, {"kind": "foundation_model", "base_id": HAIKU}),
    ("anthropic.claude-sonnet-4-6", {"kind": "foundation_model", "base_id": "anthropic.claude-sonnet-4-6"}),
    ("anthropic.claude-opus-4-6-v1", {"kind": "foundation_model", "base_id": "anthropic.claude-opus-4-6-v1"}),
    ("anthropic.claude-v2:1", {"kind": "foundation_model", "base_id": "anthropic.claude-v2:1"}),
    (
        "anthropic.claude-3-haiku-20240307-v1:0:200k",
        {"kind": "foundation_model", "base_id": "anthropic.claude-3-haiku-20240307-v1:0:200k"},
    ),
    ("amazon.nova-pro-v1:0", {"kind": "foundation_model", "base_id": "amazon.nova-pro-v1:0"}),
    ("amazon.titan-embed-text-v2:0", {"kind": "foundation_model", "base_id": "amazon.titan-embed-text-v2:0"}),
    ("openai.gpt-oss-120b-1:0", {"kind": "foundation_model", "base_id": "openai.gpt-oss-120b-1:0"}),
    ("ai21.jamba-1-5-large-v1:0", {"kind": "foundation_model", "base_id": "ai21.jamba-1-5-large-v1:0"}),
    (
        "cohere.embed-english-v3:0:512",
        {"kind": "foundation_model", "base_id": "cohere.embed-english-v3:0:512"},
    ),
    # provider names are never taken for prefixes, and a geo word is a prefix only before provider.model
    ("us.amazon", {"kind": "foundation_model", "base_id": "us.amazon"}),
    ("global.x-v1:0", {"kind": "foundation_model", "base_id": "global.x-v1:0"}),
    (
        "meta.llama3-2-90b.instruct-v1:0",
        {"kind": "foundation_model", "base_id": "meta.llama3-2-90b.instruct-v1:0"},
    ),
    # -- cross-Region (system) profile ids
    (f"us.{HAIKU}", {"kind": "inference_profile", "base_id": HAIKU, "route": "geo", "geo": "us"}),
    (f"eu.{HAIKU}", {"kind": "inference_profile", "base_id": HAIKU, "route": "geo", "geo": "eu"}),
    (f"apac.{HAIKU}", {"kind": "inference_profile", "base_id": HAIKU, "route": "geo", "geo": "apac"}),
    (f"jp.{SONNET_45}", {"kind": "inference_profile", "base_id": SONNET_45, "route": "geo", "geo": "jp"}),
    (f"au.{SONNET_45}", {"kind": "inference_profile", "base_id": SONNET_45, "route": "geo", "geo": "au"}),
    (f"ca.{SONNET_45}", {"kind": "inference_profile", "base_id": SONNET_45, "route": "geo", "geo": "ca"}),
    # India (ap-south-1, ap-south-2): Kimi and GPT-5.x are offered through in. profiles.
    (
        "in.moonshotai.kimi-k2-thinking",
        {"kind": "inference_profile", "base_id": "moonshotai.kimi-k2-thinking", "route": "geo", "geo": "in"},
    ),
    (
        f"us-gov.{SONNET_45}",
        {"kind": "inference_profile", "base_id": SONNET_45, "route": "geo", "geo": "us-gov"},
    ),
    (
        f"global.{SONNET_45}",
        {"kind": "inference_profile", "base_id": SONNET_45, "route": "global", "geo": "global"},
    ),
    (
        "us.amazon.nova-pro-v1:0",
        {"kind": "inference_profile", "base_id": "amazon.nova-pro-v1:0", "route": "geo", "geo": "us"},
    ),
    (
        "global.amazon.nova-2-lite-v1:0",
        {
            "kind": "inference_profile",
            "base_id": "amazon.nova-2-lite-v1:0",
            "route": "global",
            "geo": "global",
        },
    ),
    (
        "us.anthropic.claude-sonnet-4-6",
        {"kind": "inference_profile", "base_id": "anthropic.claude-sonnet-4-6", "route": "geo", "geo": "us"},
    ),
    # -- foundation-model ARNs (no account)
    (
        f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}",
        {
            "kind": "foundation_model",
            "base_id": HAIKU,
            "region": "us-east-1",
            "partition": "aws",
            "resource_id": HAIKU,
        },
    ),
    (
        "arn:aws-us-gov:bedrock:us-gov-west-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0:200k",
        {
            "kind": "foundation_model",
            "base_id": "anthropic.claude-3-haiku-20240307-v1:0:200k",
            "region": "us-gov-west-1",
            "partition": "aws-us-gov",
            "resource_id": "anthropic.claude-3-haiku-20240307-v1:0:200k",
        },
    ),
    (
        "arn:aws-cn:bedrock:cn-north-1::foundation-model/amazon.nova-lite-v1:0",
        {
            "kind": "foundation_model",
            "base_id": "amazon.nova-lite-v1:0",
            "region": "cn-north-1",
            "partition": "aws-cn",
            "resource_id": "amazon.nova-lite-v1:0",
        },
    ),
    # -- system inference-profile ARNs
    (
        f"arn:aws:bedrock:eu-west-1:{A}:inference-profile/eu.{HAIKU}",
        {
            "kind": "inference_profile",
            "base_id": HAIKU,
            "route": "geo",
            "geo": "eu",
            "region": "eu-west-1",
            "account": A,
            "partition": "aws",
            "resource_id": f"eu.{HAIKU}",
        },
    ),
    (
        f"arn:aws:bedrock:us-west-2:{A}:inference-profile/global.{SONNET_45}",
        {
            "kind": "inference_profile",
            "base_id": SONNET_45,
            "route": "global",
            "geo": "global",
            "region": "us-west-2",
            "account": A,
            "partition": "aws",
            "resource_id": f"global.{SONNET_45}",
        },
    ),
    (
        f"arn:aws:bedrock:us-east-1:{A}:inference-profile/some-future-profile",
        {
            "kind": "inference_profile",
            "region": "us-east-1",
            "account": A,
            "partition": "aws",
            "resource_id": "some-future-profile",
        },
    ),
    # -- ARNs that hide the model
    (
        f"arn:aws:bedrock:us-east-1:{A}:application-inference-profile/abcd1234efgh",
        {
            "kind": "application_inference_profile",
            "region": "us-east-1",
            "account": A,
            "partition": "aws",
            "resource_id": "abcd1234efgh",
        },
    ),
    (
        f"arn:aws:bedrock:us-east-1:{A}:provisioned-model/a1b2c3d4e5f6",
        {
            "kind": "provisioned_model",
            "region": "us-east-1",
            "account": A,
            "partition": "aws",
            "resource_id": "a1b2c3d4e5f6",
        },
    ),
    (
        f"arn:aws:bedrock:us-east-1:{A}:custom-model/amazon.titan-text-express-v1:0:8k/a1b2c3d4e5f6",
        {
            "kind": "custom_model",
            "base_id": "amazon.titan-text-express-v1:0:8k",
            "region": "us-east-1",
            "account": A,
            "partition": "aws",
            "resource_id": "a1b2c3d4e5f6",
        },
    ),
    (
        f"arn:aws:bedrock:us-east-1:{A}:custom-model/imported/a1b2c3d4e5f6",
        {
            "kind": "custom_model",
            "region": "us-east-1",
            "account": A,
            "partition": "aws",
            "resource_id": "a1b2c3d4e5f6",
        },
    ),
    (
        f"arn:aws:bedrock:us-east-1:{A}:custom-model/support-tuned",
        {
            "kind": "custom_model",
            "region": "us-east-1",
            "account": A,
            "partition": "aws",
            "resource_id": "support-tuned",
        },
    ),
    (
        f"arn:aws:bedrock:us-east-1:{A}:custom-model-deployment/a1b2c3d4e5f6",
        {
            "kind": "custom_model_deployment",
            "region": "us-east-1",
            "account": A,
            "partition": "aws",
            "resource_id": "a1b2c3d4e5f6",
        },
    ),
    (
        f"arn:aws:bedrock:us-west-2:{A}:imported-model/a1b2c3d4e5f6",
        {
            "kind": "imported_model",
            "region": "us-west-2",
            "account": A,
            "partition": "aws",
            "resource_id": "a1b2c3d4e5f6",
        },
    ),
    (
        f"arn:aws:bedrock:us-east-1:{A}:prompt/PROMPT1234",
        {
            "kind": "prompt",
            "region": "us-east-1",
            "account": A,
            "partition": "aws",
            "resource_id": "PROMPT1234",
        },
    ),
    (
        f"arn:aws:bedrock:us-east-1:{A}:prompt/PROMPT1234:12",
        {
            "kind": "prompt",
            "region": "us-east-1",
            "account": A,
            "partition": "aws",
            "resource_id": "PROMPT1234",
            "version": "12",
        },
    ),
    (
        f"arn:aws:bedrock:us-east-1:{A}:default-prompt-router/anthropic.claude:1",
        {
            "kind": "prompt_router",
            "region": "us-east-1",
            "account": A,
            "partition": "aws",
            "resource_id": "anthropic.claude:1",
        },
    ),
    (
        f"arn:aws:bedrock:us-east-1:{A}:prompt-router/r1s2t3u4v5w6",
        {
            "kind": "prompt_router",
            "region": "us-east-1",
            "account": A,
            "partition": "aws",
            "resource_id": "r1s2t3u4v5w6",
        },
    ),
    (
        f"arn:aws:sagemaker:us-east-1:{A}:endpoint/marketplace-llm-1",
        {
            "kind": "sagemaker_endpoint",
            "region": "us-east-1",
            "account": A,
            "partition": "aws",
            "resource_id": "marketplace-llm-1",
        },
    ),
]

FIELDS = ("kind", "base_id", "route", "geo", "region", "account", "partition", "resource_id", "version")


def _expected(fields: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = dict.fromkeys(FIELDS)
    base["route"] = "in_region"
    return {**base, **fields}


def _actual(ref: ModelRef) -> dict[str, Any]:
    return {name: getattr(ref, name) for name in FIELDS}


@pytest.mark.parametrize(("model_id", "fields"), VALID, ids=[v[0] for v in VALID])
def test_parses_every_form(model_id: str, fields: dict[str, Any]) -> None:
    ref = parse_model_id(model_id)
    assert _actual(ref) == _expected(fields)
    assert ref.raw == model_id
    assert ref.canonical == model_id


@pytest.mark.parametrize(("model_id", "fields"), VALID, ids=[v[0] for v in VALID])
def test_percent_encoded_form_parses_the_same(model_id: str, fields: dict[str, Any]) -> None:
    encoded = quote(model_id, safe="")
    ref = parse_model_id(encoded)
    assert _actual(ref) == _expected(fields)
    assert ref.raw == encoded
    assert ref.canonical == model_id


def test_lowercase_percent_escapes_are_decoded() -> None:
    ref = parse_model_id(f"arn%3aaws%3abedrock%3aus-east-1%3a{A}%3aprovisioned-model%2fa1b2c3d4e5f6")
    assert ref.kind == "provisioned_model"
    assert ref.resource_id == "a1b2c3d4e5f6"


def test_botocore_wire_form_of_a_versioned_id() -> None:
    # What botocore puts in the request path for the reference example (wire sheet §1.2).
    ref = parse_model_id("anthropic.claude-3-5-sonnet-20241022-v2%3A0")
    assert ref.base_id == "anthropic.claude-3-5-sonnet-20241022-v2:0"


@pytest.mark.parametrize(
    ("model_id", "hidden"),
    [
        (HAIKU, False),
        (f"global.{SONNET_45}", False),
        (f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}", False),
        (f"arn:aws:bedrock:us-east-1:{A}:inference-profile/us.{HAIKU}", False),
        (f"arn:aws:bedrock:us-east-1:{A}:inference-profile/some-future-profile", True),
        (f"arn:aws:bedrock:us-east-1:{A}:application-inference-profile/abcd1234efgh", True),
        (f"arn:aws:bedrock:us-east-1:{A}:provisioned-model/a1b2c3d4e5f6", True),
        (f"arn:aws:bedrock:us-east-1:{A}:custom-model/imported/a1b2c3d4e5f6", True),
        (f"arn:aws:bedrock:us-east-1:{A}:custom-model/amazon.nova-micro-v1:0/a1b2c3d4e5f6", False),
        (f"arn:aws:bedrock:us-east-1:{A}:custom-model-deployment/a1b2c3d4e5f6", True),
        (f"arn:aws:bedrock:us-east-1:{A}:imported-model/a1b2c3d4e5f6", True),
        (f"arn:aws:bedrock:us-east-1:{A}:prompt/PROMPT1234:1", True),
        (f"arn:aws:bedrock:us-east-1:{A}:default-prompt-router/anthropic.claude:1", True),
        (f"arn:aws:sagemaker:us-east-1:{A}:endpoint/ep", False),
    ],
)
def test_needs_control_plane(model_id: str, hidden: bool) -> None:
    ref = parse_model_id(model_id)
    assert ref.needs_control_plane is hidden
    assert ref.is_arn is model_id.startswith("arn:")


def _long_valid_arn(length: int) -> str:
    prefix = f"arn:aws:bedrock:us-east-1:{A}:application-inference-profile/"
    return prefix + "a" * (length - len(prefix))


INVALID: list[tuple[object, str]] = [
    ("", "empty"),
    (" ", "characters"),
    ("\n", "characters"),
    ("\t", "characters"),
    ("\x00", "characters"),
    (f" {HAIKU}", "characters"),
    (f"{HAIKU} ", "characters"),
    (f"{HAIKU}\n", "characters"),
    (f"us.{HAIKU}\r\nX-Injected: 1", "characters"),
    ("anthropic claude", "characters"),
    ("x" * 3000, "limit is 2048"),
    ("a." + "b" * 2047, "limit is 2048"),
    (_long_valid_arn(MAX_MODEL_ID_LENGTH + 1), "limit is 2048"),
    ("..", "provider.model"),
    ("anthropic..claude-v2", "provider.model"),
    (".anthropic.claude-v2", "provider.model"),
    ("anthropic.claude-v2.", "provider.model"),
    ("anthropic.", "provider.model"),
    ("us..anthropic.claude-v2", "provider.model"),
    ("anthropic", "not a model id"),
    ("abcd1234efgh", "not a model id"),
    ("Anthropic.Claude-V2", "provider.model"),
    ("US.anthropic.claude-v2", "provider.model"),
    ("anthropic.claude-v2:0:200k:x", "provider.model"),
    ("anthropic.claude-v2::0", "provider.model"),
    ("anthropic.claude-v2:", "provider.model"),
    ("a.b.c.d.e", "provider.model"),
    ("anthropic." + "c" * 64, "provider.model"),
    ("anthropic.claude_v2", "provider.model"),
    ("anthropic.claude-v2/../x", "provider.model"),
    ("../../etc/passwd", "provider.model"),
    ("ünïcode.model", "characters"),
    ("anthropic.claude-v2\u200b", "characters"),
    ("anthropic.claude-v2\uff1a0", "characters"),
    ("аnthropic.claude-v2", "characters"),  # Cyrillic 'а'
    ("anthropic.claude-v2%", "percent"),
    ("anthropic.claude-v2%3", "percent"),
    ("anthropic.claude-v2%zz", "percent"),
    ("anthropic.claude-v2%253A0", "characters"),  # encoded twice: decoded exactly once
    ("%C3%A9.model", "characters"),
    ("anthropic.claude-v2%0A", "characters"),
    ("arn:aws:bedrock:us-east-1", "ARN of the form"),
    ("arn:", "ARN of the form"),
    ("arn:aws:s3:::bucket/key", "service 's3'"),
    ("arn:aws:iam::123456789012:role/x", "service 'iam'"),
    ("arn:azure:bedrock:us-east-1::foundation-model/anthropic.claude-v2", "partition"),
    ("arn:aws:bedrock::123456789012:provisioned-model/a1b2c3d4e5f6", "region"),
    ("arn:aws:bedrock:US-EAST-1::foundation-model/anthropic.claude-v2", "region"),
    (f"arn:aws:bedrock:us-east-1:{A}:foundation-model/anthropic.claude-v2", "account id (they have none)"),
    ("arn:aws:bedrock:us-east-1::foundation-model/us.anthropic.claude-v2:1", "inference-profile/"),
    ("arn:aws:bedrock:us-east-1::foundation-model/anthropic", "foundation-model id"),
    ("arn:aws:bedrock:us-east-1::foundation-model/", "no resource id"),
    ("arn:aws:bedrock:us-east-1::provisioned-model/a1b2c3d4e5f6", "account id"),
    ("arn:aws:bedrock:us-east-1:12345678901:provisioned-model/a1b2c3d4e5f6", "account id"),
    ("arn:aws:bedrock:us-east-1:1234567890123:provisioned-model/a1b2c3d4e5f6", "account id"),
    (f"arn:aws:bedrock:us-east-1:{A}:provisioned-model/A1B2C3D4E5F6", "provisioned-model id"),
    (f"arn:aws:bedrock:us-east-1:{A}:provisioned-model/a1b2c3d4e5f", "provisioned-model id"),
    (f"arn:aws:bedrock:us-east-1:{A}:provisioned-model/a1b2c3d4e5f6/x", "provisioned-model id"),
    (f"arn:aws:bedrock:us-east-1:{A}:imported-model/short", "imported-model id"),
    (f"arn:aws:bedrock:us-east-1:{A}:custom-model-deployment/x", "custom-model-deployment id"),
    (f"arn:aws:bedrock:us-east-1:{A}:custom-model/amazon.nova-micro-v1:0/short", "custom-model id"),
    (f"arn:aws:bedrock:us-east-1:{A}:custom-model/Bad..Base/a1b2c3d4e5f6", "base model"),
    (f"arn:aws:bedrock:us-east-1:{A}:custom-model/us.amazon.nova-micro-v1:0/a1b2c3d4e5f6", "base model"),
    (f"arn:aws:bedrock:us-east-1:{A}:custom-model/bad__name", "custom-model id"),
    (f"arn:aws:bedrock:us-east-1:{A}:application-inference-profile/", "no resource id"),
    (f"arn:aws:bedrock:us-east-1:{A}:application-inference-profile/a..b", "application-inference-profile id"),
    (f"arn:aws:bedrock:us-east-1:{A}:application-inference-profile/a/b", "application-inference-profile id"),
    (f"arn:aws:bedrock:us-east-1:{A}:inference-profile/us..x", "inference-profile id"),
    (f"arn:aws:bedrock:us-east-1:{A}:prompt/SHORT", "prompt id"),
    (f"arn:aws:bedrock:us-east-1:{A}:prompt/PROMPT1234:123456", "prompt id"),
    (f"arn:aws:bedrock:us-east-1:{A}:prompt/PROMPT1234:DRAFT", "prompt id"),
    (f"arn:aws:bedrock:us-east-1:{A}:default-prompt-router/.x", "prompt-router id"),
    (f"arn:aws:bedrock:us-east-1:{A}:agent/AGENT12345", "cannot be invoked"),
    (f"arn:aws:bedrock:us-east-1:{A}:guardrail/abc", "cannot be invoked"),
    (f"arn:aws:bedrock:us-east-1:{A}:provisioned-model", "no resource id"),
    (f"arn:aws:sagemaker:us-east-1:{A}:model/x", "endpoint"),
    ("arn:aws:sagemaker:us-east-1::endpoint/x", "account id"),
    (f"arn:aws:sagemaker:us-east-1:{A}:endpoint/bad_name", "endpoint"),
    (b"anthropic.claude-v2", "must be a str"),
    (None, "must be a str"),
    (42, "must be a str"),
]


@pytest.mark.parametrize(("model_id", "reason"), INVALID, ids=[repr(v[0])[:60] for v in INVALID])
def test_rejects_malformed_ids(model_id: object, reason: str) -> None:
    with pytest.raises(InvalidModelIdError) as info:
        parse_model_id(model_id)  # type: ignore[arg-type]
    assert reason in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, BedrockBudgetError)
    # Hostile input must not flood logs, and control characters are escaped, never written raw.
    assert len(str(info.value)) < 600
    assert "\n" not in str(info.value)
    assert "\r" not in str(info.value)


def test_length_limit_is_inclusive() -> None:
    ok = _long_valid_arn(MAX_MODEL_ID_LENGTH)
    assert len(ok) == MAX_MODEL_ID_LENGTH
    assert parse_model_id(ok).kind == "application_inference_profile"


def test_error_keeps_the_offending_id() -> None:
    with pytest.raises(InvalidModelIdError) as info:
        parse_model_id("anthropic..claude")
    assert info.value.model_id == "anthropic..claude"


@pytest.mark.parametrize("geo", sorted(GEO_PREFIXES))
def test_every_prefix_is_recognised_only_before_provider_model(geo: str) -> None:
    assert parse_model_id(f"{geo}.{HAIKU}").base_id == HAIKU
    lone = parse_model_id(f"{geo}.model-v1:0")
    assert lone.kind == "foundation_model"
    assert lone.base_id == f"{geo}.model-v1:0"


@pytest.mark.parametrize(("model_id", "fields"), VALID, ids=[v[0] for v in VALID])
def test_round_trip(model_id: str, fields: dict[str, Any]) -> None:
    ref = parse_model_id(model_id)
    # Reassembling the parts gives back the identifier.
    if ref.is_arn:
        service = "sagemaker" if ref.kind == "sagemaker_endpoint" else "bedrock"
        head = f"arn:{ref.partition}:{service}:{ref.region}:{ref.account or ''}:"
        assert ref.canonical.startswith(head)
        assert ref.resource_id is not None
        assert ref.resource_id in ref.canonical
    elif ref.geo is not None:
        assert f"{ref.geo}.{ref.base_id}" == model_id
    else:
        assert ref.base_id == model_id
    # And parsing what the parser produced changes nothing.
    if ref.base_id is not None:
        again = parse_model_id(ref.base_id)
        assert again.base_id == ref.base_id
        assert again.route == "in_region"
    assert parse_model_id(ref.canonical) == parse_model_id(model_id)


def test_results_are_memoised() -> None:
    first = parse_model_id(f"us.{HAIKU}")
    assert parse_model_id(f"us.{HAIKU}") is first


def test_cached_parse_is_fast() -> None:
    ids = [row[0] for row in VALID]
    for model_id in ids:
        parse_model_id(model_id)
    start = time.perf_counter()
    for _ in range(200):
        for model_id in ids:
            parse_model_id(model_id)
    elapsed = time.perf_counter() - start
    # ~9k lookups; a few milliseconds normally. The bound only catches an accidental loss of the cache.
    assert elapsed < 0.5


@pytest.mark.parametrize(
    ("base_id", "key"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0:200k", "anthropic.claude-3-haiku-20240307-v1"),
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", "anthropic.claude-3-5-sonnet-20241022-v2"),
        ("anthropic.claude-v2:1", "anthropic.claude-v2"),
        ("anthropic.claude-v2:1:18k", "anthropic.claude-v2"),
        ("cohere.embed-english-v3:0:512", "cohere.embed-english-v3"),
        ("meta.llama3-1-70b-instruct-v1:0:128k", "meta.llama3-1-70b-instruct-v1"),
        ("openai.gpt-oss-120b-1:0", "openai.gpt-oss-120b-1"),
        ("anthropic.claude-sonnet-4-6", "anthropic.claude-sonnet-4-6"),
        ("anthropic.claude-opus-4-6-v1", "anthropic.claude-opus-4-6-v1"),
        ("amazon.titan-embed-image-v1:mm", "amazon.titan-embed-image-v1:mm"),
        ("amazon.nova-pro-v1:0:300k", "amazon.nova-pro-v1"),
    ],
)
def test_strip_version(base_id: str, key: str) -> None:
    assert strip_version(base_id) == key
    assert strip_version(key) == key


def test_v1_and_v2_stay_different_models() -> None:
    assert strip_version("anthropic.claude-3-5-sonnet-20240620-v1:0") != strip_version(
        "anthropic.claude-3-5-sonnet-20241022-v2:0"
    )


@pytest.mark.parametrize("module", ["bedrock_budget.model_ids", "bedrock_budget.resolver"])
def test_importing_does_not_import_boto(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=60)
