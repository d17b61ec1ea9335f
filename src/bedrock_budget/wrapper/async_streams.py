"""A stand-in for aiobotocore's ``AioEventStream`` that yields every event unchanged to ``async for`` and
settles exactly once, by the sync stream's rules (:mod:`bedrock_budget.wrapper.streams`): when the last
event is read, when the caller closes the stream, when it is abandoned (collected), or when reading it
fails mid-way — a ``CancelledError`` included, since a task cancelled mid-stream never reads the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from bedrock_budget.wrapper.streams import SettledStreamProxy, StreamSettlement

__all__ = ["AsyncMeteredEventStream"]


class AsyncMeteredEventStream(SettledStreamProxy):
    """Proxies an ``AioEventStream``; everything but async iteration and closing goes straight to it."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._events()

    async def _events(self) -> AsyncIterator[Any]:
        settlement: StreamSettlement = self._self_settlement
        try:
            async for event in self.__wrapped__:
                settlement.feed(event)
                yield event
        except GeneratorExit:
            # Leaving an ``async for`` early closes this generator, but the caller may resume reading the
            # same stream, as with aiobotocore's own: an abandoned stream settles when closed or collected.
            raise
        except BaseException as exc:
            settlement.finish(False, exc)
            raise
        settlement.finish(True)

    async def aclose(self) -> None:
        """Close the stream (aiobotocore's own ``close`` is synchronous; this is the awaitable form)."""
        self.close()

    async def __aenter__(self) -> AsyncMeteredEventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
