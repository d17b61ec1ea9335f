"""FOCUS 1.2 cost and usage rows from exported call records.

One row per charge period (the UTC hour a call settled in) x resource (model id and Region, with its route,
service tier and latency mode) x pricing dimension (input tokens, output tokens, cache reads, ...) x
attribution (the ``Tags``). Calls whose counts were estimated, and calls priced differently (see
:mod:`.focus_pricing`), are kept in rows of their own, so a row is never a blend of exact and guessed usage.
Money is summed in integer femto-dollars: the BilledCost total equals the records' total exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from bedrock_budget.pricing import PriceTable
from bedrock_budget.pricing.money import femto_to_usd
from bedrock_budget.reporting.call_records import CallRow
from bedrock_budget.reporting.focus_pricing import PriceStatus, call_charges, femto_of

__all__ = ["ChargeKey", "ChargeTotal", "FocusExport", "FocusSettings", "focus_export"]

DEFAULT_ACCOUNT: Final = "unspecified"


@dataclass(frozen=True, slots=True)
class FocusSettings:
    """What the records do not say: the billing account, and the discount the calls were priced with."""

    account_id: str = DEFAULT_ACCOUNT
    account_name: str = DEFAULT_ACCOUNT
    #: The negotiated discount (percent) the recorded costs already include; list prices are without it.
    discount_percent: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class ChargeKey:
    """What one output row is about."""

    hour: dt.datetime
    model: str
    region: str
    route: str
    service_tier: str
    pricing_mode: str
    latency_mode: str
    dimension: str
    list_rate: int
    contracted_rate: int
    status: PriceStatus
    estimated: bool
    tags: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class ChargeTotal:
    calls: int = 0
    quantity: int = 0
    list_femto: int = 0
    contracted_femto: int = 0


@dataclass(slots=True)
class FocusExport:
    """The rows, in a stable order, with the totals a test or a reader can hold them to."""

    rows: list[tuple[ChargeKey, ChargeTotal]] = field(default_factory=list)
    calls: int = 0
    skipped: int = 0
    recorded_femto: int = 0
    counts: dict[PriceStatus, int] = field(default_factory=dict)
    estimated_calls: int = 0

    @property
    def billed_usd(self) -> Decimal:
        return femto_to_usd(sum(total.contracted_femto for _, total in self.rows))

    @property
    def recorded_usd(self) -> Decimal:
        return femto_to_usd(self.recorded_femto)

    def notes(self) -> list[str]:
        notes: list[str] = []
        if self.skipped:
            notes.append(f"{self.skipped:,} blocked or failed calls without usage are not exported")
        if self.counts.get("recorded"):
            notes.append(
                f"{self.counts['recorded']:,} calls cost what the price table does not give (other prices or "
                "discount when recorded?): each is one request at its recorded cost (x_PriceStatus recorded)"
            )
        if self.counts.get("unpriced"):
            notes.append(
                f"{self.counts['unpriced']:,} calls have no recorded price: exported at 0 (unpriced)"
            )
        if self.estimated_calls:
            notes.append(f"{self.estimated_calls:,} calls have estimated counts (x_UsageEstimated true)")
        return notes


def charge_hour(moment: dt.datetime) -> dt.datetime:
    """The UTC hour holding ``moment``: the charge period of a call that settled then."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def focus_export(
    records: Iterable[CallRow], list_prices: PriceTable, contracted_prices: PriceTable
) -> FocusExport:
    """Aggregate call records into FOCUS charge rows (see the module docstring)."""
    export = FocusExport()
    totals: dict[ChargeKey, ChargeTotal] = {}
    for number, row in enumerate(records, start=1):
        if not row.billed:
            export.skipped += 1
            continue
        where = f"record {number}"
        export.calls += 1
        if row.cost_usd is not None:
            export.recorded_femto += femto_of(row.cost_usd, where)
        estimated = row.estimated or row.partial
        export.estimated_calls += estimated
        status, charges = call_charges(row, list_prices, contracted_prices, where)
        export.counts[status] = export.counts.get(status, 0) + 1
        hour = charge_hour(row.timestamp)
        tags = tuple(sorted(row.attribution.items()))
        for charge in charges:
            key = ChargeKey(
                hour=hour,
                model=row.model,
                region=row.region,
                route=row.route,
                service_tier=row.service_tier,
                pricing_mode=row.pricing_mode,
                latency_mode=row.latency_mode,
                dimension=charge.dimension,
                list_rate=charge.list_rate,
                contracted_rate=charge.contracted_rate,
                status=status,
                estimated=estimated,
                tags=tags,
            )
            total = totals.get(key)
            if total is None:
                total = totals[key] = ChargeTotal()
            total.calls += 1
            total.quantity += charge.quantity
            total.list_femto += charge.list_femto
            total.contracted_femto += charge.contracted_femto
    export.rows = sorted(totals.items(), key=lambda item: _order(item[0]))
    return export


def _order(key: ChargeKey) -> tuple[object, ...]:
    return (
        key.hour,
        key.model,
        key.region,
        key.route,
        key.service_tier,
        key.latency_mode,
        key.pricing_mode,
        key.tags,
        key.dimension,
        key.status,
        key.estimated,
        key.list_rate,
        key.contracted_rate,
    )
