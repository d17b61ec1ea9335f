from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from bedrock_budget.pricing import default_price_table
from bedrock_budget.records import CallRecord
from bedrock_budget.usage import Usage

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


def usd(value: str | int) -> Decimal:
    return Decimal(value)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def require_binary(name: str) -> str:
    """The path of a prometheus binary. Outside CI a missing binary skips; with CI=true it fails."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
    if path:
        return path
    reason = f"{name} is not installed (Debian: apt-get install prometheus, or run .ci/ensure-services.sh)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_binary("promtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return require_binary("prometheus")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
