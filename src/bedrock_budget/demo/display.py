"""The demo's live view: spend per app and user, budget utilisation bars, blocked and downgraded calls."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.progress_bar import ProgressBar
from rich.text import Text

from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.budgets.outcomes import BudgetStatus
from bedrock_budget.cli.output import plain_lines, render_table
from bedrock_budget.demo.runner import Tally
from bedrock_budget.pricing.money import format_usd, nanos_to_usd


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
        if self._read_at < 0 or now - self._read_at > 0.25:
            self._statuses = self.ledger.status()
            self._read_at = now
        return self._statuses

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield render(self.tally, self._budget_rows(), self.planned, width=options.max_width)

    def read_now(self) -> None:
        """Read the store at the next render, however recent the last read."""
        self._read_at = -1.0

    def plain(self) -> str:
        """The final state for a file or a pipe: plain full rows, however wide, and no bars."""
        self.read_now()
        return plain_text(self.tally, self._budget_rows(), self.planned)


@dataclass(frozen=True, slots=True)
class _View:
    heading: str
    done: int
    tables: tuple[tuple[str, tuple[str, ...], list[tuple[Any, ...]]], ...]
    footer: tuple[str, ...]


def _view(tally: Tally, statuses: list[BudgetStatus], planned: int, *, bars: bool) -> _View:
    with tally.lock:
        apps = sorted(tally.apps.items())
        users = tally.users.most_common(6)
        done = tally.done
        blocked_by = dict(tally.blocked_by)
        alerts = [alert.message for alert in tally.alerts[-3:]]
    app_rows: list[tuple[Any, ...]] = [
        (
            name, str(t.calls), str(t.ok), str(t.blocked), str(t.downgraded), str(t.warned),
            f"{t.cache_read_tokens:,}", _usd(t.spend_nanos),
        )
        for name, t in apps
    ]  # fmt: skip
    user_rows: list[tuple[Any, ...]] = [(user, _usd(nanos)) for user, nanos in users]
    budget_rows: list[tuple[Any, ...]] = []
    for status in sorted(statuses, key=lambda s: (s.budget.name, sorted(s.scope.items()))):
        ratio, label = _utilisation(status)
        name, action = status.budget.name, status.budget.action
        scope = ", ".join(f"{k}={v}" for k, v in sorted(status.scope.items())) or "(all)"
        resets = status.resets_at.strftime("%Y-%m-%d %H:%M %Z") if status.resets_at else "never"
        if bars:
            # The scope goes under the budget's name, so the table fits 80 columns.
            bar = ProgressBar(total=100, completed=float(min(ratio, Decimal(1)) * 100))
            budget_rows.append((f"{name}\n{scope}", action, bar, label, resets))
        else:
            budget_rows.append((name, scope, action, f"{ratio * 100:.1f}%", label, resets))
    footer = [f"alert: {message}" for message in alerts]
    if blocked_by:
        footer.insert(0, "blocked by: " + ", ".join(f"{name} x{n}" for name, n in sorted(blocked_by.items())))
    return _View(
        f"calls {done}/{planned}, spend {_usd(sum(t.spend_nanos for _, t in apps))}",
        done,
        (
            ("apps", _APP_HEADERS, app_rows),
            ("top users", ("user", "spend"), user_rows),
            ("budgets (current window)", _BUDGET_HEADERS if bars else _BUDGET_PLAIN_HEADERS, budget_rows),
        ),
        tuple(footer),
    )


def render(tally: Tally, statuses: list[BudgetStatus], planned: int, *, width: int = 80) -> Group:
    """The live view for a terminal ``width`` columns wide: tables whose values are never cut."""
    view = _view(tally, statuses, planned, bars=True)
    progress = ProgressBar(total=max(planned, 1), completed=view.done, width=max(10, min(40, width // 3)))
    parts: list[Any] = [Text(view.heading), progress]
    parts.extend(
        render_table(title, headers, rows, width=width, fold=True) for title, headers, rows in view.tables
    )
    parts.extend(Text(line) for line in view.footer)
    return Group(*parts)


def plain_text(tally: Tally, statuses: list[BudgetStatus], planned: int) -> str:
    """The view as plain text: one line per row with every value whole."""
    view = _view(tally, statuses, planned, bars=False)
    lines = [view.heading]
    for title, headers, rows in view.tables:
        lines.extend(plain_lines(title, headers, rows))
    lines.extend(view.footer)
    return "\n".join(lines)


_APP_HEADERS: Final = (
    "app",
    "calls",
    "ok",
    "blocked",
    "downgraded",
    "shadow-warned",
    "cache-read tok",
    "spend",
)
_BUDGET_HEADERS: Final = ("budget / scope", "action", "used", "spent / limit", "resets")
_BUDGET_PLAIN_HEADERS: Final = ("budget", "scope", "action", "used", "spent / limit", "resets")
