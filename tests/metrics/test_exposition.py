"""Serving metrics: HTTP server thread, WSGI, ASGI, and prometheus-client multiprocess mode."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from bedrock_budget.metrics import (
    BudgetCollector,
    BudgetState,
    PrometheusListener,
    exposition_registry,
    make_asgi_app,
    make_wsgi_app,
    start_http_server,
)

from .conftest import HAIKU, make_record, usd

WORKER = Path(__file__).with_name("_multiprocess_worker.py")


class StaticSource:
    def list_budget_states(self) -> list[BudgetState]:
        return [BudgetState("chat-daily", limit_usd=usd(10), spent_usd=usd("8.5"))]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


def values(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                found[tuple(sorted(s.labels.items()))] = s.value
    return found


def test_http_server_serves_and_closes(registry: CollectorRegistry) -> None:
    PrometheusListener(registry)(make_record())
    server = start_http_server(0, registry=registry, collectors=[BudgetCollector(StaticSource())])
    with server:
        assert server.host == "127.0.0.1"
        text = fetch(server.url)
    assert "bedrock_budget_requests_total" in text
    assert values(text, "bedrock_budget_budget_utilisation_ratio") == {
        (("budget", "chat-daily"), ("unit", "usd")): 0.85
    }
    with pytest.raises(urllib.error.URLError):
        fetch(server.url)


def test_wsgi_app(registry: CollectorRegistry) -> None:
    PrometheusListener(registry)(make_record())
    app = make_wsgi_app(registry)
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    statuses: list[str] = []
    body = b"".join(app(environ, lambda status, headers: statuses.append(status)))
    assert statuses == ["200 OK"]
    assert f'model="{HAIKU}"'.encode() in body


def test_asgi_app(registry: CollectorRegistry) -> None:
    PrometheusListener(registry)(make_record())
    app = make_asgi_app(registry, collectors=[BudgetCollector(StaticSource())])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/metrics", "headers": [], "query_string": b""}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 200
    body = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    assert "bedrock_budget_cost_usd_total" in body
    assert "bedrock_budget_budget_limit_usd" in body


def test_default_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    assert exposition_registry() is REGISTRY


def test_multiprocess_mode_aggregates_worker_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    plan = [(40, "chat", 1), (25, "search", 2), (10, "chat", 4)]
    workers = [
        subprocess.Popen([sys.executable, str(WORKER), str(calls), app, str(journal)], env=env)
        for calls, app, journal in plan
    ]
    try:
        for worker in workers:
            assert worker.wait(timeout=60) == 0
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    with start_http_server(0, collectors=[BudgetCollector(StaticSource())]) as server:
        text = fetch(server.url)
        requests = values(text, "bedrock_budget_requests_total")
        by_app = {dict(k)["app"]: v for k, v in requests.items()}
        assert by_app == {"chat": 50, "search": 25}
        assert values(text, "bedrock_budget_store_errors_total") == {
            (("kind", "timeout"), ("operation", "settle")): 3
        }
        assert values(text, "bedrock_budget_journal_entries") == {(): 7}
        assert values(text, "bedrock_budget_budget_spent_usd") == {(("budget", "chat-daily"),): 8.5}

        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(workers[2].pid, str(directory))  # type: ignore[no-untyped-call]
        text = fetch(server.url)
        # A dead worker's journal no longer counts; its counters still do.
        assert values(text, "bedrock_budget_journal_entries") == {(): 3}
        assert sum(values(text, "bedrock_budget_requests_total").values()) == 75
