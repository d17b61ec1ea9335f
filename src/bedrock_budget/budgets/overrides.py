"""Per-value limit overrides of a wildcard budget: ``user: "*"`` with ``limit_usd: 5`` for everyone, and
``overrides: {"u-17": {limit_usd: "50.00"}}`` for one customer.

An override replaces one or more of the budget's limits for one value of its wildcard key; everything else
(window, action, thresholds, weights, store keys) stays the budget's. It may raise or lower the limit.
Store keys never depend on limits, so adding, changing or removing an override keeps the value's spend.

Overrides need a budget with exactly one wildcard (one ``"*"`` among its scope keys, ``model`` and
``model_family``): the override's key is that wildcard's value, e.g. a user id, an app name or a model id.
A budget with two wildcards (per user *and* app) cannot name one of its counters by one value, and refuses
overrides with a clear error rather than guess. The value :data:`~bedrock_budget.budgets.model.UNATTRIBUTED`
(``"(none)"``) names the pool of calls that lack the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from bedrock_budget.budgets.fields import fail, limit_of, requests_of, text
from bedrock_budget.errors import shown

#: The budget fields an override may set.
OVERRIDE_FIELDS: Final = ("limit_usd", "limit_tokens", "limit_requests")
_MAX_VALUE: Final = 1024


@dataclass(frozen=True, slots=True)
class LimitOverride:
    """The limits one value of a wildcard budget has instead of the budget's own (``None``: the budget's)."""

    limit_usd: Decimal | None = None
    limit_tokens: Decimal | None = None
    limit_requests: int | None = None

    def to_dict(self) -> dict[str, str]:
        return {field: str(value) for field in OVERRIDE_FIELDS if (value := getattr(self, field)) is not None}

    def changes(self) -> dict[str, Decimal | int]:
        """The budget fields this override replaces."""
        return {field: value for field in OVERRIDE_FIELDS if (value := getattr(self, field)) is not None}


def check_overrides(budget: str, wildcards: tuple[str, ...], raw: object) -> Mapping[str, LimitOverride]:
    """Validated overrides keyed by the wildcard's value; ``wildcards`` are the budget's wildcard keys."""
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping):
        raise fail(budget, "overrides", f"must be a mapping of value to limits, not {shown(raw)}")
    if raw and len(wildcards) != 1:
        found = ", ".join(wildcards) if wildcards else "none"
        raise fail(
            budget,
            "overrides",
            f"need a budget with exactly one '*' in its scope (its wildcard keys: {found}); an override is "
            "keyed by that key's value",
        )
    clean: dict[str, LimitOverride] = {}
    for value, limits in raw.items():
        label = f"overrides.{value}"
        text(budget, label, value, max_len=_MAX_VALUE)
        if value == "*":
            raise fail(budget, label, "names every value; change the budget's own limit instead")
        clean[value] = _one(budget, label, limits)
    return MappingProxyType(dict(sorted(clean.items())))


def _one(budget: str, label: str, limits: object) -> LimitOverride:
    if isinstance(limits, LimitOverride):
        return limits
    if not isinstance(limits, Mapping):
        raise fail(budget, label, f"must be a mapping such as {{limit_usd: '50.00'}}, not {shown(limits)}")
    unknown = sorted(str(k) for k in limits if k not in OVERRIDE_FIELDS)
    if unknown:
        raise fail(
            budget, f"{label}.{unknown[0]}", f"cannot be overridden; expected {', '.join(OVERRIDE_FIELDS)}"
        )
    usd = limit_of(budget, f"{label}.limit_usd", limits.get("limit_usd"), places=9)
    tokens = limit_of(budget, f"{label}.limit_tokens", limits.get("limit_tokens"), places=3)
    requests = requests_of(budget, f"{label}.limit_requests", limits.get("limit_requests"))
    if usd is None and tokens is None and requests is None:
        raise fail(budget, label, f"sets no limit; give one of {', '.join(OVERRIDE_FIELDS)}")
    return LimitOverride(limit_usd=usd, limit_tokens=tokens, limit_requests=requests)
