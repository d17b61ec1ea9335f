"""``budgets list|show|set|reset``: what every budget has spent in its current window, and operating it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from bedrock_budget.budgets.loading import ENV_FILE, ENV_INLINE, ENV_PREFIX
from bedrock_budget.budgets.model import Budget
from bedrock_budget.cli.output import emit_json, money, table
from bedrock_budget.cli.published_commands import limits_text
from bedrock_budget.stores.base import Store

F = TypeVar("F", bound=Callable[..., Any])

STORE_ENV: Final = "BEDROCK_BUDGET_STORE"
BUDGETS_ENV: Final = ENV_FILE
BUDGET_SOURCES: Final = f"${ENV_FILE}, ${ENV_INLINE} or ${ENV_PREFIX}<NAME>"


def store_options(func: F) -> F:
    func = click.option("--prefix", default=None, help="Store key prefix the clients use (default bb:).")(
        func
    )
    func = click.option(
        "--store",
        "store_uri",
        envvar=STORE_ENV,
        default=None,
        help=f"Budget store URI, e.g. redis://redis:6379/0 (or ${STORE_ENV}).",
    )(func)
    return func  # noqa: RET504 - decorators applied in order


def budgets_option(func: F) -> F:
    # No envvar here: configured_budgets() reads every BEDROCK_BUDGETS* variable, as serve-metrics does.
    return click.option(
        "--budgets",
        "budgets_file",
        default=None,
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"Budget definitions (YAML) the clients use (default: {BUDGET_SOURCES}).",
    )(func)


def json_flag(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")(
        func
    )


def open_store(store_uri: str | None, prefix: str | None) -> Store:
    """The store the clients record into. There is no default: a new process's ``memory://`` is empty."""
    from bedrock_budget.stores import from_uri

    if not store_uri:
        raise click.UsageError(
            f"no budget store: pass --store URI or set {STORE_ENV} (for example redis://localhost:6379/0)"
        )
    if store_uri.lower().startswith("memory:"):
        click.echo(
            "warning: memory:// lives inside one process, so this command sees only its own spend; "
            "point --store at the Redis your clients use",
            err=True,
        )
    return from_uri(store_uri, **({"prefix": prefix} if prefix else {}))


@contextmanager
def store_and_budgets(
    store_uri: str | None, prefix: str | None, budgets_file: Path | None
) -> Iterator[tuple[Store, list[Budget], str]]:
    """The store, and the budgets of ``--budgets``, or else of the environment, or else those published
    in the store, with where they came from. A file or the environment is read before the store is
    opened, so a bad file is the one error reported."""
    from bedrock_budget.budgets.loading import configured_budgets

    budgets = configured_budgets(budgets_file, required=False)
    source = str(budgets_file) if budgets_file is not None else "the environment"
    if budgets_file is not None and not budgets:
        configured_budgets(budgets_file)  # raises the file's own "defines no budgets" error
    with open_store(store_uri, prefix) as store:
        if not budgets:
            from bedrock_budget.budgets import published

            found = published.read(store)
            if found is None:
                configured_budgets(None)  # raises the usual "no budgets defined" error
            assert found is not None
            budgets, source = list(found.budgets), f"the store (version {found.version})"
        yield store, budgets, source


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="minutes") if moment is not None else "never"


def _amounts(budget: Budget, usd: Decimal, tokens: Decimal, requests: int = 0) -> str:
    parts = []
    if budget.limit_usd is not None or budget.limit_tokens is None:
        parts.append(money(usd))
    if budget.limit_tokens is not None:
        parts.append(f"{tokens:,} tokens")
    if budget.limit_requests is not None:
        parts.append(f"{requests:,} requests")
    return " / ".join(parts)


_limits = limits_text


def _field(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_field(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _scope(scope: dict[str, str] | Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(dict(scope).items())) or "(all calls)"


def _rows(windows: Sequence[Any]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for w in windows:
        budget = w.budget
        used = w.utilisation_percent
        rows.append(
            (
                budget.name,
                _scope(w.scope) + ("" if w.ref is not None else " (no spend yet)"),
                f"{budget.window.kind} {budget.timezone}",
                _when(w.resets_at),
                _limits(budget),
                _amounts(budget, w.spent_usd, w.spent_tokens, w.spent_requests),
                _amounts(budget, w.reserved_usd, w.reserved_tokens, w.reserved_requests),
                "" if used is None else f"{used}%",
            )
        )
    return rows


_HEADERS: Final = ("budget", "scope", "window", "resets at", "limit", "spent", "reserved", "used")


@click.group("budgets")
def budgets_group() -> None:
    """See and operate budgets: current window, limit, spent, reserved, utilisation and reset time.

    The store is where your wrapped clients record spend (Redis for anything beyond one process); the
    budgets are those of --budgets FILE, or else of the BEDROCK_BUDGETS_FILE, BEDROCK_BUDGETS and
    BEDROCK_BUDGET__<NAME> environment variables, as serve-metrics reads them.

    \b
    Example:
      export BEDROCK_BUDGET_STORE=redis://localhost:6379/0 BEDROCK_BUDGETS_FILE=budgets.yaml
      bedrock-budget budgets list
    """


@budgets_group.command("list")
@store_options
@budgets_option
@json_flag
def list_budgets(store_uri: str | None, prefix: str | None, budgets_file: Path | None, as_json: bool) -> None:
    """Every budget's current window: limit, spent, reserved, utilisation and when it resets (one line
    per user, app, ... for wildcard budgets).

    \b
    Example:
      bedrock-budget budgets list --store redis://localhost:6379/0 --budgets budgets.yaml --json
    """
    from bedrock_budget.reporting.budget_admin import budget_windows

    with store_and_budgets(store_uri, prefix, budgets_file) as (store, budgets, _):
        windows = budget_windows(store, budgets)
        name = store.name
    if as_json:
        emit_json({"store": name, "windows": [w.as_dict() for w in windows]})
        return
    table(f"Budgets in {name}", _HEADERS, _rows(windows))


@budgets_group.command("show")
@click.argument("name")
@click.option("--scope", "scope_pairs", multiple=True, metavar="KEY=VALUE", help="Only this scope value.")
@click.option(
    "--value",
    default=None,
    help="One value of the budget's '*' key (e.g. a user id): its limit, and where that limit comes from.",
)
@store_options
@budgets_option
@json_flag
def show_budget(
    name: str,
    scope_pairs: tuple[str, ...],
    value: str | None,
    store_uri: str | None,
    prefix: str | None,
    budgets_file: Path | None,
    as_json: bool,
) -> None:
    """One budget: its definition and, per scope value, the current window with spend by model and the
    alert thresholds already crossed.

    \b
    Example:
      bedrock-budget budgets show per-user-daily --scope user=u-17 --store redis://localhost:6379/0 \\
        --budgets budgets.yaml
    """
    from bedrock_budget.cli.published_commands import effective_limit
    from bedrock_budget.reporting.budget_admin import budget_windows, find_budget, parse_scope

    with store_and_budgets(store_uri, prefix, budgets_file) as (store, budgets, source):
        budget = find_budget(budgets, name, source)
        effective = effective_limit(budget, value) if value is not None else None
        if effective is not None and not scope_pairs:
            scope_pairs = (f"{effective['key']}={value}",)
        scope = parse_scope(budget, scope_pairs)
        windows = budget_windows(store, budgets, name, scope=scope, detail=True)
    if as_json:
        payload = {"budget": budget.to_dict(), "source": source}
        if effective is not None:
            payload["effective"] = effective
        emit_json({**payload, "windows": [w.as_dict(detail=True) for w in windows]})
        return
    definition = ", ".join(f"{k}: {_field(v)}" for k, v in budget.to_dict().items() if k != "name")
    click.echo(f"{budget.name}: {definition} (from {source})")
    if effective is not None:
        limit = _limits(budget.for_values(((str(effective["key"]), str(value)),)))
        click.echo(f"{effective['key']}={value}: limit {limit}, from {effective['source']}")
    if not windows:
        click.echo(f"no spend recorded for {_scope(scope)} in the current {budget.window.kind} window")
    for w in windows:
        used = w.utilisation_percent
        click.echo("")
        click.echo(
            f"{_scope(w.scope)}: {budget.window.kind} window since {_when(w.window_start)}, resets "
            f"{_when(w.resets_at)}"
        )
        spent = _amounts(budget, w.spent_usd, w.spent_tokens, w.spent_requests)
        click.echo(
            f"  limit {_limits(w.budget)}; spent {spent}"
            f"; reserved {_amounts(budget, w.reserved_usd, w.reserved_tokens, w.reserved_requests)} "
            f"({w.active_reservations} calls in flight)" + ("" if used is None else f"; used {used}%")
        )
        if w.alerts_fired:
            click.echo(f"  alert thresholds crossed: {', '.join(w.alerts_fired)}")
        details = w.as_dict(detail=True)["models"]
        assert isinstance(details, dict)
        if details:
            table(
                "  by model",
                ("model", "calls", "cost", "input", "output", "cache read", "cache write"),
                [
                    (
                        model,
                        f"{d['calls']:,}",
                        f"${d['cost_usd']}",
                        f"{d['input_tokens']:,}",
                        f"{d['output_tokens']:,}",
                        f"{d['cache_read_tokens']:,}",
                        f"{d['cache_write_tokens']:,}",
                    )
                    for model, d in details.items()
                ],
            )


@budgets_group.command("apply")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would change; publish nothing.")
@store_options
@json_flag
def apply_budgets(
    file: Path, dry_run: bool, store_uri: str | None, prefix: str | None, as_json: bool
) -> None:
    """Publish a budgets file to the store as the fleet's next version of the definitions. Processes
    wrapped with budgets="store" enforce it within about a second, without a restart. The whole file is
    checked first (nothing is published when any budget is invalid); applying the same file twice
    publishes nothing the second time.

    \b
    Example:
      bedrock-budget budgets apply budgets.yaml --store redis://localhost:6379/0
    """
    from bedrock_budget.cli.published_commands import apply_file

    with open_store(store_uri, prefix) as store:
        apply_file(store, file, dry_run=dry_run, as_json=as_json)


@budgets_group.command("set")
@click.argument("name")
@click.option("--limit-usd", default=None, help="New dollar limit, e.g. 40.00.")
@click.option("--limit-tokens", default=None, help="New (weighted) token limit, e.g. 2000000.")
@click.option("--limit-requests", default=None, help="New request limit per window, e.g. 600.")
@click.option(
    "--value",
    default=None,
    help="Set the limit of one value of the budget's '*' key (e.g. a user id) as an override (store only).",
)
@click.option("--remove-override", is_flag=True, help="With --value: drop that value's override.")
@store_options
@budgets_option
@json_flag
def set_budget(
    name: str,
    limit_usd: str | None,
    limit_tokens: str | None,
    limit_requests: str | None,
    value: str | None,
    remove_override: bool,
    store_uri: str | None,
    prefix: str | None,
    budgets_file: Path | None,
    as_json: bool,
) -> None:
    """Change a budget's limit, or one value's limit (--value), where the budgets live.

    With --store and no --budgets, when the store holds published definitions (`budgets apply`), the change
    is published there as a new version and every process wrapped with budgets="store" applies it within
    about a second. Otherwise the budgets file is edited: only that value is rewritten (comments and the
    other budgets stay as they are), and clients pick the new limit up when they next load the file.
    Spend already recorded in the current window is kept either way, because store keys never depend on
    limits; a limit lowered below the spend refuses new calls at once.

    \b
    Examples:
      bedrock-budget budgets set per-user-daily --value u-17 --limit-usd 50 --store redis://localhost:6379/0
      bedrock-budget budgets set chat-daily --limit-usd 40.00 --budgets budgets.yaml
    """
    from bedrock_budget.reporting.budget_admin import budget_windows, set_limits

    new_limits = {"limit_usd": limit_usd, "limit_tokens": limit_tokens, "limit_requests": limit_requests}
    if remove_override and (value is None or any(v is not None for v in new_limits.values())):
        raise click.UsageError("--remove-override takes --value and no new limit")
    if store_uri and budgets_file is None:
        with open_store(store_uri, prefix) as store:
            if store.definitions_version():
                from bedrock_budget.cli.published_commands import set_in_store

                set_in_store(store, name, value, new_limits, remove=remove_override, as_json=as_json)
                return
    if value is not None:
        raise click.UsageError(
            "--value changes an override in the store's published definitions (`budgets apply`); in a "
            "budgets file, write it under the budget: overrides: {VALUE: {limit_usd: '50.00'}}"
        )
    if budgets_file is None and os.environ.get(BUDGETS_ENV):
        budgets_file = Path(os.environ[BUDGETS_ENV])
    if budgets_file is None:
        raise click.UsageError(
            f"no budgets file to edit: pass --budgets FILE or set {BUDGETS_ENV} (budgets defined in "
            f"${ENV_INLINE} or ${ENV_PREFIX}<NAME> are changed where those are set)"
        )
    before, after = set_limits(
        budgets_file, name, limit_usd=limit_usd, limit_tokens=limit_tokens, limit_requests=limit_requests
    )
    windows = []
    if store_uri:
        from bedrock_budget.budgets.loading import load_budgets

        with open_store(store_uri, prefix) as store:
            windows = budget_windows(store, load_budgets(budgets_file), name)
    if as_json:
        payload: dict[str, object] = {
            "budget": name,
            "file": str(budgets_file),
            "before": before.to_dict(),
            "after": after.to_dict(),
        }
        if store_uri:
            payload["windows"] = [w.as_dict() for w in windows]
        emit_json(payload)
        return
    click.echo(
        f"{name}: limit {_limits(before) or 'none'} -> {_limits(after)} in {budgets_file}; spend already "
        "recorded is kept"
    )
    if windows:
        table(f"{name} now", _HEADERS, _rows(windows))


@budgets_group.command("reset")
@click.argument("name")
@click.option(
    "--scope",
    "scope_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Reset only this scope value of a wildcard budget (repeatable); default: all of them.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@store_options
@budgets_option
@json_flag
def reset_budget(
    name: str,
    scope_pairs: tuple[str, ...],
    yes: bool,
    store_uri: str | None,
    prefix: str | None,
    budgets_file: Path | None,
    as_json: bool,
) -> None:
    """Clear a budget's current window: its spend, alert markers and per-model tallies. Holds of calls in
    flight stay, and their spend is charged to the fresh window. Asks first unless --yes. Past windows are
    not touched (their keys expire on their own).

    \b
    Example:
      bedrock-budget budgets reset per-user-daily --scope user=u-17 --yes \\
        --store redis://localhost:6379/0 --budgets budgets.yaml
    """
    from bedrock_budget.reporting.budget_admin import (
        find_budget,
        parse_scope,
        reset_windows,
        windows_to_reset,
    )

    with store_and_budgets(store_uri, prefix, budgets_file) as (store, budgets, source):
        budget = find_budget(budgets, name, source)
        scope = parse_scope(budget, scope_pairs)
        targets = windows_to_reset(store, budgets, name, scope)
        if not targets:
            if as_json:
                emit_json({"budget": name, "reset": 0, "windows": []})
            else:
                click.echo(f"nothing to reset: {name} has no spend for {_scope(scope)} in its current window")
            return
        listing = "; ".join(
            f"{_scope(w.scope)} spent {_amounts(budget, w.spent_usd, w.spent_tokens)}" for w in targets
        )
        if not yes:
            click.confirm(
                f"Reset the current {budget.window.kind} window of {name} ({listing})?", abort=True, err=True
            )
        count = reset_windows(store, targets)
    if as_json:
        emit_json({"budget": name, "reset": count, "windows": [w.as_dict() for w in targets]})
        return
    click.echo(f"reset {count} window(s) of {name}: {listing}")


def register(group: click.Group) -> None:
    group.add_command(budgets_group)
