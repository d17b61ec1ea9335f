"""Usage extraction: what a request asks for and what Bedrock reports it consumed.

Pipeline entry points::

    family = family_of(base_model_id)
    request = inspect_request(operation, family, kwargs)          # before the call (may replace a file body)
    reserve = worst_case_usage(request, model_max_output_tokens=...)
    extracted = extract_response(operation, family, request, response)   # non-streaming calls
    acc = StreamAccumulator(operation, family, response)                 # streaming calls
    acc.feed(event) ...; extracted = acc.result(complete=..., request=request)

Only counts and sizes are produced; prompt and completion text is measured and dropped.
"""

from __future__ import annotations

from bedrock_budget.extract.estimate import estimate_input_tokens, worst_case_usage
from bedrock_budget.extract.families import FAMILIES, family_of, kind_of
from bedrock_budget.extract.request import inspect_request
from bedrock_budget.extract.responses import extract_response
from bedrock_budget.extract.streams import StreamAccumulator
from bedrock_budget.extract.types import Extracted, RequestInfo, UsageSource, canonical_operation

__all__ = [
    "FAMILIES",
    "Extracted",
    "RequestInfo",
    "StreamAccumulator",
    "UsageSource",
    "canonical_operation",
    "estimate_input_tokens",
    "extract_response",
    "family_of",
    "inspect_request",
    "kind_of",
    "worst_case_usage",
]
