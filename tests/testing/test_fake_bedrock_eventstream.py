"""The event-stream encoder, checked with botocore's own decoder."""

from __future__ import annotations

import base64
import binascii
import json
import struct
import uuid
from typing import Any

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from bedrock_budget.testing.eventstream import (
    HeaderValue,
    encode_chunk_event,
    encode_event,
    encode_exception,
    encode_message,
    padding,
)


def decode(data: bytes) -> list[object]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


def test_prelude_and_message_crcs_match_zlib_crc32() -> None:
    frame = encode_message({":message-type": "event"}, b'{"a":1}')
    total, headers_length, prelude_crc = struct.unpack("!III", frame[:12])
    assert total == len(frame)
    assert headers_length == len(frame) - 16 - len(b'{"a":1}')
    assert prelude_crc == binascii.crc32(frame[:8])
    assert struct.unpack("!I", frame[-4:])[0] == binascii.crc32(frame[:-4])


def test_botocore_decodes_every_header_type() -> None:
    marker = uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers: dict[str, HeaderValue] = {
        ":event-type": "chunk",
        "flag-true": True,
        "flag-false": False,
        "small": 7,
        "big": 2**40,
        "raw": b"\x00\x01",
        "id": marker,
    }
    (message,) = decode(encode_message(headers, b"payload"))
    assert message.payload == b"payload"  # type: ignore[attr-defined]
    assert message.headers == {  # type: ignore[attr-defined]
        ":event-type": "chunk",
        "flag-true": True,
        "flag-false": False,
        "small": 7,
        "big": 2**40,
        "raw": b"\x00\x01",
        "id": marker.bytes,
    }


def test_several_frames_in_one_buffer_and_split_across_reads() -> None:
    frames = [encode_event("messageStart", {"role": "assistant"}, pad=i) for i in range(3)]
    assert len(decode(b"".join(frames))) == 3
    buffer = EventStreamBuffer()
    data = b"".join(frames)
    seen: list[Any] = []
    for i in range(0, len(data), 5):  # botocore buffers until a whole message arrived
        buffer.add_data(data[i : i + 5])
        seen.extend(buffer)
    assert len(seen) == 3


def test_corrupted_payload_fails_the_message_crc() -> None:
    frame = bytearray(encode_event("metadata", {"usage": {}}))
    frame[-6] ^= 0xFF
    with pytest.raises(ChecksumMismatch):
        decode(bytes(frame))


def test_chunk_event_layout_matches_bedrock() -> None:
    (message,) = decode(encode_chunk_event({"type": "message_stop"}, pad=4))
    headers = message.headers  # type: ignore[attr-defined]
    assert list(headers) == [":event-type", ":content-type", ":message-type"]
    assert headers == {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    payload = json.loads(message.payload)  # type: ignore[attr-defined]
    assert json.loads(base64.b64decode(payload["bytes"])) == {"type": "message_stop"}
    assert payload["p"] == padding(4)


def test_exception_event_headers_and_synthetic_status() -> None:
    (message,) = decode(encode_exception("throttlingException", {"message": "slow down"}))
    assert message.headers[":message-type"] == "exception"  # type: ignore[attr-defined]
    assert message.headers[":exception-type"] == "throttlingException"  # type: ignore[attr-defined]
    assert message.to_response_dict()["status_code"] == 400  # type: ignore[attr-defined]


def test_header_limits_are_enforced() -> None:
    with pytest.raises(ValueError, match="255"):
        encode_message({"x" * 256: "v"}, b"")
    with pytest.raises(ValueError, match="too long"):
        encode_message({"h": "v" * 70000}, b"")
