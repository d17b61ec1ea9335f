"""Spend grouped by one attribution key (or by model), from either source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from bedrock_budget.attribution import validate_key
from bedrock_budget.errors import AttributionError
from bedrock_budget.pricing.money import format_usd
from bedrock_budget.reporting.tallies import MODEL_GROUP, NONE_VALUE, ZERO, ReportError, Tally, UsageSet

HEADERS: Final = (
    "group",
    "calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "share_percent",
)
_PERCENT: Final = Decimal("0.01")


def check_group_key(by: str) -> str:
    """``model`` or an attribution key (lowercase identifier, as attribution keys are validated)."""
    if by == MODEL_GROUP:
        return by
    try:
        return validate_key(by)
    except AttributionError:
        raise ReportError(
            f"--by {by!r} is neither 'model' nor an attribution key (lowercase letters, digits and _, "
            "starting with a letter, e.g. user, app, team)"
        ) from None


def percent(part: Decimal, whole: Decimal) -> Decimal | None:
    if not whole:
        return None
    return (part * 100 / whole).quantize(_PERCENT, ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class ReportRow:
    group: str
    tally: Tally
    share_percent: Decimal | None

    def cells(self) -> list[str]:
        t = self.tally
        return [
            self.group,
            str(t.calls),
            str(t.input_tokens),
            str(t.output_tokens),
            str(t.cache_read_tokens),
            str(t.cache_write_tokens),
            format_usd(t.cost_usd),
            "" if self.share_percent is None else str(self.share_percent),
        ]


@dataclass(frozen=True, slots=True)
class Report:
    by: str
    source: str
    period_start: datetime | None
    period_end: datetime | None
    rows: tuple[ReportRow, ...]
    total: Tally
    notes: tuple[str, ...]
    #: False when the rows are only part of the period's spend (then no shares are given).
    whole: bool = True

    def as_dict(self) -> dict[str, object]:
        return {
            "by": self.by,
            "source": self.source,
            "period_start": self.period_start.isoformat() if self.period_start else None,
            "period_end": self.period_end.isoformat() if self.period_end else None,
            "groups": [
                {
                    self.by: row.group,
                    **row.tally.as_dict(),
                    "share_percent": None if row.share_percent is None else str(row.share_percent),
                }
                for row in self.rows
            ],
            "total": self.total.as_dict(),
            "partial": not self.whole,
            "notes": list(self.notes),
        }

    def csv_rows(self) -> list[list[str]]:
        header = [self.by if h == "group" else h for h in HEADERS]
        total = ReportRow("total", self.total, Decimal(100) if self.total.cost_usd and self.whole else None)
        return [header, *(row.cells() for row in self.rows), total.cells()]


def build_report(usage: UsageSet, by: str) -> Report:
    """Group ``usage`` by ``by``. Records that never carry the key are an error (a typo such as ``--by
    tem`` would otherwise report everything under ``(none)``)."""
    check_group_key(by)
    if by != MODEL_GROUP and usage.kind == "records" and usage.rows and by not in usage.keys:
        seen = ", ".join(usage.keys) or "none"
        raise ReportError(f"no call record carries the attribution key {by!r} (keys seen: {seen})")
    groups = usage.grouped(by)
    total = usage.total()
    # Shares of a partial set would read as shares of all spend: the store's notes say what is missing.
    whole = total.cost_usd if usage.whole else ZERO
    rows = sorted(
        (ReportRow(group, tally, percent(tally.cost_usd, whole)) for group, tally in groups.items()),
        key=lambda r: (-r.tally.cost_usd, r.group == NONE_VALUE, r.group),
    )
    notes = list(usage.notes)
    if total.unpriced_calls:
        notes.append(f"{total.unpriced_calls:,} calls could not be priced; their cost is not included")
    return Report(
        by=by,
        source=usage.source,
        period_start=usage.period_start,
        period_end=usage.period_end,
        rows=tuple(rows),
        total=total,
        notes=tuple(notes),
        whole=usage.whole,
    )
