"""The budget model: scope x window x limits x action x alert thresholds.

A :class:`Budget` is immutable and validated on construction; every problem raises
:class:`~bedrock_budget.errors.BudgetConfigError` naming the budget and the field.

Scope values match a call's attribution exactly; the value ``"*"`` means one budget per distinct value of
that key (``scope={"user": "*"}`` caps each user separately). ``model`` / ``model_family`` narrow a budget
to one model or family (``"*"`` again means one budget per model / family).

``on_unattributed`` says what happens to a call that lacks an attribution key a ``"*"`` scope needs (one
code path that forgets ``bb.attribute(user=...)`` must not escape every per-user cap): ``"pool"`` (the
default) counts all such calls together under the value :data:`UNATTRIBUTED` (``"(none)"``), with the
budget's own limit; ``"refuse"`` refuses them before any I/O with
:class:`~bedrock_budget.errors.UnattributedCallError`; ``"skip"`` leaves them uncapped by this budget (the
behaviour before the option existed, now only when asked for). Every such call is counted either way
(``bedrock_budget_unattributed_calls_total``).

``limit_requests`` caps calls per window (RPM/RPH/RPD with ``window="minute"``/``"hour"``/``"day"``). A
call counts one request from its reservation; a released call gives it back; settling never changes the
count. Clamping cannot make a call fit a request limit, so a ``clamp`` budget refuses there like ``block``.

Token limits count weighted tokens: each token type has a weight (default 1) with at most three decimal
places, so weighted amounts are exact integers in milli-tokens.

``on_expired_hold`` says what the store does with a hold that expires unsettled (its process was killed,
or lost the store for longer than the reservation TTL; live calls keep renewing theirs): ``"release"``
(the default) gives the capacity back and records nothing, so a crashed fleet never locks a budget out,
at the price of losing the cost of the calls it had in flight (at most their worst cases); ``"charge"``
records the hold's worst case as spent, so spend is never undercounted, at the price of charging calls
that may never have been billed. A settlement arriving after a charged expiry adds nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

from bedrock_budget.budgets.fields import fail as _fail
from bedrock_budget.budgets.fields import (
    limit_of,
    min_output_of,
    requests_of,
    thresholds_of,
    weights_of,
)
from bedrock_budget.budgets.fields import text as _text
from bedrock_budget.budgets.overrides import LimitOverride, check_overrides
from bedrock_budget.budgets.units import MILLI_PER_TOKEN, tokens_to_milli, usd_to_nanos
from bedrock_budget.budgets.windows import WINDOW_KINDS, Window
from bedrock_budget.errors import shown

Action = Literal["block", "downgrade", "clamp", "warn"]
ACTIONS: Final[tuple[str, ...]] = get_args(Action)
ExpiredHoldPolicy = Literal["release", "charge"]
EXPIRED_HOLD_POLICIES: Final[tuple[str, ...]] = get_args(ExpiredHoldPolicy)
UnattributedPolicy = Literal["pool", "refuse", "skip"]
UNATTRIBUTED_POLICIES: Final[tuple[str, ...]] = get_args(UnattributedPolicy)
#: The scope value under which a ``"pool"`` budget counts calls that lack one of its wildcard keys; the
#: same text reports use for calls without a value.
UNATTRIBUTED: Final = "(none)"
_ACTION_ALIASES: Final = {"shadow": "warn"}
DEFAULT_THRESHOLDS: Final = (50, 80, 100)
WILDCARD: Final = "*"
MODEL_KEY: Final = "model"
FAMILY_KEY: Final = "model_family"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}")
_SCOPE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_MAX_SCOPE_VALUE = 1024


class Budget:
    """One budget definition.

    ``Budget(name="chat-daily", scope={"app": "chat"}, window="day", timezone="UTC", limit_usd="25.00",
    action="block")``. ``limit_usd`` takes ``str``/``Decimal``/``int`` (never float); ``limit_tokens``
    likewise, counting weighted tokens. At least one limit is required. ``max_call_usd`` caps any single
    call's worst case: a larger one is refused (``block``), clamped to fit (``clamp``) or downgraded, like a
    call that does not fit the limit (a ``warn`` budget lets it go). ``overrides`` gives single values of
    a wildcard budget their own limits (:mod:`bedrock_budget.budgets.overrides`).
    """

    __slots__ = (
        "_scope",
        "_unit_weights",
        "_variants",
        "_weights",
        "action",
        "downgrade_to",
        "limit_milli",
        "limit_nanos",
        "limit_requests",
        "limit_tokens",
        "limit_usd",
        "max_call_nanos",
        "max_call_usd",
        "min_output_tokens",
        "model",
        "model_family",
        "name",
        "on_expired_hold",
        "on_unattributed",
        "override_key",
        "overrides",
        "thresholds",
        "weight_milli",
        "window",
    )

    _scope: Mapping[str, str]
    _variants: dict[str, Budget]
    _weights: Mapping[str, Decimal]
    name: str
    model: str | None
    model_family: str | None
    window: Window
    limit_usd: Decimal | None
    limit_tokens: Decimal | None
    limit_nanos: int | None
    limit_milli: int | None
    limit_requests: int | None
    max_call_usd: Decimal | None
    max_call_nanos: int | None
    action: str
    downgrade_to: str | None
    min_output_tokens: int | None
    thresholds: tuple[int, ...]
    on_expired_hold: str
    on_unattributed: str
    overrides: Mapping[str, LimitOverride]
    override_key: str | None
    weight_milli: Mapping[str, int]
    _unit_weights: bool

    def __init__(
        self,
        name: str,
        *,
        scope: Mapping[str, str] | None = None,
        window: str = "day",
        timezone: str = "UTC",
        limit_usd: str | Decimal | int | None = None,
        limit_tokens: str | Decimal | int | None = None,
        limit_requests: int | str | None = None,
        max_call_usd: str | Decimal | int | None = None,
        token_weights: Mapping[str, str | Decimal | int] | None = None,
        action: str = "block",
        downgrade_to: str | None = None,
        min_output_tokens: int | None = None,
        thresholds: Iterable[int] = DEFAULT_THRESHOLDS,
        model: str | None = None,
        model_family: str | None = None,
        on_expired_hold: str = "release",
        on_unattributed: str = "pool",
        overrides: Mapping[str, Mapping[str, str | Decimal | int] | LimitOverride] | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise _fail(
                None,
                "name",
                f"{shown(name)} must be 1-128 characters: letters, digits and ._:/@+- (starting with a "
                "letter or digit)",
            )
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "_scope", self._check_scope(name, scope))
        model = self._scope_pop_alias(name, scope, MODEL_KEY, model)
        model_family = self._scope_pop_alias(name, scope, FAMILY_KEY, model_family)
        set_(self, "model", None if model is None else _text(name, "model", model, max_len=2048))
        set_(
            self,
            "model_family",
            None if model_family is None else _text(name, "model_family", model_family, max_len=128),
        )

        if not isinstance(window, str) or window not in WINDOW_KINDS:
            raise _fail(name, "window", f"{shown(window)} is not one of {', '.join(WINDOW_KINDS)}")
        if not isinstance(timezone, str):
            raise _fail(
                name, "timezone", f"must be an IANA zone name such as 'Europe/Berlin', not {shown(timezone)}"
            )
        try:
            set_(self, "window", Window(window, timezone))
        except ValueError as exc:
            raise _fail(name, "timezone", str(exc)) from exc

        usd = limit_of(name, "limit_usd", limit_usd, places=9)
        tokens = limit_of(name, "limit_tokens", limit_tokens, places=3)
        requests = requests_of(name, "limit_requests", limit_requests)
        if usd is None and tokens is None and requests is None:
            raise _fail(
                name, "limit_usd", "a budget needs limit_usd, limit_tokens or limit_requests (or several)"
            )
        set_(self, "limit_requests", requests)
        set_(self, "limit_usd", usd)
        set_(self, "limit_tokens", tokens)
        set_(self, "limit_nanos", None if usd is None else usd_to_nanos(usd))
        set_(self, "limit_milli", None if tokens is None else tokens_to_milli(tokens))
        per_call = limit_of(name, "max_call_usd", max_call_usd, places=9)
        set_(self, "max_call_usd", per_call)
        set_(self, "max_call_nanos", None if per_call is None else usd_to_nanos(per_call))
        weights = weights_of(name, token_weights)
        set_(self, "_weights", MappingProxyType(weights))
        set_(self, "weight_milli", MappingProxyType({k: tokens_to_milli(v) for k, v in weights.items()}))
        # Every type at weight 1 (the default): weighing is a plain sum, on every reserve and settle.
        set_(self, "_unit_weights", all(w == MILLI_PER_TOKEN for w in self.weight_milli.values()))

        action = _ACTION_ALIASES.get(action, action) if isinstance(action, str) else action
        if action not in ACTIONS:
            raise _fail(name, "action", f"{shown(action)} is not one of {', '.join(ACTIONS)} (or 'shadow')")
        set_(self, "action", action)
        if action == "downgrade":
            if downgrade_to is None:
                raise _fail(name, "downgrade_to", "action 'downgrade' needs the id of the cheaper model")
            set_(self, "downgrade_to", _text(name, "downgrade_to", downgrade_to, max_len=2048))
        elif downgrade_to is not None:
            raise _fail(name, "downgrade_to", f"only applies to action 'downgrade', not {action!r}")
        else:
            set_(self, "downgrade_to", None)
        set_(self, "min_output_tokens", min_output_of(name, action, min_output_tokens))
        set_(self, "thresholds", thresholds_of(name, thresholds))
        if on_expired_hold not in EXPIRED_HOLD_POLICIES:
            raise _fail(
                name,
                "on_expired_hold",
                f"{shown(on_expired_hold)} is not one of {', '.join(EXPIRED_HOLD_POLICIES)}",
            )
        set_(self, "on_expired_hold", on_expired_hold)
        if on_unattributed not in UNATTRIBUTED_POLICIES:
            raise _fail(
                name,
                "on_unattributed",
                f"{shown(on_unattributed)} is not one of {', '.join(UNATTRIBUTED_POLICIES)}",
            )
        set_(self, "on_unattributed", on_unattributed)
        wildcards = self.wildcard_keys + tuple(
            key
            for key, value in ((MODEL_KEY, self.model), (FAMILY_KEY, self.model_family))
            if value == WILDCARD
        )
        set_(self, "overrides", check_overrides(name, wildcards, overrides))
        # The key an override names a value of: the budget's one wildcard (none with two or more).
        set_(self, "override_key", wildcards[0] if len(wildcards) == 1 else None)
        set_(self, "_variants", {})

    def __reduce__(self) -> tuple[Callable[[dict[str, Any]], Budget], tuple[dict[str, Any]]]:
        # Rebuilt from its plain data through the constructor, as replace() does, so an unpickled budget is
        # validated like any other.
        return (_rebuild_budget, (self.to_dict(),))

    @staticmethod
    def _check_scope(name: str, scope: Mapping[str, str] | None) -> Mapping[str, str]:
        if scope is None:
            return MappingProxyType({})
        if not isinstance(scope, Mapping):
            raise _fail(name, "scope", f"must be a mapping of attribution key to value, not {shown(scope)}")
        clean: dict[str, str] = {}
        for key, value in scope.items():
            if not isinstance(key, str) or not _SCOPE_KEY.fullmatch(key):
                raise _fail(
                    name, f"scope.{key}", "keys are 1-64 characters: letters, digits and _.- (letter first)"
                )
            if key in (MODEL_KEY, FAMILY_KEY):
                continue
            clean[key] = _text(name, f"scope.{key}", value, max_len=_MAX_SCOPE_VALUE)
        return MappingProxyType(dict(sorted(clean.items())))

    @staticmethod
    def _scope_pop_alias(
        name: str, scope: Mapping[str, str] | None, key: str, value: str | None
    ) -> str | None:
        if scope is None or key not in scope:
            return value
        if value is not None and value != scope[key]:
            raise _fail(name, key, f"given both as {key}={shown(value)} and scope.{key}={shown(scope[key])}")
        return scope[key]

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"Budget is immutable; use replace(): cannot set {key!r}")

    @property
    def scope(self) -> Mapping[str, str]:
        """Attribution keys and values this budget covers (``"*"``: one budget per value)."""
        return self._scope

    @property
    def token_weights(self) -> Mapping[str, Decimal]:
        return self._weights

    @property
    def timezone(self) -> str:
        return self.window.timezone

    @property
    def wildcard_keys(self) -> tuple[str, ...]:
        """The attribution keys this budget keeps one counter per value of (scope value ``"*"``)."""
        return tuple(key for key, wanted in self._scope.items() if wanted == WILDCARD)

    @property
    def is_global(self) -> bool:
        return not self._scope and self.model is None and self.model_family is None

    def weigh(self, tokens: Mapping[str, int]) -> int:
        """Weighted milli-tokens of a token count by type; a type without a weight counts at 1."""
        if self._unit_weights:
            return sum(tokens.values()) * MILLI_PER_TOKEN
        weights = self.weight_milli
        return sum(count * weights.get(kind, MILLI_PER_TOKEN) for kind, count in tokens.items())

    def match(
        self, attribution: Mapping[str, str], model_id: str, model_family: str | None
    ) -> tuple[tuple[str, str], ...] | None:
        """The concrete scope values this budget applies to for a call, or ``None`` when it does not
        apply. Values are sorted by key; ``model``/``model_family`` are included when the budget names
        them. A wildcard key the call lacks takes the value :data:`UNATTRIBUTED` unless the budget skips
        such calls (``on_unattributed="skip"``); refusing them is the ledger's part."""
        values: list[tuple[str, str]] = []
        for key, wanted in self._scope.items():
            got = attribution.get(key)
            if not got:
                if wanted != WILDCARD or self.on_unattributed == "skip":
                    return None
                got = UNATTRIBUTED
            elif wanted != WILDCARD and got != wanted:
                return None
            values.append((key, got))
        if self.model is not None:
            if self.model != WILDCARD and self.model != model_id:
                return None
            values.append((MODEL_KEY, model_id))
        if self.model_family is not None:
            if not model_family or (self.model_family != WILDCARD and self.model_family != model_family):
                return None
            values.append((FAMILY_KEY, model_family))
        values.sort()
        return tuple(values)

    def to_dict(self) -> dict[str, Any]:
        """The definition as plain data (the YAML schema), for round trips and display."""
        data: dict[str, Any] = {"name": self.name}
        if self._scope:
            data["scope"] = dict(self._scope)
        if self.model is not None:
            data["model"] = self.model
        if self.model_family is not None:
            data["model_family"] = self.model_family
        data["window"] = self.window.kind
        data["timezone"] = self.window.timezone
        if self.limit_usd is not None:
            data["limit_usd"] = str(self.limit_usd)
        if self.limit_tokens is not None:
            data["limit_tokens"] = str(self.limit_tokens)
        if self.limit_requests is not None:
            data["limit_requests"] = self.limit_requests
        if self.max_call_usd is not None:
            data["max_call_usd"] = str(self.max_call_usd)
        weights = {k: str(v) for k, v in self._weights.items() if v != 1}
        if weights:
            data["token_weights"] = weights
        data["action"] = self.action
        if self.downgrade_to is not None:
            data["downgrade_to"] = self.downgrade_to
        if self.min_output_tokens is not None:
            data["min_output_tokens"] = self.min_output_tokens
        data["thresholds"] = list(self.thresholds)
        if self.on_expired_hold != "release":
            data["on_expired_hold"] = self.on_expired_hold
        if self.on_unattributed != "pool":
            data["on_unattributed"] = self.on_unattributed
        if self.overrides:
            data["overrides"] = {value: o.to_dict() for value, o in self.overrides.items()}
        return data

    def overridden_value(self, values: tuple[tuple[str, str], ...]) -> str | None:
        """The wildcard value of a counter's scope values when this budget overrides it, else ``None``."""
        key = self.override_key
        if key is None or not self.overrides:
            return None
        value = next((v for k, v in values if k == key), None)
        return value if value is not None and value in self.overrides else None

    def for_values(self, values: tuple[tuple[str, str], ...]) -> Budget:
        """The budget as it applies to one counter (its concrete scope values, as :meth:`match` gives
        them): itself, or a copy with the limits of the override for its wildcard value (see
        :mod:`bedrock_budget.budgets.overrides`). Copies are made once per value and kept."""
        value = self.overridden_value(values)
        if value is None:
            return self
        override = self.overrides[value]
        variant = self._variants.get(value)
        if variant is None:
            data = {k: v for k, v in self.to_dict().items() if k != "overrides"}
            variant = self._variants[value] = _rebuild_budget({**data, **override.changes()})
        return variant

    def replace(self, **changes: Any) -> Budget:
        """A copy with some fields changed (e.g. a new limit; the spend already recorded is kept because
        store keys never depend on limits)."""
        return _rebuild_budget({**self.to_dict(), **changes})

    def _key(self) -> tuple[object, ...]:
        # Compares amounts as integers, so limit_usd="25.0" and "25.00" are the same budget.
        return (
            self.name,
            tuple(self._scope.items()),
            self.model,
            self.model_family,
            self.window,
            self.limit_nanos,
            self.limit_milli,
            self.limit_requests,
            self.max_call_nanos,
            tuple(sorted(self.weight_milli.items())),
            self.action,
            self.downgrade_to,
            self.min_output_tokens,
            self.thresholds,
            self.on_expired_hold,
            self.on_unattributed,
            tuple(self.overrides.items()),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Budget) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "name")
        return f"Budget({self.name!r}, {fields})"


def _rebuild_budget(data: dict[str, Any]) -> Budget:
    arguments = dict(data)
    name = arguments.pop("name")
    return Budget(name, **arguments)
