"""Who pays for a call: attribution ids carried in a context variable, so threads and asyncio tasks each
see their own.

Precedence, highest first: ids set with :func:`attribute` around the call, keys read from the Converse
``requestMetadata`` (only the ones the client was told to read), then the defaults given to ``wrap()``.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from bedrock_budget.errors import AttributionError

MAX_VALUE_LENGTH = 256
_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
# What Bedrock itself allows in requestMetadata values, minus whitespace: ids are used in store keys and
# metric labels, so anything that could mean syntax there (braces, '*', quotes, newlines) is refused.
_VALUE = re.compile(r"[A-Za-z0-9_@$#=/+,.:\-]{1,256}\Z")

_EMPTY: Mapping[str, str] = MappingProxyType({})
_current: ContextVar[Mapping[str, str]] = ContextVar("bedrock_budget_attribution", default=_EMPTY)

P = ParamSpec("P")
R = TypeVar("R")


def validate_key(key: object) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise AttributionError(str(key), "", "keys are lowercase identifiers: [a-z][a-z0-9_]{0,63}")
    return key


def validate_value(key: str, value: object, *, hash_ids: bool = False) -> str:
    """Check one attribution value. With ``hash_ids`` any string is accepted and replaced by a stable
    digest, for ids that may hold personal data or characters outside the safe set."""
    if not isinstance(value, str):
        raise AttributionError(key, value, "values must be strings")
    if hash_ids:
        if not value or len(value) > 4096:
            raise AttributionError(key, value, "must be 1 to 4096 characters before hashing")
        # surrogatepass: a lone surrogate (from a decoded byte string, say) is still a distinct id.
        return "h-" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    if len(value) > MAX_VALUE_LENGTH:
        raise AttributionError(key, value, f"longer than {MAX_VALUE_LENGTH} characters")
    if not _VALUE.match(value):
        raise AttributionError(
            key, value, "allowed characters are letters, digits and _@$#=/+,.:- (or enable hash_ids)"
        )
    return value


def validate_ids(ids: Mapping[str, object], *, hash_ids: bool = False) -> dict[str, str]:
    return {validate_key(k): validate_value(k, v, hash_ids=hash_ids) for k, v in ids.items()}


def _raw_value(key: str, value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 4096:
        raise AttributionError(key, value, "values must be strings of 1 to 4096 characters")
    return value


def current_attribution() -> Mapping[str, str]:
    """The ids set by the innermost :func:`attribute` block of this thread or task."""
    return _current.get()


class attribute:  # noqa: N801 - used like a function: `with attribute(user=...)`, `@attribute(app=...)`
    """Attribute calls made inside this block (or decorated function) to the given ids.

    Nested blocks add to and override the outer ids. Works as a context manager and as a decorator of
    plain and ``async`` functions::

        with bedrock_budget.attribute(user="u-17", app="chat"):
            client.converse(...)

        @bedrock_budget.attribute(app="nightly-report")
        async def run(): ...
    """

    __slots__ = ("_ids", "_tokens")

    def __init__(self, **ids: str) -> None:
        # Values are checked against the client's rules (strict or hashed) when a call uses them.
        self._ids = {validate_key(key): _raw_value(key, value) for key, value in ids.items()}
        self._tokens: list[Token[Mapping[str, str]]] = []

    def __enter__(self) -> Mapping[str, str]:
        merged = MappingProxyType({**_current.get(), **self._ids})
        self._tokens.append(_current.set(merged))
        return merged

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _current.reset(self._tokens.pop())

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(func):
            async_func = cast(Callable[P, Awaitable[Any]], func)

            @functools.wraps(func)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                with attribute(**self._ids):
                    return await async_func(*args, **kwargs)

            return cast(Callable[P, R], run_async)

        @functools.wraps(func)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with attribute(**self._ids):
                return func(*args, **kwargs)

        return run


def resolve_attribution(
    defaults: Mapping[str, str],
    request_metadata: object,
    metadata_keys: Mapping[str, str],
    *,
    hash_ids: bool = False,
) -> dict[str, str]:
    """Merge the three sources. ``defaults`` must already be validated. ``metadata_keys`` maps a
    requestMetadata key to the attribution key it fills (e.g. ``{"tenant_id": "tenant"}``). Invalid values
    raise :class:`AttributionError` before anything is sent."""
    current = _current.get()
    ids = dict(defaults)
    if not current and not metadata_keys:
        return ids
    if metadata_keys and isinstance(request_metadata, Mapping):
        for meta_key, attr_key in metadata_keys.items():
            value = request_metadata.get(meta_key)
            if value is not None:
                ids[attr_key] = validate_value(attr_key, value, hash_ids=hash_ids)
    for key, value in current.items():
        ids[key] = validate_value(key, value, hash_ids=hash_ids)
    return ids
