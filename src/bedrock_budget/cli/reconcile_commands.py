"""``reconcile``: our exported call records against Bedrock's own model-invocation logs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bedrock_budget.cli.options import COUNT, price_file_options, price_table
from bedrock_budget.cli.output import emit_json, money, table

if TYPE_CHECKING:
    from bedrock_budget.reporting.reconcile_results import ReconcileResult

_SHORT = {"matched": "equal", "mismatched": "differ", "unrecorded": "unrecorded", "unlogged": "unlogged"}


def signed(amount: Decimal) -> str:
    """Money with its sign: ``+$0.01`` (Bedrock counted more than we recorded), ``-$0.01`` or ``$0.00``."""
    if amount > 0:
        return f"+{money(amount)}"
    if amount < 0:
        return f"-{money(-amount)}"
    return money(amount)


def _effect(amount: Decimal | None, *, delta: bool) -> str:
    if amount is None:
        return "unpriced"
    return signed(amount) if delta else money(amount)


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _print(result: ReconcileResult, records: Path, logs: Path) -> None:
    from bedrock_budget.reporting.reconcile_results import CLASSES

    rows = []
    for kind, label in CLASSES:
        total = result.total(kind)
        effect = _effect(total.usd, delta=kind == "mismatched")
        if total.unpriced:
            effect += f" ({total.unpriced:,} unpriced)"
        rows.append((label, f"{total.calls:,}", effect))
    table("Calls by class (dollar effect exact)", ("class", "calls", "dollar effect"), rows)
    differing = [(name, delta) for name, delta in result.by_token_type.items() if delta.calls]
    if differing:
        click.echo("")
        table(
            "Token counts that differ (Bedrock's minus ours)",
            ("token type", "calls", "recorded", "logged", "difference", "dollar effect"),
            [
                (
                    name.replace("_", " "),
                    f"{d.calls:,}",
                    f"{d.recorded:,}",
                    f"{d.logged:,}",
                    f"{d.difference:+,}",
                    signed(d.usd),
                )
                for name, d in differing
            ],
        )
    if result.unrecorded_by_identity:
        click.echo("")
        table(
            "Calls we never recorded, by caller (clients not wrapped)",
            ("caller", "calls", "dollar effect"),
            [
                (arn, f"{total.calls:,}", money(total.usd))
                for arn, total in sorted(result.unrecorded_by_identity.items(), key=lambda i: -i[1].usd)
            ],
        )
    if result.discrepancies:
        click.echo("")
        table(
            "Largest discrepancies",
            ("request id", "class", "model", "dollar effect"),
            [
                (d.request_id, _SHORT[d.kind], d.model, _effect(d.usd, delta=d.kind == "mismatched"))
                for d in result.discrepancies
            ],
        )
    click.echo("")
    stats = result.logs
    click.echo(f"records: {_plural(result.records_read, 'record')} read from {records}")
    click.echo(f"logs: {_plural(stats.records, 'record')} in {_plural(stats.files, 'file')} under {logs}")
    for side, span in (("records", result.records_span), ("logs", result.logs_span)):
        if span.first is not None and span.last is not None:
            first, last = span.first.isoformat(timespec="seconds"), span.last.isoformat(timespec="seconds")
            click.echo(f"{side} span: {first} to {last}")
    if stats.bad:
        click.echo(f"bad lines: {stats.bad:,} (skipped; the first are listed)")
    for example in stats.examples:
        click.echo(f"bad line: {example}")
    for note in result.notes():
        click.echo(f"note: {note}")
    if result.agree:
        click.echo("result: agree")
    else:
        calls = result.mismatched.calls + result.unrecorded.calls + result.unlogged.calls
        click.echo(f"result: disagree, {_plural(calls, 'call')} not matched with equal counts")


@click.command("reconcile")
@click.option(
    "--records",
    "records_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Exported call records (CallRecord.as_dict() as JSON lines, or CSV; .gz works).",
)
@click.option(
    "--invocation-logs",
    "logs_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Bedrock model-invocation logs: a file or a folder (the S3 tree of .json.gz objects, JSON lines, "
    "CloudWatch Logs exports).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)
@click.option(
    "--tolerance-tokens",
    type=COUNT,
    default=0,
    show_default=True,
    help="Counts that differ by at most this many tokens in every token type count as equal.",
)
@click.option(
    "--details",
    type=COUNT,
    default=20,
    show_default=True,
    help="How many discrepancies to list, largest dollar effect first.",
)
@price_file_options
def reconcile_command(
    records_file: Path,
    logs_path: Path,
    output_format: str,
    tolerance_tokens: int,
    details: int,
    price_files: tuple[Path, ...],
    discount_percent: Decimal | None,
) -> None:
    """Compare exported call records with Bedrock's own model-invocation logs, joined by request id.

    Every call lands in one class: on both sides with equal token counts, with different counts (per
    token type), logged by Bedrock but never recorded (a client that was not wrapped), or recorded but
    not logged by Bedrock. Each class shows its dollar effect, priced exactly with the bundled prices
    (plus --prices). Lines of the logs that cannot be read are counted and shown, not fatal.

    Exit status: 0 the two sides agree, 1 they disagree, 2 bad input.

    \b
    Example:
      aws s3 sync s3://my-bucket/AWSLogs/123456789012/BedrockModelInvocationLogs/ logs/
      bedrock-budget reconcile --records calls.jsonl --invocation-logs logs/
      bedrock-budget reconcile --records calls.jsonl.gz --invocation-logs export.log --format json
    """
    from bedrock_budget.reporting.call_records import read_records
    from bedrock_budget.reporting.invocation_logs import LogReadStats, read_invocation_logs
    from bedrock_budget.reporting.reconcile import reconcile
    from bedrock_budget.reporting.tallies import ReportError

    prices = price_table(price_files, discount_percent)
    stats = LogReadStats()
    result = reconcile(
        read_records(records_file),
        read_invocation_logs(logs_path, stats),
        prices,
        tolerance_tokens=tolerance_tokens,
        details=details,
        log_stats=stats,
    )
    if not stats.records:
        first = f" (first bad line: {stats.examples[0]})" if stats.examples else ""
        raise ReportError(
            f"no invocation log records in {str(logs_path)!r}: {stats.bad:,} bad lines, "
            f"{stats.skipped:,} other JSON values{first}"
        )
    if output_format == "json":
        emit_json(result.as_dict())
    else:
        _print(result, records_file, logs_path)
    if not result.agree:
        raise click.exceptions.Exit(1)


def register(group: click.Group) -> None:
    group.add_command(reconcile_command)
