"""Serving the metrics: an HTTP server thread, a WSGI app, an ASGI app.

With ``registry=None`` each of them serves prometheus_client's global registry, or, when
``PROMETHEUS_MULTIPROC_DIR`` is set (prometheus-client multiprocess mode), a fresh registry aggregating
every worker's files. ``collectors`` (e.g. a :class:`~bedrock_budget.metrics.BudgetCollector`) are added
to that exposition registry only: they read shared state at scrape time, so one copy is enough.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry
    from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    path = os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower())
    return path or None


def exposition_registry(
    registry: CollectorRegistry | None = None, collectors: Iterable[Collector] = ()
) -> CollectorRegistry:
    """The registry to serve: ``registry`` if given; in multiprocess mode a new registry holding a
    ``MultiProcessCollector``; otherwise the global one. ``collectors`` are registered on it."""
    from prometheus_client import REGISTRY, CollectorRegistry

    if registry is None:
        path = multiprocess_dir()
        if path is not None:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        else:
            registry = REGISTRY
    for collector in collectors:
        registry.register(collector)
    return registry


class MetricsServer:
    """A running ``/metrics`` HTTP server (a daemon thread). ``close()`` stops it and frees the port."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.host: str = str(server.server_address[0])
        self.port: int = int(server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_http_server(
    port: int,
    addr: str = "127.0.0.1",
    registry: CollectorRegistry | None = None,
    *,
    collectors: Iterable[Collector] = (),
) -> MetricsServer:
    """Serve ``/metrics`` on ``addr:port`` (port 0: any free port) from a daemon thread.

    Binds to loopback unless told otherwise: metrics name apps, models and budgets, which is nobody
    else's business by default. Raises :class:`~bedrock_budget.errors.ListenError` when the port is taken
    or the address cannot be bound.
    """
    import prometheus_client

    from bedrock_budget.errors import ListenError

    collectors = list(collectors)
    served = exposition_registry(registry, collectors)
    try:
        server, thread = prometheus_client.start_http_server(port, addr=addr, registry=served)
    except OSError as exc:
        # Leave the registry as it was, so a retry on another port can register the collectors again.
        for collector in collectors:
            served.unregister(collector)
        raise ListenError(addr, port, exc) from exc
    return MetricsServer(server, thread)


def make_wsgi_app(
    registry: CollectorRegistry | None = None, *, collectors: Iterable[Collector] = ()
) -> Callable[..., Any]:
    """A WSGI app serving the metrics (mount it at ``/metrics``)."""
    import prometheus_client

    return prometheus_client.make_wsgi_app(exposition_registry(registry, collectors))


def make_asgi_app(
    registry: CollectorRegistry | None = None, *, collectors: Iterable[Collector] = ()
) -> Callable[..., Any]:
    """An ASGI app serving the metrics (``app.mount("/metrics", make_asgi_app())`` in Starlette/FastAPI)."""
    import prometheus_client

    return prometheus_client.make_asgi_app(exposition_registry(registry, collectors))
