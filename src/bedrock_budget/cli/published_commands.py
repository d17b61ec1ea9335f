"""``budgets apply`` and the store side of ``budgets set``/``show``: the budget definitions a fleet follows
from its store (``bb.wrap(client, store=URI, budgets="store")``; see ``bedrock_budget.budgets.published``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bedrock_budget.budgets.model import Budget
from bedrock_budget.cli.output import emit_json, money
from bedrock_budget.stores.base import Store

FOLLOW_NOTE = 'processes wrapped with budgets="store" apply it within about a second'


def limits_text(budget: Budget) -> str:
    parts = []
    if budget.limit_usd is not None:
        parts.append(money(budget.limit_usd))
    if budget.limit_tokens is not None:
        parts.append(f"{budget.limit_tokens:,} tokens")
    if budget.limit_requests is not None:
        parts.append(f"{budget.limit_requests:,} requests per {budget.window.kind}")
    return " / ".join(parts)


def differences(before: tuple[Budget, ...], after: list[Budget]) -> dict[str, list[str]]:
    """Budget names added, removed and changed from one set to another."""
    old = {b.name: b for b in before}
    new = {b.name: b for b in after}
    return {
        "added": [name for name in new if name not in old],
        "removed": [name for name in old if name not in new],
        "changed": [name for name in new if name in old and new[name] != old[name]],
    }


def apply_file(store: Store, path: Path, *, dry_run: bool, as_json: bool) -> None:
    """Publish a budgets file as the store's next version of the definitions (nothing when unchanged)."""
    from bedrock_budget.budgets import published
    from bedrock_budget.budgets.loading import load_budgets

    budgets = load_budgets(path)  # validated in full before anything is published
    current = published.read(store)
    before = current.budgets if current is not None else ()
    version = current.version if current is not None else 0
    diff = differences(before, budgets)
    unchanged = (
        current is not None
        and not any(diff.values())
        and [b.name for b in before] == [b.name for b in budgets]
    )
    new_version = version
    if not dry_run and not unchanged:
        new_version = published.publish(store, budgets, expected_version=version)
    if as_json:
        emit_json(
            {
                "store": store.name,
                "file": str(path),
                "version": new_version,
                "previous_version": version,
                "published": not dry_run and not unchanged,
                **diff,
            }
        )
        return
    if unchanged:
        click.echo(f"{path}: the store already holds these budgets (version {version}); nothing published")
        return
    for kind, names in diff.items():
        if names:
            click.echo(f"{kind}: {', '.join(names)}")
    if dry_run:
        click.echo(f"would publish version {version + 1} to {store.name} (dry run: nothing published)")
    else:
        click.echo(f"published as version {new_version} in {store.name}")
        click.echo(FOLLOW_NOTE)


def set_in_store(
    store: Store,
    name: str,
    value: str | None,
    limits: dict[str, str | None],
    *,
    remove: bool,
    as_json: bool,
) -> None:
    """Change a budget's limit, or one value's override, in the store's published definitions."""
    from bedrock_budget.budgets import published

    def edit(budgets: list[Budget]) -> list[Budget]:
        budget = published.named(budgets, name)
        if remove:
            assert value is not None
            return published.replaced(budgets, published.without_override(budget, value))
        return published.replaced(budgets, published.with_limits(budget, value, limits))

    before_set, version = published.change(store, edit)
    before = published.named(list(before_set.budgets), name)
    after = published.read(store)
    assert after is not None
    now = after.budget(name)
    old_limit, old_source = published.limit_source(before, value)
    new_limit, new_source = published.limit_source(now, value)
    if as_json:
        emit_json(
            {
                "budget": name,
                "value": value,
                "store": store.name,
                "version": version,
                "previous_version": before_set.version,
                "before": {"limits": _limit_fields(old_limit), "source": old_source},
                "after": {"limits": _limit_fields(new_limit), "source": new_source},
            }
        )
        return
    who = f", {now.override_key}={value}" if value is not None else ""
    click.echo(f"{name}{who}: limit {limits_text(old_limit)} -> {limits_text(new_limit)}")
    if old_source != new_source:
        click.echo(f"  was {old_source}; now {new_source}")
    click.echo(f"published as version {version} in {store.name} (was {before_set.version})")
    click.echo("spend already recorded is kept")
    click.echo(FOLLOW_NOTE)


def _limit_fields(budget: Budget) -> dict[str, Any]:
    return {
        "limit_usd": None if budget.limit_usd is None else str(budget.limit_usd),
        "limit_tokens": None if budget.limit_tokens is None else str(budget.limit_tokens),
        "limit_requests": budget.limit_requests,
    }


def effective_limit(budget: Budget, value: str) -> dict[str, Any]:
    """What ``budgets show NAME --value V`` reports: the value's limits and where they come from."""
    from bedrock_budget.budgets import published

    if budget.override_key is None:
        raise click.UsageError(
            f"--value names a value of a budget's one '*' scope key, and {budget.name!r} has "
            f"{'none' if not budget.wildcard_keys else 'several'}"
        )
    effective, source = published.limit_source(budget, value)
    return {"value": value, "key": budget.override_key, **_limit_fields(effective), "source": source}
