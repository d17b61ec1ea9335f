"""What usage the fake reports: the scripting types and the default prompt-proportional rule."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "GuardrailUsageSpec",
    "ReportedUsage",
    "UsageContext",
    "UsageFn",
    "UsageSpec",
    "filler_text",
    "prompt_bytes",
    "split_text",
]

# String values under these keys are configuration, not prompt text, so they do not count as input.
_NOT_PROMPT_KEYS: Final = frozenset(
    {
        "anthropic_version",
        "aspect_ratio",
        "cachePoint",
        "cache_control",
        "embeddingTypes",
        "embedding_types",
        "format",
        "input_type",
        "media_type",
        "mode",
        "model",
        "output_format",
        "role",
        "schemaVersion",
        "taskType",
        "truncate",
        "ttl",
        "type",
    }
)


def prompt_bytes(value: Any) -> int:
    """UTF-8 bytes of every string in a request fragment, skipping configuration keys.

    A rough but deterministic stand-in for "how much prompt was sent"; the default usage divides it by
    ``UsageSpec.bytes_per_token``.
    """
    total = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item.encode("utf-8"))
        elif isinstance(item, dict):  # parsed JSON: plain dicts and lists, cheaper than ABC checks
            stack.extend(v for k, v in item.items() if k not in _NOT_PROMPT_KEYS)
        elif isinstance(item, list):
            stack.extend(item)
    return total


@dataclass(frozen=True, slots=True)
class ReportedUsage:
    """The concrete token counts one response reports. ``input_tokens`` excludes cached tokens, as on
    Bedrock; ``cache_write_tokens`` are 5-minute-TTL writes and ``cache_write_1h_tokens`` 1-hour ones."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_details: bool = True

    @property
    def cache_write_total(self) -> int:
        return self.cache_write_tokens + self.cache_write_1h_tokens

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_total

    @property
    def total_tokens(self) -> int:
        return self.total_input_tokens + self.output_tokens

    @property
    def uses_cache(self) -> bool:
        return self.cache_read_tokens > 0 or self.cache_write_total > 0


@dataclass(frozen=True, slots=True)
class UsageSpec:
    """Usage a model reports. Leave ``input_tokens`` / ``output_tokens`` as ``None`` for the
    prompt-proportional default:

    * input = ``ceil(prompt bytes / bytes_per_token)``, at least 1;
    * output = ``min(max tokens requested, default_output_tokens)`` (``default_output_tokens`` when the
      request sets no limit).

    Fixed values are reported exactly as given, even above the request's max tokens. Cache writes are
    split by TTL; the response's ``cacheWriteInputTokens`` is their sum and ``cacheDetails`` lists each.
    ``cache_details=False`` leaves ``cacheDetails`` out of Converse usage (older responses lack it).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    bytes_per_token: float = 4.0
    default_output_tokens: int = 16
    cache_details: bool = True

    def __post_init__(self) -> None:
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cache_write_1h_tokens",
            "default_output_tokens",
        ):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"UsageSpec.{name} must be a non-negative int, got {value!r}")
        if not self.bytes_per_token > 0:
            raise ValueError(f"UsageSpec.bytes_per_token must be positive, got {self.bytes_per_token!r}")

    def resolve(self, prompt_size: int, max_tokens: int | None) -> ReportedUsage:
        if self.input_tokens is None:
            input_tokens = max(1, math.ceil(prompt_size / self.bytes_per_token))
        else:
            input_tokens = self.input_tokens
        if self.output_tokens is not None:
            output_tokens = self.output_tokens
        elif max_tokens is None:
            output_tokens = self.default_output_tokens
        else:
            output_tokens = min(max_tokens, self.default_output_tokens)
        return ReportedUsage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens,
            cache_details=self.cache_details,
        )


@dataclass(frozen=True, slots=True)
class UsageContext:
    """What a usage callable sees about the request it answers."""

    operation: str
    model_id: str
    base_model_id: str
    family: str
    body: Any
    headers: Mapping[str, str]
    prompt_bytes: int
    max_tokens: int | None


UsageFn = Callable[[UsageContext], UsageSpec]


@dataclass(frozen=True, slots=True)
class GuardrailUsageSpec:
    """Guardrail policy units reported by ApplyGuardrail and by Converse guardrail traces.

    ``None`` means "one unit per started 1,000 characters of guarded text" (the billing unit). By
    default only the content-filter policy is charged; set the others for guardrails with more policies.
    ``content_policy_image_units=None`` reports one unit per image.
    """

    content_policy_units: int | None = None
    topic_policy_units: int = 0
    word_policy_units: int = 0
    sensitive_information_policy_units: int = 0
    sensitive_information_policy_free_units: int = 0
    contextual_grounding_policy_units: int = 0
    content_policy_image_units: int | None = None
    automated_reasoning_policy_units: int = 0
    automated_reasoning_policies: int = 0
    action: Literal["NONE", "GUARDRAIL_INTERVENED"] = "NONE"
    blocked_message: str = "Sorry, the model cannot answer this question."

    def usage(self, characters: int, images: int) -> dict[str, int]:
        text_units = math.ceil(characters / 1000)
        return {
            "topicPolicyUnits": self.topic_policy_units,
            "contentPolicyUnits": (
                text_units if self.content_policy_units is None else self.content_policy_units
            ),
            "wordPolicyUnits": self.word_policy_units,
            "sensitiveInformationPolicyUnits": self.sensitive_information_policy_units,
            "sensitiveInformationPolicyFreeUnits": self.sensitive_information_policy_free_units,
            "contextualGroundingPolicyUnits": self.contextual_grounding_policy_units,
            "contentPolicyImageUnits": (
                images if self.content_policy_image_units is None else self.content_policy_image_units
            ),
            "automatedReasoningPolicyUnits": self.automated_reasoning_policy_units,
            "automatedReasoningPolicies": self.automated_reasoning_policies,
        }


_WORDS: Final = (
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
)


def filler_text(tokens: int) -> str:
    """Deterministic filler of ``tokens`` words; never derived from the prompt."""
    return " ".join(_WORDS[i % len(_WORDS)] for i in range(tokens))


def split_text(text: str, parts: int) -> tuple[str, ...]:
    """Split ``text`` into at most ``parts`` consecutive pieces (whole words) that join back to it."""
    words = text.split(" ") if text else []
    if parts <= 1 or len(words) <= 1:
        return (text,)
    parts = min(parts, len(words))
    size, extra = divmod(len(words), parts)
    pieces: list[str] = []
    start = 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        chunk = " ".join(words[start:end])
        pieces.append(chunk if index == 0 else " " + chunk)
        start = end
    return tuple(pieces)
