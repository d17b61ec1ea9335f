"""The error hierarchy. Every error the library raises derives from :class:`BedrockBudgetError` and carries
structured fields, so callers can react without parsing messages."""

from __future__ import annotations

import errno
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, Self


def shown(value: object, limit: int = 80) -> str:
    """A value as an error message shows it to a person: text quoted, numbers as written (``150``, never
    ``Decimal('150')``), containers and other objects by their kind, never a Python repr of their insides."""
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, Decimal):
        text = format(value, "f") if value.is_finite() else str(value)
    elif value is None or isinstance(value, bool | int | float):
        text = str(value)
    elif isinstance(value, Mapping):
        text = "a mapping"
    elif isinstance(value, list | tuple | set | frozenset):
        text = "a list"
    else:
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


class BedrockBudgetError(Exception):
    """Root of every error raised by bedrock-budget."""


class PriceFileError(BedrockBudgetError):
    """A price file is malformed. ``problems`` lists every problem found, each prefixed with its location."""

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = tuple(problems)
        listed = "; ".join(self.problems[:10])
        more = f" (and {len(self.problems) - 10} more)" if len(self.problems) > 10 else ""
        super().__init__(f"{path}: {listed}{more}")


class UnknownModelError(BedrockBudgetError):
    """No price is known for a model. Never priced as $0: add the price or configure a fallback."""

    def __init__(self, model_id: str, *, base_id: str | None = None, suggestions: Sequence[str] = ()) -> None:
        self.model_id = model_id
        self.base_id = base_id or model_id
        self.suggestions = tuple(suggestions)
        hint = f" Did you mean: {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(
            f"no price known for model {model_id!r}.{hint} Add it to a price file "
            "(see prices/README.md) and pass it with price_files=[...] / --prices, "
            "or configure a fallback model."
        )


class UnsupportedPricingError(BedrockBudgetError):
    """The model is known but the requested pricing dimension is not offered (e.g. batch for a model
    without batch prices, an image size the model does not generate)."""

    def __init__(self, model_id: str, dimension: str, detail: str = "") -> None:
        self.model_id = model_id
        self.dimension = dimension
        suffix = f": {detail}" if detail else ""
        what = f"{dimension} price" if dimension else "price"
        super().__init__(f"model {model_id!r} has no {what}{suffix}")


class InvalidUsageError(BedrockBudgetError, ValueError):
    """A usage value is impossible (negative counts, a 1h cache-write share above the total, ...)."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"invalid usage {field}={shown(value)}: {reason}")


class InvalidModelIdError(BedrockBudgetError, ValueError):
    """A model identifier or ARN cannot be parsed."""

    def __init__(self, model_id: str, reason: str) -> None:
        self.model_id = model_id
        super().__init__(f"invalid model id {model_id!r}: {reason}")


class ModelResolutionError(BedrockBudgetError):
    """A model identifier hides the model (application inference profile, provisioned or imported model
    ARN, ...) and no mapping or control-plane lookup could reveal it."""

    def __init__(self, model_id: str, reason: str) -> None:
        self.model_id = model_id
        super().__init__(f"cannot resolve model {model_id!r}: {reason}")


class AttributionError(BedrockBudgetError, ValueError):
    """An attribution key or value is not acceptable (too long, unsafe characters, unknown key)."""

    def __init__(self, key: str, value: object, reason: str) -> None:
        self.key = key
        self.value = value
        super().__init__(f"invalid attribution {key}={shown(value)}: {reason}")


class ConfigurationError(BedrockBudgetError, ValueError):
    """A configuration value (budget definition, store URI, option) is invalid."""


class DependencyVersionError(BedrockBudgetError, ImportError):
    """An installed package is outside the range bedrock-budget works with (e.g. ``wrapt`` 1.x, pulled
    in by an old ``aiobotocore``). ``package``, ``found`` (its version, or ``None`` when it is missing) and
    ``needed`` (the range, as pip writes it) say what to install."""

    def __init__(self, package: str, found: str | None, needed: str, hint: str = "") -> None:
        self.package = package
        self.found = found
        self.needed = needed
        have = f"{package} {found} is installed" if found else f"{package} is not installed"
        suffix = f"; {hint}" if hint else ""
        super().__init__(f"bedrock-budget needs {package}{needed}, but {have}{suffix}")


class ListenError(BedrockBudgetError, OSError):
    """A server of ours (the fake Bedrock, a ``/metrics`` endpoint) cannot listen on its address: the port
    is taken, needs privileges, or the address is not this machine's. Still an ``OSError`` (with the
    ``errno`` of the failure) for callers that catch one around a bind."""

    def __init__(self, host: str, port: int, cause: OSError) -> None:
        self.host = host
        self.port = port
        self.reason = _listen_failure(host, port, cause)
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.message = f"cannot listen on {where}: {self.reason}"
        super().__init__(cause.errno, self.message)

    def __str__(self) -> str:
        return self.message


def _listen_failure(host: str, port: int, cause: OSError) -> str:
    import socket

    if isinstance(cause, socket.gaierror):
        return f"no such host or address {host!r}"
    if cause.errno == errno.EADDRINUSE:
        return f"port {port} is already in use; pick another port, or 0 for any free one"
    if cause.errno == errno.EACCES:
        return f"permission denied (port {port} needs privileges below 1024, or a firewall refuses it)"
    if cause.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine"
    return (cause.strerror or str(cause)).rstrip(".")


class NoBudgetsError(ConfigurationError):
    """Budgets were asked for and none are defined: an empty budgets file or document, or no budget file
    and no ``BEDROCK_BUDGETS*`` environment variables."""


class StoreError(BedrockBudgetError):
    """The budget store failed an operation."""


class StoreUnavailableError(StoreError):
    """The budget store cannot be reached. Raised to callers when the outage policy is ``deny`` (or when
    ``allow`` can no longer journal spend); the ledger handles it internally otherwise."""

    def __init__(self, store: str, reason: str) -> None:
        self.store = store
        self.reason = reason
        super().__init__(f"budget store {store} is unavailable ({reason})")


class DefinitionsChangedError(BedrockBudgetError):
    """Budget definitions were published by someone else since they were read: read them again, reapply
    the change and publish again (``budgets set`` does this by itself)."""

    def __init__(self, expected: int, found: int) -> None:
        self.expected = expected
        self.found = found
        super().__init__(
            f"the budget definitions in the store changed (version {found}, expected {expected}); "
            "read them again and retry"
        )


class EvictionPolicyError(ConfigurationError):
    """The budget store's server may evict keys (its ``maxmemory-policy`` is not ``noeviction``): an evicted
    budget counter restarts at $0, so the budget would silently reset. Set the policy to ``noeviction``, or
    opt in with ``allow_eviction=True`` (``?allow_eviction=1`` in the store URI)."""

    def __init__(self, store: str, policy: str) -> None:
        self.store = store
        self.policy = policy
        super().__init__(
            f"budget store {store} has maxmemory-policy {policy!r}: under memory pressure Redis evicts "
            "budget counters and their budgets silently restart at $0; set maxmemory-policy noeviction, "
            "or accept the risk with allow_eviction=True (?allow_eviction=1 in the store URI)"
        )


class BudgetExceededError(BedrockBudgetError):
    """A call was refused before any byte went to Bedrock because it could exceed a budget.

    Amounts are ``Decimal`` USD for dollar limits; for token limits ``unit`` is ``"tokens"`` and the
    amounts are (weighted) token counts; for request limits ``unit`` is ``"requests"`` and the amounts
    are calls (made, held by calls in flight, and the 1 this call needs).
    """

    def __init__(
        self,
        *,
        budget: str,
        scope: dict[str, str],
        window: str,
        window_start: datetime | None,
        resets_at: datetime | None,
        unit: str,
        limit: Decimal,
        spent: Decimal,
        reserved: Decimal,
        requested: Decimal,
        reason: str = "",
    ) -> None:
        self.budget = budget
        self.scope = dict(scope)
        self.window = window
        self.window_start = window_start
        self.resets_at = resets_at
        self.unit = unit
        self.limit = limit
        self.spent = spent
        self.reserved = reserved
        self.requested = requested
        self.reason = reason

        def fmt(amount: Decimal) -> str:
            # Plain notation: a tiny limit must read "$0.0000001", never "$1E-7".
            if amount == 0:
                text = "0"
            elif amount == amount.to_integral_value():
                text = f"{amount:f}"
            else:
                text = format(amount.normalize(), "f")
            return f"${text}" if unit == "usd" else f"{text} {unit}"

        resets = f", resets at {resets_at.isoformat()}" if resets_at else ""
        detail = f" ({reason})" if reason else ""
        scope_text = ", ".join(f"{key}={value}" for key, value in scope.items()) or "global"
        super().__init__(
            f"budget {budget!r} ({scope_text}) [{window}] would be exceeded: limit {fmt(limit)}, "
            f"spent {fmt(spent)}, reserved {fmt(reserved)}, this call needs up to {fmt(requested)}"
            f"{resets}{detail}"
        )

    @classmethod
    def from_refusal(cls, refusal: RefusalDetails, **extra: Any) -> Self:
        """The error for a budget's refusal; ``extra`` adds a subclass's own fields or replaces ``reason``."""
        fields: dict[str, Any] = {
            "budget": refusal.budget_name,
            "scope": dict(refusal.scope),
            "window": refusal.window,
            "window_start": refusal.window_start,
            "resets_at": refusal.resets_at,
            "unit": refusal.unit,
            "limit": refusal.limit,
            "spent": refusal.spent,
            "reserved": refusal.reserved,
            "requested": refusal.requested,
            "reason": refusal.reason,
        }
        fields.update(extra)
        return cls(**fields)


class BudgetConfigError(ConfigurationError):
    """A budget definition is invalid. ``budget`` names the budget (when known) and ``field`` the offending
    field, so a YAML or environment typo points straight at its line."""

    def __init__(self, budget: str | None, field: str, reason: str) -> None:
        self.budget = budget
        self.field = field
        self.reason = reason
        where = f"budget {budget!r}: " if budget else ""
        super().__init__(f"{where}{field}: {reason}")


class RefusalDetails(Protocol):
    """What :meth:`BudgetExceededError.from_refusal` reads: ``bedrock_budget.budgets.Refusal``."""

    @property
    def budget_name(self) -> str: ...
    @property
    def window(self) -> str: ...
    @property
    def scope(self) -> Mapping[str, str]: ...
    @property
    def window_start(self) -> datetime | None: ...
    @property
    def resets_at(self) -> datetime | None: ...
    @property
    def unit(self) -> str: ...
    @property
    def limit(self) -> Decimal: ...
    @property
    def spent(self) -> Decimal: ...
    @property
    def reserved(self) -> Decimal: ...
    @property
    def requested(self) -> Decimal: ...
    @property
    def reason(self) -> str: ...


class BudgetBlockedError(BudgetExceededError):
    """Raised by the ledger when budgets refuse a call. The exception's own fields describe the first
    refusing budget (in configuration order); ``refusals`` lists every budget that refused (each a
    ``bedrock_budget.budgets.Refusal``)."""

    def __init__(self, *, refusals: Sequence[object], **fields: Any) -> None:
        self.refusals = tuple(refusals)
        super().__init__(**fields)


class DowngradeRequiredError(BudgetBlockedError):
    """A budget whose action is ``downgrade`` refused the call: retry the same request with the model
    ``downgrade_to`` (re-estimated and re-reserved). Nothing is held. A caller that does not handle it still
    sees a :class:`BudgetExceededError`, so an unaware caller fails closed."""

    def __init__(self, *, downgrade_to: str, refusals: Sequence[object], **fields: Any) -> None:
        self.downgrade_to = downgrade_to
        super().__init__(refusals=refusals, **fields)


class ClampRequiredError(BudgetBlockedError):
    """Budgets whose action is ``clamp`` refused the call's worst case: the same request with a lower
    output-token cap may fit (the wrapper lowers it and reserves again). Nothing is held. ``refusals``
    says, per budget, how much room is left (``limit - spent - reserved``). A caller that does not handle
    it still sees a :class:`BudgetExceededError`, so an unaware caller fails closed."""


class UnattributedCallError(BudgetBlockedError):
    """A budget with ``on_unattributed="refuse"`` turned a call away because it carries no value for the
    attribution keys in ``missing`` (its ``"*"`` scope keys). Nothing was held and nothing went to Bedrock.
    Set them with ``bb.attribute(...)`` or ``wrap(..., attribution=...)``."""

    def __init__(self, *, missing: Sequence[str], refusals: Sequence[object], **fields: Any) -> None:
        self.missing = tuple(missing)
        super().__init__(refusals=refusals, **fields)
        keys = ", ".join(repr(key) for key in self.missing)
        self.args = (
            f"budget {self.budget!r} refuses calls without a value for {keys} (on_unattributed: refuse); "
            f"attribute the call, e.g. bb.attribute({self.missing[0]}=...)",
        )


class PriceListError(PriceFileError):
    """A file given to ``prices import-price-list`` is not AWS Price List API output: not JSON, or not a
    GetProducts response, a list of responses or a list of products. ``problems`` lists what is wrong."""


class PriceUpdateError(BedrockBudgetError):
    """``prices update`` could not read what it needs from AWS (the Price List Query API or the Bedrock
    control plane): no credentials, no network, access denied, throttled... ``reason`` says which."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"cannot read {source}: {reason}")
