"""Broken event streams through aiobotocore clients: the cases of tests/bad_input/test_broken_streams.py
(truncated frames, bad checksums, garbage, connections cut mid-stream, events of the wrong shape, usage that
cannot be believed), served frame by frame by the same scripted server.

The wrapped async stream yields exactly what aiobotocore yields and raises exactly what it raises; the call
settles once, with a priced record flagged ``estimated`` when Bedrock's final usage never arrived intact
and ``partial`` when the stream did not reach its end, and the async ledger's store ends with the record's
cost and no hold.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

import bedrock_budget as bb
from bad_input.conftest import ScriptedServer
from bad_input.test_broken_streams import CONVERSE_CASES, INVOKE_CASES, Case
from bedrock_budget.budgets import AsyncLedger
from conftest import HAIKU, MESSAGES, Records, cases, run

INVOKE_BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "x"}],
    }
)


async def observe(events: Callable[[], Awaitable[Any]]) -> tuple[list[Any], type[BaseException] | None]:
    """The events the caller read and the exception that ended the call or its stream, if any."""
    seen: list[Any] = []
    try:
        async for event in await events():
            seen.append(event)
    except Exception as exc:
        return seen, type(exc)
    return seen, None


def check(
    loop: asyncio.Runner,
    scripted: ScriptedServer,
    raw: Any,
    case: Case,
    events: Callable[[Any], Awaitable[Any]],
) -> None:
    records = Records()

    async def main() -> None:
        ledger = AsyncLedger("memory://", [bb.Budget("all", window="lifetime", limit_usd="1")])
        wrapped = bb.wrap(raw, ledger=ledger, listeners=[records])
        scripted.script(case.reply)
        expected = await observe(lambda: events(raw))
        got = await observe(lambda: events(wrapped))
        assert got == expected
        (record,) = records
        assert record.cost is not None
        assert record.cost.total_usd < Decimal("0.001")
        assert (record.estimated, record.partial) == (case.estimated, case.partial)
        assert record.outcome == ("partial" if case.partial else "ok")
        status = await ledger.read("all")
        assert status.spent_usd == record.cost.total_nanos / Decimal(10**9)
        assert status.reserved_usd == 0
        await ledger.aclose()

    run(main(), loop)


async def _converse_stream(client: Any) -> Any:
    response = await client.converse_stream(
        modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64}
    )
    return response["stream"]


async def _invoke_stream(client: Any) -> Any:
    return (await client.invoke_model_with_response_stream(modelId=HAIKU, body=INVOKE_BODY))["body"]


@pytest.mark.parametrize(
    "case",
    cases(
        CONVERSE_CASES,
        "cut after the first delta (Content-Length promises more)",
        "chunked transfer cut before its end",
    ),
)
def test_converse_stream(
    module_loop: asyncio.Runner, scripted: ScriptedServer, scripted_raw: Any, case: str
) -> None:
    check(module_loop, scripted, scripted_raw, CONVERSE_CASES[case], _converse_stream)


@pytest.mark.parametrize("case", INVOKE_CASES)
def test_invoke_model_with_response_stream(
    module_loop: asyncio.Runner, scripted: ScriptedServer, scripted_raw: Any, case: str
) -> None:
    check(module_loop, scripted, scripted_raw, INVOKE_CASES[case], _invoke_stream)
