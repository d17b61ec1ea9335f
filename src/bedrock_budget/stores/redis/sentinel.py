"""Redis Sentinel: ``redis+sentinel://`` and ``rediss+sentinel://``, the master of a monitored service."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from bedrock_budget.errors import ConfigurationError
from bedrock_budget.stores.redis.standalone import RedisStore
from bedrock_budget.stores.redis.uri import _connection_kwargs, _hosts, _split_options, redact


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
