"""AWS event-stream message encoding (``application/vnd.amazon.eventstream``).

Layout, big-endian: ``total_length:u32 | headers_length:u32 | prelude_crc:u32 | headers | payload |
message_crc:u32``. The message CRC covers everything before it, prelude CRC included, which is what
botocore's ``EventStreamBuffer`` checks.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import uuid
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "HeaderValue",
    "encode_chunk_event",
    "encode_event",
    "encode_exception",
    "encode_message",
    "padding",
]

HeaderValue = str | bytes | bool | int | uuid.UUID

_TRUE: Final = 0
_FALSE: Final = 1
_INT32: Final = 4
_INT64: Final = 5
_BYTES: Final = 6
_STRING: Final = 7
_UUID: Final = 9

# Real Bedrock pads every event with a random-length run of this alphabet (the ``p`` key) so that
# payload sizes do not leak token lengths; botocore drops the key because it is not modelled.
_PAD_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"


def _encode_header(name: str, value: HeaderValue) -> bytes:
    raw_name = name.encode("utf-8")
    if len(raw_name) > 255:
        raise ValueError(f"event-stream header name longer than 255 bytes: {name!r}")
    out = struct.pack("!B", len(raw_name)) + raw_name
    # bool before int: bool is a subclass of int.
    if isinstance(value, bool):
        return out + struct.pack("!B", _TRUE if value else _FALSE)
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return out + struct.pack("!Bi", _INT32, value)
        return out + struct.pack("!Bq", _INT64, value)
    if isinstance(value, uuid.UUID):
        return out + struct.pack("!B", _UUID) + value.bytes
    if isinstance(value, str):
        data = value.encode("utf-8")
        kind = _STRING
    else:
        data = bytes(value)
        kind = _BYTES
    if len(data) > 0xFFFF:
        raise ValueError(f"event-stream header value too long for {name!r}")
    return out + struct.pack("!BH", kind, len(data)) + data


def encode_message(headers: Mapping[str, HeaderValue], payload: bytes) -> bytes:
    """Encode one event-stream message with both CRC32 checksums."""
    header_bytes = b"".join(_encode_header(name, value) for name, value in headers.items())
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack("!II", total, len(header_bytes))
    head = prelude + struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message_crc = binascii.crc32(payload, binascii.crc32(header_bytes, binascii.crc32(head)))
    return head + header_bytes + payload + struct.pack("!I", message_crc & 0xFFFFFFFF)


def padding(seed: int) -> str:
    """Deterministic stand-in for Bedrock's random ``p`` padding."""
    return _PAD_ALPHABET[: 1 + (seed * 7) % len(_PAD_ALPHABET)]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def encode_event(event_type: str, body: Mapping[str, Any], *, pad: int | None = None) -> bytes:
    """A normal event (``:message-type: event``) whose payload is the JSON ``body``."""
    payload = dict(body)
    if pad is not None:
        payload["p"] = padding(pad)
    # Header order as in captured Bedrock frames.
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, _dumps(payload))


def encode_chunk_event(model_json: Mapping[str, Any], *, pad: int = 0) -> bytes:
    """An InvokeModelWithResponseStream ``chunk`` event carrying one model-native JSON object."""
    raw = base64.b64encode(_dumps(model_json)).decode("ascii")
    return encode_event("chunk", {"bytes": raw}, pad=pad)


def encode_exception(exception_type: str, body: Mapping[str, Any]) -> bytes:
    """A modelled exception event; ``exception_type`` is the lower-camel union member name."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, _dumps(body))
