"""ApplyGuardrail responses and the guardrail trace Converse adds when asked to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import BedrockError
from .usage import GuardrailUsageSpec

__all__ = ["apply_guardrail_response", "converse_guardrail_trace", "guarded_content"]


def guarded_content(body: Mapping[str, Any]) -> tuple[int, int]:
    """(text characters, images) in an ApplyGuardrail request; raises on a malformed one."""
    source = body.get("source")
    content = body.get("content")
    if source not in ("INPUT", "OUTPUT"):
        raise BedrockError("ValidationException", "source must be one of INPUT or OUTPUT.")
    if not isinstance(content, list) or not content:
        raise BedrockError("ValidationException", "content must contain at least one content block.")
    characters = 0
    images = 0
    for block in content:
        if not isinstance(block, Mapping):
            raise BedrockError("ValidationException", "Each content block must be an object.")
        text = block.get("text")
        if isinstance(text, Mapping) and isinstance(text.get("text"), str):
            characters += len(text["text"])
        elif "image" in block:
            images += 1
        else:
            raise BedrockError("ValidationException", "Each content block must contain text or an image.")
    return characters, images


def _metrics(spec: GuardrailUsageSpec, characters: int, images: int) -> dict[str, Any]:
    coverage: dict[str, Any] = {"textCharacters": {"guarded": characters, "total": characters}}
    if images:
        coverage["images"] = {"guarded": images, "total": images}
    return {
        "guardrailProcessingLatency": 1,
        "usage": spec.usage(characters, images),
        "guardrailCoverage": coverage,
    }


def apply_guardrail_response(spec: GuardrailUsageSpec, characters: int, images: int) -> dict[str, Any]:
    intervened = spec.action == "GUARDRAIL_INTERVENED"
    metrics = _metrics(spec, characters, images)
    response: dict[str, Any] = {
        "usage": metrics["usage"],
        "action": spec.action,
        "actionReason": "Guardrail blocked." if intervened else "No action.",
        "outputs": [{"text": spec.blocked_message}] if intervened else [],
        "assessments": [{"invocationMetrics": metrics}],
        "guardrailCoverage": metrics["guardrailCoverage"],
    }
    return response


def converse_guardrail_trace(
    spec: GuardrailUsageSpec, guardrail_id: str, input_characters: int, output_characters: Sequence[int]
) -> dict[str, Any]:
    return {
        "guardrail": {
            "inputAssessment": {guardrail_id: {"invocationMetrics": _metrics(spec, input_characters, 0)}},
            "outputAssessments": {
                guardrail_id: [{"invocationMetrics": _metrics(spec, n, 0)} for n in output_characters]
            },
        }
    }
