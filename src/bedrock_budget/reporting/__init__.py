"""Reports, savings advice and budget operations over recorded usage (the store or exported call records).

Pure functions over typed data with Decimal money; the ``bedrock-budget budgets|report|advise`` commands are
thin wrappers around them.
"""

from __future__ import annotations

from bedrock_budget.reporting.advise import Advice, AdviseOptions, Saving, advise
from bedrock_budget.reporting.call_records import CallRow, read_records, usage_from_records
from bedrock_budget.reporting.report import Report, ReportRow, build_report, check_group_key
from bedrock_budget.reporting.store_usage import BudgetCounters, current_counters, usage_from_store
from bedrock_budget.reporting.tallies import ReportError, Tally, UsageKey, UsageSet

__all__ = [
    "Advice",
    "AdviseOptions",
    "BudgetCounters",
    "CallRow",
    "Report",
    "ReportError",
    "ReportRow",
    "Saving",
    "Tally",
    "UsageKey",
    "UsageSet",
    "advise",
    "build_report",
    "check_group_key",
    "current_counters",
    "read_records",
    "usage_from_records",
    "usage_from_store",
]
