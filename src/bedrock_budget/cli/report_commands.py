"""``report`` (spend grouped by user, app, model, ...) and ``advise`` (what each savings lever would save)."""

from __future__ import annotations

import csv
import datetime as dt
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from bedrock_budget.budgets.windows import WINDOW_KINDS, Window
from bedrock_budget.cli.budget_commands import budgets_option, open_store, store_options
from bedrock_budget.cli.focus_export import check_focus_flags, focus_options, write_focus
from bedrock_budget.cli.options import (
    DECIMAL,
    NonNegativeDecimal,
    checked_region,
    price_file_options,
    price_table,
)
from bedrock_budget.cli.output import emit_json, money, rounded_money, table
from bedrock_budget.reporting.tallies import UsageSet

F = TypeVar("F", bound=Callable[..., Any])

#: Exports at least this big show a progress bar (on a terminal).
PROGRESS_BYTES: Final = 4 << 20


class Share(NonNegativeDecimal):
    name = "share"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        share = super().convert(value, param, ctx)
        if not 0 < share <= 1:
            self.fail(f"{value!r} must be a share between 0 (exclusive) and 1, e.g. 0.8", param, ctx)
        return share


SHARE = Share()


def source_options(func: F) -> F:
    func = click.option(
        "--timezone",
        default="UTC",
        show_default=True,
        help="Time zone of --window when reading --records.",
    )(func)
    func = click.option(
        "--window",
        type=click.Choice(WINDOW_KINDS),
        default=None,
        help="Store: the budget window kind to read. Records: only the window holding the last call.",
    )(func)
    func = budgets_option(func)
    func = click.option(
        "--records",
        "records_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Exported call records (CallRecord.as_dict() as JSON lines, or CSV; .gz works) instead of the "
        "store.",
    )(func)
    return store_options(func)


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def _progress(path: Path) -> Iterator[Callable[[int], None] | None]:
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    # A bar in a log file or a pipe is only noise.
    if size < PROGRESS_BYTES or not _stderr_is_terminal():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("reading {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(path.name, total=size)
        yield lambda done: bar.update(task, completed=done)


def records_usage(path: Path, *, keep: set[str], window: str | None, timezone: str) -> UsageSet:
    from bedrock_budget.reporting.call_records import read_records, usage_from_records
    from bedrock_budget.reporting.tallies import ReportError

    try:
        frame = Window(window, timezone) if window is not None else None
    except ValueError as exc:
        raise ReportError(f"--timezone: {exc}") from None
    with _progress(path) as progress:
        return usage_from_records(
            read_records(path, progress=progress), source=f"records {path}", keep=keep, window=frame
        )


def _budget_list(budgets_file: Path | None) -> list[Any] | None:
    from bedrock_budget.budgets.loading import configured_budgets

    return configured_budgets(budgets_file, required=False) or None


def _notes(notes: tuple[str, ...] | list[str]) -> None:
    for note in notes:
        click.echo(f"note: {note}")


@click.command("report")
@source_options
@click.option(
    "--by",
    default="model",
    show_default=True,
    help="Group by 'model' or any attribution key: user, app, team, tenant, ...",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json", "focus"]),
    default="table",
    show_default=True,
    help="focus: a FOCUS 1.2 cost and usage CSV of --records, one row per hour, model, Region, "
    "pricing dimension and attribution (docs/focus.md).",
)
@click.option("--since", default=None, help="Spend ledger: from this UTC date or date-time (ISO 8601).")
@click.option("--until", default=None, help="Spend ledger: up to (not including) this date or date-time.")
@click.option("--granularity", type=click.Choice(["hour", "day"]), default=None, help="Spend ledger buckets.")
@click.option("--top", type=click.IntRange(min=1), default=None, help="Spend ledger: only the N highest.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@focus_options
def report(
    store_uri: str | None,
    prefix: str | None,
    records_file: Path | None,
    budgets_file: Path | None,
    window: str | None,
    timezone: str,
    by: str,
    output_format: str,
    as_json: bool,
    output_path: Path | None,
    account_id: str | None,
    account_name: str | None,
    price_files: tuple[Path, ...],
    discount_percent: Decimal | None,
    since: str | None = None,
    until: str | None = None,
    granularity: str | None = None,
    top: int | None = None,
) -> None:
    """Spend grouped by user, app, model or any attribution key: calls, tokens by type and cost.

    From the store, the numbers are the per-model tallies each budget keeps for its current window, so a
    grouping needs a budget counted by that key (--by user needs one with scope {user: "*"}); the command
    says which budget is missing. Exported call records answer any grouping. With --since, --until,
    --granularity or --top, a KEY,KEY pair, or a store that has no budget counter for the grouping, the
    numbers come from the spend ledger instead: every tracked key, budgets or not.

    \b
    Example:
      bedrock-budget report --store redis://localhost:6379/0 --by user --top 20 --since 2026-12-01
      bedrock-budget report --store redis://localhost:6379/0 --by app --window day
      bedrock-budget report --records calls.jsonl --by team --format csv > spend.csv
      bedrock-budget report --records calls.jsonl --format focus --account-id 123456789012 --output focus.csv
    """
    from bedrock_budget.reporting.report import build_report, check_group_key
    from bedrock_budget.reporting.store_usage import usage_from_store
    from bedrock_budget.reporting.tallies import ReportError

    focus_flags = {
        "--output": output_path,
        "--account-id": account_id,
        "--account-name": account_name,
        "--prices": price_files,
        "--discount-percent": discount_percent,
    }
    check_focus_flags("json" if as_json else output_format, focus_flags)
    if output_format == "focus" and not as_json:
        write_focus(
            records_file,
            output_path=output_path,
            account_id=account_id,
            account_name=account_name,
            price_files=price_files,
            discount_percent=discount_percent,
        )
        return
    wanted = "json" if as_json else output_format
    ledger = any(v is not None for v in (since, until, granularity, top)) or "," in by
    if records_file is None and window is None and ledger:
        _ledger_report(store_uri, prefix, by, since, until, granularity or "day", top, wanted)
        return
    check_group_key(by)
    if records_file is not None:
        usage = records_usage(records_file, keep={by}, window=window, timezone=timezone)
    else:
        budgets = _budget_list(budgets_file)
        try:
            with open_store(store_uri, prefix) as store:
                usage = usage_from_store(store, by=by, now=time.time(), budgets=budgets, window=window)
        except ReportError:
            # No budget counts this grouping: the spend ledger does, when calls were tracked.
            if window is not None or not _ledger_report(
                store_uri, prefix, by, None, None, "day", None, wanted, required=False
            ):
                raise
            return
    result = build_report(usage, by)
    if as_json or output_format == "json":
        emit_json(result.as_dict())
        return
    if output_format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerows(result.csv_rows())
        return
    rows: list[tuple[object, ...]] = [
        (
            row.group,
            f"{row.tally.calls:,}",
            f"{row.tally.input_tokens:,}",
            f"{row.tally.output_tokens:,}",
            f"{row.tally.cache_read_tokens:,}",
            f"{row.tally.cache_write_tokens:,}",
            money(row.tally.cost_usd),
            "" if row.share_percent is None else f"{row.share_percent}%",
        )
        for row in result.rows
    ]
    total = result.total
    rows.append(
        (
            "total",
            f"{total.calls:,}",
            f"{total.input_tokens:,}",
            f"{total.output_tokens:,}",
            f"{total.cache_read_tokens:,}",
            f"{total.cache_write_tokens:,}",
            money(total.cost_usd),
            "",
        )
    )
    table(
        f"Spend by {by}",
        (by, "calls", "input", "output", "cache read", "cache write", "cost", "share"),
        rows,
    )
    click.echo(f"source: {result.source}")
    _notes(result.notes)


def _ledger_report(
    store_uri: str | None,
    prefix: str | None,
    by: str,
    since: str | None,
    until: str | None,
    granularity: str,
    top: int | None,
    output_format: str,
    *,
    required: bool = True,
) -> bool:
    """Print the spend ledger's report; False (nothing printed) when it holds nothing and is optional."""
    from bedrock_budget.cli import spend_report

    keys = spend_report.by_keys(by)
    start = spend_report.parse_when(since, "--since")
    end = spend_report.parse_when(until, "--until")
    with open_store(store_uri, prefix) as store:
        try:
            rows = spend_report.ledger_rows(store, keys, start, end, granularity, top)
        except NotImplementedError:
            if required:
                raise click.UsageError(f"the store {store.name} keeps no spend ledger") from None
            return False
        name = store.name
    if not rows and not required:
        return False
    span = f"from {start or 'the current ' + granularity} to {end or 'now'}"
    source = f"spend ledger in {name}, {granularity} buckets {span} (UTC)"
    spend_report.emit(rows, keys, output_format, source, top=top)
    return True


def _names(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(v.strip() for value in values for v in value.split(",") if v.strip())


@click.command("advise")
@source_options
@click.option(
    "--batch-apps",
    multiple=True,
    metavar="APP[,APP]",
    help="Non-interactive apps that could run as batch jobs (comma-separated or repeated).",
)
@click.option(
    "--cascade-share",
    type=SHARE,
    default="0.8",
    show_default=True,
    help="Share of an app's calls a cascade would move to the cheapest model of the same family.",
)
@click.option(
    "--cascade-app",
    "cascade_apps",
    multiple=True,
    metavar="APP[,APP]",
    help="Evaluate the cascade only for these apps (default: every app).",
)
@click.option(
    "--cache-share",
    type=SHARE,
    default="0.5",
    show_default=True,
    help="Assumed share of uncached input tokens that is a prefix re-sent within the cache lifetime.",
)
@click.option(
    "--cache-reads-per-write",
    type=DECIMAL,
    default=None,
    help="Cache reads per cache write (default: from the recorded cache history).",
)
@click.option(
    "--period-hours",
    type=DECIMAL,
    default=None,
    help="Length of the observed period (default: the store window so far, or the days the records span).",
)
@click.option(
    "--region",
    default="us-east-1",
    show_default=True,
    help="Region of store usage (the store does not record it; records do).",
)
@click.option(
    "--price-date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    default=None,
    help="Price at the rates in force on this day (default: today, UTC).",
)
@click.option(
    "--since",
    "since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    default=None,
    help="With --store: read the spend ledger from this UTC day (default: 30 days back). --window reads "
    "budget counters instead.",
)
@price_file_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def advise_command(
    store_uri: str | None,
    prefix: str | None,
    records_file: Path | None,
    budgets_file: Path | None,
    window: str | None,
    timezone: str,
    batch_apps: tuple[str, ...],
    cascade_share: Decimal,
    cascade_apps: tuple[str, ...],
    cache_share: Decimal,
    cache_reads_per_write: Decimal | None,
    period_hours: Decimal | None,
    region: str,
    price_date: dt.datetime | None,
    since: dt.datetime | None,
    price_files: tuple[Path, ...],
    discount_percent: Decimal | None,
    as_json: bool,
) -> None:
    """Estimate, in dollars and with the arithmetic, what each savings lever would save on the recorded
    usage: global cross-region profiles, prompt caching, batch for non-interactive apps, a model cascade
    and Provisioned Throughput. Every figure states its assumptions; levers overlap, so savings do not add.
    With --store the usage is the spend ledger's (every tracked call, per app too when it tracks app and
    model together), or budget counters' when the ledger holds none or --window is given.

    \b
    Example:
      bedrock-budget advise --store redis://localhost:6379/0 --batch-apps nightly-summaries
      bedrock-budget advise --records calls.jsonl --batch-apps reports --cascade-share 0.8 --json
    """
    from bedrock_budget.reporting.advise import AdviseOptions, advise, format_hours
    from bedrock_budget.reporting.ledger_usage import ledger_usage
    from bedrock_budget.reporting.store_usage import current_counters, usage_from_store
    from bedrock_budget.reporting.tallies import ReportError

    if period_hours is not None and not period_hours:
        raise click.BadParameter("must be more than 0", param_hint="--period-hours")
    since_day = since.date() if since is not None else None
    options = AdviseOptions(
        batch_apps=_names(batch_apps),
        cascade_share=cascade_share,
        cascade_apps=_names(cascade_apps) or None,
        cache_share=cache_share,
        cache_reads_per_write=cache_reads_per_write,
        region=region,
        at=price_date.date() if price_date is not None else None,
        period_hours=period_hours,
    )
    prices = price_table(price_files, discount_percent)
    checked_region(prices, region)
    by_app: UsageSet | None = None
    if records_file is not None:
        usage = records_usage(records_file, keep={"app"}, window=window, timezone=timezone)
    else:
        budgets = _budget_list(budgets_file)
        with open_store(store_uri, prefix) as store:
            now = time.time()
            # The spend ledger first (every tracked call); budget counters when it holds nothing, and for
            # the per-app split when the ledger does not track app and model together.
            found = None if window is not None else ledger_usage(store, now=now, since=since_day)
            counters = current_counters(store, budgets, now) if found is None or found[1] is None else []
            if found is not None:
                usage, by_app = found
            else:
                usage = usage_from_store(store, by="model", now=now, counters=counters, window=window)
            if by_app is None and "app" not in usage.keys:
                try:
                    by_app = usage_from_store(store, by="app", now=now, counters=counters, window=window)
                except ReportError:
                    by_app = None
    result = advise(prices, usage, options, by_app=by_app)
    if as_json:
        emit_json(result.as_dict())
        return
    recorded = result.recorded
    hours = "" if result.period_hours is None else f" over {format_hours(result.period_hours)} h"
    click.echo(f"source: {result.source}")
    click.echo(f"recorded: {recorded.calls:,} calls, {rounded_money(recorded.cost_usd)}{hours}")
    table(
        "Savings levers (amounts rounded; --json has them exact)",
        ("#", "lever", "applies to", "now", "after", "saves", "saves/month", "advice"),
        [
            (
                str(index),
                s.lever,
                s.target,
                rounded_money(s.current_usd),
                rounded_money(s.projected_usd),
                rounded_money(s.saving_usd),
                "" if s.monthly_saving_usd is None else rounded_money(s.monthly_saving_usd),
                "worth it" if s.recommended else "no",
            )
            for index, s in enumerate(result.savings, start=1)
        ],
    )
    for index, s in enumerate(result.savings, start=1):
        click.echo(f"\n[{index}] {s.lever}: {s.target}")
        for line in s.arithmetic:
            click.echo(f"    {line}")
        for assumption in s.assumptions:
            click.echo(f"    assumes: {assumption}")
    if result.not_evaluated:
        click.echo("\nnot evaluated:")
        for line in result.not_evaluated:
            click.echo(f"  - {line}")
    click.echo("\nassumptions:")
    for line in result.assumptions:
        click.echo(f"  - {line}")


def register(group: click.Group) -> None:
    group.add_command(report)
    group.add_command(advise_command)
