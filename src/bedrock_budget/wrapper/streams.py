"""A stand-in for botocore's ``EventStream`` that yields every event unchanged and settles exactly once:
when the last event is read, when the caller closes or abandons the stream, or when it fails mid-way."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from bedrock_budget.pipeline.context import StreamOverdueError
from bedrock_budget.wrapper.proxy_base import ProxyBase

# finish(complete, error, first_event_at) — called exactly once per stream; ``error`` is
# :class:`StreamOverdueError` when the stream outlived the maximum call lifetime unread.
Finish = Callable[[bool, BaseException | None, float | None], None]
Feed = Callable[[dict[str, Any]], None]

__all__ = ["MeteredEventStream", "StreamOverdueError", "StreamSettlement"]


class StreamSettlement:
    """The once-only bookkeeping of one stream, kept apart from the proxy so that collecting the proxy can
    trigger it (a finalizer must not hold the object it watches)."""

    __slots__ = ("_done", "_feed", "_finish", "_lock", "first_event_at")

    def __init__(self, feed: Feed, finish: Finish) -> None:
        self._feed = feed
        self._finish = finish
        self._lock = threading.Lock()
        self._done = False
        self.first_event_at: float | None = None

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: dict[str, Any]) -> None:
        if self.first_event_at is None:
            self.first_event_at = time.perf_counter()
        self._feed(event)

    def finish(self, complete: bool, error: BaseException | None = None) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self._finish(complete, error, self.first_event_at)

    def abandon(self) -> None:
        self.finish(False)

    def overdue(self) -> None:
        self.finish(False, StreamOverdueError())


class SettledStreamProxy(ProxyBase):
    """What the sync and async stream proxies share: the settlement, settled as abandoned when the proxy
    is collected and as incomplete when the caller closes the stream early."""

    def __init__(self, stream: Any, settlement: StreamSettlement) -> None:
        super().__init__(stream)
        self._self_settlement = settlement
        weakref.finalize(self, settlement.abandon)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_settlement.finish(False)


class MeteredEventStream(SettledStreamProxy):
    """Proxies an ``EventStream``; everything but iteration and ``close`` goes straight to it."""

    def __iter__(self) -> Iterator[Any]:
        settlement: StreamSettlement = self._self_settlement
        try:
            for event in self.__wrapped__:
                settlement.feed(event)
                yield event
        except GeneratorExit:
            # Leaving a for-loop closes this generator, but botocore lets the caller resume reading the
            # same stream; settling here would charge a partial count for a stream still being read.
            # An abandoned stream settles when it is closed or collected.
            raise
        except BaseException as exc:
            settlement.finish(False, exc)
            raise
        settlement.finish(True)

    def __enter__(self) -> MeteredEventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
