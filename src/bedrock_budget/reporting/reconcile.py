"""Reconciliation: our call records joined with Bedrock's model-invocation logs by request id.

Every call lands in one class: on both sides with equal token counts (``matched``), on both sides with
different counts (``mismatched``, per token type), logged by Bedrock but never recorded by us
(``unrecorded``: a client that was not wrapped), or recorded by us but not logged by Bedrock
(``unlogged``). Each class carries its dollar effect, priced exactly with the price table.

The records are indexed in memory by request id (the smaller side, as a rule); the logs stream past
once. Only calls that can appear in both are compared: records without a request id never reached
Bedrock, and records of operations Bedrock does not log (ApplyGuardrail, ...) are counted apart. A call
missing on one side counts as a discrepancy only when the side that has it shows usage.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Final, cast

from bedrock_budget.errors import BedrockBudgetError
from bedrock_budget.pricing.table import PriceTable
from bedrock_budget.reporting.call_records import CallRow
from bedrock_budget.reporting.invocation_logs import LOGGED_OPERATIONS, InvocationLogRecord, LogReadStats
from bedrock_budget.reporting.reconcile_results import (
    CLASSES,
    TOKEN_TYPES,
    ClassTotal,
    Discrepancy,
    Kind,
    ReconcileResult,
)
from bedrock_budget.reporting.repricing import reprice
from bedrock_budget.usage import Usage

__all__ = ["DEFAULT_DETAILS", "reconcile"]

#: How many discrepancies (largest dollar effect first) a result lists.
DEFAULT_DETAILS: Final = 20
_FREE_MODES: Final = frozenset({"provisioned", "custom_model_import"})
_ORDER: Final = {kind: index for index, (kind, _) in enumerate(CLASSES)}
_NO_IDENTITY: Final = "(no identity in the log)"

Counts = tuple[int, int, int, int]


def _recorded(row: CallRow) -> Counts:
    return (row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_write_tokens)


def _logged(log: InvocationLogRecord) -> Counts:
    return (log.input_tokens, log.output_tokens, log.cache_read_tokens, log.cache_write_tokens)


class _Pricer:
    """Prices token counts as our pipeline would: the record's model, region, route, tier and day."""

    def __init__(self, prices: PriceTable) -> None:
        self._prices = prices

    def _usage(self, counts: Counts, cache_write_1h: int) -> Usage:
        return Usage(
            input_tokens=counts[0],
            output_tokens=counts[1],
            cache_read_tokens=counts[2],
            cache_write_tokens=counts[3],
            cache_write_1h_tokens=min(cache_write_1h, counts[3]),
        )

    def row(self, row: CallRow, counts: Counts) -> Decimal | None:
        """``counts`` priced for ``row``'s call; one-hour cache writes keep the row's share (the logs do
        not split writes by TTL)."""
        if row.pricing_mode in _FREE_MODES:
            return Decimal(0)
        try:
            usage = self._usage(counts, row.cache_write_1h_tokens)
            return reprice(row, self._prices, usage, guardrails=False).total_usd
        except (BedrockBudgetError, ValueError):
            return None

    def log(self, log: InvocationLogRecord) -> Decimal | None:
        """A logged call we never saw, priced from the log alone (its model id as sent, its region)."""
        try:
            return self._prices.price(
                log.model_id,
                self._usage(_logged(log), 0),
                region=log.region,
                at=log.timestamp.date() if log.timestamp is not None else None,
            ).total_usd
        except (BedrockBudgetError, ValueError):
            return None


class _Details:
    """The ``limit`` discrepancies with the largest dollar effect, kept without holding them all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: list[Discrepancy] = []

    @staticmethod
    def _key(item: Discrepancy) -> tuple[Decimal, int, str]:
        return (-abs(item.usd or Decimal(0)), _ORDER[item.kind], item.request_id)

    def add(self, item: Discrepancy) -> None:
        if self.limit <= 0:
            return
        self.items.append(item)
        if len(self.items) >= 4 * self.limit:
            self.trim()

    def trim(self) -> list[Discrepancy]:
        self.items = sorted(self.items, key=self._key)[: self.limit]
        return self.items


def _index(rows: Iterable[CallRow], result: ReconcileResult) -> dict[str, CallRow]:
    index: dict[str, CallRow] = {}
    for row in rows:
        result.records_read += 1
        if row.request_id is None:
            result.records_without_request_id += 1
            continue
        if row.operation is not None and row.operation not in LOGGED_OPERATIONS:
            result.records_not_logged_operation += 1
            continue
        if row.request_id in index:
            result.duplicate_records += 1
            continue
        index[row.request_id] = row
        result.records_span.add(row.timestamp)
    return index


def reconcile(
    rows: Iterable[CallRow],
    logs: Iterable[InvocationLogRecord],
    prices: PriceTable,
    *,
    tolerance_tokens: int = 0,
    details: int = DEFAULT_DETAILS,
    log_stats: LogReadStats | None = None,
) -> ReconcileResult:
    """Join ``rows`` (our exported call records) with ``logs`` (Bedrock's) by request id and classify
    every call. Counts on both sides that differ by at most ``tolerance_tokens`` in every token type
    count as equal. ``log_stats`` (filled while ``logs`` is read) is carried into the result."""
    if tolerance_tokens < 0:
        raise ValueError("tolerance_tokens must be >= 0")
    result = ReconcileResult(tolerance_tokens=tolerance_tokens)
    if log_stats is not None:
        result.logs = log_stats
    pricer = _Pricer(prices)
    kept = _Details(details)
    index = _index(rows, result)
    seen: set[str] = set()
    for log in logs:
        if log.request_id in seen:
            result.duplicate_logs += 1
            continue
        seen.add(log.request_id)
        result.logs_span.add(log.timestamp)
        row = index.pop(log.request_id, None)
        if row is not None:
            _compare(row, log, result, pricer, kept)
        elif log.billed:
            usd = pricer.log(log)
            result.unrecorded.add(usd)
            identity = log.identity_arn or _NO_IDENTITY
            result.unrecorded_by_identity.setdefault(identity, ClassTotal()).add(usd)
            kept.add(_discrepancy("unrecorded", log.request_id, log.model_id, log.timestamp, usd, None, log))
        else:
            result.logs_unbilled_unrecorded += 1
    for request_id, row in index.items():
        if row.billed:
            result.unlogged.add(row.cost_usd)
            kept.add(_discrepancy("unlogged", request_id, row.model, row.timestamp, row.cost_usd, row, None))
        else:
            result.records_unbilled_unlogged += 1
    result.discrepancies = kept.trim()
    return result


def _discrepancy(
    kind: Kind,
    request_id: str,
    model: str,
    moment: datetime | None,
    usd: Decimal | None,
    row: CallRow | None,
    log: InvocationLogRecord | None,
) -> Discrepancy:
    return Discrepancy(
        kind=kind,
        request_id=request_id,
        model=model,
        timestamp=moment,
        usd=usd,
        recorded=_recorded(row) if row is not None else None,
        logged=_logged(log) if log is not None else None,
        identity_arn=log.identity_arn if log is not None else None,
    )


def _compare(
    row: CallRow, log: InvocationLogRecord, result: ReconcileResult, pricer: _Pricer, kept: _Details
) -> None:
    ours = _recorded(row)
    theirs = _logged(log)
    if ours == theirs:
        result.matched.add(row.cost_usd)
        return
    tolerance = result.tolerance_tokens
    differing = [i for i in range(len(TOKEN_TYPES)) if abs(theirs[i] - ours[i]) > tolerance]
    if not differing:
        result.matched.add(row.cost_usd)
        result.within_tolerance += 1
        return
    base = pricer.row(row, ours)
    logged = pricer.row(row, theirs)
    usd = None if base is None or logged is None else logged - base
    result.mismatched.add(usd)
    for i in differing:
        delta = result.by_token_type[TOKEN_TYPES[i]]
        delta.calls += 1
        delta.recorded += ours[i]
        delta.logged += theirs[i]
        if base is not None:
            alone = pricer.row(row, cast(Counts, tuple(theirs[j] if j == i else ours[j] for j in range(4))))
            if alone is not None:
                delta.usd += alone - base
    kept.add(_discrepancy("mismatched", log.request_id, row.model, row.timestamp, usd, row, log))
