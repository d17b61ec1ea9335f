"""Malformed, truncated and lying (non-streaming) responses, served byte for byte by a scripted server.

For every case the wrapped client behaves exactly like the unwrapped one (same response, or the same
exception from botocore), leaves exactly one call record, and the budget store ends with the record's cost
and no hold. Counts that cannot be believed (negative, absurd, missing) become a flagged estimate, never
an absurd charge and never a crash.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.testing import FakeBedrock, UsageContext, UsageSpec
from fake_bedrock_fixtures import Records

from .conftest import HAIKU, MESSAGES, Reply, ScriptedServer, json_reply

GOOD = {
    "output": {"message": {"role": "assistant", "content": [{"text": "A river runs."}]}},
    "stopReason": "end_turn",
    "metrics": {"latencyMs": 3},
}
INVOKE_BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Write one short line about rivers."}],
    }
)
# Far above what any of these calls can cost: an absurd count that slipped through would show here.
SANE = Decimal("0.001")


def usage(value: object) -> dict[str, object]:
    return {**GOOD, "usage": {"inputTokens": value, "outputTokens": value, "totalTokens": value}}


CONVERSE_CASES: dict[str, Reply] = {
    "no usage": json_reply(GOOD),
    "negative counts": json_reply(usage(-5)),
    "absurd counts": json_reply(usage(10**15)),
    "beyond int64": json_reply(usage(2**70)),
    "null counts": json_reply(usage(None)),
    "counts are lists": json_reply(usage([])),
    "counts are objects": json_reply(usage({"n": 1})),
    "usage is a string": json_reply({**GOOD, "usage": "lots"}),
    "output is a string": json_reply({**GOOD, "output": "x"}),
    "truncated JSON": Reply(body=b'{"output": {"message": {"role": "assis'),
    "empty body": Reply(body=b""),
    "JSON array": Reply(body=b"[1, 2, 3]"),
    "deeply nested JSON": Reply(body=b"[" * 50_000 + b"]" * 50_000),
    "HTML with status 200": Reply(
        body=b"<html><body>maintenance</body></html>", headers={"Content-Type": "text/html"}
    ),
    "HTML with status 502": Reply(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"}),
    "400 without an error type": Reply(400, b"{}"),
    "body shorter than its Content-Length": Reply(body=json.dumps(usage(7)).encode(), length=10_000),
    "5 MB of text and no usage": json_reply(
        {**GOOD, "output": {"message": {"role": "assistant", "content": [{"text": "word " * 1_000_000}]}}}
    ),
}


def header_reply(value: str, body: bytes = b'{"content": [{"type": "text", "text": "A river."}]}') -> Reply:
    return Reply(
        body=body,
        headers={
            "Content-Type": "application/json",
            "x-amzn-bedrock-input-token-count": value,
            "x-amzn-bedrock-output-token-count": value,
        },
    )


HEADER_VALUES = ["-1", "abc", "99999999999999999999", "１２", "1e3", "", "0x10", "12, 13", "NaN"]
INVOKE_CASES: dict[str, Reply] = {
    **{f"token headers {value!r}": header_reply(value) for value in HEADER_VALUES},
    "no headers, truncated body": Reply(body=b'{"content": [{"type": "text", "text": "A ri'),
    "no headers, negative body usage": Reply(
        body=b'{"content": [], "usage": {"input_tokens": -3, "output_tokens": 1e30}}'
    ),
    "no headers, body usage of the wrong type": Reply(body=b'{"usage": [1, 2], "content": "x"}'),
    "no headers, not JSON": Reply(
        body=b"\x00\xff\xfe garbage", headers={"Content-Type": "application/octet-stream"}
    ),
    "no headers, deeply nested": Reply(body=b"[" * 50_000 + b"]" * 50_000),
    "body shorter than its Content-Length": Reply(body=b'{"content": []}', length=500),
}


def observe(call: Callable[[], Any]) -> tuple[str, object]:
    """What the caller sees: the response (without per-request metadata) or the exception raised."""
    try:
        response = call()
    except Exception as exc:
        return "raised", type(exc)
    response = dict(response)
    response.pop("ResponseMetadata", None)
    body = response.pop("body", None)
    if body is not None:
        try:
            response["body"] = body.read()
        except Exception as exc:
            response["body"] = ("raised", type(exc))
    return "ok", response


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with Ledger("memory://", [bb.Budget("all", window="lifetime", limit_usd="1")]) as made:
        yield made


def check(
    scripted: ScriptedServer,
    raw: Any,
    ledger: Ledger,
    reply: Reply,
    call: Callable[[Any], Any],
) -> bb.CallRecord:
    records = Records()
    wrapped = bb.wrap(raw, ledger=ledger, listeners=[records])
    scripted.script(reply)
    expected = observe(lambda: call(raw))
    got = observe(lambda: call(wrapped))
    assert got == expected
    (record,) = records
    status = ledger.read("all")
    assert status.reserved_usd == 0
    if record.outcome == "error":
        assert got[0] == "raised"
        assert record.cost is None
        assert status.spent_usd == 0
    else:
        assert record.cost is not None
        assert status.spent_usd == record.cost.total_nanos / Decimal(10**9)
        assert record.cost.total_usd < SANE
    return record


@pytest.mark.parametrize("case", CONVERSE_CASES)
def test_converse(scripted: ScriptedServer, scripted_client: Any, ledger: Ledger, case: str) -> None:
    record = check(
        scripted,
        scripted_client,
        ledger,
        CONVERSE_CASES[case],
        lambda client: client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64}),
    )
    if record.outcome == "ok" and case != "body shorter than its Content-Length":
        assert record.estimated
        assert record.usage_source == "estimate"


@pytest.mark.parametrize("case", INVOKE_CASES)
def test_invoke_model(scripted: ScriptedServer, scripted_client: Any, ledger: Ledger, case: str) -> None:
    record = check(
        scripted,
        scripted_client,
        ledger,
        INVOKE_CASES[case],
        lambda client: client.invoke_model(modelId=HAIKU, body=INVOKE_BODY),
    )
    assert record.outcome == "ok"
    assert record.estimated


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (HAIKU, INVOKE_BODY),
        ("amazon.nova-lite-v1:0", json.dumps({"messages": MESSAGES, "inferenceConfig": {"maxTokens": 40}})),
        ("meta.llama3-8b-instruct-v1:0", json.dumps({"prompt": "rivers", "max_gen_len": 40})),
        ("amazon.titan-text-express-v1", json.dumps({"inputText": "rivers"})),
        ("mistral.mistral-7b-instruct-v0:2", json.dumps({"prompt": "rivers", "max_tokens": 40})),
        ("cohere.command-r-v1:0", json.dumps({"message": "rivers", "max_tokens": 40})),
        ("amazon.titan-embed-text-v2:0", json.dumps({"inputText": "rivers"})),
    ],
)
def test_missing_usage_everywhere_is_an_estimate(
    fake: FakeBedrock, records: Records, ledger: Ledger, model: str, body: str
) -> None:
    fake.configure(token_headers=False, body_usage=False, invocation_metrics=False)
    client = bb.wrap(fake.client(), ledger=ledger, listeners=[records])
    response = client.invoke_model(modelId=model, body=body)
    assert json.loads(response["body"].read())  # the caller still gets the model's whole answer
    stream = (
        client.invoke_model_with_response_stream(modelId=model, body=body) if "embed" not in model else None
    )
    if stream is not None:
        assert list(stream["body"])
    for record in records:
        assert record.outcome == "ok"
        assert record.estimated
        assert record.cost is not None
        assert record.usage.input_tokens > 0
    status = ledger.read("all")
    assert status.spent_usd * 10**9 == sum(r.cost.total_nanos for r in records if r.cost)
    assert status.reserved_usd == 0


@pytest.mark.parametrize("operation", ["converse", "converse_stream", "invoke_model", "invoke_stream"])
def test_absurd_counts_from_a_usage_callable(
    fake: FakeBedrock, records: Records, ledger: Ledger, operation: str
) -> None:
    # Above the billion-token sanity bound: corruption, not usage. Every path must fall back to an estimate.
    def absurd(context: UsageContext) -> UsageSpec:
        return UsageSpec(input_tokens=5 * 10**9, output_tokens=10**12)

    fake.set_usage(HAIKU, absurd)
    client = bb.wrap(fake.client(), ledger=ledger, listeners=[records])
    if operation == "converse":
        client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64})
    elif operation == "converse_stream":
        list(
            client.converse_stream(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64})[
                "stream"
            ]
        )
    elif operation == "invoke_model":
        client.invoke_model(modelId=HAIKU, body=INVOKE_BODY)["body"].read()
    else:
        list(client.invoke_model_with_response_stream(modelId=HAIKU, body=INVOKE_BODY)["body"])
    (record,) = records
    assert record.outcome == "ok"
    assert record.estimated
    assert record.cost is not None
    assert record.cost.total_usd < SANE
    assert record.usage.output_tokens <= 64
    assert ledger.read("all").spent_usd * 10**9 == record.cost.total_nanos
