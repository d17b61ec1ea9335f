"""What reconciling our call records with Bedrock's invocation logs found: the classes of calls, their
dollar effect (exact ``Decimal``), the token types that differ and the largest discrepancies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

from bedrock_budget.pricing.money import format_usd
from bedrock_budget.reporting.invocation_logs import LogReadStats

__all__ = [
    "CLASSES",
    "TOKEN_TYPES",
    "ClassTotal",
    "Discrepancy",
    "Kind",
    "ReconcileResult",
    "Span",
    "TokenTypeDelta",
]

Kind = Literal["matched", "mismatched", "unrecorded", "unlogged"]
#: Each class of call, in report order, with what it means.
CLASSES: Final[tuple[tuple[Kind, str], ...]] = (
    ("matched", "matched, equal counts"),
    ("mismatched", "token counts differ"),
    ("unrecorded", "logged by Bedrock, not recorded"),
    ("unlogged", "recorded, not logged by Bedrock"),
)
#: The token types both sides count.
TOKEN_TYPES: Final = ("input", "output", "cache_read", "cache_write")


def _usd(amount: Decimal) -> str:
    return format_usd(amount)


@dataclass(slots=True)
class ClassTotal:
    """Calls of one class and their dollar effect; ``unpriced`` calls have none (unknown model)."""

    calls: int = 0
    usd: Decimal = Decimal(0)
    unpriced: int = 0

    def add(self, usd: Decimal | None) -> None:
        self.calls += 1
        if usd is None:
            self.unpriced += 1
        else:
            self.usd += usd

    def as_dict(self) -> dict[str, object]:
        return {"calls": self.calls, "usd": _usd(self.usd), "unpriced_calls": self.unpriced}


@dataclass(slots=True)
class TokenTypeDelta:
    """One token type over the calls whose counts differ: calls, both sides' tokens and the dollar effect
    of that type alone (Bedrock's count priced in place of ours)."""

    calls: int = 0
    recorded: int = 0
    logged: int = 0
    usd: Decimal = Decimal(0)

    @property
    def difference(self) -> int:
        return self.logged - self.recorded

    def as_dict(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "recorded_tokens": self.recorded,
            "logged_tokens": self.logged,
            "difference": self.difference,
            "usd": _usd(self.usd),
        }


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One call on one side only, or with different counts; ``usd`` is its dollar effect (``None``:
    unpriced). Token counts are (input, output, cache read, cache write); ``None`` for a side without it."""

    kind: Kind
    request_id: str
    model: str
    timestamp: datetime | None
    usd: Decimal | None
    recorded: tuple[int, int, int, int] | None
    logged: tuple[int, int, int, int] | None
    identity_arn: str | None = None

    def as_dict(self) -> dict[str, object]:
        def counts(values: tuple[int, int, int, int] | None) -> dict[str, int] | None:
            return None if values is None else dict(zip(TOKEN_TYPES, values, strict=True))

        return {
            "class": self.kind,
            "request_id": self.request_id,
            "model": self.model,
            "timestamp": None if self.timestamp is None else self.timestamp.isoformat(),
            "usd": None if self.usd is None else _usd(self.usd),
            "recorded_tokens": counts(self.recorded),
            "logged_tokens": counts(self.logged),
            "identity_arn": self.identity_arn,
        }


@dataclass(slots=True)
class Span:
    """First and last call time seen on one side."""

    first: datetime | None = None
    last: datetime | None = None

    def add(self, moment: datetime | None) -> None:
        if moment is None:
            return
        if self.first is None or moment < self.first:
            self.first = moment
        if self.last is None or moment > self.last:
            self.last = moment

    def as_dict(self) -> dict[str, object]:
        return {
            "first": None if self.first is None else self.first.isoformat(),
            "last": None if self.last is None else self.last.isoformat(),
        }


@dataclass(slots=True)
class ReconcileResult:
    """Our call records joined with Bedrock's invocation logs by request id.

    Dollar effects: ``matched`` and ``unlogged`` carry the cost we recorded; ``unrecorded`` carries Bedrock's
    counts priced with our price table; ``mismatched`` carries Bedrock's counts priced minus ours priced
    (positive: Bedrock counted more than we recorded).
    """

    tolerance_tokens: int = 0
    matched: ClassTotal = field(default_factory=ClassTotal)
    mismatched: ClassTotal = field(default_factory=ClassTotal)
    unrecorded: ClassTotal = field(default_factory=ClassTotal)
    unlogged: ClassTotal = field(default_factory=ClassTotal)
    within_tolerance: int = 0
    by_token_type: dict[str, TokenTypeDelta] = field(
        default_factory=lambda: {name: TokenTypeDelta() for name in TOKEN_TYPES}
    )
    unrecorded_by_identity: dict[str, ClassTotal] = field(default_factory=dict)
    discrepancies: list[Discrepancy] = field(default_factory=list)
    records_read: int = 0
    records_without_request_id: int = 0
    records_not_logged_operation: int = 0
    records_unbilled_unlogged: int = 0
    duplicate_records: int = 0
    logs_unbilled_unrecorded: int = 0
    duplicate_logs: int = 0
    records_span: Span = field(default_factory=Span)
    logs_span: Span = field(default_factory=Span)
    logs: LogReadStats = field(default_factory=LogReadStats)

    def total(self, kind: Kind) -> ClassTotal:
        total: ClassTotal = getattr(self, kind)
        return total

    @property
    def agree(self) -> bool:
        return not (self.mismatched.calls or self.unrecorded.calls or self.unlogged.calls)

    def notes(self) -> list[str]:
        """What was read but not compared, and why."""
        notes: list[str] = []
        counted = (
            (self.records_without_request_id, "records without a request id (blocked before sending)"),
            (self.records_not_logged_operation, "records of operations Bedrock does not log"),
            (self.records_unbilled_unlogged, "records of calls that consumed nothing, not logged"),
            (self.logs_unbilled_unrecorded, "log records with no token counts, not recorded"),
            (self.duplicate_records, "repeated request ids in the records (first kept)"),
            (self.duplicate_logs, "repeated request ids in the logs (first kept)"),
            (self.within_tolerance, f"matched calls within {self.tolerance_tokens:,} tokens per type"),
            (self.logs.skipped, "JSON values in the logs that are not invocation records"),
        )
        notes.extend(f"{count:,} {what}" for count, what in counted if count)
        unpriced = sum(self.total(kind).unpriced for kind, _ in CLASSES)
        if unpriced:
            notes.append(f"{unpriced:,} calls have no price (unknown model): their dollar effect is left out")
        return notes

    def as_dict(self) -> dict[str, object]:
        return {
            "agree": self.agree,
            "tolerance_tokens": self.tolerance_tokens,
            "classes": {kind: self.total(kind).as_dict() for kind, _ in CLASSES},
            "within_tolerance": self.within_tolerance,
            "token_types": {name: delta.as_dict() for name, delta in self.by_token_type.items()},
            "unrecorded_by_identity": {
                arn: total.as_dict() for arn, total in sorted(self.unrecorded_by_identity.items())
            },
            "discrepancies": [item.as_dict() for item in self.discrepancies],
            "records": {
                "read": self.records_read,
                "without_request_id": self.records_without_request_id,
                "operation_not_logged": self.records_not_logged_operation,
                "unbilled_not_logged": self.records_unbilled_unlogged,
                "duplicates": self.duplicate_records,
                "span": self.records_span.as_dict(),
            },
            "logs": {
                **self.logs.as_dict(),
                "unbilled_not_recorded": self.logs_unbilled_unrecorded,
                "duplicates": self.duplicate_logs,
                "span": self.logs_span.as_dict(),
            },
            "notes": self.notes(),
        }
