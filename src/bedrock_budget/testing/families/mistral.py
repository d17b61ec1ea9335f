"""Mistral: text-completion bodies (``prompt``) and chat bodies (``messages``); neither reports usage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Family, Generation, int_at, malformed

__all__ = ["Mistral"]


class Mistral(Family):
    name = "mistral"

    def validate(self, body: Mapping[str, Any]) -> None:
        if "prompt" not in body and "messages" not in body:
            raise malformed("#: required key [prompt] not found")

    def max_tokens(self, body: Mapping[str, Any]) -> int | None:
        return int_at(body, "max_tokens")

    @staticmethod
    def _chat(body: Mapping[str, Any]) -> bool:
        return "messages" in body

    def response(self, gen: Generation) -> dict[str, Any]:
        stop = "length" if gen.hit_limit else "stop"
        if self._chat(gen.body):
            message = {"role": "assistant", "content": gen.text}
            return {"choices": [{"index": 0, "message": message, "stop_reason": stop}]}
        return {"outputs": [{"text": gen.text, "stop_reason": stop}]}

    def stream(self, gen: Generation) -> list[dict[str, Any]]:
        stop = "length" if gen.hit_limit else "stop"
        last = len(gen.pieces) - 1
        chunks: list[dict[str, Any]] = []
        for index, piece in enumerate(gen.pieces):
            reason = stop if index == last else None
            if self._chat(gen.body):
                message = {"role": "assistant", "content": piece}
                chunks.append({"choices": [{"index": 0, "message": message, "stop_reason": reason}]})
            else:
                chunks.append({"outputs": [{"text": piece, "stop_reason": reason}]})
        return chunks
