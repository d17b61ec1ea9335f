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
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.budgets.loading import parse_budgets_yaml
from bedrock_budget.budgets.model import FAMILY_KEY, MODEL_KEY, WILDCARD, Budget
from bedrock_budget.budgets.units import nanos_to_usd
from bedrock_budget.errors import ConfigurationError
from bedrock_budget.pricing.money import format_usd
from bedrock_budget.reporting.tallies import ReportError
from bedrock_budget.stores.base import CounterRef, Store

_PERCENT: Final = Decimal("0.01")
LIMIT_FIELDS: Final = ("limit_usd", "limit_tokens")


@dataclass(frozen=True, slots=True)
class WindowStatus:
    """One budget window (one scope value of a wildcard budget) as the store holds it now."""

    budget: Budget
    scope: Mapping[str, str]
    window_start: datetime | None
    resets_at: datetime | None
    spent_usd: Decimal
    reserved_usd: Decimal
    spent_tokens: Decimal
    reserved_tokens: Decimal
    active_reservations: int
    models: Mapping[str, Mapping[str, int]]
    #: The store counter; ``None`` for a wildcard budget nobody has spent against in this window yet.
    ref: CounterRef | None
    alerts_fired: tuple[str, ...] = ()

    @property
    def utilisation_percent(self) -> Decimal | None:
        """Spent over limit in the tighter unit, as a percentage; ``None`` without a non-zero limit."""
        ratios = [
            spent * 100 / limit
            for spent, limit in (
                (self.spent_usd, self.budget.limit_usd),
                (self.spent_tokens, self.budget.limit_tokens),
            )
            if limit
        ]
        return max(ratios).quantize(_PERCENT, ROUND_HALF_UP) if ratios else None

    def as_dict(self, *, detail: bool = False) -> dict[str, object]:
        budget = self.budget
        data: dict[str, object] = {
            "budget": budget.name,
            "scope": dict(self.scope),
            "window": budget.window.kind,
            "timezone": budget.timezone,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
            "limit_usd": None if budget.limit_usd is None else format_usd(budget.limit_usd),
            "spent_usd": format_usd(self.spent_usd),
            "reserved_usd": format_usd(self.reserved_usd),
            "limit_tokens": None if budget.limit_tokens is None else str(budget.limit_tokens),
            "spent_tokens": str(self.spent_tokens),
            "reserved_tokens": str(self.reserved_tokens),
            "utilisation_percent": None
            if self.utilisation_percent is None
            else str(self.utilisation_percent),
            "active_reservations": self.active_reservations,
            "action": budget.action,
        }
        if detail:
            data["alerts_fired"] = list(self.alerts_fired)
            data["models"] = {
                model: {
                    "calls": counts.get("calls", 0),
                    "cost_usd": format_usd(nanos_to_usd(counts.get("cost", 0))),
                    **{f"{kind}_tokens": counts.get(kind, 0) for kind in _TOKEN_KINDS},
                }
                for model, counts in sorted(self.models.items())
            }
        return data


_TOKEN_KINDS: Final = ("input", "output", "cache_read", "cache_write")


def find_budget(budgets: Sequence[Budget], name: str, source: str = "the budgets file") -> Budget:
    for budget in budgets:
        if budget.name == name:
            return budget
    known = ", ".join(b.name for b in budgets) or "none"
    raise ReportError(f"unknown budget {name!r} (budgets in {source}: {known})")


def budget_scope_keys(budget: Budget) -> dict[str, str]:
    """Every scope key of a budget with its configured value (``*`` for a wildcard)."""
    values = dict(budget.scope)
    if budget.model is not None:
        values[MODEL_KEY] = budget.model
    if budget.model_family is not None:
        values[FAMILY_KEY] = budget.model_family
    return values


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


def budget_windows(
    store: Store,
    budgets: Sequence[Budget],
    name: str | None = None,
    *,
    scope: Mapping[str, str] | None = None,
    now: float | None = None,
    detail: bool = False,
) -> list[WindowStatus]:
    """The current window of every budget (or of ``name``): one entry per scope value already spent
    against; a wildcard budget without any spend yet gets one zero entry showing its pattern."""
    moment = time.time() if now is None else now
    wanted = dict(scope or {})
    ledger = Ledger(store, budgets, clock=lambda: moment)
    try:
        statuses = ledger.status(name)
    finally:
        ledger.close()
    alerts: dict[CounterRef, tuple[str, ...]] = {}
    if detail and statuses:
        for state in store.read([s.ref for s in statuses], now_ms=int(moment * 1000)):
            alerts[state.ref] = state.alerted
    found: list[WindowStatus] = []
    for budget in budgets:
        if name is not None and budget.name != name:
            continue
        mine = [s for s in statuses if s.budget.name == budget.name and _matches(s.scope, wanted)]
        for status in mine:
            found.append(
                WindowStatus(
                    budget=budget,
                    scope=status.scope,
                    window_start=status.window_start,
                    resets_at=status.resets_at,
                    spent_usd=status.spent_usd,
                    reserved_usd=status.reserved_usd,
                    spent_tokens=status.spent_tokens,
                    reserved_tokens=status.reserved_tokens,
                    active_reservations=status.active_reservations,
                    models=status.models,
                    ref=status.ref,
                    alerts_fired=alerts.get(status.ref, ()),
                )
            )
        if not mine and not wanted:
            start, end = budget.window.bounds(moment)
            found.append(
                WindowStatus(
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
) -> list[WindowStatus]:
    """The recorded current-window counters of ``name`` matching ``scope`` (all of them when empty)."""
    find_budget(budgets, name)
    return [w for w in budget_windows(store, budgets, name, scope=scope, now=now) if w.ref is not None]


def reset_windows(store: Store, windows: Sequence[WindowStatus], *, now: float | None = None) -> int:
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
    path: Path, name: str, *, limit_usd: str | None = None, limit_tokens: str | None = None
) -> tuple[Budget, Budget]:
    """Change a budget's limits in its YAML file; returns the budget before and after.

    Only the limit values change in the file. The result is validated by loading the whole file again
    before it replaces the original (atomically), so a bad value never leaves a broken file behind."""
    if limit_usd is None and limit_tokens is None:
        raise ReportError("nothing to change: give --limit-usd and/or --limit-tokens")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read budgets file {str(path)!r}: {exc.strerror}") from exc
    before = find_budget(parse_budgets_yaml(text, source=str(path)), name, str(path))
    changes = {k: v for k, v in (("limit_usd", limit_usd), ("limit_tokens", limit_tokens)) if v is not None}
    wanted = before.replace(**changes)
    new_text = text
    for field in changes:
        entry = _entry_node(_compose(new_text, str(path)), name)
        if entry is None:
            raise ConfigurationError(f"{path}: cannot find the entry of budget {name!r} to edit")
        new_text = _edit(new_text, entry, field, format(getattr(wanted, field), "f"))
    after_all = parse_budgets_yaml(new_text, source=str(path))
    after = find_budget(after_all, name, str(path))
    if after != wanted:
        raise ConfigurationError(f"{path}: rewriting budget {name!r} did not give the expected definition")
    _replace_file(path, new_text)
    return before, after


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
