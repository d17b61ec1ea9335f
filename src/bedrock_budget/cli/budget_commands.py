"""``budgets list|show|set|reset``: what every budget has spent in its current window, and operating it."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from bedrock_budget.budgets.loading import ENV_FILE, ENV_INLINE, ENV_PREFIX
from bedrock_budget.budgets.model import Budget
from bedrock_budget.cli.output import emit_json, money, table
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


def load_budget_sources(budgets_file: Path | None) -> tuple[list[Budget], str]:
    """The budgets of ``--budgets``, or else of the environment, and where they came from."""
    from bedrock_budget.budgets.loading import configured_budgets

    budgets = configured_budgets(budgets_file)
    return budgets, str(budgets_file) if budgets_file is not None else "the environment"


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


def _limits(budget: Budget) -> str:
    parts = []
    if budget.limit_usd is not None:
        parts.append(money(budget.limit_usd))
    if budget.limit_tokens is not None:
        parts.append(f"{budget.limit_tokens:,} tokens")
    if budget.limit_requests is not None:
        parts.append(f"{budget.limit_requests:,} requests per {budget.window.kind}")
    return " / ".join(parts)


def _field(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
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

    budgets, _ = load_budget_sources(budgets_file)
    with open_store(store_uri, prefix) as store:
        windows = budget_windows(store, budgets)
        name = store.name
    if as_json:
        emit_json({"store": name, "windows": [w.as_dict() for w in windows]})
        return
    table(f"Budgets in {name}", _HEADERS, _rows(windows))


@budgets_group.command("show")
@click.argument("name")
@click.option("--scope", "scope_pairs", multiple=True, metavar="KEY=VALUE", help="Only this scope value.")
@store_options
@budgets_option
@json_flag
def show_budget(
    name: str,
    scope_pairs: tuple[str, ...],
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
    from bedrock_budget.reporting.budget_admin import budget_windows, find_budget, parse_scope

    budgets, source = load_budget_sources(budgets_file)
    budget = find_budget(budgets, name, source)
    scope = parse_scope(budget, scope_pairs)
    with open_store(store_uri, prefix) as store:
        windows = budget_windows(store, budgets, name, scope=scope, detail=True)
    if as_json:
        emit_json({"budget": budget.to_dict(), "windows": [w.as_dict(detail=True) for w in windows]})
        return
    definition = ", ".join(f"{k}: {_field(v)}" for k, v in budget.to_dict().items() if k != "name")
    click.echo(f"{budget.name}: {definition}")
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
            f"  limit {_limits(budget)}; spent {spent}"
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


@budgets_group.command("set")
@click.argument("name")
@click.option("--limit-usd", default=None, help="New dollar limit, e.g. 40.00.")
@click.option("--limit-tokens", default=None, help="New (weighted) token limit, e.g. 2000000.")
@click.option("--limit-requests", default=None, help="New request limit per window, e.g. 600.")
@store_options
@budgets_option
@json_flag
def set_budget(
    name: str,
    limit_usd: str | None,
    limit_tokens: str | None,
    limit_requests: str | None,
    store_uri: str | None,
    prefix: str | None,
    budgets_file: Path | None,
    as_json: bool,
) -> None:
    """Change a budget's limit in the budgets file. Only that value is rewritten (comments and the other
    budgets stay as they are); spend already recorded in the current window is kept, because store keys
    never depend on limits. Clients pick the new limit up when they next load the file. With a store, the
    budget's current windows are shown against the new limit.

    \b
    Example:
      bedrock-budget budgets set chat-daily --limit-usd 40.00 --budgets budgets.yaml
    """
    from bedrock_budget.reporting.budget_admin import budget_windows, set_limits

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

    budgets, source = load_budget_sources(budgets_file)
    budget = find_budget(budgets, name, source)
    scope = parse_scope(budget, scope_pairs)
    with open_store(store_uri, prefix) as store:
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
