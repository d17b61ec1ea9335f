from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from bedrock_budget.pricing import default_price_table
from bedrock_budget.records import CallRecord
from bedrock_budget.usage import Usage
from polling import wait_until
from service_fixtures import free_port

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "grafana"
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
SONNET = "anthropic.claude-3-5-sonnet-20241022-v2:0"


@dataclass(frozen=True, slots=True)
class BudgetRecord(CallRecord):
    """A record that also names the budget that downgraded it (read by the listener when present)."""

    downgraded_by: str | None = None


def with_budgets(record: CallRecord, **budget_fields: Any) -> BudgetRecord:
    fields: dict[str, Any] = {name: getattr(record, name) for name in CallRecord.__dataclass_fields__}
    return BudgetRecord(**{**fields, **budget_fields})


def make_record(
    *,
    model: str | None = HAIKU,
    app: str | None = "chat",
    user: str | None = None,
    outcome: str = "ok",
    operation: str = "Converse",
    usage: Usage | None = None,
    priced: bool = True,
    **extra: Any,
) -> CallRecord:
    usage = usage if usage is not None else Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=500)
    cost = None
    if priced and model is not None and default_price_table().find(model) is not None:
        cost = default_price_table().price(model, usage)
    attribution = {k: v for k, v in (("app", app), ("user", user)) if v is not None}
    fields: dict[str, Any] = {
        "operation": operation,
        "model_id": model,
        "requested_model_id": model or "",
        "region": "us-east-1",
        "route": "in_region",
        "attribution": attribution,
        "usage": usage,
        "cost": cost,
        "outcome": outcome,
        "latency_seconds": 0.42,
    }
    if cost is None and priced is False and "unpriced" not in extra:
        fields["unpriced"] = f"unknown model {model}"
    fields.update(extra)
    return CallRecord(**fields)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def series(registry: CollectorRegistry, name: str) -> list[dict[str, str]]:
    """Label sets of one sample name (e.g. ``bedrock_budget_requests_total``)."""
    found = []
    for family in registry.collect():
        for s in family.samples:
            if s.name == name:
                found.append(dict(s.labels))
    return found


#: ``python -c`` source that runs the ``serve-metrics`` command alone (the rest of the CLI is not loaded).
LAUNCH = (
    "import sys, click; from bedrock_budget.cli.metrics_commands import register; "
    "group = click.Group('bedrock-budget'); register(group); group(sys.argv[1:])"
)


def scrape(url: str) -> str | None:
    """The exposition at ``url``, or ``None`` while nothing answers there."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body: bytes = response.read()
            return body.decode()
    except OSError:
        return None


def usd(value: str | int) -> Decimal:
    return Decimal(value)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def require_binary(name: str) -> str:
    """The path of a prometheus binary; a missing one fails the test, in CI or not."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
    if path:
        return path
    pytest.fail(f"{name} is not installed (Debian: apt-get install prometheus; or .ci/ensure-services.sh)")


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_binary("promtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return require_binary("prometheus")


@dataclass
class Prometheus:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as response:
            return json.loads(response.read())

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = self.get("/api/v1/query", query=expr)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False


@contextlib.contextmanager
def running_prometheus(prometheus_bin: str, config: Path, tmp_path: Path) -> Iterator[Prometheus]:
    """A real prometheus on ``config`` and a free loopback port (tried again if another process took the
    port between our probe and its bind), stopped on exit."""
    log = tmp_path / "prometheus.log"
    for attempt in range(3):
        port = free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    prometheus_bin,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / f'data-{attempt}'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        instance = Prometheus(process, f"http://127.0.0.1:{port}", log)
        try:
            wait_until(instance.ready, 30, interval=0.1, message="prometheus to become ready")
        except AssertionError:
            if process.poll() is None:
                process.kill()
            process.wait(10)
            if attempt == 2 or "address already in use" not in log.read_text():
                raise
            continue
        break
    try:
        yield instance
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
