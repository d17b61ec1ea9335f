"""Stability AI image models: the current ``prompt`` API and the legacy SDXL ``text_prompts`` API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Family, Generation, int_at, malformed, tiny_png_base64

__all__ = ["Stability"]


class Stability(Family):
    name = "stability"
    kind = "image"
    token_headers = False
    streaming = False

    @staticmethod
    def _legacy(model_id: str) -> bool:
        return "stable-diffusion-xl" in model_id

    def validate(self, body: Mapping[str, Any]) -> None:
        if "prompt" not in body and "text_prompts" not in body:
            raise malformed("#: required key [prompt] not found")

    def response(self, gen: Generation) -> dict[str, Any]:
        seed = int_at(gen.body, "seed") or 0
        if self._legacy(gen.model_id):
            artifact = {"seed": seed, "base64": tiny_png_base64(), "finishReason": "SUCCESS"}
            return {"result": "success", "artifacts": [artifact]}
        return {"seeds": [seed], "finish_reasons": [None], "images": [tiny_png_base64()]}
