"""Metering proxies around boto3 and aiobotocore bedrock-runtime clients."""

from bedrock_budget.dependencies import require_runtime

# Before anything below imports wrapt: a wrapt or botocore out of range fails here with a
# DependencyVersionError that says what to install, never with an AttributeError on first use.
require_runtime()

from bedrock_budget.wrapper.configure import build_meter, wrap  # noqa: E402
from bedrock_budget.wrapper.instrument import instrument, is_instrumented, uninstrument  # noqa: E402
from bedrock_budget.wrapper.proxy import BudgetedClient, unwrap  # noqa: E402

__all__ = ["BudgetedClient", "build_meter", "instrument", "is_instrumented", "uninstrument", "unwrap", "wrap"]
