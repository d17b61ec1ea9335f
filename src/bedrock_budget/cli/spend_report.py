"""``report`` from the spend ledger: spend per value of a tracked key (or key pair) over UTC buckets.

Used when ``report`` is given ``--since``, ``--until``, ``--granularity`` or ``--top``, or when the store
holds no budget counter for the grouping (a store with no budgets at all). Output never depends on when it
is run, only on what the store holds for the range, so the same command run twice prints the same.
"""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from typing import Any

import click

from bedrock_budget.cli.output import emit_json, money, table
from bedrock_budget.reporting.spend import SpendRow, spend
from bedrock_budget.stores.base import Store
from bedrock_budget.stores.tracking import TOKEN_FIELDS

_TOKEN_HEADERS = ("input", "output", "cache read", "cache write")


def parse_when(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 date or date-time (UTC unless it names an offset)."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO date or date-time (2026-12-01, 2026-12-01T13:00)", param_hint=option
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def by_keys(by: str) -> tuple[str, ...]:
    from bedrock_budget.attribution import validate_key
    from bedrock_budget.errors import AttributionError

    keys = tuple(k.strip() for k in by.split(","))
    try:
        return tuple(validate_key(k) for k in keys)
    except AttributionError:
        raise click.BadParameter(
            f"{by!r}: keys are lowercase identifiers, e.g. user or app,model", param_hint="--by"
        ) from None


def ledger_rows(
    store: Store,
    keys: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    granularity: str,
    top: int | None,
) -> list[SpendRow]:
    return spend(
        store,
        by=keys,
        since=since,
        until=until,
        granularity="hour" if granularity == "hour" else "day",
        top=top,
    )


def emit(
    rows: list[SpendRow], keys: tuple[str, ...], output_format: str, source: str, *, top: int | None = None
) -> None:
    """Print the rows; with ``top`` the total is of the rows shown, and says so."""
    total_nanos = sum(r.cost_nanos for r in rows)
    total_calls = sum(r.calls for r in rows)
    totals = {t: sum(r.tokens.get(t, 0) for r in rows) for t in TOKEN_FIELDS}
    if output_format == "json":
        emit_json(
            {
                "by": list(keys),
                "source": source,
                "rows": [_json_row(r) for r in rows],
                "top": top,
                "total": {"calls": total_calls, "tokens": totals, "cost_usd": _usd(total_nanos)},
            }
        )
        return
    if output_format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([*keys, "calls", *TOKEN_FIELDS, "cost_usd"])
        for r in rows:
            writer.writerow(
                [*r.values, r.calls, *(r.tokens.get(t, 0) for t in TOKEN_FIELDS), _usd(r.cost_nanos)]
            )
        return
    body: list[tuple[object, ...]] = [
        (
            ",".join(r.values),
            f"{r.calls:,}",
            *(f"{r.tokens.get(t, 0):,}" for t in TOKEN_FIELDS),
            money(r.cost_usd),
        )
        for r in rows
    ]
    label = "total" if top is None else f"top {top} total"
    body.append(
        (label, f"{total_calls:,}", *(f"{totals[t]:,}" for t in TOKEN_FIELDS), money(_dec(total_nanos)))
    )
    name = ",".join(keys)
    table(f"Spend by {name}", (name, "calls", *_TOKEN_HEADERS, "cost"), body)
    click.echo(f"source: {source}")


def _json_row(row: SpendRow) -> dict[str, Any]:
    return {
        "values": list(row.values),
        "calls": row.calls,
        "tokens": {t: row.tokens.get(t, 0) for t in TOKEN_FIELDS},
        "cost_usd": _usd(row.cost_nanos),
    }


def _dec(nanos: int) -> Any:
    from bedrock_budget.pricing.money import nanos_to_usd

    return nanos_to_usd(nanos)


def _usd(nanos: int) -> str:
    return str(_dec(nanos))
