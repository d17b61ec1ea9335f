"""Guardrail text units: from ApplyGuardrail / InvokeGuardrailChecks responses and from the guardrail
trace of model calls, keyed by the policy names the price table uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from bedrock_budget.extract.values import as_count

__all__ = ["add_guardrail_usage", "checks_units", "trace_units"]

# GuardrailUsage field → priced policy. sensitiveInformationPolicyFreeUnits is not charged and
# automatedReasoningPolicies counts policies, not units, so neither is listed. Image units stay apart
# from text units because they are priced per image.
_POLICY_OF_FIELD: Final = {
    "topicPolicyUnits": "denied_topics",
    "contentPolicyUnits": "content_filters",
    "wordPolicyUnits": "word_filters",
    "sensitiveInformationPolicyUnits": "sensitive_information",
    "contextualGroundingPolicyUnits": "contextual_grounding",
    "automatedReasoningPolicyUnits": "automated_reasoning",
    "contentPolicyImageUnits": "content_filters_image",
}
# InvokeGuardrailChecks: a prompt-attack check is a content-filter category.
_POLICY_OF_CHECK: Final = {
    "contentFilter": "content_filters",
    "promptAttack": "content_filters",
    "sensitiveInformation": "sensitive_information",
}
# A guardrail trace is small (one assessment per guardrail and output chunk); a bound keeps a hostile one
# from turning extraction into a long walk.
_MAX_TRACE_NODES: Final = 10_000


def add_guardrail_usage(usage: object, into: dict[str, int]) -> None:
    """Add one GuardrailUsage structure's units to ``into`` (zero and invalid values are skipped)."""
    if not isinstance(usage, Mapping):
        return
    for field, policy in _POLICY_OF_FIELD.items():
        units = as_count(usage.get(field))
        if units:
            into[policy] = into.get(policy, 0) + units


def trace_units(trace: object, into: dict[str, int]) -> None:
    """Sum every ``invocationMetrics.usage`` in a guardrail trace (input and all output assessments).

    Converse nests assessments as ``inputAssessment{id: …}`` / ``outputAssessments{id: [...]}``; InvokeModel
    bodies as ``input{id: …}`` / ``outputs[{id: …}]``. Walking for the metrics block covers both.
    """
    if trace is None:  # most calls run without a guardrail
        return
    stack: list[Any] = [trace]
    seen = 0
    while stack and seen < _MAX_TRACE_NODES:
        node = stack.pop()
        seen += 1
        if isinstance(node, Mapping):
            metrics = node.get("invocationMetrics")
            if isinstance(metrics, Mapping):
                add_guardrail_usage(metrics.get("usage"), into)
            stack.extend(value for key, value in node.items() if key != "invocationMetrics")
        elif isinstance(node, list | tuple):
            stack.extend(node)


def checks_units(usage: object) -> dict[str, int]:
    """InvokeGuardrailChecks ``usage{contentFilter{textUnits}, promptAttack{…}, sensitiveInformation{…}}``."""
    units: dict[str, int] = {}
    if not isinstance(usage, Mapping):
        return units
    for check, policy in _POLICY_OF_CHECK.items():
        entry = usage.get(check)
        count = as_count(entry.get("textUnits")) if isinstance(entry, Mapping) else None
        if count:
            units[policy] = units.get(policy, 0) + count
    return units
