"""Meta Llama: a pre-templated ``prompt`` in, ``generation`` plus token counts out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Family, Generation, cumulative_counts, int_at, require

__all__ = ["Llama"]


class Llama(Family):
    name = "llama"

    def validate(self, body: Mapping[str, Any]) -> None:
        require(body, "prompt")

    def max_tokens(self, body: Mapping[str, Any]) -> int | None:
        return int_at(body, "max_gen_len")

    def response(self, gen: Generation) -> dict[str, Any]:
        body: dict[str, Any] = {"generation": gen.text}
        if gen.body_usage:
            body["prompt_token_count"] = gen.usage.input_tokens
            body["generation_token_count"] = gen.usage.output_tokens
        body["stop_reason"] = "length" if gen.hit_limit else "stop"
        return body

    def stream(self, gen: Generation) -> list[dict[str, Any]]:
        counts = cumulative_counts(gen.pieces, gen.usage.output_tokens)
        last = len(gen.pieces) - 1
        chunks: list[dict[str, Any]] = []
        for index, (piece, count) in enumerate(zip(gen.pieces, counts, strict=True)):
            chunk: dict[str, Any] = {"generation": piece}
            if gen.body_usage:
                # The prompt count arrives once, on the first chunk; the generation count is cumulative.
                chunk["prompt_token_count"] = gen.usage.input_tokens if index == 0 else None
                chunk["generation_token_count"] = count
            chunk["stop_reason"] = ("length" if gen.hit_limit else "stop") if index == last else None
            chunks.append(chunk)
        return chunks
