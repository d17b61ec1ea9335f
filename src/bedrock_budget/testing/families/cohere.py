"""Cohere: Command (legacy ``prompt``), Command R/R+ (``message``) and Embed.

None of them carry usage in the body on Bedrock as far as is known, so they report usage only through
the headers and the stream's invocation metrics. Fields that would echo the request (``prompt``,
``chat_history``, embed ``texts``) are left out on purpose: the fake never sends prompt text back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Family, Generation, embedding_vector, int_at, malformed

__all__ = ["Cohere", "CohereEmbed"]


class Cohere(Family):
    name = "cohere"

    def validate(self, body: Mapping[str, Any]) -> None:
        if "message" not in body and "prompt" not in body:
            raise malformed("#: required key [message] not found")

    def max_tokens(self, body: Mapping[str, Any]) -> int | None:
        return int_at(body, "max_tokens")

    def response(self, gen: Generation) -> dict[str, Any]:
        reason = "MAX_TOKENS" if gen.hit_limit else "COMPLETE"
        if "message" in gen.body:
            return {
                "response_id": gen.response_id,
                "text": gen.text,
                "generation_id": gen.response_id[::-1],
                "finish_reason": reason,
            }
        generation = {"id": gen.response_id[::-1], "text": gen.text, "finish_reason": reason, "index": 0}
        return {"generations": [generation], "id": gen.response_id}

    def stream(self, gen: Generation) -> list[dict[str, Any]]:
        reason = "MAX_TOKENS" if gen.hit_limit else "COMPLETE"
        if "message" in gen.body:
            chunks: list[dict[str, Any]] = [
                {"is_finished": False, "event_type": "stream-start", "generation_id": gen.response_id[::-1]}
            ]
            chunks.extend(
                {"is_finished": False, "event_type": "text-generation", "text": piece} for piece in gen.pieces
            )
            final = {
                "response_id": gen.response_id,
                "text": gen.text,
                "generation_id": gen.response_id[::-1],
                "finish_reason": reason,
            }
            chunks.append(
                {"is_finished": True, "event_type": "stream-end", "finish_reason": reason, "response": final}
            )
            return chunks
        chunks = [{"text": piece, "is_finished": False, "index": 0} for piece in gen.pieces]
        chunks.append({"is_finished": True, "finish_reason": reason, "index": 0})
        return chunks


class CohereEmbed(Family):
    name = "cohere-embed"
    kind = "embedding"
    streaming = False

    def validate(self, body: Mapping[str, Any]) -> None:
        if "texts" not in body and "images" not in body and "inputs" not in body:
            raise malformed("#: required key [texts] not found")

    def response(self, gen: Generation) -> dict[str, Any]:
        body = gen.body
        items = body.get("texts") or body.get("images") or body.get("inputs") or []
        count = len(items) if isinstance(items, list) else 1
        default_dims = 1536 if "embed-v4" in gen.model_id else 1024
        vector = embedding_vector(int_at(body, "output_dimension") or default_dims)
        types = body.get("embedding_types")
        if isinstance(types, list) and types:
            by_type: dict[str, Any] = {}
            for kind in types:
                if kind == "float":
                    by_type["float"] = [vector] * count
                elif kind in ("int8", "uint8", "binary", "ubinary"):
                    by_type[kind] = [[int(v * 100) for v in vector]] * count
            return {"embeddings": by_type, "id": gen.response_id, "response_type": "embeddings_by_type"}
        return {"embeddings": [vector] * count, "id": gen.response_id, "response_type": "embeddings_floats"}
