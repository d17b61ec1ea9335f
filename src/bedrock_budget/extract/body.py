"""Read an InvokeModel response body and hand the caller an equivalent, unread one.

botocore's ``StreamingBody`` can be read once. After reading it here, ``response["body"]`` is replaced by a
new ``StreamingBody`` over the same bytes, so ``read()``, ``iter_lines()`` and ``iter_chunks()`` behave for
the caller exactly as before. botocore is imported only here, at first use, to keep ``import
bedrock_budget`` cheap.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, MutableMapping
from typing import Any

__all__ = ["parse_json", "take_body"]


class _FailedStream:
    """A raw stream whose every read re-raises the error the original body raised."""

    def __init__(self, error: BaseException) -> None:
        self._error = error

    def read(self, *_: object) -> bytes:
        raise self._error

    def close(self) -> None:
        pass


def _streaming_body(raw: Any, length: int) -> Any:
    from botocore.response import StreamingBody

    return StreamingBody(raw, length)


def take_body(response: Mapping[str, Any]) -> bytes | None:
    """The body's bytes, leaving an unread copy in ``response["body"]``; ``None`` when it cannot be read.

    A body that fails to read is replaced by one that raises the same error, so the caller sees what it
    would have seen without the wrapper. A response that cannot be updated is never read.
    """
    body = response.get("body")
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if body is None or not isinstance(response, MutableMapping) or not callable(getattr(body, "read", None)):
        return None
    try:
        data = body.read()
    except Exception as exc:
        response["body"] = _streaming_body(_FailedStream(exc), 0)
        return None
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, bytes | bytearray):
        return None
    data = bytes(data)
    response["body"] = _streaming_body(io.BytesIO(data), len(data))
    return data


def parse_json(data: bytes | None) -> Mapping[str, Any] | None:
    if not data:
        return None
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None
