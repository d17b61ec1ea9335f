"""What each savings lever would have saved on recorded usage, in dollars, with the arithmetic shown.

Every estimate prices the recorded token counts twice with the price table, as they were billed and as
they would be billed with the lever, so both sides use the same rates and the difference is the lever
alone. Amounts are for the observed period; monthly figures scale it to 730 hours.

- **global-routing**: traffic on a model whose price file has a ``routes.global`` rate, sent through an
  in-region or geographic route, priced at the global rate instead.
- **prompt-caching**: a share of the uncached input tokens (``cache_share``, an assumption) is a prefix
  re-sent within the cache lifetime. With caching, one send in ``1 + k`` writes it and ``k`` read it, where
  ``k`` (reads per write) comes from the recorded cache history. Saving = share x uncached input x (input
  rate - blended write/read rate).
- **batch**: apps named as non-interactive priced at the model's batch rate (batch uses no prompt cache, so
  cached tokens are billed as input), or at 50% of on-demand when no batch rate is listed.
- **cascade**: ``cascade_share`` of an app's calls moved to the cheapest active model of the same family
  (cheapest for that traffic's token mix).
- **provisioned**: observed on-demand spend per month against one model unit of Provisioned Throughput at
  the cheapest commitment the price table lists, with the break-even volume as in
  :mod:`bedrock_budget.pricing.planning`.
"""

from __future__ import annotations

import datetime as dt

from bedrock_budget.pricing.table import PriceTable
from bedrock_budget.reporting.advisor import (
    APP_KEY,
    DEFAULT_CACHE_SHARE,
    DEFAULT_CASCADE_SHARE,
    LEVERS,
    Advice,
    AdviseOptions,
    Advisor,
    Saving,
)
from bedrock_budget.reporting.amounts import format_hours, token_femto
from bedrock_budget.reporting.levers import (
    BATCH_FALLBACK,
    DEFAULT_READS_PER_WRITE,
    batch,
    cascade,
    global_routing,
    prompt_caching,
    provisioned,
)
from bedrock_budget.reporting.tallies import UsageSet

__all__ = [
    "APP_KEY",
    "BATCH_FALLBACK",
    "DEFAULT_CACHE_SHARE",
    "DEFAULT_CASCADE_SHARE",
    "DEFAULT_READS_PER_WRITE",
    "LEVERS",
    "Advice",
    "AdviseOptions",
    "Saving",
    "advise",
    "format_hours",
    "token_femto",
]


_NO_APPS = {
    "records": "no call record carries an app attribution",
    "store": 'no budget in the store is counted per app (add one with scope {app: "*"}, or use --records)',
    "ledger": (
        'the spend ledger does not track app and model together (wrap(..., track=["user", "app", "model", '
        '("app", "model")])) and no budget in the store is counted per app'
    ),
}


def advise(
    table: PriceTable,
    usage: UsageSet,
    options: AdviseOptions | None = None,
    *,
    by_app: UsageSet | None = None,
) -> Advice:
    """Estimate every lever on ``usage`` (all recorded traffic). ``by_app`` is the same traffic split per
    app when ``usage`` itself is not (a store whose all-calls budget is not counted per app, a spend
    ledger that does not track the app and model pair for the whole period); batch and cascade need it."""
    options = options or AdviseOptions()
    hours = options.period_hours if options.period_hours is not None else usage.period_hours
    at = options.at or dt.datetime.now(dt.UTC).date()
    app_source = usage if APP_KEY in usage.keys or by_app is None else by_app
    app_hours = options.period_hours if options.period_hours is not None else app_source.period_hours
    advisor = Advisor(table, options, hours, at, app_hours)
    rows = advisor.rows(usage)
    app_rows = rows if app_source is usage else advisor.rows(app_source)
    apps_known = APP_KEY in app_source.keys
    why = _NO_APPS.get(usage.kind, _NO_APPS["store"])
    if usage.kind == "ledger":
        for note in usage.notes:
            advisor.assume(note)
    if apps_known and app_source is not usage:
        period = "" if app_hours is None else f", whose window has {format_hours(app_hours)} hours"
        names = ", ".join(app_source.budgets or (str(app_source.budget),))
        plural = "budgets" if len(app_source.budgets) > 1 else "budget"
        what = "the spend ledger's (app, model) pair" if app_source.kind == "ledger" else f"{plural} {names}"
        advisor.assume(f"per-app levers (batch, cascade) use the tallies of {what}{period}")
        for note in app_source.notes:
            advisor.assume(f"per-app levers: {note}")

    def missing(app: str) -> str:
        if apps_known and app_source.kind == "store" and not app_source.whole:
            tracked = ", ".join(sorted({r.app for r in app_rows if r.app}))
            return (
                f"no budget in the store scopes app {app!r}, so its spend is not tracked per app (tracked: "
                f'{tracked}; a budget with scope {{app: "*"}} would track every app)'
            )
        return f"no recorded usage for app {app!r}"

    global_routing(advisor, rows)
    prompt_caching(advisor, rows)
    batch(advisor, app_rows, apps_known, why, missing)
    cascade(advisor, app_rows if apps_known else rows, apps_known, why, missing)
    provisioned(advisor, rows)
    advisor.assume(
        f"prices in force on {at.isoformat()}; tokens priced at standard-context rates, so both sides of "
        "every comparison use the same rates"
    )
    if hours is not None:
        advisor.assume(f"monthly figures scale the observed {format_hours(hours)} hours to 730 hours")
    advisor.assume("levers overlap (batch and cascade may move the same calls): savings are not additive")
    order = {lever: index for index, lever in enumerate(LEVERS)}
    savings = sorted(
        advisor.savings, key=lambda s: (not s.recommended, -s.saving_usd, order[s.lever], s.target)
    )
    return Advice(
        source=usage.source,
        period_hours=hours,
        recorded=usage.total(),
        savings=tuple(savings),
        not_evaluated=tuple(advisor.skipped),
        assumptions=tuple(advisor.assumptions),
    )
