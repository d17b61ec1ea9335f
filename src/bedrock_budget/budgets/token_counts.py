"""Exact input counts from Bedrock's free CountTokens API, keyed by a hash of the request content.

One cache and one set of rules for both drivers: :meth:`TokenCountCache.count` asks a boto3 client,
:meth:`TokenCountCache.count_async` awaits an aiobotocore one. Everything around the round trip (what is
sent, the cache key, when a model is not asked, what a failure means) is decided here once, so a call
reserves the same input on either path.

A count is an optimisation: every failure (an unsupported model, throttling, a timeout, an answer without
a count) gives ``None`` and the caller reserves its estimate. A cancellation is not a failure: it leaves
the cache and the model's standing as they were.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TokenCountCache"]

log = logging.getLogger("bedrock_budget")

#: The operations whose input CountTokens counts (as a Converse request or an InvokeModel body).
_COUNTABLE = frozenset({"Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream"})

# Errors that will repeat for the same model: it does not support CountTokens, or we may not call it.
_UNSUPPORTED_CODES = frozenset({"ValidationException", "AccessDeniedException", "ResourceNotFoundException"})


@dataclass(frozen=True, slots=True)
class _Question:
    """A CountTokens request to send: the answer is cached under ``key``."""

    model_id: str
    payload: dict[str, Any]
    key: str


class TokenCountCache:
    """Input counts Bedrock gave, by content, and the models not to ask for a while.

    Not every model supports CountTokens (AWS documents that some Claude models, among them ones launched
    only with cross-Region inference, do not). A model it refuses is not asked again for
    ``unsupported_seconds``, and one whose call failed otherwise (throttled, timed out) for
    ``failed_seconds``: an unsupported model costs one extra round trip an hour, not one per call.
    """

    def __init__(
        self,
        max_entries: int = 4096,
        *,
        unsupported_seconds: float = 3600.0,
        failed_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries
        self._unsupported_seconds = unsupported_seconds
        self._failed_seconds = failed_seconds
        self._clock = clock
        #: model id -> when to try CountTokens for it again
        self._skip_until: dict[str, float] = {}

    def count(self, client: Any, model_id: str, operation: str, kwargs: Mapping[str, Any]) -> int | None:
        """The input tokens of ``operation(**kwargs)`` on ``model_id``, asking a boto3 ``client`` on a
        cache miss; None when Bedrock cannot tell (reserve the estimate)."""
        question = self._question(model_id, operation, kwargs)
        if not isinstance(question, _Question):
            return question
        try:
            response = client.count_tokens(modelId=question.model_id, input=question.payload)
            tokens = response["inputTokens"]
        except Exception as exc:  # CountTokens is an optimisation: fall back to the bound
            self._failed(question, exc)
            return None
        return self._answered(question, tokens)

    async def count_async(
        self, client: Any, model_id: str, operation: str, kwargs: Mapping[str, Any]
    ) -> int | None:
        """:meth:`count` with the CountTokens call awaited on an aiobotocore ``client``."""
        question = self._question(model_id, operation, kwargs)
        if not isinstance(question, _Question):
            return question
        try:
            response = await client.count_tokens(modelId=question.model_id, input=question.payload)
            tokens = response["inputTokens"]
        except Exception as exc:  # CountTokens is an optimisation: fall back to the bound
            self._failed(question, exc)
            return None
        return self._answered(question, tokens)

    def _question(self, model_id: str, operation: str, kwargs: Mapping[str, Any]) -> _Question | int | None:
        """What to ask Bedrock, or the answer without asking: a cached count, or None (not to be asked)."""
        if operation not in _COUNTABLE:
            return None
        skip_until = self._skip_until.get(model_id)
        if skip_until is not None:
            if self._clock() < skip_until:
                return None
            self._skip_until.pop(model_id, None)
        payload = _count_tokens_input(operation, kwargs)
        if payload is None:
            return None
        key = hashlib.sha256(
            json.dumps([model_id, payload], sort_keys=True, default=_bytes_digest).encode()
        ).hexdigest()
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        return _Question(model_id, payload, key)

    def _answered(self, question: _Question, tokens: object) -> int | None:
        if type(tokens) is not int or tokens < 0:
            return None
        with self._lock:
            self._entries[question.key] = tokens
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return tokens

    def _failed(self, question: _Question, exc: Exception) -> None:
        code = _error_code(exc)
        pause = self._unsupported_seconds if code in _UNSUPPORTED_CODES else self._failed_seconds
        self._skip_until[question.model_id] = self._clock() + pause
        log.info(
            "CountTokens %s for %s (%s); reserving the estimate for it for %.0f s",
            "not available" if code in _UNSUPPORTED_CODES else "failed",
            question.model_id,
            code or type(exc).__name__,
            pause,
        )


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error")
        if isinstance(error, Mapping) and isinstance(error.get("Code"), str):
            return str(error["Code"])
    return None


def _bytes_digest(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return hashlib.sha256(value).hexdigest()
    raise TypeError(f"cannot hash {type(value).__name__}")


def _count_tokens_input(operation: str, kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    if operation in ("Converse", "ConverseStream"):
        converse = {k: kwargs[k] for k in ("messages", "system", "toolConfig") if k in kwargs}
        return {"converse": converse}
    body = kwargs.get("body")
    if isinstance(body, bytes | bytearray | str):
        return {"invokeModel": {"body": body.encode() if isinstance(body, str) else bytes(body)}}
    return None
