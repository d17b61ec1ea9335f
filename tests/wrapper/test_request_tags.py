"""``tag_requests``: the call's attribution reaches Bedrock in ``requestMetadata`` (what its invocation
logs carry), merged with the caller's own entries and within Bedrock's limits."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.errors import AttributionError, ConfigurationError
from bedrock_budget.pipeline.tags import MAX_ENTRIES, RequestTagger
from bedrock_budget.testing import FakeBedrock

MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Hi"}]}]


def sent_metadata(fake: FakeBedrock) -> Any:
    return fake.requests[-1].json().get("requestMetadata")


# --- the merge rule --------------------------------------------------------------------------------------


def test_attribution_is_added_and_the_callers_entries_win() -> None:
    tagger = RequestTagger()
    merged = tagger.merged({"user": "u-1", "app": "chat"}, {"app": "billing", "trace": "t-9"})
    assert merged == {"app": "billing", "trace": "t-9", "user": "u-1"}
    assert tagger.dropped == 0


def test_the_callers_map_is_never_changed() -> None:
    sent = {"trace": "t-9"}
    merged = RequestTagger().merged({"user": "u-1"}, sent)
    assert sent == {"trace": "t-9"}
    assert merged is not sent


def test_only_the_chosen_keys_are_copied() -> None:
    tagger = RequestTagger(["team"])
    assert tagger.merged({"user": "u-1", "team": "t"}, None) == {"team": "t"}
    assert tagger.merged({"user": "u-1"}, None) is None  # nothing to add: the request stays as it is


def test_tags_past_bedrocks_entry_limit_are_dropped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    tagger = RequestTagger()
    full = {f"k{i}": "v" for i in range(MAX_ENTRIES - 1)}
    with caplog.at_level(logging.WARNING, logger="bedrock_budget"):
        merged = tagger.merged({"app": "chat", "user": "u-1", "team": "t"}, full)
        tagger.merged({"app": "chat", "user": "u-1"}, full)
    assert merged is not None
    assert len(merged) == MAX_ENTRIES
    assert merged["app"] == "chat"  # attribution order: the first keys fit
    assert tagger.dropped == 3
    assert len([r for r in caplog.records if "left out of requestMetadata" in r.getMessage()]) == 1


def test_a_value_outside_bedrocks_alphabet_is_dropped() -> None:
    tagger = RequestTagger()
    assert tagger.merged({"user": "ü" * 3, "app": "chat"}, None) == {"app": "chat"}
    assert tagger.dropped == 1


def test_a_request_metadata_that_is_not_a_map_is_left_for_bedrock_to_refuse() -> None:
    assert RequestTagger().merged({"user": "u-1"}, "not a map") is None


def test_bad_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        bb.wrap(_client(), tag_requests="user")  # type: ignore[arg-type]
    with pytest.raises(AttributionError):
        bb.wrap(_client(), tag_requests=["User Id"])


def _client() -> Any:
    import boto3

    return boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


# --- over the wire -----------------------------------------------------------------------------------------


def test_converse_sends_the_attribution_as_request_metadata(fake: FakeBedrock) -> None:
    client = bb.wrap(fake.client(), attribution={"app": "chat"}, tag_requests=True)
    with bb.attribute(user="u-17"):
        client.converse(modelId=MODEL, messages=MESSAGES, requestMetadata={"trace": "t-1", "app": "own"})
    assert sent_metadata(fake) == {"trace": "t-1", "app": "own", "user": "u-17"}


def test_converse_stream_is_tagged_too(fake: FakeBedrock) -> None:
    records: list[bb.CallRecord] = []
    client = bb.wrap(
        fake.client(),
        attribution={"app": "chat", "team": "x"},
        tag_requests=["team"],
        listeners=[records.append],
    )
    response = client.converse_stream(modelId=MODEL, messages=MESSAGES)
    for _ in response["stream"]:
        pass
    assert sent_metadata(fake) == {"team": "x"}
    (record,) = records
    assert record.attribution == {"app": "chat", "team": "x"}
    assert record.cost is not None
    assert record.cost.total_nanos > 0


def test_untagged_clients_send_the_request_unchanged(fake: FakeBedrock) -> None:
    client = bb.wrap(fake.client(), attribution={"app": "chat"})
    client.converse(modelId=MODEL, messages=MESSAGES)
    assert sent_metadata(fake) is None


def test_invoke_model_bodies_are_not_touched(fake: FakeBedrock) -> None:
    client = bb.wrap(fake.client(), attribution={"app": "chat"}, tag_requests=True)
    body = (
        b'{"anthropic_version":"bedrock-2023-05-31","max_tokens":10,'
        b'"messages":[{"role":"user","content":"Hi"}]}'
    )
    client.invoke_model(modelId=MODEL, body=body)
    assert fake.requests[-1].body == body
