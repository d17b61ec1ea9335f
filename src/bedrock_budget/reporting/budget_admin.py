"""Operating budgets: their current windows as the store sees them, resetting a window, changing a limit.

Changing a limit rewrites only that value in the budgets file (comments, order and quoting elsewhere are
kept). Spend already recorded stays: store keys carry the budget name, scope values and window, never the
limit.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from bedrock_budget.budgets.compiled import CompiledBudgets, current_ref, fixed_scope
from bedrock_budget.budgets.loading import parse_budgets_yaml
from bedrock_budget.budgets.model import WILDCARD, Budget
from bedrock_budget.budgets.status import BudgetStatus, status_of
from bedrock_budget.errors import ConfigurationError
from bedrock_budget.reporting.tallies import ReportError
from bedrock_budget.stores.base import CounterRef, Store

_PERCENT: Final = Decimal("0.01")
LIMIT_FIELDS: Final = ("limit_usd", "limit_tokens")


def find_budget(budgets: Sequence[Budget], name: str, source: str = "the budgets file") -> Budget:
    for budget in budgets:
        if budget.name == name:
            return budget
    known = ", ".join(b.name for b in budgets) or "none"
    raise ReportError(f"unknown budget {name!r} (budgets in {source}: {known})")


def budget_scope_keys(budget: Budget) -> dict[str, str]:
    """Every scope key of a budget with its configured value (``*`` for a wildcard)."""
    return fixed_scope(budget)


def parse_scope(budget: Budget, pairs: Iterable[str]) -> dict[str, str]:
    """``key=value`` options naming scope values of ``budget``; each key must be one of its scope keys and
    agree with a fixed value."""
    allowed = budget_scope_keys(budget)
    scope: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ReportError(f"--scope {pair!r} is not key=value")
        if key not in allowed:
            keys = ", ".join(sorted(allowed)) or "none: it covers all calls"
            raise ReportError(f"budget {budget.name!r} has no scope key {key!r} (its scope keys: {keys})")
        if allowed[key] != WILDCARD and allowed[key] != value:
            raise ReportError(f"budget {budget.name!r} only counts {key}={allowed[key]}, not {key}={value}")
        if value == WILDCARD:
            raise ReportError(f"--scope {pair!r}: give a concrete value, not '*'")
        scope[key] = value
    return scope


def _matches(scope: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(scope.get(k) == v for k, v in wanted.items())


# --- reading and resetting current windows (``Ledger.read`` / ``status`` / ``reset`` come here) ---------


def read_window(store: Store, budget: Budget, scope: Mapping[str, str] | None, now: float) -> BudgetStatus:
    """The current window of one budget for concrete scope values (the budget's own scope by default)."""
    ref = window_ref(budget, scope, now)
    (state,) = store.read([ref], now_ms=int(now * 1000))
    return status_of(budget.for_values(ref.scope), state)


def window_ref(budget: Budget, scope: Mapping[str, str] | None, now: float) -> CounterRef:
    """The counter of one budget's current window for concrete scope values (its own scope by default)."""
    values = dict(scope) if scope is not None else fixed_scope(budget)
    if any(v == WILDCARD for v in values.values()):
        raise ConfigurationError(f"budget {budget.name!r} has a wildcard scope; pass concrete scope values")
    return current_ref(budget, values, now)


def current_windows(
    store: Store, budgets: Iterable[Budget], name: str | None, now: float
) -> list[BudgetStatus]:
    """Every current-window counter of the budgets (or of ``name``): one per scope value for wildcard
    budgets; a budget without wildcards is listed even before its first call."""
    now_ms = int(now * 1000)
    results: list[BudgetStatus] = []
    for budget in budgets:
        if name is not None and budget.name != name:
            continue
        start, _ = budget.window.bounds(now)
        states = [
            s
            for s in store.list(now_ms=now_ms, budget=budget.name)
            if s.ref.start == start
            and s.ref.window == budget.window.kind
            and s.ref.timezone == budget.timezone
        ]
        fixed = fixed_scope(budget)
        if not any(v == WILDCARD for v in fixed.values()) and not states:
            (state,) = store.read([current_ref(budget, fixed, now)], now_ms=now_ms)
            states = [state]
        results.extend(
            status_of(budget.for_values(s.ref.scope), s) for s in sorted(states, key=lambda s: s.ref.scope)
        )
    return results


def forget_window_spend(
    store: Store, budgets: Sequence[Budget], name: str, scope: Mapping[str, str] | None, now: float
) -> int:
    """Forget the current window's spend of a budget (all scope values unless ``scope`` is given); how many
    counters existed. Live holds stay (:meth:`Store.forget_spend`)."""
    budget = CompiledBudgets(budgets).budget(name)
    if scope is not None:
        refs = [current_ref(budget, scope, now)]
    else:
        refs = [s.ref for s in current_windows(store, [budget], name, now) if s.ref is not None]
    return store.forget_spend(refs, now_ms=int(now * 1000))


def budget_windows(
    store: Store,
    budgets: Sequence[Budget],
    name: str | None = None,
    *,
    scope: Mapping[str, str] | None = None,
    now: float | None = None,
    detail: bool = False,
) -> list[BudgetStatus]:
    """The current window of every budget (or of ``name``): one entry per scope value already spent
    against; a wildcard budget without any spend yet gets one zero entry showing its pattern."""
    moment = time.time() if now is None else now
    wanted = dict(scope or {})
    configured = CompiledBudgets(budgets).budgets  # refuses what a ledger would refuse
    statuses = current_windows(store, configured, name, moment)
    if detail and statuses:
        alerts = {
            state.ref: state.alerted
            for state in store.read([s.ref for s in statuses if s.ref is not None], now_ms=int(moment * 1000))
        }
        statuses = [
            replace(s, alerts_fired=alerts.get(s.ref, ())) if s.ref is not None else s for s in statuses
        ]
    found: list[BudgetStatus] = []
    for budget in configured:
        if name is not None and budget.name != name:
            continue
        mine = [s for s in statuses if s.budget.name == budget.name and _matches(s.scope, wanted)]
        found.extend(mine)
        if not mine and not wanted:
            start, end = budget.window.bounds(moment)
            found.append(
                BudgetStatus(
                    budget=budget,
                    scope=MappingProxyType(budget_scope_keys(budget)),
                    window_start=budget.window.local(start) if end is not None else None,
                    resets_at=budget.window.local(end) if end is not None else None,
                    spent_usd=Decimal(0),
                    reserved_usd=Decimal(0),
                    spent_tokens=Decimal(0),
                    reserved_tokens=Decimal(0),
                    active_reservations=0,
                    models=MappingProxyType({}),
                    ref=None,
                )
            )
    return found


def windows_to_reset(
    store: Store, budgets: Sequence[Budget], name: str, scope: Mapping[str, str], *, now: float | None = None
) -> list[BudgetStatus]:
    """The recorded current-window counters of ``name`` matching ``scope`` (all of them when empty)."""
    find_budget(budgets, name)
    return [w for w in budget_windows(store, budgets, name, scope=scope, now=now) if w.ref is not None]


def reset_windows(store: Store, windows: Sequence[BudgetStatus], *, now: float | None = None) -> int:
    """Forget the counters' spend, alert markers and tallies; returns how many existed. Live holds stay
    (:meth:`Store.forget_spend`), so calls and leases in flight are charged to the fresh window."""
    refs = [w.ref for w in windows if w.ref is not None]
    if not refs:
        return 0
    moment = time.time() if now is None else now
    return store.forget_spend(refs, now_ms=int(moment * 1000))


# --- changing a limit in the budgets file ---------------------------------------------------------------


def _compose(text: str, source: str) -> Any:
    import yaml

    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{source}: not valid YAML: {exc}") from exc


def _entry_node(root: Any, name: str) -> Any | None:
    import yaml

    node = root
    if isinstance(node, yaml.MappingNode) and len(node.value) == 1 and node.value[0][0].value == "budgets":
        node = node.value[0][1]
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            if isinstance(item, yaml.MappingNode):
                for key, value in item.value:
                    if key.value == "name" and isinstance(value, yaml.ScalarNode) and value.value == name:
                        return item
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == name and isinstance(value, yaml.MappingNode):
                return value
    return None


def _edit(text: str, entry: Any, field: str, value: str) -> str:
    """``text`` with ``field`` of the mapping node ``entry`` set to ``value``, touching nothing else."""
    import yaml

    for key, node in entry.value:
        if key.value == field:
            if not isinstance(node, yaml.ScalarNode):
                raise ConfigurationError(
                    f"{field} of this budget is not a plain value; edit the file by hand"
                )
            start, end = node.start_mark.index, node.end_mark.index
            quote = text[start] if text[start] in "\"'" else ""
            return f"{text[:start]}{quote}{value}{quote}{text[end:]}"
    if entry.flow_style:
        close = entry.end_mark.index - 1
        return f"{text[:close]}, {field}: {value}{text[close:]}"
    anchor = next(((k, v) for k, v in entry.value if isinstance(v, yaml.ScalarNode)), None)
    if anchor is None:
        raise ConfigurationError(f"cannot add {field} to this budget's entry; edit the file by hand")
    key, node = anchor
    line_end = text.find("\n", node.end_mark.index)
    if line_end < 0:
        return f"{text}\n{' ' * key.start_mark.column}{field}: {value}\n"
    return f"{text[: line_end + 1]}{' ' * key.start_mark.column}{field}: {value}\n{text[line_end + 1 :]}"


def set_limits(
    path: Path,
    name: str,
    *,
    limit_usd: str | None = None,
    limit_tokens: str | None = None,
    limit_requests: str | None = None,
) -> tuple[Budget, Budget]:
    """Change a budget's limits in its YAML file; returns the budget before and after.

    Only the limit values change in the file. The result is validated by loading the whole file again
    before it replaces the original (atomically), so a bad value never leaves a broken file behind."""
    given = (("limit_usd", limit_usd), ("limit_tokens", limit_tokens), ("limit_requests", limit_requests))
    changes = {k: v for k, v in given if v is not None}
    if not changes:
        raise ReportError("nothing to change: give --limit-usd, --limit-tokens and/or --limit-requests")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read budgets file {str(path)!r}: {exc.strerror}") from exc
    before = find_budget(parse_budgets_yaml(text, source=str(path)), name, str(path))
    wanted = before.replace(**changes)
    new_text = text
    for field in changes:
        entry = _entry_node(_compose(new_text, str(path)), name)
        if entry is None:
            raise ConfigurationError(f"{path}: cannot find the entry of budget {name!r} to edit")
        new_text = _edit(new_text, entry, field, _plain(getattr(wanted, field)))
    after_all = parse_budgets_yaml(new_text, source=str(path))
    after = find_budget(after_all, name, str(path))
    if after != wanted:
        raise ConfigurationError(f"{path}: rewriting budget {name!r} did not give the expected definition")
    _replace_file(path, new_text)
    return before, after


def _plain(value: object) -> str:
    # Plain notation for YAML: limits are Decimal amounts ("40.00", never "4E+1") or whole request counts.
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _replace_file(path: Path, text: str) -> None:
    # Through a symlink to the real file, so a linked budgets file stays linked.
    target = path.resolve()
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        with contextlib.suppress(OSError):
            os.chmod(temp, target.stat().st_mode & 0o7777)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
