"""Token counts as reported by one source, and how they become a :class:`Usage`.

Each source (Converse usage, headers, invocation metrics, a native body) fills a :class:`Counts` with what
it reported; ``None`` means "not reported or not believable". Sources merge field by field in order of
preference, and whatever is still missing is estimated and flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

from bedrock_budget.extract.estimate import estimate_input_tokens
from bedrock_budget.extract.types import RequestInfo
from bedrock_budget.usage import Usage, trusted_usage

__all__ = ["Counts", "to_usage"]


@dataclass(slots=True)
class Counts:
    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    cache_write_1h: int | None = None

    @property
    def reported(self) -> bool:
        return self.input is not None or self.output is not None

    def merged(self, fallback: Counts) -> Counts:
        """Each field from ``self`` when reported there, else from ``fallback``."""
        return Counts(
            self.input if self.input is not None else fallback.input,
            self.output if self.output is not None else fallback.output,
            self.cache_read if self.cache_read is not None else fallback.cache_read,
            self.cache_write if self.cache_write is not None else fallback.cache_write,
            self.cache_write_1h if self.cache_write_1h is not None else fallback.cache_write_1h,
        )


def to_usage(
    counts: Counts,
    request: RequestInfo,
    *,
    output_estimate: int,
    output_expected: bool = True,
    guardrail_text_units: dict[str, int] | None = None,
) -> tuple[Usage, bool]:
    """The Usage for ``counts`` with gaps filled in, and whether anything was estimated.

    Missing input is the request's conservative estimate less any cache tokens that were reported; missing
    output is ``output_estimate`` (what the caller could measure from generated text), at most the request's
    maximum output tokens. ``output_expected`` is false for embeddings, whose output is always zero.
    """
    estimated = False
    cache_read = counts.cache_read or 0
    cache_write = counts.cache_write or 0
    input_tokens = counts.input
    if input_tokens is None:
        input_tokens = max(0, estimate_input_tokens(request) - cache_read - cache_write)
        estimated = True
    output_tokens = counts.output
    if not output_expected:
        # Embeddings generate nothing; a stray output count would be priced at a rate they do not have.
        output_tokens = 0
    elif output_tokens is None:
        output_tokens = output_estimate
        if request.max_output_tokens is not None:
            # Bedrock stops at the request's cap, so text measured beyond it (a reply padded with whitespace,
            # a body that is not the model's) cannot have been billed as output.
            output_tokens = min(output_tokens, request.max_output_tokens)
        estimated = True
    write_1h = counts.cache_write_1h
    if write_1h is None:
        # No TTL split reported: the request's longest TTL is the dearest reading and the exact one when
        # every cache point uses it.
        write_1h = cache_write if cache_write and request.cache_ttl == "1h" else 0
    # An inconsistent split (1h part above the total) is resolved upwards rather than dropped.
    cache_write = max(cache_write, write_1h)
    # Every count here is a checked count (as_count, header_count), a sum or maximum of them, or an estimate
    # from non-negative sizes, so the Usage checks would only repeat the work.
    usage = trusted_usage(
        input_tokens, output_tokens, cache_read, cache_write, write_1h, guardrail_text_units
    )
    return usage, estimated
