"""Redis backends: ``redis://``, ``rediss://`` (TLS), ``redis+sentinel://`` and ``redis+cluster://``.

Every operation is one Lua script (``lua/*.lua``, loaded once per client and run with EVALSHA through
redis-py's ``Script``), so a reservation against any number of budgets is one round trip on a standalone
server or behind Sentinel.

Redis Cluster lets a script touch only keys of one hash slot. Each counter's keys share a hash tag, so the
cluster store groups counters by slot and runs the script once per slot, in parallel on a small thread
pool (``parallel=False`` runs them in order). A reservation is all-or-nothing across slots: when one slot
refuses or fails, the slots that granted are released again. That never lets spend past a limit; the only
cost is that a concurrent call may be refused during the few milliseconds the doomed hold exists.
Settlements and releases are idempotent per counter, so retrying one that failed half-way is safe. Each
script goes straight to the master that owns its slot; when that fails (a redirection after a slot moved,
a failover, an outage) the same call goes through ``RedisCluster``, which follows redirections and
refreshes its view of the cluster.

:meth:`RedisStore.settle_many` settles a batch of reservations with one script call (one per slot on a
cluster, in parallel), with the same per-counter rules as a single settle.

URIs (store options may also be given as query parameters: ``prefix``, ``key_slack``,
``tombstone_retention``, ``socket_timeout``, ``connect_timeout``, ``retries``, ``parallel``)::

    redis://[[user]:password@]host[:port][/db]
    rediss://...                                   TLS (ssl_* query options go to redis-py)
    redis+sentinel://[[user]:password@]host:port[,host:port]/service[/db]
    redis+cluster://[[user]:password@]host:port[,host:port]
    rediss+sentinel://..., rediss+cluster://...    the same over TLS

redis-py is imported here only, so importing ``bedrock_budget`` never loads it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from importlib import resources
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.connection import URL_QUERY_ARGUMENT_PARSERS
from redis.crc import key_slot
from redis.exceptions import (
    ClusterDownError,
    NoScriptError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from bedrock_budget.errors import ConfigurationError, StoreError, StoreUnavailableError
from bedrock_budget.stores.base import (
    DEFAULT_KEY_SLACK,
    DEFAULT_PREFIX,
    DEFAULT_TOMBSTONE_RETENTION,
    Check,
    CounterRef,
    CounterState,
    Hold,
    Mark,
    Renewal,
    ReserveResult,
    SettleOutcome,
    SettleRequest,
    Spend,
    Store,
    Tallies,
    parse_tallies,
    settle_status,
    tally_fields,
    tally_items,
    tally_prefix,
)
from bedrock_budget.stores.keys import encode_part

if TYPE_CHECKING:
    from redis.commands.core import Script

DEFAULT_SOCKET_TIMEOUT: Final = 1.0
DEFAULT_CONNECT_TIMEOUT: Final = 0.5
DEFAULT_RETRIES: Final = 1
_KEY_MEMO_SIZE: Final = 4096
_STORE_OPTIONS: Final[tuple[str, ...]] = ("prefix", "key_slack", "tombstone_retention")
_CLIENT_OPTIONS: Final[tuple[str, ...]] = ("socket_timeout", "connect_timeout", "retries", "parallel")
_PASSTHROUGH: Final = frozenset({"client_name", "username", "password"})
_UNAVAILABLE: Final = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterDownError,
    TryAgainError,
    ReadOnlyError,
)

T = TypeVar("T")


def _script_text(name: str) -> str:
    folder = resources.files("bedrock_budget.stores").joinpath("lua")
    return folder.joinpath("common.lua").read_text("utf-8") + "\n" + folder.joinpath(name).read_text("utf-8")


_SCRIPTS: Final = {
    name: _script_text(f"{name}.lua")
    for name in ("reserve", "settle_many", "release", "read", "forget_spend", "renew")
}


def _str(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def _int(value: object) -> int:
    return int(_str(value))


def _row(ref: CounterRef, row: Sequence[object]) -> CounterState:
    return CounterState(
        ref=ref,
        spent_usd=_int(row[0]),
        held_usd=_int(row[1]),
        spent_tokens=_int(row[2]),
        held_tokens=_int(row[3]),
        active=_int(row[4]),
    )


def _limit(pairs: Sequence[tuple[str, str]], name: str) -> int | None:
    value = next((v for k, v in pairs if k == name), "")
    return int(value) if value else None


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
        if key in _STORE_OPTIONS or key in _CLIENT_OPTIONS:
            ours[key] = value
        elif key in URL_QUERY_ARGUMENT_PARSERS or key.startswith("ssl_") or key in _PASSTHROUGH:
            theirs.append((key, value))
        else:
            raise ConfigurationError(f"unknown store option {key!r} in {redact(uri)!r}")
    ours.update(options)
    store: dict[str, Any] = {k: ours.pop(k) for k in _STORE_OPTIONS if k in ours}
    for key in ("key_slack", "tombstone_retention", "retries"):
        for bag in (store, ours):
            if key in bag:
                bag[key] = int(bag[key])
    for key in ("socket_timeout", "connect_timeout"):
        if key in ours:
            ours[key] = float(ours[key])
    if "parallel" in ours and isinstance(ours["parallel"], str):
        ours["parallel"] = ours["parallel"].lower() in ("1", "true", "yes", "on")
    return urlunsplit(parts._replace(query=urlencode(theirs))), store, ours


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


class RedisStore(Store):
    """Standalone Redis (and Valkey, ElastiCache, Sentinel-managed masters).

    ``RedisStore(client)`` wraps an existing ``redis.Redis`` (or compatible, e.g. fakeredis) client, which
    the store then owns and closes; :meth:`from_uri` builds one with bounded timeouts so an outage is
    detected in about ``connect_timeout`` seconds instead of hanging the caller.
    """

    schemes: tuple[str, ...] = ("redis", "rediss", "unix")

    def __init__(
        self,
        client: Any,
        *,
        name: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        key_slack: int = DEFAULT_KEY_SLACK,
        tombstone_retention: int = DEFAULT_TOMBSTONE_RETENTION,
        closers: Sequence[Callable[[], None]] = (),
    ) -> None:
        super().__init__(prefix=prefix, key_slack=key_slack, tombstone_retention=tombstone_retention)
        self._client = client
        self._name = name or f"redis ({type(client).__name__})"
        self._closers = list(closers)
        self._closed = False
        self._scripts: dict[str, Script] = {k: client.register_script(v) for k, v in _SCRIPTS.items()}
        # Every call of a window names the same counters: build their key names once (bounded: windows
        # roll over and per-user scopes come and go).
        self._key_memo: dict[CounterRef, tuple[str, str, str]] = {}
        self._reserve_memo: dict[tuple[object, ...], tuple[tuple[str, str, str], str]] = {}

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> RedisStore:
        clean, store, client_options = _split_options(uri, options)
        client_options.pop("parallel", None)
        kwargs = _connection_kwargs(client_options)
        try:
            client = redis.Redis.from_url(clean, **kwargs)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"invalid Redis URI {redact(uri)!r}: {exc}") from exc
        return cls(client, name=redact(uri), **store)

    @property
    def name(self) -> str:
        return self._name

    @property
    def client(self) -> Any:
        return self._client

    # -- plumbing -----------------------------------------------------------------------------------------

    def _run(self, operation: Callable[[], T]) -> T:
        if self._closed:
            raise StoreError(f"budget store {self._name} is closed")
        try:
            return operation()
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(self._name, f"{type(exc).__name__}: {exc}") from exc
        except RedisClusterException as exc:
            raise StoreUnavailableError(self._name, f"{type(exc).__name__}: {exc}") from exc
        except RedisError as exc:
            raise StoreError(f"budget store {self._name} failed: {type(exc).__name__}: {exc}") from exc

    def _eval(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        runner = self._scripts[script]
        return self._run(lambda: runner(keys=list(keys), args=list(args)))

    def _keys(self, ref: CounterRef) -> tuple[str, str, str]:
        keys = self._key_memo.get(ref)
        if keys is None:
            if len(self._key_memo) >= _KEY_MEMO_SIZE:
                self._key_memo.clear()
            base = self.key(ref)
            keys = self._key_memo[ref] = (f"{base}:h", f"{base}:z", f"{base}:t")
        return keys

    def _trim(self, now_ms: int) -> int:
        return now_ms - self.tombstone_retention * 1000

    # -- one script call (one slot on a cluster) ----------------------------------------------------------

    def _reserve(self, rid: str, holds: Sequence[Hold], now_ms: int, deadline_ms: int) -> ReserveResult:
        # One JSON argument and one bulk-string reply (see reserve.lua): a fraction of what redis-py
        # costs to pack separate arguments and parse a nested reply. Each counter's part is assembled from
        # pieces built once per counter and limits; only the amounts and the expiry change per call.
        keys: list[str] = []
        parts: list[str] = []
        slack = self.key_slack
        for hold in holds:
            counter_keys, fixed = self._reserve_pieces(hold)
            keys.extend(counter_keys)
            charge = 1 if hold.charge_on_expiry else 0
            parts.append(f'{fixed},"{hold.usd}","{hold.tokens}","{hold.ref.ttl_ms(now_ms, slack)}",{charge}]')
        payload = "[" + ",".join(parts) + "]"
        head, *lines = _str(self._eval("reserve", keys, [now_ms, deadline_ms, rid, payload])).split("\n")
        granted, repeated = head.split()
        checks: list[Check] = []
        for hold, line in zip(holds, lines, strict=True):
            spent_usd, held_usd, spent_tok, held_tok, live, refused_usd, refused_tok, epoch, *fired = (
                line.split()
            )
            state = CounterState(
                ref=hold.ref,
                spent_usd=int(spent_usd),
                held_usd=int(held_usd),
                spent_tokens=int(spent_tok),
                held_tokens=int(held_tok),
                active=int(live),
            )
            checks.append(
                Check(
                    state,
                    refused_usd=refused_usd == "1",
                    refused_tokens=refused_tok == "1",
                    fired=tuple(m for m in hold.refusal_marks if m.name in fired) if fired else (),
                    epoch=None if epoch == "-" else epoch,
                )
            )
        return ReserveResult(granted=granted == "1", checks=tuple(checks), repeated=repeated == "1")

    def _reserve_pieces(self, hold: Hold) -> tuple[tuple[str, str, str], str]:
        """A counter's keys and the fixed start of its part of the reserve request (an open JSON array)."""
        memo_key = (hold.ref, hold.limit_usd, hold.limit_tokens, hold.enforce, hold.refusal_marks)
        pieces = self._reserve_memo.get(memo_key)
        if pieces is None:
            if len(self._reserve_memo) >= _KEY_MEMO_SIZE:
                self._reserve_memo.clear()
            marks = {mark.unit: mark.name for mark in hold.refusal_marks}
            fixed = [
                "" if hold.limit_usd is None else str(hold.limit_usd),
                "" if hold.limit_tokens is None else str(hold.limit_tokens),
                1 if hold.enforce else 0,
                hold.ref.meta(),
                marks.get("usd", ""),
                marks.get("tokens", ""),
            ]
            pieces = (self._keys(hold.ref), json.dumps(fixed, separators=(",", ":"))[:-1])
            self._reserve_memo[memo_key] = pieces
        return pieces

    def _settle(
        self,
        rid: str,
        spends: Sequence[Spend],
        now_ms: int,
        model: str | None,
        tokens: Mapping[str, int] | None,
        charge: bool,
        tallies: Tallies | None = None,
    ) -> tuple[SettleOutcome, ...]:
        # A batch of one: one JSON argument and one string per counter cost less than separate arguments.
        request = SettleRequest(
            rid, tuple(spends), model=model, tokens=tokens, charge=charge, tallies=tallies
        )
        return self._settle_many([request], now_ms)[0]

    def _settle_many(self, requests: Sequence[SettleRequest], now_ms: int) -> list[tuple[SettleOutcome, ...]]:
        # One JSON argument for the whole batch (see settle_many.lua); each distinct counter (with its
        # thresholds) is listed once and spends refer to it by 1-based index. Amounts go as strings.
        index: dict[tuple[CounterRef, tuple[Mark, ...]], int] = {}
        keys: list[str] = []
        counters: list[list[object]] = []
        settlements: list[list[object]] = []
        for request in requests:
            spends = request.spends
            model = request.model
            if request.tallies is None:
                prefix = tally_prefix(model) if model is not None else ""
                tallies = tally_fields(model, request.tokens, spends[0].usd if spends else 0)
            else:
                # Several models: full field names after the bare "m:" prefix.
                prefix = "m:"
                tallies = [(name[2:], value) for name, value in tally_items(None, None, 0, request.tallies)]
            parts: list[list[object]] = []
            for spend in spends:
                ref = spend.ref
                slot = index.get((ref, spend.marks))
                if slot is None:
                    slot = index[(ref, spend.marks)] = len(index) + 1
                    keys.extend(self._keys(ref))
                    thresholds = [
                        [m.name, "u" if m.unit == "usd" else "t", str(m.amount)] for m in spend.marks
                    ]
                    counters.append([str(ref.ttl_ms(now_ms, self.key_slack)), ref.meta(), thresholds])
                parts.append([slot, str(spend.usd), str(spend.tokens), spend.epoch or ""])
            settlements.append(
                [
                    request.reservation_id,
                    "c" if request.charge else "s",
                    prefix,
                    [[field, str(value)] for field, value in tallies],
                    parts,
                ]
            )
        batch = json.dumps({"c": counters, "s": settlements}, separators=(",", ":"))
        rows = iter(self._eval("settle_many", keys, [now_ms, self._trim(now_ms), batch]))
        results: list[tuple[SettleOutcome, ...]] = []
        for request in requests:
            outcomes: list[SettleOutcome] = []
            for spend in request.spends:
                status, spent_usd, held_usd, spent_tokens, held_tokens, live, *fired = _str(
                    next(rows)
                ).split()
                state = CounterState(
                    ref=spend.ref,
                    spent_usd=int(spent_usd),
                    held_usd=int(held_usd),
                    spent_tokens=int(spent_tokens),
                    held_tokens=int(held_tokens),
                    active=int(live),
                )
                reached = tuple(m for m in spend.marks if m.name in fired) if fired else ()
                outcomes.append(SettleOutcome(settle_status(int(status)), state, reached))
            results.append(tuple(outcomes))
        return results

    def _per_counter(
        self, script: str, refs: Sequence[CounterRef], now_ms: int, args: Sequence[object]
    ) -> tuple[bool, ...]:
        """Run a script that takes each counter's three keys, ``args`` and then each counter's TTL, and
        answers 1 or 0 per counter."""
        keys: list[str] = []
        for ref in refs:
            keys.extend(self._keys(ref))
        ttls = [ref.ttl_ms(now_ms, self.key_slack) for ref in refs]
        return tuple(_int(x) == 1 for x in self._eval(script, keys, [*args, *ttls]))

    def _renew(self, renewals: Sequence[Renewal], now_ms: int, deadline_ms: int) -> tuple[bool, ...]:
        # Each counter once, with the ids to renew there; the reply comes back in that grouped order.
        counters: dict[CounterRef, list[int]] = {}
        for position, renewal in enumerate(renewals):
            counters.setdefault(renewal.ref, []).append(position)
        keys: list[str] = []
        request: list[list[object]] = []
        order: list[int] = []
        for ref, positions in counters.items():
            keys.extend(self._keys(ref))
            request.append(
                [str(ref.ttl_ms(now_ms, self.key_slack)), [renewals[p].reservation_id for p in positions]]
            )
            order.extend(positions)
        payload = json.dumps(request, separators=(",", ":"))
        reply = _str(self._eval("renew", keys, [now_ms, deadline_ms, payload]))
        renewed = [False] * len(renewals)
        for position, flag in zip(order, reply, strict=True):
            renewed[position] = flag == "1"
        return tuple(renewed)

    def _release(self, rid: str, refs: Sequence[CounterRef], now_ms: int) -> tuple[bool, ...]:
        return self._per_counter("release", refs, now_ms, [now_ms, rid, self._trim(now_ms)])

    def _forget_spend(self, refs: Sequence[CounterRef], now_ms: int) -> tuple[bool, ...]:
        return self._per_counter("forget_spend", refs, now_ms, [now_ms, self._trim(now_ms)])

    def _read_keys(self, bases: Sequence[str], now_ms: int) -> list[tuple[CounterState, str]]:
        keys = [f"{b}:{s}" for b in bases for s in ("h", "z", "t")]
        raw = self._eval("read", keys, [now_ms, self._trim(now_ms)])
        found: list[tuple[CounterState, str]] = []
        for row, meta, extra in raw:
            pairs = [(_str(extra[i]), _str(extra[i + 1])) for i in range(0, len(extra), 2)]
            meta_text = _str(meta)
            state = replace(
                _row(CounterRef.from_meta(meta_text) if meta_text else _PLACEHOLDER, row),
                models=parse_tallies(pairs),
                alerted=tuple(sorted(k[2:] for k, _ in pairs if k.startswith("a:"))),
                limit_usd=_limit(pairs, "lu"),
                limit_tokens=_limit(pairs, "lt"),
            )
            found.append((state, meta_text))
        return found

    def _read(self, refs: Sequence[CounterRef], now_ms: int) -> tuple[CounterState, ...]:
        found = self._read_keys([self.key(r) for r in refs], now_ms)
        return tuple(replace(state, ref=ref) for (state, _), ref in zip(found, refs, strict=True))

    # -- the Store interface --------------------------------------------------------------------------------

    def reserve(
        self, reservation_id: str, holds: Sequence[Hold], *, now_ms: int, deadline_ms: int
    ) -> ReserveResult:
        if not holds:
            return ReserveResult(granted=True, checks=())
        return self._reserve(reservation_id, holds, now_ms, deadline_ms)

    def settle(
        self,
        reservation_id: str,
        spends: Sequence[Spend],
        *,
        now_ms: int,
        model: str | None = None,
        tokens: Mapping[str, int] | None = None,
        charge: bool = False,
        tallies: Tallies | None = None,
    ) -> tuple[SettleOutcome, ...]:
        if not spends:
            return ()
        return self._settle(reservation_id, spends, now_ms, model, tokens, charge, tallies)

    def settle_many(
        self, requests: Sequence[SettleRequest], *, now_ms: int
    ) -> list[tuple[SettleOutcome, ...] | StoreError]:
        live = [r for r in requests if r.spends]
        try:
            settled = iter(self._settle_many(live, now_ms) if live else ())
        except StoreError as exc:
            return [exc if r.spends else () for r in requests]
        return [next(settled) if r.spends else () for r in requests]

    def release(self, reservation_id: str, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[bool, ...]:
        if not refs:
            return ()
        return self._release(reservation_id, refs, now_ms)

    def renew(self, renewals: Sequence[Renewal], *, now_ms: int, deadline_ms: int) -> tuple[bool, ...]:
        if not renewals:
            return ()
        return self._renew(renewals, now_ms, deadline_ms)

    def read(self, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[CounterState, ...]:
        if not refs:
            return ()
        return self._read(refs, now_ms)

    def reset(self, refs: Sequence[CounterRef]) -> int:
        def delete(keys: Sequence[str]) -> int:
            return int(self._client.delete(*keys))

        return sum(1 for ref in refs if self._run(partial(delete, self._keys(ref))))

    def forget_spend(self, refs: Sequence[CounterRef], *, now_ms: int) -> int:
        if not refs:
            return 0
        return sum(self._forget_spend(refs, now_ms))

    def _scan(self, pattern: str) -> Iterator[str]:
        for key in self._run(lambda: list(self._client.scan_iter(match=pattern, count=500))):
            yield _str(key)[:-2]

    def _list_pattern(self, budget: str | None) -> str:
        if budget is None:
            return f"{self.prefix}{{*}}:h"
        return f"{self.prefix}{{{encode_part(budget)}|*}}:h"

    def ping(self) -> None:
        self._run(lambda: self._client.ping())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._client.close()
        finally:
            for closer in self._closers:
                closer()

    def list(self, *, now_ms: int, budget: str | None = None) -> list[CounterState]:
        bases = sorted(set(self._scan(self._list_pattern(budget))))
        states: list[CounterState] = []
        for start in range(0, len(bases), 100):
            for state, meta in self._read_keys(bases[start : start + 100], now_ms):
                if meta and (budget is None or state.ref.budget == budget):
                    states.append(state)
        return states


_PLACEHOLDER: Final = CounterRef(budget="?", scope=(), window="lifetime", timezone="UTC", start=0, end=None)


def _connection_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(options) - set(_CLIENT_OPTIONS)
    if unknown:
        raise ConfigurationError(f"unknown store option(s): {', '.join(sorted(unknown))}")
    return {
        "socket_timeout": options.get("socket_timeout", DEFAULT_SOCKET_TIMEOUT),
        "socket_connect_timeout": options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
        "retry": Retry(NoBackoff(), int(options.get("retries", DEFAULT_RETRIES))),
    }


class RedisSentinelStore(RedisStore):
    """The master of a Sentinel-monitored service; failovers are followed by redis-py's Sentinel."""

    schemes = ("redis+sentinel", "rediss+sentinel")

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> RedisSentinelStore:
        from redis.sentinel import Sentinel

        clean, store, client_options = _split_options(uri, options)
        client_options.pop("parallel", None)
        sentinel_password = client_options.pop("sentinel_password", None)
        parts = urlsplit(clean)
        username, password, hosts = _hosts(parts.netloc, 26379)
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise ConfigurationError(f"sentinel URI needs a service name: {redact(uri)!r}")
        service = unquote(path[0])
        db = int(path[1]) if len(path) > 1 else 0
        kwargs = _connection_kwargs(client_options)
        extra = dict(parse_qsl(parts.query))
        tls = parts.scheme.startswith("rediss")
        sentinel_kwargs = {
            "socket_timeout": kwargs["socket_timeout"],
            "socket_connect_timeout": kwargs["socket_connect_timeout"],
            "password": sentinel_password,
            "ssl": tls,
        }
        sentinel_cls: Any = Sentinel
        sentinel = sentinel_cls(hosts, sentinel_kwargs=sentinel_kwargs, **kwargs)
        client = sentinel.master_for(
            service, db=db, username=username, password=password, ssl=tls, **kwargs, **extra
        )

        def close_sentinels() -> None:
            for connection in sentinel.sentinels:
                connection.close()

        return cls(client, name=redact(uri), closers=[close_sentinels], **store)


class RedisClusterStore(RedisStore):
    """Redis Cluster: counters grouped by hash slot, one script call per slot (see the module docstring)."""

    schemes = ("redis+cluster", "rediss+cluster")

    def __init__(self, client: Any, *, parallel: bool = True, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self._slot_memo: dict[CounterRef, int] = {}
        self._parallel = parallel
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> RedisClusterStore:
        from redis.cluster import ClusterNode, RedisCluster

        node: Any = ClusterNode

        clean, store, client_options = _split_options(uri, options)
        parallel = bool(client_options.pop("parallel", True))
        parts = urlsplit(clean)
        username, password, hosts = _hosts(parts.netloc, 6379)
        kwargs = _connection_kwargs(client_options)
        extra: dict[str, Any] = dict(parse_qsl(parts.query))
        if parts.scheme.startswith("rediss"):
            extra["ssl"] = True
        client = _LazyCluster(
            lambda: RedisCluster(
                startup_nodes=[node(host, port) for host, port in hosts],
                username=username,
                password=password,
                **kwargs,
                **extra,
            )
        )
        return cls(client, name=redact(uri), parallel=parallel, **store)

    def _slot(self, ref: CounterRef) -> int:
        slot = self._slot_memo.get(ref)
        if slot is None:
            if len(self._slot_memo) >= _KEY_MEMO_SIZE:
                self._slot_memo.clear()
            slot = self._slot_memo[ref] = key_slot(self.key(ref).encode("utf-8"))
        return slot

    def _groups(self, refs: Sequence[CounterRef]) -> list[list[int]]:
        groups: dict[int, list[int]] = {}
        for index, ref in enumerate(refs):
            groups.setdefault(self._slot(ref), []).append(index)
        return list(groups.values())

    def _fan_out(self, calls: Sequence[Callable[[], T]]) -> list[T | BaseException]:
        """Run calls (one per slot); each result is a value or the exception it raised."""
        if len(calls) == 1 or not self._parallel:
            results: list[T | BaseException] = []
            for call in calls:
                try:
                    results.append(call())
                except Exception as exc:  # collected so the caller can undo the slots that succeeded
                    results.append(exc)
            return results
        futures: list[Future[T]] = [self._executor().submit(call) for call in calls]
        gathered: list[T | BaseException] = []
        for future in futures:
            error = future.exception()
            gathered.append(error if error is not None else future.result())
        return gathered

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="bedrock-budget-slots")
            return self._pool

    def reserve(
        self, reservation_id: str, holds: Sequence[Hold], *, now_ms: int, deadline_ms: int
    ) -> ReserveResult:
        groups = self._groups([h.ref for h in holds])
        if len(groups) <= 1:
            return super().reserve(reservation_id, holds, now_ms=now_ms, deadline_ms=deadline_ms)
        parts = self._fan_out(
            [
                partial(self._reserve, reservation_id, [holds[i] for i in group], now_ms, deadline_ms)
                for group in groups
            ]
        )
        failure = next((p for p in parts if isinstance(p, BaseException)), None)
        granted = failure is None and all(isinstance(p, ReserveResult) and p.granted for p in parts)
        if not granted:
            undo = [
                group
                for group, part in zip(groups, parts, strict=True)
                if isinstance(part, ReserveResult) and part.granted
            ]
            self._undo(reservation_id, [[holds[i].ref for i in g] for g in undo], now_ms)
        if failure is not None:
            raise failure
        checks: list[Check | None] = [None] * len(holds)
        for group, part in zip(groups, parts, strict=True):
            assert isinstance(part, ReserveResult)
            for index, check in zip(group, part.checks, strict=True):
                checks[index] = check
        repeated = all(isinstance(p, ReserveResult) and p.repeated for p in parts)
        return ReserveResult(
            granted=granted, checks=tuple(c for c in checks if c is not None), repeated=repeated
        )

    def _eval(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        # Straight to the master of the keys' slot (one slot per call, see _groups): RedisCluster would
        # work out the slot and node again for every command, which costs more CPU than the call itself.
        # Anything unusual (a redirection, a failover, an outage) goes the cluster client's way, which
        # follows redirections and refreshes its view of the cluster; every script is safe to run twice.
        if self._closed:
            raise StoreError(f"budget store {self._name} is closed")
        if not keys:
            return super()._eval(script, keys, args)
        runner = self._scripts[script]
        try:
            node_client = self._node_client(keys[0])
            try:
                return node_client.evalsha(runner.sha, len(keys), *keys, *args)
            except NoScriptError:
                node_client.script_load(runner.script)
                return node_client.evalsha(runner.sha, len(keys), *keys, *args)
        except (RedisError, RedisClusterException):
            return super()._eval(script, keys, args)

    def _node_client(self, key: str) -> Any:
        cluster = self._client.cluster() if isinstance(self._client, _LazyCluster) else self._client
        return cluster.get_redis_connection(cluster.get_node_from_key(key))

    def _undo(self, reservation_id: str, groups: Sequence[Sequence[CounterRef]], now_ms: int) -> None:
        # Best effort: a hold that cannot be released now expires at its deadline.
        self._fan_out([partial(self._release, reservation_id, group, now_ms) for group in groups])

    def _per_slot(self, items: Sequence[Any], run: Callable[[list[Any]], Sequence[T]]) -> tuple[T, ...]:
        groups = self._groups([item if isinstance(item, CounterRef) else item.ref for item in items])
        if len(groups) <= 1:
            return tuple(run(list(items)))
        parts = self._fan_out([partial(run, [items[i] for i in group]) for group in groups])
        for part in parts:
            if isinstance(part, BaseException):
                raise part
        merged: list[Any] = [None] * len(items)
        for group, part in zip(groups, parts, strict=True):
            assert not isinstance(part, BaseException)
            for index, value in zip(group, part, strict=True):
                merged[index] = value
        return tuple(merged)

    def settle(
        self,
        reservation_id: str,
        spends: Sequence[Spend],
        *,
        now_ms: int,
        model: str | None = None,
        tokens: Mapping[str, int] | None = None,
        charge: bool = False,
        tallies: Tallies | None = None,
    ) -> tuple[SettleOutcome, ...]:
        return self._per_slot(
            spends, lambda g: self._settle(reservation_id, g, now_ms, model, tokens, charge, tallies)
        )

    def release(self, reservation_id: str, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[bool, ...]:
        return self._per_slot(refs, lambda g: self._release(reservation_id, g, now_ms))

    def renew(self, renewals: Sequence[Renewal], *, now_ms: int, deadline_ms: int) -> tuple[bool, ...]:
        # One script call per slot, sent in parallel like every other multi-slot operation.
        if not renewals:
            return ()
        return self._per_slot(renewals, lambda g: self._renew(g, now_ms, deadline_ms))

    def settle_many(
        self, requests: Sequence[SettleRequest], *, now_ms: int
    ) -> list[tuple[SettleOutcome, ...] | StoreError]:
        # One script call per slot, carrying the part of every settlement whose counters live there.
        slots: dict[int, list[tuple[int, list[int]]]] = {}
        for index, request in enumerate(requests):
            by_slot: dict[int, list[int]] = {}
            for position, spend in enumerate(request.spends):
                by_slot.setdefault(self._slot(spend.ref), []).append(position)
            for slot, positions in by_slot.items():
                slots.setdefault(slot, []).append((index, positions))
        parts = list(slots.values())
        gathered = self._fan_out(
            [
                partial(
                    self._settle_many,
                    [replace(requests[i], spends=tuple(requests[i].spends[p] for p in ps)) for i, ps in part],
                    now_ms,
                )
                for part in parts
            ]
        )
        merged: list[dict[int, SettleOutcome]] = [{} for _ in requests]
        failed: dict[int, StoreError] = {}
        for part, result in zip(parts, gathered, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, StoreError):
                    raise result
                for index, _ in part:
                    failed.setdefault(index, result)
                continue
            for (index, positions), outcomes in zip(part, result, strict=True):
                for position, outcome in zip(positions, outcomes, strict=True):
                    merged[index][position] = outcome
        return [
            failed[index] if index in failed else tuple(merged[index][p] for p in range(len(request.spends)))
            for index, request in enumerate(requests)
        ]

    def read(self, refs: Sequence[CounterRef], *, now_ms: int) -> tuple[CounterState, ...]:
        return self._per_slot(refs, lambda g: self._read(g, now_ms))

    def forget_spend(self, refs: Sequence[CounterRef], *, now_ms: int) -> int:
        if not refs:
            return 0
        return sum(self._per_slot(refs, lambda g: self._forget_spend(g, now_ms)))

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        super().close()

    def list(self, *, now_ms: int, budget: str | None = None) -> list[CounterState]:
        bases = sorted(set(self._scan(self._list_pattern(budget))))
        states: list[CounterState] = []
        for base in bases:  # keys of different slots cannot share a script call
            for state, meta in self._read_keys([base], now_ms):
                if meta and (budget is None or state.ref.budget == budget):
                    states.append(state)
        return states


class _LazyCluster:
    """Defers connecting (RedisCluster discovers the topology in its constructor) to the first command, so
    creating a store during an outage does not fail and the outage policy decides instead."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None
        self._lock = threading.Lock()
        self._scripts: list[tuple[Any, str]] = []

    def _get(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    def cluster(self) -> Any:
        """The ``RedisCluster`` client, connected on first use."""
        client = self._client
        return client if client is not None else self._get()

    def register_script(self, text: str) -> Any:
        # Script objects only need a client with evalsha/script_load/get_encoder; bind them to this proxy.
        from redis.commands.core import Script

        return Script(cast(Any, self), text)

    def get_encoder(self) -> Any:
        from redis._parsers.encoders import Encoder

        encoder: Any = Encoder
        return encoder(encoding="utf-8", encoding_errors="strict", decode_responses=False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
