"""Reading price-file YAML strictly and checking its fields one by one.

The checks never raise: each records what is wrong, with its location, in a :class:`Problems`, so one pass
reports every problem of a file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from bedrock_budget.errors import PriceFileError
from bedrock_budget.pricing.money import parse_usd

# --- YAML with duplicate-key detection -------------------------------------------------------------------

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _DuplicateKeyError(Exception):
    def __init__(self, key: object, line: int) -> None:
        self.key = key
        self.line = line


class _StrictLoader(_BaseLoader):  # type: ignore[misc]
    pass


def _construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise _DuplicateKeyError(key, key_node.start_mark.line + 1)
        seen.add(key)
    return dict(loader.construct_mapping(node, deep=deep))


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceFileError(str(path), [f"cannot read file: {exc.strerror or exc}"]) from exc
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKeyError as exc:
        raise PriceFileError(str(path), [f"line {exc.line}: duplicate key {exc.key!r}"]) from None
    except yaml.YAMLError as exc:
        raise PriceFileError(str(path), [f"not valid YAML: {exc}"]) from exc


# --- validation helpers ----------------------------------------------------------------------------------


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")


def check_keys(
    problems: Problems,
    where: str,
    data: Mapping[str, Any],
    allowed: Iterable[str],
    required: Iterable[str] = (),
) -> bool:
    allowed_set = set(allowed)
    ok = True
    for key in data:
        if key not in allowed_set:
            problems.add(where, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed_set))})")
            ok = False
    for key in required:
        if key not in data:
            problems.add(where, f"missing required key {key!r}")
            ok = False
    return ok


def as_mapping(problems: Problems, where: str, value: Any) -> Mapping[str, Any] | None:
    if not isinstance(value, Mapping):
        problems.add(where, f"must be a mapping, got {type(value).__name__}")
        return None
    return value


def as_price(
    problems: Problems, where: str, value: Any, *, max_decimals: int | None = None
) -> Decimal | None:
    if isinstance(value, float):
        problems.add(where, f'price must be a quoted decimal string (write "{value}"), not a YAML float')
        return None
    try:
        amount = parse_usd(value)
    except ValueError as exc:
        problems.add(where, str(exc))
        return None
    exponent = amount.as_tuple().exponent
    if max_decimals is not None and isinstance(exponent, int) and -exponent > max_decimals:
        problems.add(where, f"price {value!r} has more than {max_decimals} decimal places")
        return None
    return amount


def as_date(problems: Problems, where: str, value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    problems.add(where, f"must be an ISO date (YYYY-MM-DD), got {value!r}")
    return None


def as_positive_int(problems: Problems, where: str, value: Any) -> int | None:
    if type(value) is not int or value <= 0:
        problems.add(where, f"must be a positive integer, got {value!r}")
        return None
    return value


def as_text(problems: Problems, where: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.add(where, "must be a non-empty string")
        return None
    return value


def as_choice(problems: Problems, where: str, value: Any, choices: Iterable[str]) -> str | None:
    options = tuple(choices)
    if value not in options:
        problems.add(where, f"must be one of {', '.join(options)}, got {value!r}")
        return None
    return str(value)
