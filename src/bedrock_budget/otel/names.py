"""Metric and attribute names: the OpenTelemetry GenAI semantic conventions, and ours for what they lack.

The GenAI conventions are still in development. By default the listener emits the names instrumentations
have emitted since semantic conventions 1.36 (``gen_ai.client.token.usage`` with ``gen_ai.token.type``
input/output, and ``gen_ai.client.operation.duration``). As the conventions' transition plan asks,
``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` switches to the newest draft instead: per-type
token counters (``gen_ai.client.inference.usage.*``, cache reads and writes as their own metrics, with
``gen_ai.token.modality``) and per-operation token histograms (``gen_ai.client.inference.operation.*``).
Cost has no settled convention, so it is exported under ``bedrock_budget.*`` in both modes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

STABILITY_ENV: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
LATEST_EXPERIMENTAL: Final = "gen_ai_latest_experimental"

METER_NAME: Final = "bedrock_budget"

# Attributes from the GenAI and general registries.
OPERATION_NAME: Final = "gen_ai.operation.name"
PROVIDER_NAME: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
RESPONSE_MODEL: Final = "gen_ai.response.model"
TOKEN_TYPE: Final = "gen_ai.token.type"
TOKEN_MODALITY: Final = "gen_ai.token.modality"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
PROVIDER_AWS_BEDROCK: Final = "aws.bedrock"
# Bedrock reports token counts without a modality breakdown.
MODALITY_UNKNOWN: Final = "unknown"
# The conventions' fallback for an error without a more specific identifier.
ERROR_OTHER: Final = "_OTHER"

# Our own attributes (bounded like the Prometheus labels of the same meaning).
APP: Final = "bedrock_budget.app"
USER: Final = "bedrock_budget.user"
OUTCOME: Final = "bedrock_budget.outcome"
BUDGET: Final = "bedrock_budget.budget"
BUDGET_UNIT: Final = "bedrock_budget.budget.unit"

# Default names (semantic conventions 1.36 and earlier).
TOKEN_USAGE: Final = "gen_ai.client.token.usage"
OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"

# Newest draft (opt-in): one counter per token kind, one histogram per direction.
USAGE_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.output_tokens"
USAGE_CACHE_READ_TOKENS: Final = "gen_ai.client.inference.usage.cache_read.input_tokens"
USAGE_CACHE_WRITE_TOKENS: Final = "gen_ai.client.inference.usage.cache_write.input_tokens"
OPERATION_INPUT_TOKENS: Final = "gen_ai.client.inference.operation.input_tokens"
OPERATION_OUTPUT_TOKENS: Final = "gen_ai.client.inference.operation.output_tokens"

# Ours, in both modes.
COST: Final = "bedrock_budget.client.cost"
REQUESTS: Final = "bedrock_budget.client.requests"
BUDGET_LIMIT: Final = "bedrock_budget.budget.limit"
BUDGET_SPENT: Final = "bedrock_budget.budget.spent"
BUDGET_RESERVED: Final = "bedrock_budget.budget.reserved"
BUDGET_TOKEN_LIMIT: Final = "bedrock_budget.budget.tokens.limit"
BUDGET_TOKENS_SPENT: Final = "bedrock_budget.budget.tokens.spent"
BUDGET_TOKENS_RESERVED: Final = "bedrock_budget.budget.tokens.reserved"
BUDGET_REQUEST_LIMIT: Final = "bedrock_budget.budget.requests.limit"
BUDGET_REQUESTS_SPENT: Final = "bedrock_budget.budget.requests.spent"
BUDGET_REQUESTS_RESERVED: Final = "bedrock_budget.budget.requests.reserved"
BUDGET_UTILIZATION: Final = "bedrock_budget.budget.utilization"
BUDGET_TIME_TO_RESET: Final = "bedrock_budget.budget.time_to_reset"
BUDGET_COUNTERS: Final = "bedrock_budget.budget.counters"
STORE_UP: Final = "bedrock_budget.store.up"

UNIT_TOKEN: Final = "{token}"
UNIT_SECONDS: Final = "s"
UNIT_USD: Final = "USD"
UNIT_REQUEST: Final = "{request}"
UNIT_RATIO: Final = "1"
UNIT_COUNTER: Final = "{counter}"

# The conventions' advice for gen_ai.client.token.usage and gen_ai.client.operation.duration.
TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip

# Bedrock operations → gen_ai.operation.name. Chat-style and embedding calls use the registry's values;
# the rest keep a system-specific name, as the conventions allow for operations they do not define.
_OPERATIONS: Final = {
    "Converse": "chat",
    "ConverseStream": "chat",
    "InvokeModel": "chat",
    "InvokeModelWithResponseStream": "chat",
    "ApplyGuardrail": "apply_guardrail",
    "InvokeGuardrailChecks": "invoke_guardrail_checks",
    "CountTokens": "count_tokens",
    "StartAsyncInvoke": "start_async_invoke",
    "GetAsyncInvoke": "get_async_invoke",
    "ListAsyncInvokes": "list_async_invokes",
}
_INVOKE: Final = frozenset({"InvokeModel", "InvokeModelWithResponseStream"})


def latest_experimental(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``OTEL_SEMCONV_STABILITY_OPT_IN`` (a comma-separated list) asks for the newest GenAI draft."""
    value = (os.environ if environ is None else environ).get(STABILITY_ENV, "")
    return LATEST_EXPERIMENTAL in {part.strip() for part in value.split(",")}


def operation_name(operation: str, model_label: str) -> str:
    """``gen_ai.operation.name`` of a Bedrock operation; an InvokeModel call to an embedding model is
    ``embeddings``. Unknown operations are ``other`` (the value set stays fixed)."""
    if operation in _INVOKE and "embed" in model_label:
        return "embeddings"
    return _OPERATIONS.get(operation, "other")
