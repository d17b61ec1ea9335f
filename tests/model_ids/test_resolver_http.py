"""ModelResolver with real boto3 clients over real HTTP.

moto (5.2) implements only ``get_custom_model`` among the control-plane reads the resolver uses, so that one
runs against moto; everything else runs against the loopback server in ``_support``, which answers with the
JSON shapes of the botocore ``bedrock`` / ``bedrock-agent`` models and records the decoded request paths.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from bedrock_budget.errors import ModelResolutionError
from bedrock_budget.resolver import ModelResolver

from ._support import (
    HAIKU,
    FakeClock,
    FakeControlPlane,
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

Clients = Callable[..., Any]

APP = arn("application-inference-profile/abcd1234efgh")
PROVISIONED = arn("provisioned-model/a1b2c3d4e5f6")
DEPLOYMENT = arn("custom-model-deployment/d1e2p3l4o5y6")
IMPORTED = arn("imported-model/i1m2p3o4r5t6")
ROUTER = arn("default-prompt-router/anthropic.claude:1")
PROMPT = arn("prompt/PROMPT1234")
SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"


def test_application_profile_over_http(control_plane_server: FakeControlPlane, http_clients: Clients) -> None:
    control_plane_server.ok(
        f"/inference-profiles/{APP}",
        inference_profile_body(
            APP, SONNET_45, ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-south-1"]
        ),
    )
    resolved = ModelResolver(control_plane=http_clients("bedrock")).resolve(APP, client_region="us-west-2")
    assert (resolved.base_id, resolved.route, resolved.geo, resolved.region) == (
        SONNET_45,
        "global",
        "global",
        "us-west-2",
    )
    [seen] = control_plane_server.requests
    # botocore sends the ARN as one percent-encoded path label (wire sheet §1.2).
    assert seen.raw_path == "/inference-profiles/" + APP.replace(":", "%3A").replace("/", "%2F")


def test_every_lookup_kind_over_http(control_plane_server: FakeControlPlane, http_clients: Clients) -> None:
    plane = control_plane_server
    custom = arn("custom-model/amazon.nova-micro-v1:0/c1u2s3t4o5m6")
    haiku_profile = arn(f"inference-profile/us.{HAIKU}")
    plane.ok(
        f"/provisioned-model-throughput/{PROVISIONED}",
        provisioned_body(PROVISIONED, fm_arn(HAIKU), modelUnits=1, commitmentDuration="OneMonth"),
    )
    plane.ok(
        f"/model-customization/custom-model-deployments/{DEPLOYMENT}", deployment_body(DEPLOYMENT, custom)
    )
    plane.ok(f"/imported-models/{IMPORTED}", imported_body(IMPORTED))
    plane.ok(f"/prompt-routers/{ROUTER}", prompt_router_body(ROUTER, haiku_profile, [haiku_profile]))
    plane.ok(f"/prompts/{PROMPT}/", prompt_body(PROMPT, [text_variant("v", f"eu.{HAIKU}")], "v"))
    resolver = ModelResolver(
        control_plane=http_clients("bedrock"), agent_control_plane=http_clients("bedrock-agent")
    )

    provisioned = resolver.resolve(PROVISIONED)
    assert (provisioned.base_id, provisioned.pricing_mode) == (HAIKU, "provisioned")
    assert provisioned.provisioned is not None
    assert (provisioned.provisioned.model_units, provisioned.provisioned.commitment) == (1, "OneMonth")
    assert provisioned.provisioned.commitment_expiration is None

    deployment = resolver.resolve(DEPLOYMENT)
    assert (deployment.base_id, deployment.pricing_mode) == ("amazon.nova-micro-v1:0", "custom_deployment")

    imported = resolver.resolve(IMPORTED)
    assert (imported.base_id, imported.pricing_mode) == (IMPORTED, "custom_model_import")
    assert imported.imported is not None
    assert imported.imported.custom_model_units_version == "v1.0"

    router = resolver.resolve(ROUTER)
    assert (router.base_id, router.route, router.candidates) == (HAIKU, "geo", (HAIKU,))

    prompt = resolver.resolve(PROMPT)
    assert (prompt.base_id, prompt.route, prompt.geo) == (HAIKU, "geo", "eu")
    prompt_request = plane.requests[-1]
    assert prompt_request.path == f"/prompts/{PROMPT}/"
    assert "promptVersion" not in prompt_request.query

    assert len(plane.requests) == 5


def test_prompt_version_travels_as_a_query_parameter(
    control_plane_server: FakeControlPlane, http_clients: Clients
) -> None:
    control_plane_server.ok(f"/prompts/{PROMPT}/", prompt_body(PROMPT, [text_variant("v", HAIKU)], "v"))
    resolver = ModelResolver(agent_control_plane=http_clients("bedrock-agent"))
    assert resolver.resolve(PROMPT + ":7").base_id == HAIKU
    assert control_plane_server.requests[0].query == {"promptVersion": ["7"]}


def test_profile_with_no_models(control_plane_server: FakeControlPlane, http_clients: Clients) -> None:
    body = inference_profile_body(APP, HAIKU, [])
    control_plane_server.ok(f"/inference-profiles/{APP}", body)
    with pytest.raises(ModelResolutionError, match="no models"):
        ModelResolver(control_plane=http_clients("bedrock")).resolve(APP)


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (404, "ResourceNotFoundException", "ResourceNotFoundException"),
        (403, "AccessDeniedException", "bedrock:GetProvisionedModelThroughput"),
        (400, "ValidationException", "ValidationException"),
        (500, "InternalServerException", "InternalServerException"),
        (429, "ThrottlingException", "ThrottlingException"),
    ],
)
def test_modeled_errors_become_resolution_errors(
    control_plane_server: FakeControlPlane, http_clients: Clients, status: int, error_type: str, expected: str
) -> None:
    control_plane_server.error(f"/provisioned-model-throughput/{PROVISIONED}", status, error_type, "nope")
    with pytest.raises(ModelResolutionError, match=expected) as info:
        ModelResolver(control_plane=http_clients("bedrock")).resolve(PROVISIONED)
    cause = info.value.__cause__
    assert isinstance(cause, ClientError)
    assert cause.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_unreachable_control_plane_is_a_resolution_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now: connecting is refused at once.
    client = make_client("bedrock", endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ModelResolutionError, match="get_inference_profile failed") as info:
        ModelResolver(control_plane=client).resolve(APP)
    assert isinstance(info.value.__cause__, EndpointConnectionError)
    client.close()


def test_outage_is_cached_then_retried(
    control_plane_server: FakeControlPlane, http_clients: Clients, clock: FakeClock
) -> None:
    path = f"/inference-profiles/{APP}"
    control_plane_server.error(path, 500, "InternalServerException", "down")
    resolver = ModelResolver(control_plane=http_clients("bedrock"), clock=clock, negative_ttl_seconds=60)
    for _ in range(5):
        with pytest.raises(ModelResolutionError):
            resolver.resolve(APP)
    assert control_plane_server.hits(path) == 1
    control_plane_server.ok(path, inference_profile_body(APP, HAIKU, ["us-east-1", "us-west-2"]))
    clock.advance(61)
    assert resolver.resolve(APP).base_id == HAIKU
    assert resolver.resolve(APP).base_id == HAIKU
    assert control_plane_server.hits(path) == 2


def test_concurrent_first_lookups_send_one_request(
    control_plane_server: FakeControlPlane, http_clients: Clients
) -> None:
    path = f"/inference-profiles/{APP}"
    control_plane_server.ok(path, inference_profile_body(APP, HAIKU, ["eu-west-1", "eu-central-1"]))
    control_plane_server.delay = 0.2
    resolver = ModelResolver(control_plane=http_clients("bedrock"))
    threads = 24
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads

    def work(index: int) -> None:
        barrier.wait()
        results[index] = resolver.resolve(APP)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert control_plane_server.hits(path) == 1
    assert {(r.base_id, r.route, r.geo) for r in results} == {(HAIKU, "geo", "eu")}


def test_custom_model_from_moto() -> None:
    with mock_aws():
        client = make_client("bedrock")
        client.create_model_customization_job(
            jobName="tune-support",
            customModelName="support",
            roleArn="arn:aws:iam::123456789012:role/bedrock-tuning",
            baseModelIdentifier="amazon.titan-text-express-v1",
            trainingDataConfig={"s3Uri": "s3://training-bucket/train.jsonl"},
            outputDataConfig={"s3Uri": "s3://training-bucket/out/"},
            hyperParameters={"epochCount": "1"},
        )
        [summary] = client.list_custom_models()["modelSummaries"]
        custom_arn = summary["modelArn"]
        resolved = ModelResolver(control_plane=client).resolve(custom_arn, client_region="us-east-1")
        assert (resolved.base_id, resolved.pricing_mode, resolved.source) == (
            "amazon.titan-text-express-v1",
            "custom_deployment",
            "control_plane",
        )
        with pytest.raises(ModelResolutionError, match="ResourceNotFoundException"):
            ModelResolver(control_plane=client).resolve(arn("custom-model/missing"))


def test_custom_model_over_http(control_plane_server: FakeControlPlane, http_clients: Clients) -> None:
    custom = arn("custom-model/support-tuned")
    control_plane_server.ok(
        f"/custom-models/{custom}", custom_model_body(custom, fm_arn("amazon.nova-lite-v1:0"))
    )
    resolved = ModelResolver(control_plane=http_clients("bedrock")).resolve(custom)
    assert resolved.base_id == "amazon.nova-lite-v1:0"
