"""Budgets from YAML files, plain data and environment variables.

YAML (a list, or a mapping keyed by name; either at top level or under ``budgets:``)::

    budgets:
      - name: chat-daily
        scope: {app: chat}
        window: day
        timezone: Europe/Berlin
        limit_usd: 25.00          # YAML decimals are read exactly, never through float
        action: block
      - name: per-user
        scope: {user: "*"}        # one budget per user
        window: month
        limit_tokens: 2000000
        token_weights: {cache_read: 0.1}
        thresholds: [50, 80, 100]
        on_expired_hold: charge   # a crashed holder's calls count at their worst case (default: release)
        on_unattributed: refuse   # calls without a user are refused (default: pool them under "(none)")
      - name: chat-rpm
        scope: {app: chat}
        window: minute
        limit_requests: 600       # requests per minute (hour, day: RPH, RPD); alone or beside the others

A file, or an inline ``BEDROCK_BUDGETS`` document, that defines no budget is an error: an empty file is a
mistake (a wrong path, a truncated deploy), and enforcing nothing because of it would go unnoticed.

Environment (read by :func:`budgets_from_env`):

- ``BEDROCK_BUDGETS_FILE``: path of a YAML file as above;
- ``BEDROCK_BUDGETS``: the same YAML (or JSON) inline;
- ``BEDROCK_BUDGET__<NAME>``: one budget in a compact ``key=value;key=value`` form, e.g.
  ``BEDROCK_BUDGET__CHAT_DAILY="window=day;limit_usd=25;scope.app=chat;thresholds=50,80,100"``. The name
  is ``<NAME>`` lower-cased with ``_`` turned into ``-``; nested fields use dots
  (``scope.user=*``, ``token_weights.cache_read=0.1``).

Tools that run beside the applications (``bedrock-budget serve-metrics``, ``budgets list``, ...) find their
budgets with :func:`configured_budgets`: a file when one is given, otherwise these variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from bedrock_budget.budgets.model import Budget
from bedrock_budget.errors import BudgetConfigError, ConfigurationError, NoBudgetsError, shown

FIELDS = frozenset(
    {
        "name",
        "scope",
        "window",
        "timezone",
        "limit_usd",
        "limit_tokens",
        "limit_requests",
        "max_call_usd",
        "token_weights",
        "action",
        "downgrade_to",
        "min_output_tokens",
        "thresholds",
        "model",
        "model_family",
        "on_expired_hold",
        "on_unattributed",
        "overrides",
    }
)
ENV_FILE = "BEDROCK_BUDGETS_FILE"
ENV_INLINE = "BEDROCK_BUDGETS"
ENV_PREFIX = "BEDROCK_BUDGET__"


@lru_cache(maxsize=1)
def _loader() -> type[Any]:
    """A SafeLoader that reads decimals as ``Decimal`` from their text, so ``25.10`` is exactly 25.10.
    Built on first use: PyYAML is imported only when budgets are actually loaded from text."""
    import yaml

    class ExactLoader(yaml.SafeLoader):
        pass

    def construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
        text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
        try:
            value = Decimal(text.replace("_", "").lower().replace(".inf", "inf").replace(".nan", "nan"))
        except InvalidOperation:
            raise ConfigurationError(f"line {node.start_mark.line + 1}: {text!r} is not a number") from None
        if not value.is_finite():
            raise ConfigurationError(f"line {node.start_mark.line + 1}: {text!r} is not a finite number")
        return value

    ExactLoader.add_constructor("tag:yaml.org,2002:float", construct_decimal)
    return ExactLoader


def _one(data: object, index: str, name: str | None = None) -> Budget:
    if not isinstance(data, Mapping):
        raise BudgetConfigError(name, f"budgets[{index}]", f"must be a mapping, not {shown(data)}")
    fields = dict(data)
    if name is not None:
        if "name" in fields and fields["name"] != name:
            raise BudgetConfigError(name, "name", f"differs from its key ({shown(fields['name'])})")
        fields["name"] = name
    budget_name = fields.get("name")
    if budget_name is None:
        raise BudgetConfigError(None, f"budgets[{index}].name", "is required")
    label = budget_name if isinstance(budget_name, str) else None
    for key in fields:
        if key not in FIELDS:
            raise BudgetConfigError(
                label, str(key), f"unknown field; expected one of {', '.join(sorted(FIELDS))}"
            )
    if isinstance(fields.get("thresholds"), int | Decimal):
        fields["thresholds"] = [fields["thresholds"]]
    if isinstance(fields.get("thresholds"), Sequence) and not isinstance(fields["thresholds"], str):
        fields["thresholds"] = [_whole(label, "thresholds", v) for v in fields["thresholds"]]
    for whole in ("min_output_tokens", "limit_requests"):
        if fields.get(whole) is not None:
            fields[whole] = _whole(label, whole, fields[whole], "number")
    overrides = fields.get("overrides")
    if isinstance(overrides, Mapping):
        # ``overrides: {42: ...}`` names the value "42", as a scope value would.
        fields["overrides"] = {k if isinstance(k, str) else _scalar_text(k): v for k, v in overrides.items()}
    scope = fields.get("scope")
    if isinstance(scope, Mapping):
        fields["scope"] = {k: v if isinstance(v, str) else _scalar_text(v) for k, v in scope.items()}
    name_value = fields.pop("name")
    try:
        return Budget(name_value, **fields)
    except TypeError as exc:
        raise BudgetConfigError(label, "?", str(exc)) from None


def _scalar_text(value: object) -> object:
    # ``scope: {tenant: 42}`` means the string "42"; anything else is left for Budget to reject.
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal):
        return str(value)
    return value


def _whole(budget: str | None, field: str, value: object, what: str = "percentage") -> int:
    if isinstance(value, bool):
        raise BudgetConfigError(budget, field, f"{shown(value)} is not a whole {what}")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise BudgetConfigError(budget, field, f"{shown(value)} is not a whole {what}")


def budgets_from_data(data: object) -> list[Budget]:
    """Budgets from already-parsed data: a list of budget mappings, a mapping of name to budget, or either
    under a top-level ``budgets`` key. Names must be unique."""
    if isinstance(data, Mapping) and set(data) == {"budgets"}:
        data = data["budgets"]
    if data is None:
        return []
    budgets: list[Budget]
    if isinstance(data, Mapping):
        budgets = [_one(body, str(name), str(name)) for name, body in data.items()]
    elif isinstance(data, Sequence) and not isinstance(data, str | bytes):
        budgets = [_one(body, str(i)) for i, body in enumerate(data)]
    else:
        raise ConfigurationError(f"budgets must be a list or a mapping, not {type(data).__name__}")
    seen: set[str] = set()
    for budget in budgets:
        if budget.name in seen:
            raise BudgetConfigError(budget.name, "name", "is defined more than once")
        seen.add(budget.name)
    return budgets


def parse_budgets_yaml(text: str, *, source: str = "<string>") -> list[Budget]:
    """Budgets from a YAML (or JSON) document; one that defines none raises :class:`NoBudgetsError`."""
    import yaml

    try:
        data = yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{source}: not valid YAML: {exc}") from exc
    try:
        budgets = budgets_from_data(data)
    except BudgetConfigError as exc:
        raise BudgetConfigError(exc.budget, exc.field, f"{exc.reason} (in {source})") from exc
    if not budgets:
        raise NoBudgetsError(
            f"{source} defines no budgets; give at least one, "
            "e.g. 'budgets: [{name: daily, window: day, limit_usd: 25}]'"
        )
    return budgets


def load_budgets(source: str | os.PathLike[str] | IO[str]) -> list[Budget]:
    """Budgets from a YAML file path or an open text stream; a file that defines none raises
    :class:`NoBudgetsError`."""
    if hasattr(source, "read"):
        stream: IO[str] = source  # type: ignore[assignment]
        return parse_budgets_yaml(stream.read(), source=getattr(stream, "name", "<stream>"))
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read budgets file {str(path)!r}: {exc.strerror}") from exc
    return parse_budgets_yaml(text, source=str(path))


def _compact(name: str, spec: str, variable: str) -> Budget:
    fields: dict[str, Any] = {}
    for part in spec.split(";"):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise BudgetConfigError(name, variable, f"{part!r} is not key=value")
        head, dot, sub = key.partition(".")
        if dot:
            if head not in ("scope", "token_weights"):
                raise BudgetConfigError(name, key, "only scope.* and token_weights.* take a sub-key")
            fields.setdefault(head, {})[sub] = value
        elif key == "thresholds":
            fields[key] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            fields[key] = value
    return _one(fields, variable, name)


def budgets_from_env(environ: Mapping[str, str] | None = None) -> list[Budget]:
    """Budgets from ``BEDROCK_BUDGETS_FILE``, ``BEDROCK_BUDGETS`` and ``BEDROCK_BUDGET__<NAME>``
    variables (see the module docstring), in that order; names must be unique across all of them."""
    env = os.environ if environ is None else environ
    budgets: list[Budget] = []
    if env.get(ENV_FILE):
        budgets.extend(load_budgets(env[ENV_FILE]))
    if env.get(ENV_INLINE):
        budgets.extend(parse_budgets_yaml(env[ENV_INLINE], source=f"${ENV_INLINE}"))
    for variable in sorted(env):
        if variable.startswith(ENV_PREFIX) and len(variable) > len(ENV_PREFIX):
            name = variable[len(ENV_PREFIX) :].lower().replace("_", "-")
            budgets.append(_compact(name, env[variable], variable))
    seen: set[str] = set()
    for budget in budgets:
        if budget.name in seen:
            raise BudgetConfigError(budget.name, "name", "is defined more than once in the environment")
        seen.add(budget.name)
    return budgets


def configured_budgets(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    required: bool = True,
) -> list[Budget]:
    """The budgets a tool running beside the applications should use: those of ``path`` when given,
    otherwise those of the ``BEDROCK_BUDGETS*`` environment variables (:func:`budgets_from_env`).

    When neither defines any, raises :class:`NoBudgetsError` (rather than reporting on nothing), or with
    ``required=False`` returns an empty list. A given file that defines none is an error either way."""
    if path is not None:
        return load_budgets(path)
    budgets = budgets_from_env(environ)
    if not budgets and required:
        raise NoBudgetsError(
            f"no budgets defined: pass a budgets file (--budgets FILE), or set {ENV_FILE} (a YAML file), "
            f"{ENV_INLINE} (inline YAML) or {ENV_PREFIX}<NAME> variables"
        )
    return budgets
