"""Amazon's families: Nova understanding models, Titan Text, Titan Embeddings, Titan Image / Nova
Canvas, and the asynchronous-only Nova Reel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import (
    Family,
    Generation,
    cumulative_counts,
    embedding_vector,
    int_at,
    malformed,
    require,
    tiny_png_base64,
)

__all__ = ["Nova", "NovaCanvas", "NovaReel", "TitanEmbed", "TitanImage", "TitanText"]


class Nova(Family):
    name = "nova"

    def validate(self, body: Mapping[str, Any]) -> None:
        require(body, "messages")
        if not isinstance(body["messages"], list) or not body["messages"]:
            raise malformed("#/messages: expected minimum item count: 1")

    def max_tokens(self, body: Mapping[str, Any]) -> int | None:
        # Nova 2 documents "maxTokens"; the first Nova release documented "max_new_tokens".
        found = int_at(body, "inferenceConfig", "maxTokens")
        return found if found is not None else int_at(body, "inferenceConfig", "max_new_tokens")

    @staticmethod
    def _usage(gen: Generation, *, total: bool) -> dict[str, Any]:
        u = gen.usage
        usage: dict[str, Any] = {"inputTokens": u.input_tokens, "outputTokens": u.output_tokens}
        if total:
            usage["totalTokens"] = u.total_tokens
        # Nova's native body names its cache fields "...TokenCount", unlike Converse's "...Tokens".
        usage["cacheReadInputTokenCount"] = u.cache_read_tokens
        usage["cacheWriteInputTokenCount"] = u.cache_write_total
        return usage

    def response(self, gen: Generation) -> dict[str, Any]:
        body: dict[str, Any] = {
            "output": {"message": {"role": "assistant", "content": [{"text": gen.text}]}},
            "stopReason": "max_tokens" if gen.hit_limit else "end_turn",
        }
        if gen.body_usage:
            body["usage"] = self._usage(gen, total=True)
        return body

    def stream(self, gen: Generation) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = [{"messageStart": {"role": "assistant"}}]
        events.extend(
            {"contentBlockDelta": {"delta": {"text": piece}, "contentBlockIndex": 0}} for piece in gen.pieces
        )
        events.append({"contentBlockStop": {"contentBlockIndex": 0}})
        events.append({"messageStop": {"stopReason": "max_tokens" if gen.hit_limit else "end_turn"}})
        metadata: dict[str, Any] = {"metrics": {}, "trace": {}}
        if gen.body_usage:
            metadata["usage"] = self._usage(gen, total=False)
        events.append({"metadata": metadata})
        return events


class TitanText(Family):
    name = "titan-text"

    def validate(self, body: Mapping[str, Any]) -> None:
        require(body, "inputText")

    def max_tokens(self, body: Mapping[str, Any]) -> int | None:
        return int_at(body, "textGenerationConfig", "maxTokenCount")

    def response(self, gen: Generation) -> dict[str, Any]:
        result: dict[str, Any] = {
            "outputText": gen.text,
            "completionReason": "LENGTH" if gen.hit_limit else "FINISH",
        }
        body: dict[str, Any] = {"results": [result]}
        if gen.body_usage:
            body["inputTextTokenCount"] = gen.usage.input_tokens
            result["tokenCount"] = gen.usage.output_tokens
        return body

    def stream(self, gen: Generation) -> list[dict[str, Any]]:
        counts = cumulative_counts(gen.pieces, gen.usage.output_tokens)
        last = len(gen.pieces) - 1
        chunks: list[dict[str, Any]] = []
        for index, (piece, count) in enumerate(zip(gen.pieces, counts, strict=True)):
            chunk: dict[str, Any] = {
                "outputText": piece,
                "index": 0,
                "completionReason": ("LENGTH" if gen.hit_limit else "FINISH") if index == last else None,
            }
            if gen.body_usage:
                chunk["totalOutputTextTokenCount"] = count
                chunk["inputTextTokenCount"] = gen.usage.input_tokens if index == 0 else None
            chunks.append(chunk)
        return chunks


class TitanEmbed(Family):
    name = "titan-embed"
    kind = "embedding"
    streaming = False

    def validate(self, body: Mapping[str, Any]) -> None:
        if "inputText" not in body and "inputImage" not in body:
            raise malformed("#: required key [inputText] not found")

    def response(self, gen: Generation) -> dict[str, Any]:
        body = gen.body
        if gen.model_id.startswith("amazon.titan-embed-image"):
            dims = int_at(body, "embeddingConfig", "outputEmbeddingLength") or 1024
        elif gen.model_id.startswith("amazon.titan-embed-text-v2"):
            dims = int_at(body, "dimensions") or 1024
        else:
            dims = 1536
        vector = embedding_vector(dims)
        out: dict[str, Any] = {"embedding": vector}
        types = body.get("embeddingTypes")
        if isinstance(types, list) and types:
            by_type: dict[str, Any] = {}
            for kind in types:
                if kind == "float":
                    by_type["float"] = vector
                elif kind == "binary":
                    by_type["binary"] = [1 if v > 0 else 0 for v in vector]
            out["embeddingsByType"] = by_type
        if gen.body_usage:
            out["inputTextTokenCount"] = gen.usage.input_tokens
        return out


class TitanImage(Family):
    """Titan Image Generator v1/v2 and Nova Canvas share the request and response schema."""

    name = "titan-image"
    kind = "image"
    token_headers = False
    streaming = False

    def validate(self, body: Mapping[str, Any]) -> None:
        require(body, "taskType")

    def response(self, gen: Generation) -> dict[str, Any]:
        count = int_at(gen.body, "imageGenerationConfig", "numberOfImages") or 1
        if gen.body.get("taskType") == "BACKGROUND_REMOVAL":
            count = 1
        return {"images": [tiny_png_base64()] * count, "error": None}


class NovaCanvas(TitanImage):
    name = "nova-canvas"


class NovaReel(Family):
    """Video generation: only reachable through StartAsyncInvoke."""

    name = "nova-reel"
    kind = "video"
    token_headers = False
    streaming = False
    synchronous = False
