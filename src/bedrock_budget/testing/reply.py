"""What the engine hands the HTTP layer: a status, headers, and either a body or event-stream messages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import BedrockError

__all__ = ["Reply", "error_reply", "json_reply"]


@dataclass(frozen=True, slots=True)
class Reply:
    """``events`` set means an event-stream response: the first event goes out after
    ``first_byte_delay`` seconds and the rest are spread so the last one lands at ``latency``. Plain
    responses go out whole after ``max(latency, first_byte_delay)``."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    events: tuple[bytes, ...] | None = None
    latency: float = 0.0
    first_byte_delay: float = 0.0
    # Sent as x-amzn-RequestId (a fresh one when None); the invocation log names the same id.
    request_id: str | None = None


def json_reply(payload: Any, headers: tuple[tuple[str, str], ...] = (), *, latency: float = 0.0) -> Reply:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return Reply(200, (("Content-Type", "application/json"), *headers), body, latency=latency)


def error_reply(error: BedrockError) -> Reply:
    return Reply(error.status, tuple(error.headers()), error.body())
