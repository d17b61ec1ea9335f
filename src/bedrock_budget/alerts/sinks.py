"""Alert sinks: a Python callable, a webhook and Amazon SNS.

Network sinks never run on the caller's thread: alerts go into a bounded queue drained by one background
thread per sink, so a slow or dead endpoint costs the hot path one ``put_nowait``. A full queue drops the
alert with a log line and a ``dropped`` count. ``close()`` drains what is queued (bounded by a timeout);
sinks still open at interpreter exit are drained then too.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol, runtime_checkable

from bedrock_budget.alerts.model import Alert

log = logging.getLogger("bedrock_budget.alerts")

_STOP: Final = object()
_OPEN: weakref.WeakSet[BackgroundSink] = weakref.WeakSet()


@runtime_checkable
class AlertSink(Protocol):
    def send(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


class CallbackSink:
    """Calls ``fn(alert)`` on the thread that settled the call; exceptions are logged, never raised."""

    def __init__(self, fn: Callable[[Alert], object]) -> None:
        self.fn = fn
        self.failed = 0

    def send(self, alert: Alert) -> None:
        try:
            self.fn(alert)
        except Exception:
            self.failed += 1
            log.exception("alert callback %r failed", self.fn)

    def close(self) -> None:
        return None


class BackgroundSink:
    """Base for sinks that deliver on their own thread through a bounded queue."""

    def __init__(self, *, queue_size: int = 1000, close_timeout: float = 10.0) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.close_timeout = close_timeout
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def deliver(self, alert: Alert) -> None:
        """Deliver one alert (runs on the sink's thread); raise to count a failure."""
        raise NotImplementedError

    def send(self, alert: Alert) -> None:
        with self._lock:
            if self._closed:
                self.dropped += 1
                log.warning("alert sink %r is closed; dropped alert for budget %s", self, alert.budget)
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name=f"bedrock-budget-{type(self).__name__}", daemon=True
                )
                self._thread.start()
                _OPEN.add(self)
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.dropped += 1
            log.error("alert queue of %r is full; dropped alert for budget %s", self, alert.budget)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                assert isinstance(item, Alert)
                self.deliver(item)
                self.sent += 1
            except Exception:
                self.failed += 1
                log.exception("alert sink %r could not deliver an alert", self)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued alert was handled; True when that happened within ``timeout``."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        _OPEN.discard(self)
        if thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=self.close_timeout)
        except queue.Full:
            log.error("alert sink %r did not drain in %.1fs", self, self.close_timeout)
            return
        thread.join(self.close_timeout)


@atexit.register
def _drain_open_sinks() -> None:
    for sink in list(_OPEN):
        sink.close()


class WebhookSink(BackgroundSink):
    """POSTs each alert as JSON (:meth:`Alert.to_dict`) to ``url``. Connection errors, timeouts, 429 and
    5xx are retried up to ``retries`` times with exponential backoff; other 4xx are not."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
        queue_size: int = 1000,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http(s): {url!r}")
        super().__init__(queue_size=queue_size)
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.headers = {"Content-Type": "application/json", "User-Agent": "bedrock-budget", **(headers or {})}

    def deliver(self, alert: Alert) -> None:
        import urllib.error
        import urllib.request

        body = json.dumps(alert.to_dict()).encode("utf-8")
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                return
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code != 429 and exc.code < 500:
                    raise
                error: Exception = exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                error = exc
            if attempt < self.retries:
                time.sleep(min(self.backoff * 2**attempt, 30.0))
        raise error

    def __repr__(self) -> str:
        return f"WebhookSink({self.url.split('?')[0]!r})"


class SnsSink(BackgroundSink):
    """Publishes each alert to an SNS topic (``Subject`` is the budget line, ``Message`` the JSON).
    ``client`` is a boto3 SNS client; without one it is created on first use in the topic's region."""

    def __init__(
        self,
        topic_arn: str,
        *,
        client: Any = None,
        region_name: str | None = None,
        queue_size: int = 1000,
    ) -> None:
        parts = topic_arn.split(":")
        if len(parts) < 6 or parts[0] != "arn" or parts[2] != "sns":
            raise ValueError(f"not an SNS topic ARN: {topic_arn!r}")
        super().__init__(queue_size=queue_size)
        self.topic_arn = topic_arn
        self.region_name = region_name or parts[3]
        self._client = client

    def _sns(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("sns", region_name=self.region_name)
        return self._client

    def deliver(self, alert: Alert) -> None:
        subject = f"Budget {alert.budget} at {alert.percentage}%"
        subject = "".join(c if 32 <= ord(c) < 127 else "?" for c in subject)[:100]
        self._sns().publish(TopicArn=self.topic_arn, Subject=subject, Message=json.dumps(alert.to_dict()))

    def __repr__(self) -> str:
        return f"SnsSink({self.topic_arn!r})"


def as_sink(sink: AlertSink | Callable[[Alert], object]) -> AlertSink:
    if isinstance(sink, AlertSink):
        return sink
    if callable(sink):
        return CallbackSink(sink)
    raise TypeError(f"an alert sink must have send()/close() or be callable, not {type(sink).__name__}")
