"""Store URIs: separating our options from redis-py's, host lists, redaction and connection settings.

Store options may be given as keyword arguments or as query parameters (``prefix``, ``key_slack``,
``tombstone_retention``, ``socket_timeout``, ``connect_timeout``, ``retries``, ``parallel``, ``breaker``,
``probe_interval``, ``allow_eviction``); redis-py's own query options (``ssl_*``, ``client_name``, ...) pass
through, anything else is refused so a typo is not silently ignored.

Timeouts (seconds): ``socket_timeout`` (default 1.0) bounds each command, ``connect_timeout`` (also spelled
``socket_connect_timeout``; default 0.5) each connection attempt, and a failed command is retried
``retries`` times (default 1). The circuit breaker (:mod:`bedrock_budget.stores.breaker`, ``breaker=off`` to
disable) makes only the first failure of an outage wait for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from redis.backoff import NoBackoff
from redis.connection import URL_QUERY_ARGUMENT_PARSERS
from redis.retry import Retry

from bedrock_budget.errors import ConfigurationError

DEFAULT_SOCKET_TIMEOUT: Final = 1.0
DEFAULT_CONNECT_TIMEOUT: Final = 0.5
DEFAULT_RETRIES: Final = 1
_STORE_OPTIONS: Final[tuple[str, ...]] = (
    "prefix",
    "key_slack",
    "tombstone_retention",
    "breaker",
    "probe_interval",
    "allow_eviction",
)
_FLAGS: Final[tuple[str, ...]] = ("breaker", "allow_eviction", "parallel")
#: Other spellings of our options (redis-py's own name for the connect timeout).
_ALIASES: Final = {"socket_connect_timeout": "connect_timeout"}
_CLIENT_OPTIONS: Final[tuple[str, ...]] = ("socket_timeout", "connect_timeout", "retries", "parallel")
_PASSTHROUGH: Final = frozenset({"client_name", "username", "password"})


def redact(uri: str) -> str:
    """The URI without its password, for messages and logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _split_options(uri: str, options: Mapping[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Separate our options (from keyword arguments and the query string) from redis-py's."""
    parts = urlsplit(uri)
    ours: dict[str, Any] = {}
    theirs: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        key = _ALIASES.get(key, key)
        if key in _STORE_OPTIONS or key in _CLIENT_OPTIONS:
            ours[key] = value
        elif key in URL_QUERY_ARGUMENT_PARSERS or key.startswith("ssl_") or key in _PASSTHROUGH:
            theirs.append((key, value))
        else:
            raise ConfigurationError(f"unknown store option {key!r} in {redact(uri)!r}")
    ours.update({_ALIASES.get(k, k): v for k, v in options.items()})
    store: dict[str, Any] = {k: ours.pop(k) for k in _STORE_OPTIONS if k in ours}
    for key in ("key_slack", "tombstone_retention", "retries"):
        for bag in (store, ours):
            if key in bag:
                bag[key] = int(bag[key])
    for key in ("socket_timeout", "connect_timeout"):
        if key in ours:
            ours[key] = float(ours[key])
    if "probe_interval" in store:
        store["probe_interval"] = float(store["probe_interval"])
    for key in _FLAGS:
        for bag in (store, ours):
            if isinstance(bag.get(key), str):
                bag[key] = _flag(key, bag[key])
    return urlunsplit(parts._replace(query=urlencode(theirs))), store, ours


def _flag(key: str, value: str) -> bool:
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"store option {key} must be on or off, not {value!r}")


def _hosts(netloc: str, default_port: int) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    auth, _, hostlist = netloc.rpartition("@")
    username: str | None = None
    password: str | None = None
    if auth:
        user, sep, secret = auth.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if sep else None
    hosts: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":") if not item.endswith("]") else (item, "", "")
        if not sep:
            host, port = item, str(default_port)
        try:
            hosts.append((host.strip("[]"), int(port)))
        except ValueError:
            raise ConfigurationError(f"bad port in {item!r}") from None
    if not hosts:
        raise ConfigurationError("store URI names no host")
    return username, password, hosts


def cluster_startup(clean: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """A cluster URI's startup nodes, and the client keywords it names itself (credentials, TLS for
    ``rediss``, its query options): the same for the sync and the ``redis.asyncio`` cluster clients."""
    parts = urlsplit(clean)
    username, password, hosts = _hosts(parts.netloc, 6379)
    named: dict[str, Any] = {"username": username, "password": password, **dict(parse_qsl(parts.query))}
    if parts.scheme.startswith("rediss"):
        named["ssl"] = True
    return hosts, named


def _connection_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(options) - set(_CLIENT_OPTIONS)
    if unknown:
        raise ConfigurationError(f"unknown store option(s): {', '.join(sorted(unknown))}")
    return {
        "socket_timeout": options.get("socket_timeout", DEFAULT_SOCKET_TIMEOUT),
        "socket_connect_timeout": options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
        "retry": Retry(NoBackoff(), int(options.get("retries", DEFAULT_RETRIES))),
    }
