"""A recorded call priced again from its record: one rule for every report that reprices (FOCUS list and
contracted costs, reconciliation against the invocation logs), so none of them forgets a dimension the
pipeline priced — the record's model, region, route, batch mode, service tier, latency mode and UTC day,
and its guardrail units."""

from __future__ import annotations

import datetime as dt
from typing import Final, cast

from bedrock_budget.model_ids import Route
from bedrock_budget.pricing.cost import Cost
from bedrock_budget.pricing.table import PriceTable, ServiceTier
from bedrock_budget.reporting.call_records import CallRow
from bedrock_budget.reporting.tallies import ReportError
from bedrock_budget.usage import Usage

__all__ = ["reprice", "row_usage"]

_ROUTES: Final = frozenset({"in_region", "geo", "global"})
_TIERS: Final = frozenset({"default", "priority", "flex", "reserved"})


def row_usage(row: CallRow) -> Usage:
    """The usage a record states (every billable dimension it carries)."""
    if row.cache_write_1h_tokens > row.cache_write_tokens:
        raise ReportError("cache_write_1h_tokens exceeds cache_write_tokens")
    return Usage(
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cache_read_tokens=row.cache_read_tokens,
        cache_write_tokens=row.cache_write_tokens,
        cache_write_1h_tokens=row.cache_write_1h_tokens,
        images=row.images,
        video_seconds=row.video_seconds,
        rerank_queries=row.rerank_queries,
    )


def reprice(row: CallRow, table: PriceTable, usage: Usage | None = None, *, guardrails: bool = True) -> Cost:
    """``row``'s call (or ``usage`` in its place) priced by ``table`` as the pipeline prices it; raises the
    price table's errors. ``guardrails=False`` leaves the record's guardrail units out (sources such as
    the invocation logs do not carry them)."""
    day = row.timestamp.astimezone(dt.UTC).date()
    cost = table.price(
        row.model,
        usage if usage is not None else row_usage(row),
        region=row.region,
        route=cast(Route, row.route) if row.route in _ROUTES else None,
        batch=row.pricing_mode == "batch",
        service_tier=cast(ServiceTier, row.service_tier if row.service_tier in _TIERS else "default"),
        latency="optimized" if row.latency_mode == "optimized" else "standard",
        at=day,
    )
    units = row.guardrail_text_units
    if guardrails and units:
        text = {k: v for k, v in units.items() if not k.endswith("_image")}
        images = {k: v for k, v in units.items() if k.endswith("_image")}
        cost = cost + table.price_guardrail(text, image_units=images, at=day)
    return cost
