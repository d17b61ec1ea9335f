"""Alert sinks fired from an event loop.

The async ledger decides alerts on the loop (a settlement batch's outcomes, a refusal's first 100%), and a
sink that does I/O there would stall every call in flight. So the loop never runs a sink's delivery:

- the webhook and SNS sinks (:class:`~bedrock_budget.alerts.sinks.BackgroundSink`) already deliver on their
  own thread; ``send`` only puts the alert on their bounded queue;
- any other sink — a plain callback, an ``AlertSink`` of your own — is wrapped in :class:`ThreadedSink`,
  which hands each alert to one worker thread through a bounded queue (a full queue drops the alert,
  counted and logged, rather than stall the loop), delivering in order.

Closing the sinks joins their threads, so the async ledger closes them in a worker thread too.
"""

from __future__ import annotations

from collections.abc import Callable

from bedrock_budget.alerts.model import Alert
from bedrock_budget.alerts.sinks import AlertSink, BackgroundSink, as_sink

__all__ = ["ThreadedSink", "loop_safe"]


class ThreadedSink(BackgroundSink):
    """Delivers to ``sink`` on a worker thread of its own."""

    def __init__(self, sink: AlertSink, *, queue_size: int = 1000) -> None:
        super().__init__(queue_size=queue_size)
        self.sink = sink

    def deliver(self, alert: Alert) -> None:
        self.sink.send(alert)

    def close(self) -> None:
        super().close()
        self.sink.close()

    def __repr__(self) -> str:
        return f"ThreadedSink({self.sink!r})"


def loop_safe(sink: AlertSink | Callable[[Alert], object]) -> AlertSink:
    """A sink whose ``send`` never blocks the calling thread."""
    found = as_sink(sink)
    if isinstance(found, BackgroundSink):
        return found
    return ThreadedSink(found)
