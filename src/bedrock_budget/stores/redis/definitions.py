"""The fleet's budget definitions on Redis: one hash (``<prefix>definitions``: version, document, time)
written by ``publish_definitions.lua`` and read with plain ``HGET``/``HMGET``. One key, so on a cluster it
lives in one slot: every process reads its version about once a second, which no slot notices."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from bedrock_budget.errors import DefinitionsChangedError
from bedrock_budget.stores.base import PublishedDefinitions
from bedrock_budget.stores.redis.codec import _int, _str

T = TypeVar("T")
KEY_SUFFIX: Final = "definitions"


class RedisDefinitions:
    """Mixed into :class:`~bedrock_budget.stores.redis.standalone.RedisStore` (and so the cluster store)."""

    prefix: str
    _client: Any

    def _run(self, operation: Callable[[], T]) -> T:
        raise NotImplementedError

    def _eval(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        raise NotImplementedError

    @property
    def definitions_key(self) -> str:
        return f"{self.prefix}{KEY_SUFFIX}"

    def publish_definitions(self, document: str, *, now_ms: int, expected_version: int | None = None) -> int:
        expected = "" if expected_version is None else str(int(expected_version))
        done, version = self._eval(
            "publish_definitions", [self.definitions_key], [document, expected, str(int(now_ms))]
        )
        if not _int(done):
            assert expected_version is not None
            raise DefinitionsChangedError(expected_version, _int(version))
        return _int(version)

    def read_definitions(self) -> PublishedDefinitions | None:
        key = self.definitions_key
        version, document, at = self._run(lambda: self._client.hmget(key, ["v", "doc", "at"]))
        if version is None or document is None:
            return None
        return PublishedDefinitions(_int(version), _str(document), _int(at or 0))

    def definitions_version(self) -> int:
        key = self.definitions_key
        version = self._run(lambda: self._client.hget(key, "v"))
        return 0 if version is None else _int(version)
