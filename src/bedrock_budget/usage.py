"""What one call consumed: the input to pricing and to budgets. Counts only, never content."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bedrock_budget._frozen import fast_builder
from bedrock_budget.errors import InvalidUsageError

_COUNT_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "images",
    "video_seconds",
    "rerank_queries",
)


def _check_count(name: str, value: object) -> None:
    # bool is an int subclass; True tokens is always a bug upstream.
    if type(value) is not int:
        raise InvalidUsageError(name, value, "must be an int")
    if value < 0:
        raise InvalidUsageError(name, value, "must not be negative")


@dataclass(frozen=True, slots=True)
class Usage:
    """Units consumed by one call.

    ``input_tokens`` follows Bedrock's meaning: tokens that were neither read from nor written to the
    prompt cache. ``cache_write_tokens`` is every token written to the cache; ``cache_write_1h_tokens`` is the
    part of it written with the one-hour TTL (the rest is priced as five-minute writes).
    ``guardrail_text_units`` maps a guardrail policy (``content_filters``, ``denied_topics``, ...) to the text
    units it processed.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    images: int = 0
    image_size: str | None = None
    image_quality: str | None = None
    video_seconds: int = 0
    rerank_queries: int = 0
    guardrail_text_units: Mapping[str, int] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # Valid usage is the rule: one pass of exact-type tests, and the slower named checks only to say
        # which field is wrong.
        for value in (
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.cache_write_1h_tokens,
            self.images,
            self.video_seconds,
            self.rerank_queries,
        ):
            if type(value) is not int or value < 0:
                for name in _COUNT_FIELDS:
                    _check_count(name, getattr(self, name))
        if self.cache_write_1h_tokens > self.cache_write_tokens:
            raise InvalidUsageError(
                "cache_write_1h_tokens",
                self.cache_write_1h_tokens,
                f"exceeds cache_write_tokens ({self.cache_write_tokens})",
            )
        for policy, units in self.guardrail_text_units.items():
            _check_count(f"guardrail_text_units[{policy!r}]", units)

    @property
    def cache_write_5m_tokens(self) -> int:
        return self.cache_write_tokens - self.cache_write_1h_tokens

    @property
    def prompt_tokens(self) -> int:
        """Every input-side token of the request, cached or not (what long-context thresholds compare)."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


_build_checked = fast_builder(Usage, post_init=False)


def trusted_usage(
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
    guardrail_text_units: Mapping[str, int] | None = None,
) -> Usage:
    """A token :class:`Usage` built without re-running the checks of ``Usage(...)``.

    Only for counts the caller has already checked, as the response extractors do (every count a
    non-negative ``int``, ``cache_write_1h_tokens <= cache_write_tokens``, guardrail units non-negative
    ``int``): the result equals ``Usage(...)`` with the same values, built for a fraction of the cost on a
    path that runs on every call. Anything else must use the validating constructor.
    """
    return _build_checked(
        input_tokens,
        output_tokens,
        cache_read_tokens,
        cache_write_tokens,
        cache_write_1h_tokens,
        guardrail_text_units={} if guardrail_text_units is None else guardrail_text_units,
    )
