"""Malformed, truncated and lying (non-streaming) responses through aiobotocore clients: the cases of
tests/bad_input/test_malformed_responses.py, served byte for byte by the same scripted server.

For every case the wrapped async client behaves exactly like the unwrapped one (same response, or the same
exception), leaves exactly one call record, and the async ledger's store ends with the record's cost and no
hold. Counts that cannot be believed (negative, absurd, missing) become a flagged estimate, never an absurd
charge and never a crash.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

import bedrock_budget as bb
from bad_input.conftest import Reply, ScriptedServer
from bad_input.test_malformed_responses import CONVERSE_CASES, INVOKE_BODY, INVOKE_CASES, SANE
from bedrock_budget.budgets import AsyncLedger
from bedrock_budget.testing import FakeBedrock, UsageContext, UsageSpec
from conftest import HAIKU, MESSAGES, Records, cases, run

AsyncCall = Callable[[Any], Awaitable[Any]]


async def observe(call: Callable[[], Awaitable[Any]]) -> tuple[str, object]:
    """What the caller sees: the response (without per-request metadata, its body read) or the exception
    raised."""
    try:
        response = await call()
    except Exception as exc:
        return "raised", type(exc)
    response = dict(response)
    response.pop("ResponseMetadata", None)
    body = response.pop("body", None)
    if body is not None:
        try:
            response["body"] = await body.read()
        except Exception as exc:
            response["body"] = ("raised", type(exc))
    return "ok", response


def new_ledger() -> AsyncLedger:
    return AsyncLedger("memory://", [bb.Budget("all", window="lifetime", limit_usd="1")])


def check(
    loop: asyncio.Runner, scripted: ScriptedServer, raw: Any, reply: Reply, call: AsyncCall
) -> bb.CallRecord:
    records = Records()

    async def main() -> None:
        ledger = new_ledger()
        wrapped = bb.wrap(raw, ledger=ledger, listeners=[records])
        scripted.script(reply)
        expected = await observe(lambda: call(raw))
        got = await observe(lambda: call(wrapped))
        assert got == expected
        (record,) = records
        status = await ledger.read("all")
        assert status.reserved_usd == 0
        if record.outcome == "error":
            assert got[0] == "raised"
            assert record.cost is None
            assert status.spent_usd == 0
        else:
            assert record.cost is not None
            assert status.spent_usd == record.cost.total_nanos / Decimal(10**9)
            assert record.cost.total_usd < SANE
        await ledger.aclose()

    run(main(), loop)
    (record,) = records
    return record


@pytest.mark.parametrize("case", CONVERSE_CASES)
def test_converse(
    module_loop: asyncio.Runner, scripted: ScriptedServer, scripted_raw: Any, case: str
) -> None:
    record = check(
        module_loop,
        scripted,
        scripted_raw,
        CONVERSE_CASES[case],
        lambda client: client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64}),
    )
    if record.outcome == "ok" and case != "body shorter than its Content-Length":
        assert record.estimated
        assert record.usage_source == "estimate"


@pytest.mark.parametrize("case", cases(INVOKE_CASES, "body shorter than its Content-Length"))
def test_invoke_model(
    module_loop: asyncio.Runner, scripted: ScriptedServer, scripted_raw: Any, case: str
) -> None:
    record = check(
        module_loop,
        scripted,
        scripted_raw,
        INVOKE_CASES[case],
        lambda client: client.invoke_model(modelId=HAIKU, body=INVOKE_BODY),
    )
    assert record.outcome == "ok"
    assert record.estimated


INVOKE_MODELS = [
    (HAIKU, INVOKE_BODY),
    ("amazon.nova-lite-v1:0", json.dumps({"messages": MESSAGES, "inferenceConfig": {"maxTokens": 40}})),
    ("meta.llama3-8b-instruct-v1:0", json.dumps({"prompt": "rivers", "max_gen_len": 40})),
    ("amazon.titan-text-express-v1", json.dumps({"inputText": "rivers"})),
    ("mistral.mistral-7b-instruct-v0:2", json.dumps({"prompt": "rivers", "max_tokens": 40})),
    ("cohere.command-r-v1:0", json.dumps({"message": "rivers", "max_tokens": 40})),
    ("amazon.titan-embed-text-v2:0", json.dumps({"inputText": "rivers"})),
]


@pytest.mark.parametrize(("model", "body"), INVOKE_MODELS, ids=[model for model, _ in INVOKE_MODELS])
def test_missing_usage_everywhere_is_an_estimate(
    module_loop: asyncio.Runner, fake: FakeBedrock, fake_raw: Any, records: Records, model: str, body: str
) -> None:
    fake.configure(token_headers=False, body_usage=False, invocation_metrics=False)

    async def main() -> None:
        ledger = new_ledger()
        client = bb.wrap(fake_raw, ledger=ledger, listeners=[records])
        response = await client.invoke_model(modelId=model, body=body)
        assert json.loads(await response["body"].read())  # the caller still gets the whole answer
        if "embed" not in model:
            streamed = await client.invoke_model_with_response_stream(modelId=model, body=body)
            assert [event async for event in streamed["body"]]
        status = await ledger.read("all")
        assert status.spent_usd * 10**9 == sum(r.cost.total_nanos for r in records if r.cost)
        assert status.reserved_usd == 0
        await ledger.aclose()

    run(main(), module_loop)
    assert len(records) == (1 if "embed" in model else 2)
    for record in records:
        assert record.outcome == "ok"
        assert record.estimated
        assert record.cost is not None
        assert record.usage.input_tokens > 0


async def _converse_stream(client: Any) -> None:
    response = await client.converse_stream(
        modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64}
    )
    async for _ in response["stream"]:
        pass


async def _invoke_stream(client: Any) -> None:
    response = await client.invoke_model_with_response_stream(modelId=HAIKU, body=INVOKE_BODY)
    async for _ in response["body"]:
        pass


async def _converse(client: Any) -> None:
    await client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64})


async def _invoke(client: Any) -> None:
    await (await client.invoke_model(modelId=HAIKU, body=INVOKE_BODY))["body"].read()


OPERATIONS: dict[str, AsyncCall] = {
    "converse": _converse,
    "converse_stream": _converse_stream,
    "invoke_model": _invoke,
    "invoke_stream": _invoke_stream,
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_absurd_counts_from_a_usage_callable(
    module_loop: asyncio.Runner, fake: FakeBedrock, fake_raw: Any, records: Records, operation: str
) -> None:
    # Above the billion-token sanity bound: corruption, not usage. Every path must fall back to an estimate.
    def absurd(context: UsageContext) -> UsageSpec:
        return UsageSpec(input_tokens=5 * 10**9, output_tokens=10**12)

    fake.set_usage(HAIKU, absurd)

    async def main() -> None:
        ledger = new_ledger()
        await OPERATIONS[operation](bb.wrap(fake_raw, ledger=ledger, listeners=[records]))
        (record,) = records
        assert record.cost is not None
        assert (await ledger.read("all")).spent_usd * 10**9 == record.cost.total_nanos
        await ledger.aclose()

    run(main(), module_loop)
    (record,) = records
    assert record.outcome == "ok"
    assert record.estimated
    assert record.cost is not None
    assert record.cost.total_usd < SANE
    assert record.usage.output_tokens <= 64


def test_a_broken_listener_never_takes_the_response_away(
    module_loop: asyncio.Runner, fake: FakeBedrock, fake_raw: Any, records: Records
) -> None:
    def explode(record: bb.CallRecord) -> None:
        raise RuntimeError("listener bug")

    async def main() -> None:
        ledger = new_ledger()
        client = bb.wrap(fake_raw, ledger=ledger, listeners=[explode, records])
        response = await client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64})
        assert response["output"]["message"]["role"] == "assistant"
        streamed = await client.converse_stream(modelId=HAIKU, messages=MESSAGES)
        assert [event async for event in streamed["stream"]]
        body = await (await client.invoke_model(modelId=HAIKU, body=INVOKE_BODY))["body"].read()
        assert json.loads(body)["content"]
        status = await ledger.read("all")
        assert status.spent_usd * 10**9 == sum(r.cost.total_nanos for r in records if r.cost)
        await ledger.aclose()

    run(main(), module_loop)
    assert [r.outcome for r in records] == ["ok"] * 3
