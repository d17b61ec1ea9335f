"""Where reports and advice get their numbers: exported call records, or the tallies the budget store keeps.

Both sources produce the same shape, a :class:`UsageSet`: :class:`Tally` rows (calls, tokens by type, cost)
keyed by :class:`UsageKey` (model, route, region, service tier and the attribution values kept).

- **Call records** (``CallRecord.as_dict()`` as JSON lines, or the same columns as CSV) describe every call:
  model, route, region and every attribution key, so they answer any grouping.
- **The store** keeps, per budget counter (budget x concrete scope values x window), per-model tallies of
  calls, cost and input/output/cache-read/cache-write tokens. It can group only by what some budget is
  counted by (``--by user`` needs a budget with ``scope: {user: "*"}``), it keeps only current windows
  (keys expire soon after their window ends), and it records neither route nor region.

The shared shape lives in :mod:`~bedrock_budget.reporting.tallies`, the two sources in
:mod:`~bedrock_budget.reporting.call_records` and :mod:`~bedrock_budget.reporting.store_usage`; this module
gathers their names in one place.
"""

from __future__ import annotations

from bedrock_budget.reporting.call_records import (
    CallRow,
    Progress,
    parse_record,
    read_records,
    records_format,
    usage_from_records,
)
from bedrock_budget.reporting.store_usage import (
    BudgetCounters,
    choose_counters,
    current_counters,
    usage_from_store,
)
from bedrock_budget.reporting.tallies import (
    MODEL_GROUP,
    NONE_VALUE,
    ZERO,
    ReportError,
    Tally,
    UsageKey,
    UsageSet,
    sort_key,
    total_of,
)

__all__ = [
    "MODEL_GROUP",
    "NONE_VALUE",
    "ZERO",
    "BudgetCounters",
    "CallRow",
    "Progress",
    "ReportError",
    "Tally",
    "UsageKey",
    "UsageSet",
    "choose_counters",
    "current_counters",
    "parse_record",
    "read_records",
    "records_format",
    "sort_key",
    "total_of",
    "usage_from_records",
    "usage_from_store",
]
