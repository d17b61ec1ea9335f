"""Broken event streams, served frame by frame by a scripted server: truncated frames, bad checksums,
garbage, connections cut mid-stream, events of the wrong shape, usage that cannot be believed.

The wrapped stream yields exactly what botocore yields and raises exactly what it raises; the call
settles once, with a priced record that is flagged ``estimated`` when Bedrock's final usage never arrived
intact and ``partial`` when the stream did not reach its end.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.testing.eventstream import (
    encode_chunk_event,
    encode_event,
    encode_exception,
    encode_message,
)
from fake_bedrock_fixtures import Records

from .conftest import HAIKU, MESSAGES, Reply, ScriptedServer

EVENTSTREAM = {"Content-Type": "application/vnd.amazon.eventstream"}
START = encode_event("messageStart", {"role": "assistant"})
DELTA = encode_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "A river runs. " * 8}})
STOP = encode_event("messageStop", {"stopReason": "end_turn"})


def metadata(usage: object) -> bytes:
    return encode_event("metadata", {"usage": usage, "metrics": {"latencyMs": 5}})


FINAL = metadata({"inputTokens": 10, "outputTokens": 20, "totalTokens": 30})
GOOD = START + DELTA + STOP + FINAL


def flipped(frame: bytes, index: int) -> bytes:
    data = bytearray(frame)
    data[index] ^= 0xFF
    return bytes(data)


def stream_reply(body: bytes, **options: Any) -> Reply:
    return Reply(body=body, headers=EVENTSTREAM, **options)


@dataclass(frozen=True)
class Case:
    """A scripted answer and what the call record must say about it: ``estimated`` when Bedrock's final
    usage did not arrive intact, ``partial`` when the stream did not reach its end."""

    reply: Reply
    estimated: bool
    partial: bool


CONVERSE_CASES: dict[str, Case] = {
    "intact": Case(stream_reply(GOOD), False, False),
    "last frame truncated": Case(stream_reply(GOOD[:-7]), True, True),
    "cut after the first delta (Content-Length promises more)": Case(
        stream_reply(START + DELTA, length=len(GOOD)), True, True
    ),
    "chunked transfer cut before its end": Case(
        Reply(chunks=[START, DELTA], end_chunks=False, headers=EVENTSTREAM), True, True
    ),
    "message checksum wrong": Case(stream_reply(START + DELTA + flipped(STOP, -1) + FINAL), True, True),
    "prelude checksum wrong": Case(stream_reply(START + flipped(DELTA, 8) + STOP + FINAL), True, True),
    "garbage after the first frame": Case(stream_reply(START + b"\xff" * 64), True, True),
    "prelude claims 2 GiB": Case(stream_reply(START + struct.pack("!II", 2**31, 0) + bytes(8)), True, True),
    "empty stream": Case(stream_reply(b""), True, True),
    "negative and absurd final usage": Case(
        stream_reply(START + DELTA + STOP + metadata({"inputTokens": -10, "outputTokens": 10**18})),
        True,
        False,
    ),
    "final usage of the wrong type": Case(stream_reply(START + DELTA + STOP + metadata("lots")), True, True),
    "an event type botocore does not know": Case(
        stream_reply(START + encode_event("futureEvent", {"x": 1}) + DELTA + STOP + FINAL), False, False
    ),
    "event payload that is not JSON": Case(
        stream_reply(
            START
            + encode_message(
                {
                    ":message-type": "event",
                    ":event-type": "contentBlockDelta",
                    ":content-type": "application/json",
                },
                b"{not json",
            )
            + STOP
            + FINAL
        ),
        False,
        False,
    ),
    "an exception type nobody modelled": Case(
        stream_reply(START + DELTA + encode_exception("fancyNewException", {"message": "x"})), True, True
    ),
}


def chunk(raw: object) -> bytes:
    return encode_event("chunk", {"bytes": raw})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


METRICS_KEY = "amazon-bedrock-invocationMetrics"
METRICS = {METRICS_KEY: {"inputTokenCount": 12, "outputTokenCount": 30}}
ANTHROPIC = encode_chunk_event({"type": "content_block_delta", "delta": {"text": "A river runs. " * 8}})
LAST = encode_chunk_event({"type": "message_stop", **METRICS})
# InvokeModel streams have no end marker common to every family, so only an error or an early close makes
# one partial; a stream that runs out without invocation metrics is an estimate.
INVOKE_CASES: dict[str, Case] = {
    "intact": Case(stream_reply(ANTHROPIC + LAST), False, False),
    "chunk not base64": Case(stream_reply(ANTHROPIC + chunk("!!!not base64")), True, True),
    "chunk not JSON": Case(stream_reply(ANTHROPIC + chunk(b64(b"{bad json"))), True, False),
    "chunk a JSON array": Case(stream_reply(ANTHROPIC + chunk(b64(b"[1, 2]"))), True, False),
    "chunk bytes a number": Case(stream_reply(ANTHROPIC + chunk(5)), True, True),
    "negative native usage": Case(
        stream_reply(
            ANTHROPIC + encode_chunk_event({"type": "message_delta", "usage": {"output_tokens": -4}})
        ),
        True,
        False,
    ),
    "invocation metrics of the wrong type": Case(
        stream_reply(
            ANTHROPIC + encode_chunk_event({METRICS_KEY: {"inputTokenCount": "x", "outputTokenCount": 1e9}})
        ),
        True,
        False,
    ),
    "last frame truncated": Case(stream_reply(ANTHROPIC + LAST[:-3]), True, False),
    "message checksum wrong": Case(stream_reply(flipped(ANTHROPIC, -2)), True, True),
}


def observe(events: Callable[[], Iterator[Any]]) -> tuple[list[Any], type[BaseException] | None]:
    """The events the caller read and the exception that ended the stream, if any."""
    seen: list[Any] = []
    try:
        for event in events():
            seen.append(event)
    except Exception as exc:
        return seen, type(exc)
    return seen, None


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with Ledger("memory://", [bb.Budget("all", window="lifetime", limit_usd="1")]) as made:
        yield made


def check(
    scripted: ScriptedServer, raw: Any, ledger: Ledger, case: Case, events: Callable[[Any], Any]
) -> None:
    records = Records()
    wrapped = bb.wrap(raw, ledger=ledger, listeners=[records])
    scripted.script(case.reply)
    expected = observe(lambda: events(raw))
    got = observe(lambda: events(wrapped))
    assert got == expected
    (record,) = records
    assert record.cost is not None
    assert record.cost.total_usd < Decimal("0.001")
    assert (record.estimated, record.partial) == (case.estimated, case.partial)
    assert record.outcome == ("partial" if case.partial else "ok")
    status = ledger.read("all")
    assert status.spent_usd == record.cost.total_nanos / Decimal(10**9)
    assert status.reserved_usd == 0


@pytest.mark.parametrize("case", CONVERSE_CASES)
def test_converse_stream(scripted: ScriptedServer, scripted_client: Any, ledger: Ledger, case: str) -> None:
    check(
        scripted,
        scripted_client,
        ledger,
        CONVERSE_CASES[case],
        lambda client: client.converse_stream(
            modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 64}
        )["stream"],
    )


@pytest.mark.parametrize("case", INVOKE_CASES)
def test_invoke_model_with_response_stream(
    scripted: ScriptedServer, scripted_client: Any, ledger: Ledger, case: str
) -> None:
    body = json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "x"}],
        }
    )
    check(
        scripted,
        scripted_client,
        ledger,
        INVOKE_CASES[case],
        lambda client: client.invoke_model_with_response_stream(modelId=HAIKU, body=body)["body"],
    )
