"""The spend ledger on Redis: the ``"t"`` part of the settle script's batch, and reads.

Writes ride in ``settle_many.lua`` (one script call per batch, one per slot on a cluster); reads are plain
``ZREVRANGE`` / ``HGETALL`` commands sent in one pipeline (a cluster pipeline sends each node its part).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from bedrock_budget.stores.tracking import TrackWrite, fields_of, writes

if TYPE_CHECKING:
    from bedrock_budget.stores.base import SettleRequest

T = TypeVar("T")


def track_ops(
    prefix: str,
    requests: Sequence[SettleRequest],
    keys: list[str],
    tombstone_retention: int,
    tracks: Sequence[Sequence[TrackWrite]] | None = None,
) -> tuple[list[list[object]], list[list[object]]]:
    """The ``"w"`` and ``"t"`` parts of a settle batch (see ``settle_many.lua``); appends each shard's
    dedupe key to ``keys`` (once): the script names the shard's other keys itself, from the layout, and
    they share the dedupe key's hash tag. redis-py packs every key argument in Python, at a cost that
    would be most of what tracking adds to a settlement. ``tracks`` gives each request's writes (a cluster
    sends one slot's part); by default every write of each request's entry. Each distinct layout (a user's
    dimensions in one shard and hour) is listed once and calls refer to it by index. A call's writes sent
    together are applied together, so one exactly-once check (in its first shard's dedupe hash) covers
    them."""
    index: dict[str, int] = {}

    def at(key: str) -> int:
        found = index.get(key)
        if found is None:
            keys.append(key)
            found = index[key] = len(keys)
        return found

    layouts: list[list[object]] = []
    # Writes come from the layout cache, so one layout is one object: known by identity within a batch.
    listed: dict[int, int] = {}
    ops: list[list[object]] = []
    for position, request in enumerate(requests):
        entry = request.track
        if entry is None:
            continue
        rid = request.reservation_id
        found = writes(prefix, rid, entry, tombstone_retention) if tracks is None else tracks[position]
        if not found:
            continue
        fields = [[name, str(amount)] for name, amount in fields_of(entry)]
        places: list[int] = []
        for write in found:
            layout = listed.get(id(write))
            if layout is None:
                layouts.append(
                    [
                        at(write.dedupe),
                        str(write.dedupe_at_ms),
                        [
                            [value, [[z, v, str(when)] for z, v, when in places]]
                            for value, places in write.dims
                        ],
                    ]
                )
                layout = listed[id(write)] = len(layouts)
            places.append(layout)
        # The call count only when it is not one (a lease's summed entry): most entries are single calls.
        ops.append([rid, places, fields] if entry.calls == 1 else [rid, places, fields, entry.calls])
    return layouts, ops


class TrackReads:
    """Reads of the spend ledger for the Redis stores (standalone, Sentinel and Cluster)."""

    _client: Any
    _run: Callable[[Callable[[], Any]], Any]

    def track_members(
        self, zsets: Sequence[str], *, top: int | None, now_ms: int
    ) -> list[list[tuple[str, float]]]:
        if not zsets:
            return []

        def read() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for key in zsets:
                pipe.zrevrange(key, 0, -1 if top is None else top - 1, withscores=True)
            return list(pipe.execute())

        replies = self._run(read)
        return [[(_text(member), float(score)) for member, score in reply] for reply in replies]

    def track_values(self, keys: Sequence[str], *, now_ms: int) -> list[dict[str, int]]:
        if not keys:
            return []

        def read() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            return list(pipe.execute())

        replies = self._run(read)
        return [{_text(k): int(_text(v)) for k, v in reply.items()} for reply in replies]


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
