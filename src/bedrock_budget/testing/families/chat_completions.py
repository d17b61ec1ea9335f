"""OpenAI Chat Completions bodies: OpenAI gpt-oss, Qwen, and DeepSeek's ``messages`` models (V3.x).

``usage.prompt_tokens`` follows OpenAI's meaning (all input, cached included) and
``prompt_tokens_details.cached_tokens`` carries cache reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Family, Generation, int_at, malformed, require

__all__ = ["ChatCompletions", "OpenAI", "Qwen", "chat_usage"]


def chat_usage(gen: Generation) -> dict[str, Any]:
    u = gen.usage
    usage: dict[str, Any] = {
        "prompt_tokens": u.total_input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
    }
    if u.cache_read_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": u.cache_read_tokens}
    return usage


class ChatCompletions(Family):
    name = "chat-completions"

    def validate(self, body: Mapping[str, Any]) -> None:
        require(body, "messages")
        if not isinstance(body["messages"], list) or not body["messages"]:
            raise malformed("#/messages: expected minimum item count: 1")

    def max_tokens(self, body: Mapping[str, Any]) -> int | None:
        found = int_at(body, "max_completion_tokens")
        return found if found is not None else int_at(body, "max_tokens")

    def response(self, gen: Generation) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": "chatcmpl-" + gen.response_id[:24],
            "object": "chat.completion",
            "created": gen.created,
            "model": gen.model_id,
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
        base = {
            "id": "chatcmpl-" + gen.response_id[:24],
            "object": "chat.completion.chunk",
            "created": gen.created,
            "model": gen.model_id,
        }
        chunks: list[dict[str, Any]] = []
        for index, piece in enumerate(gen.pieces):
            delta: dict[str, Any] = (
                {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
            )
            chunks.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        final: dict[str, Any] = {
            **base,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "length" if gen.hit_limit else "stop"}],
        }
        if gen.body_usage:
            final["usage"] = chat_usage(gen)
        chunks.append(final)
        return chunks


class OpenAI(ChatCompletions):
    name = "openai"


class Qwen(ChatCompletions):
    name = "qwen"
