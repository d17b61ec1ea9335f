"""The extractors' shortcuts: ``trusted_usage`` (no re-validation) and ``converse_self_contained`` (a
Converse response whose extraction needs nothing but the response) must agree with the general path on
every input, including hostile ones."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bedrock_budget.errors import InvalidUsageError
from bedrock_budget.extract import RequestInfo, extract_response
from bedrock_budget.extract.counts import Counts, to_usage
from bedrock_budget.extract.responses import (
    converse_self_contained,
    converse_served,
    converse_tokens_only,
)
from bedrock_budget.extract.values import MAX_COUNT
from bedrock_budget.usage import Usage, trusted_usage

# Every integer count of Usage (the annotations are strings under postponed evaluation).
COUNT_FIELDS = tuple(f.name for f in dataclasses.fields(Usage) if f.type == "int")


# --- trusted_usage ---------------------------------------------------------------------------------------


def test_trusted_usage_equals_the_validated_one() -> None:
    units = {"content_filters": 3}
    trusted = trusted_usage(10, 20, 30, 40, 15, units)
    checked = Usage(
        input_tokens=10,
        output_tokens=20,
        cache_read_tokens=30,
        cache_write_tokens=40,
        cache_write_1h_tokens=15,
        guardrail_text_units=units,
    )
    assert trusted == checked
    assert hash(trusted) == hash(checked)
    assert repr(trusted) == repr(checked)
    assert dataclasses.asdict(trusted) == dataclasses.asdict(checked)
    assert trusted.cache_write_5m_tokens == 25
    assert trusted.total_tokens == 100


def test_trusted_usage_defaults_and_immutability() -> None:
    usage = trusted_usage(1, 2)
    assert usage == Usage(input_tokens=1, output_tokens=2)
    assert usage.guardrail_text_units == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        usage.input_tokens = 5  # type: ignore[misc]


@pytest.mark.parametrize("bad", [-1, True, 1.0, "3", None])
@pytest.mark.parametrize("name", COUNT_FIELDS)
def test_usage_still_names_the_first_bad_count(name: str, bad: object) -> None:
    with pytest.raises(InvalidUsageError) as caught:
        Usage(**{name: bad})  # type: ignore[arg-type]
    assert caught.value.field == name


def test_usage_reports_the_first_of_several_bad_counts() -> None:
    with pytest.raises(InvalidUsageError) as caught:
        Usage(output_tokens=-1, rerank_queries=-5, input_tokens=True)  # type: ignore[arg-type]
    assert caught.value.field == "input_tokens"


def test_usage_still_checks_the_cache_split_and_guardrail_units() -> None:
    with pytest.raises(InvalidUsageError, match="cache_write_1h_tokens"):
        Usage(cache_write_tokens=1, cache_write_1h_tokens=2)
    with pytest.raises(InvalidUsageError, match="guardrail_text_units"):
        Usage(guardrail_text_units={"content_filters": -1})


counts = st.one_of(st.none(), st.integers(min_value=0, max_value=MAX_COUNT))
requests = st.builds(
    RequestInfo,
    operation=st.just("Converse"),
    family=st.sampled_from(["anthropic", "nova", "unknown"]),
    max_output_tokens=counts,
    input_bytes=st.integers(min_value=0, max_value=10**9),
    images=st.integers(min_value=0, max_value=100),
    document_bytes=st.integers(min_value=0, max_value=10**9),
    cache_ttl=st.sampled_from([None, "5m", "1h"]),
)


@settings(max_examples=300)
@given(
    found=st.builds(Counts, counts, counts, counts, counts, counts),
    request=requests,
    output_estimate=st.integers(min_value=0, max_value=10**9),
    output_expected=st.booleans(),
    units=st.dictionaries(st.sampled_from(["content_filters", "denied_topics"]), st.integers(0, 10**6)),
)
def test_to_usage_only_builds_usage_the_checks_accept(
    found: Counts, request: RequestInfo, output_estimate: int, output_expected: bool, units: dict[str, int]
) -> None:
    usage, _ = to_usage(
        found,
        request,
        output_estimate=output_estimate,
        output_expected=output_expected,
        guardrail_text_units=units,
    )
    fields = {f.name: getattr(usage, f.name) for f in dataclasses.fields(Usage)}
    assert Usage(**fields) == usage  # the validating constructor accepts what the trusted one built


# --- converse_self_contained -----------------------------------------------------------------------------


class PoisonRequest:
    """A request that fails the test if extraction reads anything from it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the request was read ({name})")


def response_with(usage: object = None, **extra: object) -> dict[str, Any]:
    response: dict[str, Any] = {
        "ResponseMetadata": {"RequestId": "r", "HTTPStatusCode": 200},
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello there."}]}},
        "stopReason": "end_turn",
        **extra,
    }
    if usage is not None:
        response["usage"] = usage
    return response


def test_plain_converse_response_is_self_contained() -> None:
    response = response_with({"inputTokens": 10, "outputTokens": 5, "totalTokens": 15})
    assert converse_self_contained(response) == (None, None)
    got = extract_response("Converse", "anthropic", PoisonRequest(), response)  # type: ignore[arg-type]
    assert got.usage == Usage(input_tokens=10, output_tokens=5)
    assert (got.source, got.estimated) == ("converse_usage", False)


def test_served_tier_and_latency_come_back_with_the_answer() -> None:
    response = response_with(
        {"inputTokens": 10, "outputTokens": 5},
        serviceTier={"type": "Flex"},
        performanceConfig={"latency": "optimized"},
    )
    assert converse_self_contained(response) == ("flex", "optimized") == converse_served(response)


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(response_with(None), id="no usage"),
        pytest.param(response_with({"outputTokens": 5}), id="no input count"),
        pytest.param(response_with({"inputTokens": 5}), id="no output count"),
        pytest.param(response_with({"inputTokens": True, "outputTokens": 5}), id="bool count"),
        pytest.param(response_with({"inputTokens": -1, "outputTokens": 5}), id="negative count"),
        pytest.param(response_with({"inputTokens": 5.0, "outputTokens": 5}), id="float count"),
        pytest.param(response_with({"inputTokens": MAX_COUNT + 1, "outputTokens": 5}), id="huge count"),
        pytest.param(
            response_with({"inputTokens": 5, "outputTokens": 5, "cacheWriteInputTokens": 100}),
            id="cache write without its TTL split",
        ),
        pytest.param(response_with({"inputTokens": 5, "outputTokens": 5}, trace={"x": 1}), id="trace"),
        pytest.param(response_with([5, 5]), id="usage not a mapping"),
        pytest.param([("usage", {})], id="response not a dict"),
    ],
)
def test_anything_else_is_not_self_contained(response: Any) -> None:
    assert converse_self_contained(response) is None


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 2 * MAX_COUNT)
    | st.floats(allow_nan=False)
    | st.text(max_size=4),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
plain_counts = st.integers(min_value=0, max_value=10**6)
# Mostly believable counts, so that many responses are self-contained, and anything else now and then.
count_values = st.one_of(
    plain_counts,
    plain_counts,
    plain_counts,
    st.integers(-3, MAX_COUNT + 3),
    st.booleans(),
    st.none(),
    st.text(),
)
usage_blocks = st.fixed_dictionaries(
    {"inputTokens": count_values, "outputTokens": count_values},
    optional={
        "totalTokens": count_values,
        "cacheReadInputTokens": count_values,
        "cacheWriteInputTokens": count_values,
        "cacheDetails": st.one_of(
            json_values,
            st.lists(
                st.fixed_dictionaries(
                    {"inputTokens": count_values, "ttl": st.sampled_from(["5m", "1h", 3, None])}
                ),
                max_size=3,
            ),
        ),
    },
)
responses = st.builds(
    dict,
    st.fixed_dictionaries(
        {
            "output": st.just({"message": {"content": [{"text": "some reply text"}]}}),
            "usage": st.one_of(usage_blocks, usage_blocks, json_values),
        },
        optional={
            "trace": st.one_of(st.none(), st.just({}), json_values),
            "serviceTier": st.one_of(json_values, st.fixed_dictionaries({"type": st.text(max_size=8)})),
            "performanceConfig": st.one_of(
                json_values, st.fixed_dictionaries({"latency": st.sampled_from(["standard", "optimized"])})
            ),
        },
    ),
)


@settings(max_examples=500)
@given(response=responses, request=requests)
def test_self_contained_responses_extract_from_the_response_alone(
    response: dict[str, Any], request: RequestInfo
) -> None:
    served = converse_self_contained(response)
    if served is None:
        return
    got = extract_response("Converse", "anthropic", PoisonRequest(), response)  # type: ignore[arg-type]
    assert got == extract_response("Converse", "anthropic", request, response)
    assert (got.served_service_tier, got.served_latency) == served
    assert got.routed_model_id is None
    assert not got.usage.guardrail_text_units
    assert (got.usage.images, got.usage.video_seconds, got.usage.rerank_queries) == (0, 0, 0)
    assert (got.source, got.estimated, got.partial) == ("converse_usage", False, False)


@settings(max_examples=500)
@given(response=responses, request=requests)
def test_the_tokens_only_reading_equals_the_general_one(
    response: dict[str, Any], request: RequestInfo
) -> None:
    quick = converse_tokens_only(response)
    if quick is None:
        return
    assert quick == extract_response("Converse", "anthropic", request, response)
    assert converse_self_contained(response) is not None


def test_the_tokens_only_reading_takes_plain_responses_and_leaves_cache_ones() -> None:
    plain = {"output": {}, "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15}}
    quick = converse_tokens_only(plain)
    assert quick is not None
    assert (quick.usage.input_tokens, quick.usage.output_tokens, quick.source) == (12, 3, "converse_usage")
    cached = {"output": {}, "usage": {"inputTokens": 12, "outputTokens": 3, "cacheReadInputTokens": 100}}
    assert converse_tokens_only(cached) is None
    split = {
        "output": {},
        "usage": {"inputTokens": 1, "outputTokens": 1, "cacheDetails": [{"inputTokens": 9, "ttl": "1h"}]},
    }
    assert converse_tokens_only(split) is None
