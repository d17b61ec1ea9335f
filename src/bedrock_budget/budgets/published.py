"""Budget definitions published in the store, which every process of a fleet follows without a restart.

``bedrock-budget budgets apply budgets.yaml --store URI`` (or :func:`publish`) stores the whole set as one
versioned JSON document (:meth:`Store.publish_definitions`); processes wrapped with ``budgets="store"``
load it and follow its version (:mod:`bedrock_budget.budgets.live`). Changes go through :func:`change`,
which reads the current set, edits it and publishes it only if nobody published in between (compare and
set on the version), retrying a few times, so two operators changing two budgets at once both land.

The document is the budgets' plain data (:meth:`Budget.to_dict`, the YAML schema) and is validated like a
budgets file on the way in and on the way out: a process never follows a set it cannot read (it keeps the
last good one and logs why).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from bedrock_budget.budgets.loading import budgets_from_data
from bedrock_budget.budgets.model import Budget
from bedrock_budget.budgets.overrides import OVERRIDE_FIELDS
from bedrock_budget.errors import (
    BudgetConfigError,
    ConfigurationError,
    DefinitionsChangedError,
    NoBudgetsError,
)
from bedrock_budget.stores.base import Store

#: The document's format number: a process refuses (and keeps its last good set) a format it does not know.
FORMAT: Final = 1
_ATTEMPTS: Final = 8


@dataclass(frozen=True)
class Published:
    """One published version of the fleet's budgets."""

    version: int
    budgets: tuple[Budget, ...]
    published_at: datetime

    def budget(self, name: str) -> Budget:
        for budget in self.budgets:
            if budget.name == name:
                return budget
        known = ", ".join(b.name for b in self.budgets) or "none"
        raise ConfigurationError(f"no budget named {name!r} in the store's definitions (known: {known})")


def encode(budgets: Sequence[Budget]) -> str:
    """The document for a set of budgets (canonical JSON: the same set always gives the same text)."""
    names = [budget.name for budget in budgets]
    if len(set(names)) != len(names):
        raise ConfigurationError("two budgets have the same name")
    data = {"format": FORMAT, "budgets": [budget.to_dict() for budget in budgets]}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decode(document: str, version: int) -> list[Budget]:
    """The budgets of a published document; a :class:`ConfigurationError` names the version at fault."""
    where = f"the store's budget definitions (version {version})"
    try:
        data = json.loads(document, parse_float=Decimal)  # amounts stay exact
    except ValueError as exc:
        raise ConfigurationError(f"{where} are not JSON: {exc}") from None
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
        raise ConfigurationError(
            f"{where} have format {found!r}; this version of bedrock-budget reads {FORMAT}"
        )
    try:
        return budgets_from_data(data.get("budgets", []))
    except BudgetConfigError as exc:
        raise BudgetConfigError(exc.budget, exc.field, f"{exc.reason} (in {where})") from None


def read(store: Store) -> Published | None:
    """The store's published budgets, or ``None`` when none were published."""
    found = store.read_definitions()
    if found is None:
        return None
    budgets = decode(found.document, found.version)
    moment = datetime.fromtimestamp(found.published_ms / 1000, UTC)
    return Published(found.version, tuple(budgets), moment)


def publish(
    store: Store,
    budgets: Sequence[Budget],
    *,
    expected_version: int | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """Publish a whole set (replacing what was there); returns its version. An empty set is refused: to
    stop enforcing, publish budgets with the ``warn`` action, so the change stays visible."""
    if not budgets:
        raise NoBudgetsError("refusing to publish an empty set of budgets")
    return store.publish_definitions(
        encode(budgets), now_ms=int(clock() * 1000), expected_version=expected_version
    )


def change(
    store: Store,
    edit: Callable[[list[Budget]], list[Budget]],
    *,
    clock: Callable[[], float] = time.time,
) -> tuple[Published, int]:
    """Apply ``edit`` to the published set and publish the result if nobody published in between, trying
    again on a conflict; returns the set it edited and the new version."""
    for _ in range(_ATTEMPTS):
        current = read(store)
        if current is None:
            raise ConfigurationError(
                "the store holds no budget definitions; publish some first with `budgets apply FILE`"
            )
        try:
            version = publish(
                store, edit(list(current.budgets)), expected_version=current.version, clock=clock
            )
        except DefinitionsChangedError:
            continue
        return current, version
    raise ConfigurationError(f"the budget definitions kept changing under {_ATTEMPTS} attempts; try again")


def set_limit(
    store: Store,
    name: str,
    *,
    value: str | None = None,
    limit_usd: str | int | Decimal | None = None,
    limit_tokens: str | int | Decimal | None = None,
) -> int:
    """Change a published budget's limit, or (``value``) one value's override of it; returns the new
    version. Every process following the store applies it within its refresh interval."""
    limits = {"limit_usd": _text(limit_usd), "limit_tokens": _text(limit_tokens)}
    _, version = change(
        store, lambda budgets: replaced(budgets, with_limits(named(budgets, name), value, limits))
    )
    return version


def remove_override(store: Store, name: str, value: str) -> int:
    """Drop one value's override of a published budget (it gets the budget's own limit); the new version."""
    _, version = change(
        store, lambda budgets: replaced(budgets, without_override(named(budgets, name), value))
    )
    return version


def _text(amount: str | int | Decimal | None) -> str | None:
    if amount is None:
        return None
    if isinstance(amount, float):
        raise ConfigurationError(f"{amount!r} is a float, which is not exact; pass a string")
    return str(amount)


def named(budgets: list[Budget], name: str) -> Budget:
    for budget in budgets:
        if budget.name == name:
            return budget
    known = ", ".join(b.name for b in budgets) or "none"
    raise ConfigurationError(f"no budget named {name!r} in the store's definitions (known: {known})")


def with_limits(budget: Budget, value: str | None, limits: Mapping[str, str | None]) -> Budget:
    """``budget`` with new limits: its own (``value`` None) or one value's override, merged into what the
    override already sets. A limit given as ``None`` is left as it is."""
    given = {field: amount for field, amount in limits.items() if amount is not None}
    unknown = sorted(set(given) - set(OVERRIDE_FIELDS))
    if unknown:
        raise ConfigurationError(f"cannot set {', '.join(unknown)}; expected {', '.join(OVERRIDE_FIELDS)}")
    if not given:
        raise ConfigurationError(f"give a new limit: {', '.join(OVERRIDE_FIELDS)}")
    if value is None:
        return budget.replace(**given)
    overrides = {v: o.to_dict() for v, o in budget.overrides.items()}
    overrides[value] = {**overrides.get(value, {}), **given}
    return budget.replace(overrides=overrides)


def without_override(budget: Budget, value: str) -> Budget:
    if value not in budget.overrides:
        raise ConfigurationError(f"budget {budget.name!r} has no override for {value!r}")
    overrides = {v: o.to_dict() for v, o in budget.overrides.items() if v != value}
    return budget.replace(overrides=overrides)


def replaced(budgets: list[Budget], new: Budget) -> list[Budget]:
    """``budgets`` with the budget of ``new``'s name replaced by it."""
    named(budgets, new.name)
    return [new if b.name == new.name else b for b in budgets]


def limit_source(budget: Budget, value: str | None) -> tuple[Budget, str]:
    """The budget as it applies to one value of its wildcard key, and where its limits come from."""
    if value is None or budget.override_key is None or value not in budget.overrides:
        return budget, "the budget's own limit"
    effective = budget.for_values(((budget.override_key, value),))
    return effective, f"the override for {budget.override_key}={value}"


__all__ = [
    "FORMAT",
    "Published",
    "change",
    "decode",
    "encode",
    "limit_source",
    "named",
    "publish",
    "read",
    "remove_override",
    "replaced",
    "set_limit",
    "with_limits",
    "without_override",
]
