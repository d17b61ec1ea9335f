"""A Converse call nothing consumes (no listener, no budget) skips extraction and pricing when they cannot
be seen: everything they would log or count must still be logged and counted, exactly as when a listener
makes the meter build every record."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bedrock_budget as bb
from bedrock_budget.pipeline import core as core_module
from bedrock_budget.pricing import PriceTable, load_price_table
from bedrock_budget.pricing import table as table_module
from bedrock_budget.records import CallRecord
from bedrock_budget.wrapper.configure import build_meter
from bedrock_budget.wrapper.meter import Meter
from bedrock_budget.wrapper.operations import BILLABLE

FIXTURES = Path(__file__).parents[1] / "pricing" / "fixtures" / "good"
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"  # every tier, optimized latency
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"  # no optimized latency
NOVA = "amazon.nova-micro-v1:0"  # no priority or flex tier
UNKNOWN = "anthropic.claude-9-secret-v1:0"  # not in the table
CONVERSE = BILLABLE["converse"]
TABLE = load_price_table([FIXTURES])


def converse_response(usage: object = None, **extra: object) -> dict[str, Any]:
    response: dict[str, Any] = {
        "ResponseMetadata": {"RequestId": "req-1", "HTTPStatusCode": 200},
        "output": {"message": {"role": "assistant", "content": [{"text": "Revenue grew."}]}},
        "stopReason": "end_turn",
        **extra,
    }
    if usage is not None:
        response["usage"] = usage
    return response


PLAIN_USAGE = {"inputTokens": 1200, "outputTokens": 40, "totalTokens": 1240}


def call(meter: Meter, model: str, response: dict[str, Any], **kwargs: Any) -> Any:
    def send(**sent: Any) -> dict[str, Any]:
        return response

    request = {"modelId": model, "messages": [{"role": "user", "content": [{"text": "Hi"}]}], **kwargs}
    return meter.call(CONVERSE, send, request, "us-east-1")


@contextmanager
def captured_log() -> Iterator[list[str]]:
    """What the meter logs in this thread, as (level, message) lines (not what other tests' threads, such
    as a settle thread still running, log meanwhile)."""
    lines: list[str] = []
    caller = threading.get_ident()

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.thread == caller:
                lines.append(f"{record.levelname} {record.getMessage()}")

    handler = Keep()
    logger = logging.getLogger("bedrock_budget")
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def meters(table: PriceTable = TABLE) -> tuple[Meter, Meter]:
    """A meter nothing listens to, and the same meter with a listener that ignores every record."""
    return build_meter(price_table=table), build_meter(price_table=table, listeners=[lambda record: None])


def observe(meter: Meter, model: str, responses: list[dict[str, Any]]) -> tuple[list[str], dict[str, int]]:
    with captured_log() as lines:
        for response in responses:
            assert call(meter, model, response) is response
    return lines, dict(meter.failures.counts)


# --- what stays observable -------------------------------------------------------------------------------


def test_unknown_model_is_still_reported_without_a_listener() -> None:
    quiet, listened = meters()
    responses = [converse_response(PLAIN_USAGE)] * 3
    lines, failures = observe(quiet, UNKNOWN, responses)
    assert len(lines) == 1
    assert "recorded without a price" in lines[0]
    assert (lines, failures) == observe(listened, UNKNOWN, responses)


def test_a_served_mode_the_model_lacks_is_still_reported() -> None:
    quiet, listened = meters()
    responses = [
        converse_response(PLAIN_USAGE),
        converse_response(PLAIN_USAGE),  # remembered as pricing quietly
        converse_response(PLAIN_USAGE, performanceConfig={"latency": "optimized"}),
        converse_response(PLAIN_USAGE, serviceTier={"type": "priority"}),
    ]
    lines, failures = observe(quiet, SONNET, responses)
    assert len(lines) == 1
    assert "latency-optimized" in lines[0]
    assert (lines, failures) == observe(listened, SONNET, responses)


def test_a_request_read_for_missing_usage_still_counts_its_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(operation: str, family: str, kwargs: dict[str, Any]) -> Any:
        if kwargs:
            raise RuntimeError("inspection bug")
        return real(operation, family, kwargs)

    real = core_module.inspect_request
    monkeypatch.setattr(core_module, "inspect_request", broken)
    quiet = build_meter(price_table=TABLE)
    call(quiet, HAIKU, converse_response(PLAIN_USAGE))
    assert quiet.failures.counts == {}  # the request was never needed
    call(quiet, HAIKU, converse_response(None))
    assert quiet.failures.counts == {"request inspection": 1}


def test_failed_calls_propagate_unchanged() -> None:
    quiet = build_meter(price_table=TABLE)

    def fail(**sent: Any) -> Any:
        raise TimeoutError("socket")

    with pytest.raises(TimeoutError, match="socket"):
        quiet.call(CONVERSE, fail, {"modelId": HAIKU, "messages": []}, "us-east-1")
    assert quiet.failures.counts == {}


def test_attribution_is_still_checked_before_the_call() -> None:
    quiet = build_meter(price_table=TABLE, metadata_attribution=["tenant"])
    sent: list[object] = []

    def send(**kwargs: Any) -> Any:
        sent.append(kwargs)
        return converse_response(PLAIN_USAGE)

    with pytest.raises(bb.AttributionError):
        quiet.call(CONVERSE, send, {"modelId": HAIKU, "requestMetadata": {"tenant": "a{b}"}}, "us-east-1")
    with pytest.raises(bb.AttributionError), bb.attribute(user="x*"):
        build_meter(price_table=TABLE).call(CONVERSE, send, {"modelId": HAIKU}, "us-east-1")
    assert sent == []


def test_a_swapped_price_table_is_asked_again() -> None:
    quiet = build_meter(price_table=TABLE)
    call(quiet, HAIKU, converse_response(PLAIN_USAGE))
    quiet.price_table = load_price_table([FIXTURES / "amazon.yaml"])  # has no Claude
    with captured_log() as lines:
        call(quiet, HAIKU, converse_response(PLAIN_USAGE))
    assert len(lines) == 1
    assert "recorded without a price" in lines[0]


class Clock:
    """Stands in for the ``time`` module of the meter and of the price table."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def perf_counter(self) -> float:
        return self.now


def test_a_quiet_answer_holds_for_its_utc_day_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Optimized latency is priced until the end of January only.
    (tmp_path / "anthropic.yaml").write_text(
        """schema_version: 1
provider: anthropic
models:
  - id: anthropic.claude-acme-v1:0
    name: Acme
    family: claude
    kind: text
    max_output_tokens: 8192
    prices:
      - effective: 2024-01-01
        checked: 2026-11-22
        source: test fixture
        input: "1.00"
        output: "5.00"
        latency_optimized: {input: "2.00", output: "10.00"}
      - effective: 2024-02-01
        checked: 2026-11-22
        source: test fixture
        input: "1.00"
        output: "5.00"
"""
    )
    clock = Clock(dt.datetime(2024, 1, 31, 23, 59, 58, tzinfo=dt.UTC).timestamp())
    monkeypatch.setattr(core_module, "time", clock)
    monkeypatch.setattr(table_module, "time", clock)
    monkeypatch.setattr(
        table_module, "_utc_today", lambda: dt.datetime.fromtimestamp(clock.now, dt.UTC).date()
    )
    quiet, listened = meters(load_price_table([tmp_path]))
    optimized = converse_response(PLAIN_USAGE, performanceConfig={"latency": "optimized"})
    logs = []
    for meter in (quiet, listened):
        clock.now = dt.datetime(2024, 1, 31, 23, 59, 58, tzinfo=dt.UTC).timestamp()
        with captured_log() as lines:
            call(meter, "anthropic.claude-acme-v1:0", optimized)
            call(meter, "anthropic.claude-acme-v1:0", optimized)
            assert lines == []
            clock.now += 4
            call(meter, "anthropic.claude-acme-v1:0", optimized)
        logs.append(lines)
    assert len(logs[0]) == 1
    assert "latency-optimized" in logs[0][0]
    assert logs[0] == logs[1]


# --- the same observations as with a listener, for any response ------------------------------------------

counts = st.one_of(
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(-2, 2),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)
usage_blocks = st.fixed_dictionaries(
    {"inputTokens": counts, "outputTokens": counts},
    optional={
        "cacheReadInputTokens": counts,
        "cacheWriteInputTokens": counts,
        "cacheDetails": st.lists(
            st.fixed_dictionaries({"inputTokens": counts, "ttl": st.sampled_from(["5m", "1h", None])}),
            max_size=2,
        ),
    },
)
guardrail_trace = st.fixed_dictionaries(
    {
        "guardrail": st.fixed_dictionaries(
            {
                "inputAssessment": st.fixed_dictionaries(
                    {
                        "g1": st.fixed_dictionaries(
                            {
                                "invocationMetrics": st.fixed_dictionaries(
                                    {
                                        "usage": st.fixed_dictionaries(
                                            {},
                                            optional={
                                                "contentPolicyUnits": counts,
                                                "topicPolicyUnits": counts,
                                            },
                                        )
                                    }
                                )
                            }
                        )
                    }
                )
            }
        )
    }
)
extras = st.fixed_dictionaries(
    {},
    optional={
        "trace": st.one_of(st.none(), st.just({}), guardrail_trace),
        "serviceTier": st.one_of(
            st.none(),
            st.fixed_dictionaries({"type": st.sampled_from(["default", "priority", "flex", "odd"])}),
        ),
        "performanceConfig": st.one_of(
            st.none(), st.fixed_dictionaries({"latency": st.sampled_from(["standard", "optimized"])})
        ),
    },
)
responses = st.builds(
    lambda usage, more: converse_response(usage, **more), st.one_of(st.none(), usage_blocks), extras
)


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from([HAIKU, SONNET, NOVA, UNKNOWN, "not a model id"]),
    sent=st.lists(responses, max_size=4),
)
def test_nothing_listening_logs_and_counts_what_a_listener_would(
    model: str, sent: list[dict[str, Any]]
) -> None:
    quiet, listened = meters()
    assert observe(quiet, model, sent) == observe(listened, model, sent)


# --- records ---------------------------------------------------------------------------------------------


def record_fields() -> dict[str, Any]:
    return {
        "operation": "Converse",
        "model_id": HAIKU,
        "requested_model_id": f"us.{HAIKU}",
        "region": "us-east-1",
        "route": "geo",
        "attribution": {"app": "chat"},
        "usage": bb.Usage(input_tokens=10, output_tokens=2),
        "cost": TABLE.price(HAIKU, bb.Usage(input_tokens=10, output_tokens=2)),
        "outcome": "ok",
        "request_id": "req-1",
        "latency_seconds": 0.25,
        "time_to_first_token_seconds": 0.125,
        "usage_source": "converse_usage",
        "estimated": True,
        "partial": True,
        "pricing_mode": "on_demand",
        "service_tier": "flex",
        "latency_mode": "optimized",
        "error_code": "E",
        "unpriced": "U",
        "downgraded_from": "D",
        "downgraded_by": "B",
        "budget_warnings": ("w",),
        "blocked_by": "X",
        "family": "anthropic",
        "clamped_from": 4000,
        "clamped_to": 700,
        "clamped_by": "C",
    }


def test_a_record_is_stamped_when_built_and_stays_frozen() -> None:
    fields = record_fields()
    assert [f.name for f in dataclasses.fields(CallRecord)] == [*fields, "timestamp"]
    before = dt.datetime.now(dt.UTC)
    built = CallRecord(**fields)
    assert before <= built.timestamp <= dt.datetime.now(dt.UTC)
    assert built == CallRecord(**fields, timestamp=built.timestamp)
    assert built.as_dict()["outcome"] == "ok"
    assert dataclasses.replace(built, outcome="error").outcome == "error"
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.outcome = "error"  # type: ignore[misc]


def test_meter_records_carry_every_field() -> None:
    kept: list[CallRecord] = []
    meter = build_meter(price_table=TABLE, listeners=[kept.append], attribution={"app": "chat"})
    call(meter, HAIKU, converse_response(PLAIN_USAGE, serviceTier={"type": "flex"}))
    (record,) = kept
    usage = bb.Usage(input_tokens=1200, output_tokens=40)
    assert record == CallRecord(
        operation="Converse",
        model_id=HAIKU,
        requested_model_id=HAIKU,
        region="us-east-1",
        route="in_region",
        attribution={"app": "chat"},
        usage=usage,
        cost=TABLE.price(HAIKU, usage, service_tier="flex"),
        outcome="ok",
        request_id="req-1",
        latency_seconds=record.latency_seconds,
        usage_source="converse_usage",
        service_tier="flex",
        family="anthropic",
        timestamp=record.timestamp,
    )
    assert record.latency_seconds > 0
