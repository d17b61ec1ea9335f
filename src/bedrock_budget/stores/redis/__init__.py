"""Redis backends: ``redis://``, ``rediss://`` (TLS), ``redis+sentinel://`` and ``redis+cluster://``.

Every operation is one Lua script (``stores/lua/*.lua``, loaded once per client and run with EVALSHA
through redis-py's ``Script``), so a reservation against any number of budgets is one round trip on a
standalone server or behind Sentinel; on a cluster it is one round trip per hash slot (see
:mod:`bedrock_budget.stores.redis.cluster`).

URIs (store options may also be given as query parameters: ``prefix``, ``key_slack``,
``tombstone_retention``, ``socket_timeout``, ``connect_timeout``, ``retries``, ``parallel``)::

    redis://[[user]:password@]host[:port][/db]
    rediss://...                                   TLS (ssl_* query options go to redis-py)
    redis+sentinel://[[user]:password@]host:port[,host:port]/service[/db]
    redis+cluster://[[user]:password@]host:port[,host:port]
    rediss+sentinel://..., rediss+cluster://...    the same over TLS

Modules: :mod:`.uri` (options, host lists, redaction), :mod:`.codec` (scripts, reply decoding),
:mod:`.standalone`, :mod:`.sentinel`, :mod:`.cluster`. redis-py is imported by this package only, and
:mod:`bedrock_budget.stores` imports it on the first Redis URI, so importing ``bedrock_budget`` never
loads it.
"""

from __future__ import annotations

from bedrock_budget.stores.redis.cluster import RedisClusterStore
from bedrock_budget.stores.redis.codec import _SCRIPTS as _SCRIPTS
from bedrock_budget.stores.redis.sentinel import RedisSentinelStore
from bedrock_budget.stores.redis.standalone import RedisStore
from bedrock_budget.stores.redis.uri import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_RETRIES,
    DEFAULT_SOCKET_TIMEOUT,
    redact,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_RETRIES",
    "DEFAULT_SOCKET_TIMEOUT",
    "RedisClusterStore",
    "RedisSentinelStore",
    "RedisStore",
    "redact",
]
