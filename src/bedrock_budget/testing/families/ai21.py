"""AI21 Jamba: OpenAI-like chat bodies. The stream shape matches a captured Bedrock frame
(``message`` + ``stop_reason`` per chunk)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Family, Generation, int_at, malformed, require
from .chat_completions import chat_usage

__all__ = ["AI21"]


class AI21(Family):
    name = "ai21"

    def validate(self, body: Mapping[str, Any]) -> None:
        require(body, "messages")
        if not isinstance(body["messages"], list) or not body["messages"]:
            raise malformed("#/messages: expected minimum item count: 1")

    def max_tokens(self, body: Mapping[str, Any]) -> int | None:
        return int_at(body, "max_tokens")

    def response(self, gen: Generation) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": "chatcmpl-" + gen.response_id[:24],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": gen.text},
                    "finish_reason": "length" if gen.hit_limit else "stop",
                }
            ],
        }
        if gen.body_usage:
            body["usage"] = chat_usage(gen)
        return body

    def stream(self, gen: Generation) -> list[dict[str, Any]]:
        last = len(gen.pieces) - 1
        stop = "length" if gen.hit_limit else "stop"
        chunks: list[dict[str, Any]] = []
        for index, piece in enumerate(gen.pieces):
            message = {"role": "assistant", "content": piece}
            chunk: dict[str, Any] = {
                "choices": [{"index": 0, "message": message, "stop_reason": stop if index == last else None}]
            }
            if index == last and gen.body_usage:
                chunk["usage"] = chat_usage(gen)
            chunks.append(chunk)
        return chunks
