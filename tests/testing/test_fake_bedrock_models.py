"""Model identifier forms and the control-plane reads that resolve hidden models."""

from __future__ import annotations

from typing import Any

import pytest

from bedrock_budget.testing import FakeBedrock, strip_geo

from .fakebedrock_support import CLAUDE, USER_HELLO


@pytest.mark.parametrize("geo", ["us", "eu", "apac", "jp", "au", "us-gov", "global"])
def test_geo_prefixes_resolve_to_the_base_model(fake: FakeBedrock, client: Any, geo: str) -> None:
    client.converse(modelId=f"{geo}.{CLAUDE}", messages=USER_HELLO)
    record = fake.requests[-1]
    assert (record.model_id, record.base_model_id, record.family) == (f"{geo}.{CLAUDE}", CLAUDE, "anthropic")


def test_strip_geo() -> None:
    assert strip_geo("us-gov.meta.llama3-8b-instruct-v1:0") == ("us-gov", "meta.llama3-8b-instruct-v1:0")
    assert strip_geo("global.anthropic.claude-sonnet-4-5-20250929-v1:0")[0] == "global"
    assert strip_geo(CLAUDE) == (None, CLAUDE)
    assert strip_geo("us.nothing") == (None, "us.nothing")


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:bedrock:us-east-1::foundation-model/{CLAUDE}",
        f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{CLAUDE}",
        f"arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/us-gov.{CLAUDE}",
    ],
)
def test_arns_that_name_their_model(fake: FakeBedrock, client: Any, arn: str) -> None:
    client.converse(modelId=arn, messages=USER_HELLO)
    record = fake.requests[-1]
    assert record.model_id == arn
    assert record.base_model_id == CLAUDE
    assert "%2F" in record.path  # botocore percent-encodes the ARN's slash; the fake decoded it


def test_application_inference_profile_resolves_at_runtime_and_in_the_control_plane(
    fake: FakeBedrock, client: Any
) -> None:
    arn = fake.add_inference_profile("us." + CLAUDE, name="team-a")
    assert arn.startswith("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/")
    client.converse(modelId=arn, messages=USER_HELLO)
    assert fake.requests[-1].base_model_id == CLAUDE
    control = fake.control_client()
    profile = control.get_inference_profile(inferenceProfileIdentifier=arn)
    assert profile["type"] == "APPLICATION"
    assert profile["inferenceProfileName"] == "team-a"
    assert {m["modelArn"] for m in profile["models"]} == {
        f"arn:aws:bedrock:{region}::foundation-model/{CLAUDE}"
        for region in ("us-east-1", "us-east-2", "us-west-2")
    }
    by_id = control.get_inference_profile(inferenceProfileIdentifier=arn.rsplit("/", 1)[1])
    assert by_id["inferenceProfileArn"] == arn
    assert [r.operation for r in fake.requests[-2:]] == ["GetInferenceProfile", "GetInferenceProfile"]


def test_system_defined_profile_in_the_control_plane(fake: FakeBedrock) -> None:
    profile = fake.control_client().get_inference_profile(inferenceProfileIdentifier="eu." + CLAUDE)
    assert profile["type"] == "SYSTEM_DEFINED"
    assert profile["inferenceProfileId"] == "eu." + CLAUDE
    assert all(m["modelArn"].endswith(f"foundation-model/{CLAUDE}") for m in profile["models"])
    assert all(":eu-" in m["modelArn"] for m in profile["models"])


def test_provisioned_model_resolves_at_runtime_and_in_the_control_plane(
    fake: FakeBedrock, client: Any
) -> None:
    arn = fake.add_provisioned_model(CLAUDE, name="prod-pt", model_units=2, commitment_duration="OneMonth")
    client.converse(modelId=arn, messages=USER_HELLO)
    assert fake.requests[-1].base_model_id == CLAUDE
    control = fake.control_client()
    for identifier in (arn, "prod-pt"):
        described = control.get_provisioned_model_throughput(provisionedModelId=identifier)
        assert described["provisionedModelArn"] == arn
        assert described["foundationModelArn"] == f"arn:aws:bedrock:us-east-1::foundation-model/{CLAUDE}"
        assert (described["modelUnits"], described["commitmentDuration"]) == (2, "OneMonth")


def test_control_plane_unknown_ids_are_not_found(fake: FakeBedrock) -> None:
    control = fake.control_client()
    with pytest.raises(control.exceptions.ResourceNotFoundException):
        control.get_inference_profile(inferenceProfileIdentifier="nope")
    with pytest.raises(control.exceptions.ResourceNotFoundException):
        control.get_provisioned_model_throughput(provisionedModelId="nope")


def test_imported_model_through_a_mapping(fake: FakeBedrock, client: Any) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:imported-model/abcdefghijkl"
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.converse(modelId=arn, messages=USER_HELLO)
    fake.map_model(arn, "meta.llama3-1-8b-instruct-v1:0")
    client.converse(modelId=arn, messages=USER_HELLO)
    assert fake.requests[-1].family == "llama"


def test_custom_model_arn_names_its_base_model(fake: FakeBedrock, client: Any) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-lite-v1:0/abcdefghijkl"
    client.converse(modelId=arn, messages=USER_HELLO)
    assert fake.requests[-1].family == "nova"


@pytest.mark.parametrize(
    "model_id",
    [
        "acme.model-v1:0",
        "us.acme.model-v1:0",
        "not a model",
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x",
    ],
)
def test_unknown_models_are_invalid_identifiers(
    fake: FakeBedrock, single_attempt_client: Any, model_id: str
) -> None:
    with pytest.raises(
        single_attempt_client.exceptions.ValidationException, match="model identifier is invalid"
    ):
        single_attempt_client.converse(modelId=model_id, messages=USER_HELLO)
    assert fake.requests[-1].status == 400


def test_unmapped_application_profile_is_not_found(fake: FakeBedrock, single_attempt_client: Any) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcd1234efgh"
    with pytest.raises(single_attempt_client.exceptions.ResourceNotFoundException):
        single_attempt_client.converse(modelId=arn, messages=USER_HELLO)
