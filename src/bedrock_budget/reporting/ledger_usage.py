"""Usage for ``advise --store`` from the spend ledger (``reporting.spend``): per model, and per app and
model when the ledger tracks that pair, over its daily UTC buckets. Budget counters only know what some
budget happens to count; the ledger has every tracked call, budgets or not.

The period runs from the first UTC day in the range with tracked spend to now, so the hours a monthly
figure is scaled from are hours the ledger was recording. The ledger keeps cache writes as one count, so
they are priced as 5-minute writes (said in the set's notes).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import MappingProxyType

from bedrock_budget.reporting.spend import SpendRow, spend
from bedrock_budget.reporting.tallies import SECONDS_PER_HOUR, Tally, UsageKey, UsageSet
from bedrock_budget.stores.base import Store
from bedrock_budget.stores.tracking import DAY

#: How far back ``advise --store`` reads the ledger unless told (``--since``).
DEFAULT_DAYS = 30
APP_MODEL = ("app", "model")
CACHE_NOTE = "the spend ledger keeps cache writes as one count: they are priced as 5-minute writes"


def ledger_usage(
    store: Store, *, now: float, since: dt.date | None = None
) -> tuple[UsageSet, UsageSet | None] | None:
    """``(usage, by_app)`` from the spend ledger, or ``None`` when it holds nothing for the range.
    ``usage`` is per model, and per app and model when the ledger tracks that pair for every call of the
    range; ``by_app`` is that pair's split when it covers only part of the range (else ``None``)."""
    today = int(now) - int(now) % DAY
    start = today - DEFAULT_DAYS * DAY if since is None else _epoch(since)
    until = int(now) + 1
    days = spend(store, by=(), since=start, until=until, per_bucket=True, now=now)
    if not days:
        return None
    first = min(int(row.bucket.timestamp()) for row in days if row.bucket is not None)
    hours = Decimal(int(now) - first) / SECONDS_PER_HOUR
    begun = dt.datetime.fromtimestamp(first, dt.UTC)
    ended = dt.datetime.fromtimestamp(now, dt.UTC)
    source = f"spend ledger in {store.name}, UTC days since {begun.date().isoformat()}"
    models = spend(store, by="model", since=first, until=until, now=now)
    pairs = spend(store, by=APP_MODEL, since=first, until=until, now=now)

    def usage_set(rows: dict[UsageKey, Tally], keys: tuple[str, ...], notes: tuple[str, ...]) -> UsageSet:
        return UsageSet(
            rows=MappingProxyType(rows),
            source=source,
            kind="ledger",
            keys=keys,
            period_start=begun,
            period_end=ended,
            period_hours=hours if hours > 0 else None,
            notes=notes,
        )

    by_model = {UsageKey(model=row.values[0]): _tally(row) for row in models}
    by_pair = {
        UsageKey(model=row.values[1], attribution=(("app", row.values[0]),)): _tally(row) for row in pairs
    }
    if by_pair and _same(by_pair, by_model):
        return usage_set(by_pair, ("app",), (CACHE_NOTE,)), None
    usage = usage_set(by_model, (), (CACHE_NOTE,))
    if not by_pair:
        return usage, None
    part = "the (app, model) pair is tracked for part of the period only; per-app figures cover that part"
    return usage, usage_set(by_pair, ("app",), (CACHE_NOTE, part))


def _tally(row: SpendRow) -> Tally:
    tokens = row.tokens
    return Tally(
        calls=row.calls,
        input_tokens=tokens.get("input", 0),
        output_tokens=tokens.get("output", 0),
        cache_read_tokens=tokens.get("cache_read", 0),
        cache_write_tokens=tokens.get("cache_write", 0),
        cost_usd=row.cost_usd,
    )


def _same(pairs: dict[UsageKey, Tally], models: dict[UsageKey, Tally]) -> bool:
    """Whether the pair's rows add up, per model, to the model rows (the pair was tracked all along)."""
    summed: dict[str, Tally] = {}
    for key, tally in pairs.items():
        summed.setdefault(key.model, Tally()).add(tally)
    return summed == {key.model: tally for key, tally in models.items()}


def _epoch(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
