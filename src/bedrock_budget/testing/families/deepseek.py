"""DeepSeek: R1 takes a ``prompt`` and answers with completion ``choices`` (no usage); the V3 models
take ``messages`` and answer in the Chat Completions format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Generation, int_at, malformed
from .chat_completions import ChatCompletions

__all__ = ["DeepSeek"]


class DeepSeek(ChatCompletions):
    name = "deepseek"

    def validate(self, body: Mapping[str, Any]) -> None:
        if "messages" in body:
            super().validate(body)
        elif "prompt" not in body:
            raise malformed("#: required key [prompt] not found")

    def max_tokens(self, body: Mapping[str, Any]) -> int | None:
        return int_at(body, "max_tokens")

    def response(self, gen: Generation) -> dict[str, Any]:
        if "messages" in gen.body:
            return super().response(gen)
        return {"choices": [{"text": gen.text, "stop_reason": "length" if gen.hit_limit else "stop"}]}

    def stream(self, gen: Generation) -> list[dict[str, Any]]:
        if "messages" in gen.body:
            return super().stream(gen)
        last = len(gen.pieces) - 1
        stop = "length" if gen.hit_limit else "stop"
        return [
            {"choices": [{"text": piece, "stop_reason": stop if index == last else None}]}
            for index, piece in enumerate(gen.pieces)
        ]
