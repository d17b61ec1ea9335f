"""The demo's live view: spend per app and user, budget utilisation bars, blocked and downgraded calls."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table

from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.budgets.outcomes import BudgetStatus
from bedrock_budget.demo.runner import Tally
from bedrock_budget.pricing.money import format_usd, nanos_to_usd

_BAR_WIDTH = 24


def _usd(nanos: int) -> str:
    return f"${format_usd(nanos_to_usd(nanos), min_places=4)}"


def _utilisation(status: BudgetStatus) -> tuple[Decimal, str]:
    budget = status.budget
    if budget.limit_usd is not None and budget.limit_usd > 0:
        used = status.spent_usd + status.reserved_usd
        return used / budget.limit_usd, f"${format_usd(status.spent_usd, min_places=4)} / ${budget.limit_usd}"
    if budget.limit_tokens is not None and budget.limit_tokens > 0:
        used = status.spent_tokens + status.reserved_tokens
        return used / Decimal(
            budget.limit_tokens
        ), f"{status.spent_tokens:,.0f} / {budget.limit_tokens:,} tokens"
    return Decimal(0), "-"


class LiveView:
    """Renders the current state; reading the store is throttled so the view never slows the workload."""

    def __init__(self, tally: Tally, ledger: Ledger, planned: int) -> None:
        self.tally = tally
        self.ledger = ledger
        self.planned = planned
        self._statuses: list[BudgetStatus] = []
        self._read_at = 0.0

    def _budget_rows(self) -> list[BudgetStatus]:
        now = time.monotonic()
        if now - self._read_at > 0.25:
            self._statuses = self.ledger.status()
            self._read_at = now
        return self._statuses

    def __rich__(self) -> Any:
        return render(self.tally, self._budget_rows(), self.planned)


def render(tally: Tally, statuses: list[BudgetStatus], planned: int) -> Group:
    with tally.lock:
        apps = sorted(tally.apps.items())
        users = tally.users.most_common(6)
        done = tally.done
        blocked_by = dict(tally.blocked_by)
        alerts = [alert.message for alert in tally.alerts[-3:]]
    progress = Table.grid(padding=(0, 1))
    progress.add_row(
        f"calls {done}/{planned}", ProgressBar(total=max(planned, 1), completed=done, width=40),
        f"spend {_usd(sum(t.spend_nanos for _, t in apps))}",
    )  # fmt: skip
    app_table = Table(title="apps", title_justify="left", expand=False)
    for column in ("app", "calls", "ok", "blocked", "downgraded", "shadow-warned", "cache-read tok", "spend"):
        app_table.add_column(column, justify="left" if column == "app" else "right")
    for name, t in apps:
        app_table.add_row(
            name, str(t.calls), str(t.ok), str(t.blocked), str(t.downgraded), str(t.warned),
            f"{t.cache_read_tokens:,}", _usd(t.spend_nanos),
        )  # fmt: skip
    user_table = Table(title="top users", title_justify="left")
    user_table.add_column("user")
    user_table.add_column("spend", justify="right")
    for user, nanos in users:
        user_table.add_row(user, _usd(nanos))
    budget_table = Table(title="budgets (current window)", title_justify="left")
    for column in ("budget", "scope", "action", "utilisation", "", "resets"):
        budget_table.add_column(column)
    for status in sorted(statuses, key=lambda s: (s.budget.name, sorted(s.scope.items()))):
        ratio, label = _utilisation(status)
        bar = ProgressBar(total=100, completed=float(min(ratio, Decimal(1)) * 100), width=_BAR_WIDTH)
        scope = ",".join(f"{k}={v}" for k, v in sorted(status.scope.items())) or "(all)"
        resets = status.resets_at.strftime("%Y-%m-%d %H:%M %Z") if status.resets_at else "never"
        budget_table.add_row(status.budget.name, scope, status.budget.action, bar, label, resets)
    parts: list[Any] = [progress, app_table, user_table, budget_table]
    if blocked_by:
        parts.append(
            "blocked by: " + ", ".join(f"{name} x{count}" for name, count in sorted(blocked_by.items()))
        )
    parts.extend(f"alert: {message}" for message in alerts)
    return Group(*parts)
