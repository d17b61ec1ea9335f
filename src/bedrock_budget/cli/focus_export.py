"""``report --format focus``: the FOCUS 1.2 cost and usage CSV of exported call records."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import click

from bedrock_budget.cli.options import price_file_options

F = TypeVar("F", bound=Callable[..., Any])

_ACCOUNT_LIMIT = 256


def focus_options(func: F) -> F:
    func = price_file_options(func)
    func = click.option(
        "--account-name", default=None, help="FOCUS BillingAccountName (default: the account id)."
    )(func)
    func = click.option(
        "--account-id",
        default=None,
        help="FOCUS BillingAccountId, e.g. the AWS account id (default: unspecified).",
    )(func)
    return click.option(
        "--output",
        "output_path",
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        default=None,
        help="Write --format focus to this file instead of standard output.",
    )(func)


def _account(value: str, flag: str) -> str:
    text = value.strip()
    if not text or len(text) > _ACCOUNT_LIMIT or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise click.BadParameter(
            f"must be 1 to {_ACCOUNT_LIMIT} printable characters, not {value!r:.40}", param_hint=flag
        )
    return text


def _discount(value: Decimal | None) -> Decimal:
    if value is None:
        return Decimal(0)
    if value >= 100:
        raise click.BadParameter(f"{value} must be below 100", param_hint="--discount-percent")
    return value


def check_focus_flags(output_format: str, given: Mapping[str, object]) -> None:
    """Refuse the focus-only flags with another format, so a typo'd format never drops them silently."""
    if output_format == "focus":
        return
    used = [name for name, value in given.items() if value not in (None, ())]
    if used:
        raise click.UsageError(
            f"{', '.join(used)} only appl{'y' if len(used) > 1 else 'ies'} to --format focus"
        )


def write_focus(
    records_file: Path | None,
    *,
    output_path: Path | None,
    account_id: str | None,
    account_name: str | None,
    price_files: tuple[Path, ...],
    discount_percent: Decimal | None,
) -> None:
    from bedrock_budget.pricing import load_price_table
    from bedrock_budget.reporting.call_records import read_records
    from bedrock_budget.reporting.focus import DEFAULT_ACCOUNT, FocusSettings
    from bedrock_budget.reporting.focus_csv import write_focus_csv

    if records_file is None:
        raise click.UsageError("--format focus reads exported call records: give --records FILE")
    account = _account(account_id, "--account-id") if account_id is not None else DEFAULT_ACCOUNT
    name = _account(account_name, "--account-name") if account_name is not None else account
    discount = _discount(discount_percent)
    settings = FocusSettings(account_id=account, account_name=name, discount_percent=discount)
    list_prices = load_price_table(extra_files=price_files)
    contracted = (
        load_price_table(extra_files=price_files, discount_percent=discount) if discount else list_prices
    )
    records = read_records(records_file)
    if output_path is None:
        export = write_focus_csv(
            sys.stdout, records, settings=settings, list_prices=list_prices, contracted_prices=contracted
        )
    else:
        partial = output_path.with_name(f".{output_path.name}.partial")
        try:
            with partial.open("w", encoding="utf-8", newline="") as out:
                export = write_focus_csv(
                    out, records, settings=settings, list_prices=list_prices, contracted_prices=contracted
                )
            partial.replace(output_path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise click.FileError(str(output_path), exc.strerror) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    click.echo(
        f"focus: {len(export.rows):,} rows from {export.calls:,} calls, BilledCost total "
        f"{export.billed_usd} USD",
        err=True,
    )
    for note in export.notes():
        click.echo(f"note: {note}", err=True)
