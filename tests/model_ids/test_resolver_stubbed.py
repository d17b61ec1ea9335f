"""ModelResolver against real boto3 clients whose responses come from botocore's Stubber."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from bedrock_budget.errors import ConfigurationError, InvalidModelIdError, ModelResolutionError
from bedrock_budget.resolver import ModelResolver, route_from_regions

from ._support import (
    HAIKU,
    FakeClock,
    arn,
    custom_model_body,
    deployment_body,
    fm_arn,
    imported_body,
    inference_profile_body,
    make_client,
    prompt_body,
    prompt_router_body,
    provisioned_body,
    text_variant,
)

Stub = tuple[Any, Stubber]

APP = arn("application-inference-profile/abcd1234efgh")
APP_EU = arn("application-inference-profile/eu0000000001", "eu-west-1")
PROVISIONED = arn("provisioned-model/a1b2c3d4e5f6")
DEPLOYMENT = arn("custom-model-deployment/d1e2p3l4o5y6")
IMPORTED = arn("imported-model/i1m2p3o4r5t6")
ROUTER = arn("default-prompt-router/anthropic.claude:1")
PROMPT = arn("prompt/PROMPT1234:3")
AGENT_ALIAS = "arn:aws:bedrock:us-east-1:123456789012:agent-alias/AGENT12345/ALIAS12345"
SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA_MICRO = "amazon.nova-micro-v1:0"


def expect_profile(stubber: Stubber, profile: str, model: str, regions: list[str]) -> None:
    stubber.add_response(
        "get_inference_profile",
        inference_profile_body(profile, model, regions),
        {"inferenceProfileIdentifier": profile},
    )


# -- ids that show their model ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "base_id", "route", "geo", "mode"),
    [
        (HAIKU, HAIKU, "in_region", None, "on_demand"),
        (f"us.{HAIKU}", HAIKU, "geo", "us", "on_demand"),
        (f"global.{SONNET_45}", SONNET_45, "global", "global", "on_demand"),
        (fm_arn(HAIKU, "eu-west-1"), HAIKU, "in_region", None, "on_demand"),
        (arn(f"inference-profile/apac.{HAIKU}"), HAIKU, "geo", "apac", "on_demand"),
        (arn(f"custom-model/{NOVA_MICRO}/c1u2s3t4o5m6"), NOVA_MICRO, "in_region", None, "custom_deployment"),
        (
            "arn:aws:sagemaker:us-east-1:123456789012:endpoint/llm",
            "arn:aws:sagemaker:us-east-1:123456789012:endpoint/llm",
            "in_region",
            None,
            "marketplace",
        ),
        (IMPORTED, IMPORTED, "in_region", None, "custom_model_import"),
    ],
)
def test_visible_ids_resolve_offline(
    model_id: str, base_id: str, route: str, geo: str | None, mode: str
) -> None:
    resolved = ModelResolver().resolve(model_id, client_region="us-west-2")
    assert (resolved.base_id, resolved.route, resolved.geo, resolved.pricing_mode) == (
        base_id,
        route,
        geo,
        mode,
    )
    assert resolved.region == "us-west-2"
    assert resolved.source == "id"
    assert resolved.provisioned is None


def test_region_is_the_client_region_then_the_arn_region_then_us_east_1() -> None:
    resolver = ModelResolver()
    cross_region = arn(f"inference-profile/eu.{HAIKU}", "eu-west-1")
    assert resolver.resolve(cross_region, client_region="eu-central-1").region == "eu-central-1"
    assert resolver.resolve(cross_region).region == "eu-west-1"
    assert resolver.resolve(f"eu.{HAIKU}").region == "us-east-1"


@pytest.mark.parametrize("model_id", ["anthropic..claude", ["list"], None])
def test_invalid_id_raises_invalid_model_id(model_id: Any) -> None:
    with pytest.raises(InvalidModelIdError):
        ModelResolver().resolve(model_id)


def test_repeated_offline_resolutions_are_memoised() -> None:
    resolver = ModelResolver(static_mapping={APP: f"us.{HAIKU}"})
    first = resolver.resolve(APP, client_region="us-west-2")
    assert resolver.resolve(APP, client_region="us-west-2") is first
    other_region = resolver.resolve(APP, client_region="eu-west-1")
    assert other_region.region == "eu-west-1"
    assert resolver.resolve(f"us.{HAIKU}") is resolver.resolve(f"us.{HAIKU}")


# -- no control plane, no mapping -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "permission"),
    [
        (APP, "bedrock:GetInferenceProfile"),
        (PROVISIONED, "bedrock:GetProvisionedModelThroughput"),
        (DEPLOYMENT, "bedrock:GetCustomModelDeployment"),
        (ROUTER, "bedrock:GetPromptRouter"),
        (arn("custom-model/imported/a1b2c3d4e5f6"), "bedrock:GetCustomModel"),
    ],
)
def test_hidden_id_without_control_plane_says_how_to_fix_it(model_id: str, permission: str) -> None:
    with pytest.raises(ModelResolutionError) as info:
        ModelResolver().resolve(model_id)
    message = str(info.value)
    assert info.value.model_id == model_id
    assert "control_plane=boto3.client('bedrock', region_name='us-east-1')" in message
    assert permission in message
    assert f"static_mapping={{{model_id!r}: " in message


def test_prompt_without_agent_client_names_bedrock_agent(bedrock_stub: Stub) -> None:
    client, _ = bedrock_stub
    with pytest.raises(ModelResolutionError) as info:
        ModelResolver(control_plane=client).resolve(PROMPT)
    assert "agent_control_plane=boto3.client('bedrock-agent'" in str(info.value)
    assert "bedrock:GetPrompt" in str(info.value)


# -- static mapping ----------------------------------------------------------------------------------------


def test_static_mapping_resolves_offline_and_carries_the_route() -> None:
    resolver = ModelResolver(
        static_mapping={APP: f"us.{HAIKU}", APP_EU: f"global.{SONNET_45}", PROVISIONED: fm_arn(HAIKU)}
    )
    app = resolver.resolve(APP, client_region="us-west-2")
    assert (app.base_id, app.route, app.geo, app.pricing_mode, app.source) == (
        HAIKU,
        "geo",
        "us",
        "on_demand",
        "static_mapping",
    )
    assert app.region == "us-west-2"
    assert resolver.resolve(APP_EU).route == "global"
    assert resolver.resolve(APP_EU).region == "eu-west-1"
    # A provisioned model is billed per model-unit hour whatever it is mapped to.
    assert resolver.resolve(PROVISIONED).pricing_mode == "provisioned"


def test_static_mapping_matches_the_percent_encoded_form() -> None:
    resolver = ModelResolver(static_mapping={APP: HAIKU})
    encoded = APP.replace(":", "%3A").replace("/", "%2F")
    resolved = resolver.resolve(encoded)
    assert resolved.base_id == HAIKU
    assert resolved.ref.raw == encoded


def test_static_mapping_wins_over_the_control_plane(bedrock_stub: Stub) -> None:
    client, _ = bedrock_stub  # no responses queued: any call would fail the test
    resolver = ModelResolver(static_mapping={APP: HAIKU}, control_plane=client)
    assert resolver.resolve(APP).base_id == HAIKU


def test_static_mapping_can_alias_a_visible_id() -> None:
    resolver = ModelResolver(static_mapping={"acme.private-llm-v1:0": HAIKU})
    assert resolver.resolve("acme.private-llm-v1:0").base_id == HAIKU


def test_static_mapping_value_may_itself_need_the_control_plane(bedrock_stub: Stub) -> None:
    client, stubber = bedrock_stub
    expect_profile(stubber, APP, HAIKU, ["us-east-1", "us-west-2"])
    resolver = ModelResolver(static_mapping={DEPLOYMENT: APP}, control_plane=client)
    resolved = resolver.resolve(DEPLOYMENT)
    assert (resolved.base_id, resolved.route, resolved.pricing_mode) == (HAIKU, "geo", "custom_deployment")


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({APP: "not a model"}, "static_mapping entry"),
        ({"anthropic..x": HAIKU}, "static_mapping entry"),
        ({APP: APP}, "loops"),
        ({APP: PROVISIONED, PROVISIONED: DEPLOYMENT, DEPLOYMENT: APP}, "loops"),
    ],
)
def test_bad_static_mapping_is_a_configuration_error(mapping: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ModelResolver(static_mapping=mapping)


@pytest.mark.parametrize(
    "kwargs",
    [{"control_plane": 42}, {"agent_control_plane": "bedrock"}, {"ttl_seconds": -1}, {"max_entries": 0}],
)
def test_bad_arguments_are_configuration_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ModelResolver(**kwargs)


# -- application inference profiles ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("regions", "route", "geo"),
    [
        (["us-east-1"], "in_region", None),
        (["us-east-1", "us-east-2", "us-west-2"], "geo", "us"),
        (["us-east-1", "us-east-2", "us-west-2", "ca-central-1"], "geo", "us"),
        (["ca-central-1", "ca-west-1"], "geo", "ca"),
        (["eu-central-1", "eu-west-1", "eu-west-3", "eu-north-1"], "geo", "eu"),
        (["eu-central-1", "eu-west-1", "il-central-1"], "geo", "eu"),
        (["ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-2"], "geo", "apac"),
        (["ap-northeast-1", "ap-northeast-3"], "geo", "jp"),
        (["ap-southeast-2", "ap-southeast-4"], "geo", "au"),
        (["ap-south-1", "ap-south-2"], "geo", "in"),
        (["us-gov-west-1", "us-gov-east-1"], "geo", "us-gov"),
        (["us-east-1", "eu-west-1"], "global", "global"),
        (["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "sa-east-1"], "global", "global"),
        (["sa-east-1", "af-south-1"], "global", "global"),
    ],
)
def test_application_profile_route_is_inferred_from_regions(
    bedrock_stub: Stub, regions: list[str], route: str, geo: str | None
) -> None:
    client, stubber = bedrock_stub
    expect_profile(stubber, APP, HAIKU, regions)
    resolved = ModelResolver(control_plane=client).resolve(APP, client_region="us-east-2")
    assert (resolved.base_id, resolved.route, resolved.geo) == (HAIKU, route, geo)
    assert (resolved.pricing_mode, resolved.source, resolved.region) == (
        "on_demand",
        "control_plane",
        "us-east-2",
    )
    assert route_from_regions(regions) == (route, geo)


def test_route_from_regions_needs_regions() -> None:
    with pytest.raises(ValueError, match="no Regions"):
        route_from_regions([])


def test_system_profile_without_geo_prefix_is_looked_up(bedrock_stub: Stub) -> None:
    client, stubber = bedrock_stub
    profile = arn("inference-profile/some-future-profile")
    stubber.add_response(
        "get_inference_profile",
        inference_profile_body(profile, HAIKU, ["us-east-1", "us-west-2"], kind="SYSTEM_DEFINED"),
        {"inferenceProfileIdentifier": profile},
    )
    resolved = ModelResolver(control_plane=client).resolve(profile)
    assert (resolved.base_id, resolved.route) == (HAIKU, "geo")


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([{"modelArn": fm_arn(HAIKU)}, {"modelArn": fm_arn(SONNET_45, "us-west-2")}], "several models"),
        ([{"modelArn": arn("provisioned-model/a1b2c3d4e5f6")}], "not a foundation-model ARN"),
    ],
)
def test_unusable_profile_responses_fail_clearly(bedrock_stub: Stub, models: list[Any], message: str) -> None:
    client, stubber = bedrock_stub
    body = inference_profile_body(APP, HAIKU, ["us-east-1"])
    body["models"] = models
    stubber.add_response("get_inference_profile", body, {"inferenceProfileIdentifier": APP})
    with pytest.raises(ModelResolutionError, match=message):
        ModelResolver(control_plane=client).resolve(APP)


# -- provisioned, custom, imported -----------------------------------------------------------------------


def test_provisioned_model(bedrock_stub: Stub) -> None:
    client, stubber = bedrock_stub
    expires = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    variant = "anthropic.claude-3-haiku-20240307-v1:0:200k"
    stubber.add_response(
        "get_provisioned_model_throughput",
        provisioned_body(
            PROVISIONED,
            fm_arn(variant),
            modelUnits=3,
            desiredModelUnits=4,
            commitmentDuration="SixMonths",
            commitmentExpirationTime=expires,
        ),
        {"provisionedModelId": PROVISIONED},
    )
    resolved = ModelResolver(control_plane=client).resolve(PROVISIONED, client_region="us-east-1")
    assert (resolved.base_id, resolved.route, resolved.pricing_mode) == (variant, "in_region", "provisioned")
    info = resolved.provisioned
    assert info is not None
    assert (info.model_units, info.desired_model_units, info.commitment) == (3, 4, "SixMonths")
    assert info.commitment_expiration == expires
    assert (info.provisioned_model_arn, info.model_arn, info.status) == (
        PROVISIONED,
        fm_arn(variant),
        "InService",
    )


def test_provisioned_custom_model_prices_by_its_foundation_model(bedrock_stub: Stub) -> None:
    client, stubber = bedrock_stub
    custom = arn(f"custom-model/{NOVA_MICRO}/c1u2s3t4o5m6")
    stubber.add_response(
        "get_provisioned_model_throughput",
        provisioned_body(PROVISIONED, fm_arn(NOVA_MICRO), model_arn=custom),
        {"provisionedModelId": PROVISIONED},
    )
    resolved = ModelResolver(control_plane=client).resolve(PROVISIONED)
    assert (resolved.base_id, resolved.pricing_mode) == (NOVA_MICRO, "provisioned")
    assert resolved.provisioned is not None
    assert resolved.provisioned.model_arn == custom
    assert resolved.provisioned.commitment is None


def test_custom_model_deployment_chains_to_the_base_model(bedrock_stub: Stub) -> None:
    client, stubber = bedrock_stub
    custom = arn("custom-model/support-tuned")
    stubber.add_response(
        "get_custom_model_deployment",
        deployment_body(DEPLOYMENT, arn(f"custom-model/{NOVA_MICRO}/c1u2s3t4o5m6")),
        {"customModelDeploymentIdentifier": DEPLOYMENT},
    )
    resolved = ModelResolver(control_plane=client).resolve(DEPLOYMENT)
    assert (resolved.base_id, resolved.pricing_mode, resolved.source) == (
        NOVA_MICRO,
        "custom_deployment",
        "control_plane",
    )
    # The short custom-model form needs get_custom_model.
    stubber.add_response(
        "get_custom_model", custom_model_body(custom, fm_arn(NOVA_MICRO)), {"modelIdentifier": custom}
    )
    resolved = ModelResolver(control_plane=client).resolve(custom)
    assert (resolved.base_id, resolved.pricing_mode) == (NOVA_MICRO, "custom_deployment")


def test_deployment_of_imported_custom_weights_prices_by_its_own_arn(bedrock_stub: Stub) -> None:
    client, stubber = bedrock_stub
    custom = arn("custom-model/imported/c1u2s3t4o5m6")
    stubber.add_response(
        "get_custom_model_deployment",
        deployment_body(DEPLOYMENT, custom),
        {"customModelDeploymentIdentifier": DEPLOYMENT},
    )
    stubber.add_response(
        "get_custom_model", custom_model_body(custom, None, "IMPORTED"), {"modelIdentifier": custom}
    )
    resolved = ModelResolver(control_plane=client).resolve(DEPLOYMENT)
    assert (resolved.base_id, resolved.pricing_mode) == (custom, "custom_deployment")


def test_imported_model_with_control_plane_reports_capacity(bedrock_stub: Stub) -> None:
    client, stubber = bedrock_stub
    stubber.add_response("get_imported_model", imported_body(IMPORTED), {"modelIdentifier": IMPORTED})
    resolved = ModelResolver(control_plane=client).resolve(IMPORTED)
    assert (resolved.base_id, resolved.pricing_mode) == (IMPORTED, "custom_model_import")
    assert resolved.imported is not None
    assert resolved.imported.custom_model_units_per_copy == 2
    assert resolved.imported.model_architecture == "llama3"


# -- prompt routers and prompts --------------------------------------------------------------------------


def test_prompt_router_prices_the_fallback_and_lists_candidates(bedrock_stub: Stub) -> None:
    client, stubber = bedrock_stub
    sonnet_profile = arn("inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0")
    haiku_profile = arn(f"inference-profile/us.{HAIKU}")
    stubber.add_response(
        "get_prompt_router",
        prompt_router_body(ROUTER, haiku_profile, [sonnet_profile, haiku_profile]),
        {"promptRouterArn": ROUTER},
    )
    resolved = ModelResolver(control_plane=client).resolve(ROUTER)
    assert (resolved.base_id, resolved.route, resolved.geo, resolved.pricing_mode) == (
        HAIKU,
        "geo",
        "us",
        "on_demand",
    )
    assert resolved.candidates == (HAIKU, "anthropic.claude-3-5-sonnet-20240620-v1:0")


def test_prompt_resolves_its_default_variant_recursively(bedrock_stub: Stub, agent_stub: Stub) -> None:
    client, stubber = bedrock_stub
    agent, agent_stubber = agent_stub
    agent_stubber.add_response(
        "get_prompt",
        prompt_body(PROMPT, [text_variant("a", fm_arn(SONNET_45)), text_variant("b", APP)], default="b"),
        {"promptIdentifier": PROMPT.rsplit(":", 1)[0], "promptVersion": "3"},
    )
    expect_profile(stubber, APP, HAIKU, ["eu-west-1", "eu-central-1"])
    resolved = ModelResolver(control_plane=client, agent_control_plane=agent).resolve(PROMPT)
    assert (resolved.base_id, resolved.route, resolved.geo, resolved.pricing_mode) == (
        HAIKU,
        "geo",
        "eu",
        "on_demand",
    )


def test_draft_prompt_with_a_single_variant(agent_stub: Stub) -> None:
    agent, stubber = agent_stub
    draft = arn("prompt/PROMPT1234")
    stubber.add_response(
        "get_prompt",
        prompt_body(draft, [text_variant("only", f"us.{HAIKU}")], None),
        {"promptIdentifier": draft},
    )
    resolved = ModelResolver(agent_control_plane=agent).resolve(draft)
    assert (resolved.base_id, resolved.route) == (HAIKU, "geo")


@pytest.mark.parametrize(
    ("variants", "default", "message"),
    [
        ([text_variant("a", HAIKU), text_variant("b", SONNET_45)], None, "ambiguous"),
        ([text_variant("a", HAIKU)], "missing", "ambiguous"),
        ([text_variant("a")], "a", "names no model"),
        (
            [
                text_variant("a", genAiResource={"agent": {"agentIdentifier": AGENT_ALIAS}}),
            ],
            "a",
            "runs an agent",
        ),
        ([text_variant("a", "not a model id")], "a", "unusable variants"),
    ],
)
def test_prompts_that_name_no_single_model_fail_clearly(
    agent_stub: Stub, variants: list[dict[str, Any]], default: str | None, message: str
) -> None:
    agent, stubber = agent_stub
    stubber.add_response(
        "get_prompt",
        prompt_body(PROMPT, variants, default),
        {"promptIdentifier": PROMPT.rsplit(":", 1)[0], "promptVersion": "3"},
    )
    with pytest.raises(ModelResolutionError, match=message):
        ModelResolver(agent_control_plane=agent).resolve(PROMPT)


def test_a_prompt_pointing_at_itself_is_a_loop_not_a_hang(agent_stub: Stub) -> None:
    agent, stubber = agent_stub
    draft = arn("prompt/PROMPT1234")
    stubber.add_response(
        "get_prompt", prompt_body(draft, [text_variant("a", draft)], "a"), {"promptIdentifier": draft}
    )
    with pytest.raises(ModelResolutionError, match="loop"):
        ModelResolver(agent_control_plane=agent).resolve(draft)


# -- failures, caching -------------------------------------------------------------------------------------


def test_access_denied_names_the_permission_and_chains_the_client_error(bedrock_stub: Stub) -> None:
    client, stubber = bedrock_stub
    stubber.add_client_error(
        "get_inference_profile",
        "AccessDeniedException",
        "not authorized",
        403,
        {"inferenceProfileIdentifier": APP},
    )
    with pytest.raises(ModelResolutionError) as info:
        ModelResolver(control_plane=client).resolve(APP)
    assert "bedrock:GetInferenceProfile" in str(info.value)
    assert "static_mapping=" in str(info.value)
    assert isinstance(info.value.__cause__, ClientError)


def test_failures_are_cached_briefly(bedrock_stub: Stub, clock: FakeClock) -> None:
    client, stubber = bedrock_stub
    stubber.add_client_error(
        "get_inference_profile", "ThrottlingException", "slow down", 429, {"inferenceProfileIdentifier": APP}
    )
    resolver = ModelResolver(control_plane=client, clock=clock, negative_ttl_seconds=60)
    with pytest.raises(ModelResolutionError, match="ThrottlingException"):
        resolver.resolve(APP)
    clock.advance(59)
    # No response is queued: a second control-plane call would fail with a Stubber error, not this one.
    with pytest.raises(ModelResolutionError, match="cached failure") as info:
        resolver.resolve(APP)
    assert isinstance(info.value.__cause__, ClientError)
    clock.advance(2)
    expect_profile(stubber, APP, HAIKU, ["us-east-1"])
    assert resolver.resolve(APP).base_id == HAIKU


def test_lookups_are_cached_for_the_ttl(bedrock_stub: Stub, clock: FakeClock) -> None:
    client, stubber = bedrock_stub
    expect_profile(stubber, APP, HAIKU, ["us-east-1"])
    resolver = ModelResolver(control_plane=client, clock=clock, ttl_seconds=3600)
    assert resolver.resolve(APP).base_id == HAIKU
    clock.advance(3599)
    assert resolver.resolve(APP, client_region="eu-west-1").base_id == HAIKU  # cache hit, new region applied
    assert resolver.resolve(APP, client_region="eu-west-1").region == "eu-west-1"
    stubber.assert_no_pending_responses()
    clock.advance(2)
    expect_profile(stubber, APP, SONNET_45, ["us-east-1"])  # the profile now says something else
    assert resolver.resolve(APP).base_id == SONNET_45


def test_mapping_to_a_looked_up_id_still_expires(bedrock_stub: Stub, clock: FakeClock) -> None:
    client, stubber = bedrock_stub
    resolver = ModelResolver(
        static_mapping={DEPLOYMENT: APP}, control_plane=client, clock=clock, ttl_seconds=10
    )
    expect_profile(stubber, APP, HAIKU, ["us-east-1"])
    assert resolver.resolve(DEPLOYMENT).base_id == HAIKU
    assert resolver.resolve(DEPLOYMENT).base_id == HAIKU
    clock.advance(11)
    expect_profile(stubber, APP, SONNET_45, ["us-east-1"])
    assert resolver.resolve(DEPLOYMENT).base_id == SONNET_45


def test_nested_failure_names_the_inner_id(bedrock_stub: Stub, agent_stub: Stub) -> None:
    client, stubber = bedrock_stub
    agent, agent_stubber = agent_stub
    draft = arn("prompt/PROMPT1234")
    agent_stubber.add_response(
        "get_prompt", prompt_body(draft, [text_variant("a", APP)], "a"), {"promptIdentifier": draft}
    )
    stubber.add_client_error(
        "get_inference_profile", "ResourceNotFoundException", "gone", 404, {"inferenceProfileIdentifier": APP}
    )
    with pytest.raises(ModelResolutionError) as info:
        ModelResolver(control_plane=client, agent_control_plane=agent).resolve(draft)
    assert info.value.model_id == draft
    assert f"it refers to {APP!r}: get_inference_profile failed: ResourceNotFoundException" in str(info.value)
    assert isinstance(info.value.__cause__, ClientError)


def test_invalidate_forgets(bedrock_stub: Stub) -> None:
    client, stubber = bedrock_stub
    resolver = ModelResolver(control_plane=client)
    expect_profile(stubber, APP, HAIKU, ["us-east-1"])
    expect_profile(stubber, APP, SONNET_45, ["us-east-1"])
    expect_profile(stubber, APP, HAIKU, ["us-east-1"])
    assert resolver.resolve(APP).base_id == HAIKU
    resolver.invalidate(APP)
    assert resolver.resolve(APP).base_id == SONNET_45
    resolver.invalidate()
    assert resolver.resolve(APP).base_id == HAIKU


def test_cache_is_bounded(bedrock_stub: Stub) -> None:
    client, stubber = bedrock_stub
    other = arn("application-inference-profile/zzzz1234efgh")
    resolver = ModelResolver(control_plane=client, max_entries=1)
    expect_profile(stubber, APP, HAIKU, ["us-east-1"])
    expect_profile(stubber, other, SONNET_45, ["us-east-1"])
    expect_profile(stubber, APP, HAIKU, ["us-east-1"])
    assert resolver.resolve(APP).base_id == HAIKU
    assert resolver.resolve(other).base_id == SONNET_45
    assert resolver.resolve(APP).base_id == HAIKU  # evicted, so looked up again


def test_factory_gets_a_client_per_arn_region() -> None:
    clients = {
        "us-east-1": make_client("bedrock", "us-east-1"),
        "eu-west-1": make_client("bedrock", "eu-west-1"),
    }
    stubbers = {region: Stubber(client) for region, client in clients.items()}
    calls: list[str] = []

    def factory(region: str) -> Any:
        calls.append(region)
        return clients[region]

    expect_profile(stubbers["us-east-1"], APP, HAIKU, ["us-east-1"])
    expect_profile(stubbers["eu-west-1"], APP_EU, SONNET_45, ["eu-west-1"])
    other_eu = arn("application-inference-profile/eu0000000002", "eu-west-1")
    expect_profile(stubbers["eu-west-1"], other_eu, SONNET_45, ["eu-west-1"])
    for stubber in stubbers.values():
        stubber.activate()
    resolver = ModelResolver(control_plane=factory)
    assert resolver.resolve(APP).base_id == HAIKU
    assert resolver.resolve(APP_EU).base_id == SONNET_45
    assert resolver.resolve(other_eu).base_id == SONNET_45
    assert calls == ["us-east-1", "eu-west-1"]
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()


def test_a_failing_factory_is_a_resolution_error() -> None:
    def factory(region: str) -> Any:
        raise RuntimeError(f"no credentials for {region}")

    with pytest.raises(ModelResolutionError, match="factory failed") as info:
        ModelResolver(control_plane=factory).resolve(APP)
    assert isinstance(info.value.__cause__, RuntimeError)


# -- concurrency -------------------------------------------------------------------------------------------


class SlowControlPlane:
    """A hand-written client (Stubber is not meant for concurrent use) that counts and delays calls."""

    def __init__(self, delay: float = 0.1, error: Exception | None = None) -> None:
        self.delay = delay
        self.error = error
        self.calls = 0
        self._lock = threading.Lock()

    def get_inference_profile(self, inferenceProfileIdentifier: str) -> dict[str, Any]:  # noqa: N803
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return inference_profile_body(inferenceProfileIdentifier, HAIKU, ["us-east-1", "eu-west-1"])


def _hammer(resolver: ModelResolver, model_id: str, threads: int) -> list[object]:
    barrier = threading.Barrier(threads)
    results: list[object] = [None] * threads

    def work(index: int) -> None:
        barrier.wait()
        try:
            results[index] = resolver.resolve(model_id)
        except Exception as exc:
            results[index] = exc

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    return results


def test_many_threads_one_lookup() -> None:
    plane = SlowControlPlane()
    resolver = ModelResolver(control_plane=plane)
    results = _hammer(resolver, APP, 48)
    assert plane.calls == 1
    assert {r.base_id for r in results} == {HAIKU}  # type: ignore[attr-defined]
    assert {r.route for r in results} == {"global"}  # type: ignore[attr-defined]


def test_many_threads_one_failed_lookup() -> None:
    error = ClientError(
        {"Error": {"Code": "InternalServerException", "Message": "boom"}}, "GetInferenceProfile"
    )
    plane = SlowControlPlane(error=error)
    resolver = ModelResolver(control_plane=plane)
    results = _hammer(resolver, APP, 32)
    assert plane.calls == 1
    assert all(isinstance(r, ModelResolutionError) for r in results)
    assert all(isinstance(getattr(r, "__cause__", None), ClientError) for r in results)


def test_an_unexpected_error_reaches_every_waiter_and_is_not_cached() -> None:
    plane = SlowControlPlane(error=RuntimeError("bug"))
    resolver = ModelResolver(control_plane=plane)
    results = _hammer(resolver, APP, 16)
    assert plane.calls == 1
    assert sum(isinstance(r, RuntimeError) for r in results) == 1  # the thread that made the call
    assert sum(isinstance(r, ModelResolutionError) for r in results) == 15
    plane.error = None
    assert resolver.resolve(APP).base_id == HAIKU
    assert plane.calls == 2
