"""Anthropic Claude on the Messages API (``anthropic_version: bedrock-2023-05-31``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from .base import Family, Generation, int_at, malformed, require

__all__ = ["Anthropic"]

_VERSION_SUFFIX: Final = re.compile(r"-v\d+(:\d+)*$")


def _model_name(model_id: str) -> str:
    # Bedrock reports Anthropic's own model name:
    # "anthropic.claude-3-5-haiku-20241022-v1:0" → "claude-3-5-haiku-20241022".
    return _VERSION_SUFFIX.sub("", model_id.split(".", 1)[-1])


class Anthropic(Family):
    name = "anthropic"

    def validate(self, body: Mapping[str, Any]) -> None:
        require(body, "anthropic_version", "max_tokens", "messages")
        if not isinstance(body["messages"], list) or not body["messages"]:
            raise malformed("#/messages: expected minimum item count: 1")

    def max_tokens(self, body: Mapping[str, Any]) -> int | None:
        return int_at(body, "max_tokens")

    @staticmethod
    def _usage(gen: Generation, output_tokens: int) -> dict[str, Any]:
        u = gen.usage
        usage: dict[str, Any] = {
            "input_tokens": u.input_tokens,
            "cache_creation_input_tokens": u.cache_write_total,
            "cache_read_input_tokens": u.cache_read_tokens,
            "output_tokens": output_tokens,
        }
        if u.cache_write_total:
            usage["cache_creation"] = {
                "ephemeral_5m_input_tokens": u.cache_write_tokens,
                "ephemeral_1h_input_tokens": u.cache_write_1h_tokens,
            }
        return usage

    def _stop_reason(self, gen: Generation) -> str:
        return "max_tokens" if gen.hit_limit else "end_turn"

    def response(self, gen: Generation) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": "msg_bdrk_" + gen.response_id[:24],
            "type": "message",
            "role": "assistant",
            "model": _model_name(gen.model_id),
            "content": [{"type": "text", "text": gen.text}],
            "stop_reason": self._stop_reason(gen),
            "stop_sequence": None,
        }
        if gen.body_usage:
            body["usage"] = self._usage(gen, gen.usage.output_tokens)
        return body

    def stream(self, gen: Generation) -> list[dict[str, Any]]:
        message: dict[str, Any] = {
            "id": "msg_bdrk_" + gen.response_id[:24],
            "type": "message",
            "role": "assistant",
            "model": _model_name(gen.model_id),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
        }
        if gen.body_usage:
            # message_start carries a small provisional output count; message_delta has the final one.
            message["usage"] = self._usage(gen, min(1, gen.usage.output_tokens))
        events: list[dict[str, Any]] = [
            {"type": "message_start", "message": message},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ]
        events.extend(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
            for piece in gen.pieces
        )
        events.append({"type": "content_block_stop", "index": 0})
        delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop_reason(gen), "stop_sequence": None},
        }
        if gen.body_usage:
            delta["usage"] = {"output_tokens": gen.usage.output_tokens}
        events.append(delta)
        events.append({"type": "message_stop"})
        return events
