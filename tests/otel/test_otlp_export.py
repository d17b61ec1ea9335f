"""End to end: real boto3 calls through ``bb.wrap`` to the fake Bedrock, the metrics exported by the
official OTLP/HTTP exporter to a receiver in this test, which decodes the protobuf and checks what arrived
against the call records."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

import bedrock_budget as bb
from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.metrics import StoreBudgetSource
from bedrock_budget.otel import BudgetGauges, OTelListener
from bedrock_budget.stores import MemoryStore
from bedrock_budget.testing import FakeBedrock, UsageSpec

from .conftest import HAIKU, MESSAGES, SONNET


@dataclass(frozen=True)
class Received:
    name: str
    unit: str
    kind: str
    attributes: dict[str, Any]
    value: float
    count: int | None = None


class Receiver:
    """An OTLP/HTTP metrics endpoint that keeps every decoded data point."""

    def __init__(self) -> None:
        self.points: list[Received] = []
        self.requests = 0
        self.content_types: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.content_types.add(self.headers.get("Content-Type", ""))
                receiver.take(self.path, body)
                reply = ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/metrics"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def take(self, path: str, body: bytes) -> None:
        assert path == "/v1/metrics"
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        self.requests += 1
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "bedrock_budget"
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    for dp in getattr(metric, kind).data_points:
                        attributes = {kv.key: decode(kv.value) for kv in dp.attributes}
                        if kind == "histogram":
                            point = Received(metric.name, metric.unit, kind, attributes, dp.sum, dp.count)
                        else:
                            number = dp.as_double if dp.WhichOneof("value") == "as_double" else dp.as_int
                            point = Received(metric.name, metric.unit, kind, attributes, number)
                        self.points.append(point)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def decode(value: AnyValue) -> Any:
    return getattr(value, value.WhichOneof("value"))


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    receiver = Receiver()
    yield receiver
    receiver.close()


def test_metrics_arrive_over_otlp_http_as_the_records_say(
    receiver: Receiver, fake: FakeBedrock, records: list[bb.CallRecord]
) -> None:
    exporter = OTLPMetricExporter(endpoint=receiver.url, timeout=10)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader])
    budgets = [Budget("chat-daily", scope={"app": "chat"}, window="day", limit_usd="5")]
    store = MemoryStore()
    fake.set_usage(HAIKU, UsageSpec(input_tokens=800, output_tokens=120, cache_read_tokens=2000))
    fake.set_usage(SONNET, UsageSpec(input_tokens=50, output_tokens=400))
    client = bb.wrap(
        fake.client(), listeners=[OTelListener(provider), records], ledger=Ledger(store, budgets)
    )
    BudgetGauges(StoreBudgetSource(store, budgets), provider, cache_seconds=0)
    with bb.attribute(app="chat"):
        for model in (HAIKU, SONNET, HAIKU):
            client.converse(modelId=model, messages=MESSAGES)
    fake.fail_next("Converse", "ThrottlingException", times=10)
    with bb.attribute(app="chat"), pytest.raises(client.exceptions.ThrottlingException):
        client.converse(modelId=HAIKU, messages=MESSAGES)
    provider.shutdown()  # exports once more, then stops

    assert receiver.requests >= 1
    assert receiver.content_types == {"application/x-protobuf"}
    points = receiver.points
    units = {(p.name, p.kind, p.unit) for p in points}
    assert units == {
        ("gen_ai.client.token.usage", "histogram", "{token}"),
        ("gen_ai.client.operation.duration", "histogram", "s"),
        ("bedrock_budget.client.cost", "sum", "USD"),
        ("bedrock_budget.client.requests", "sum", "{request}"),
        ("bedrock_budget.budget.limit", "gauge", "USD"),
        ("bedrock_budget.budget.spent", "gauge", "USD"),
        ("bedrock_budget.budget.reserved", "gauge", "USD"),
        ("bedrock_budget.budget.tokens.spent", "gauge", "{token}"),
        ("bedrock_budget.budget.tokens.reserved", "gauge", "{token}"),
        ("bedrock_budget.budget.utilization", "gauge", "1"),
        ("bedrock_budget.budget.time_to_reset", "gauge", "s"),
        ("bedrock_budget.budget.counters", "gauge", "{counter}"),
        ("bedrock_budget.store.up", "gauge", "1"),
    }
    # Cumulative temporality: the final export holds the totals; keep the last point of each series.
    latest: dict[tuple[str, frozenset[tuple[str, Any]]], Received] = {}
    for point in points:
        latest[(point.name, frozenset(point.attributes.items()))] = point

    def find(name: str, **attributes: Any) -> list[Received]:
        return [
            p
            for (n, _), p in latest.items()
            if n == name and all(p.attributes.get(k) == v for k, v in attributes.items())
        ]

    ok = [r for r in records if r.outcome == "ok"]
    failed = [r for r in records if r.outcome == "error"]
    assert len(ok) == 3
    assert len(failed) == 1
    for model in (HAIKU, SONNET):
        mine = [r for r in ok if r.model_id == model]
        [inputs] = find(
            "gen_ai.client.token.usage", **{"gen_ai.response.model": model, "gen_ai.token.type": "input"}
        )
        assert inputs.count == len(mine)
        assert inputs.value == sum(r.usage.input_tokens + r.usage.cache_read_tokens for r in mine)
        assert inputs.attributes == {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "aws.bedrock",
            "gen_ai.request.model": model,
            "gen_ai.response.model": model,
            "gen_ai.token.type": "input",
            "server.address": "bedrock-runtime.us-east-1.amazonaws.com",
            "server.port": 443,
            "bedrock_budget.app": "chat",
        }
        [outputs] = find(
            "gen_ai.client.token.usage", **{"gen_ai.response.model": model, "gen_ai.token.type": "output"}
        )
        assert outputs.value == sum(r.usage.output_tokens for r in mine)
        [cost] = find("bedrock_budget.client.cost", **{"gen_ai.response.model": model})
        assert cost.value == pytest.approx(float(sum((r.cost_usd for r in mine), Decimal(0))), rel=1e-12)
        [duration] = [
            p
            for p in find("gen_ai.client.operation.duration", **{"gen_ai.response.model": model})
            if "error.type" not in p.attributes
        ]
        assert duration.count == len(mine)
        assert duration.value == pytest.approx(sum(r.latency_seconds for r in mine))

    [failed_duration] = find("gen_ai.client.operation.duration", **{"error.type": "ThrottlingException"})
    assert failed_duration.count == 1
    assert failed_duration.value == failed[0].latency_seconds
    [throttled] = find("bedrock_budget.client.requests", **{"error.type": "ThrottlingException"})
    assert throttled.value == 1
    assert throttled.attributes["bedrock_budget.outcome"] == "error"
    ok_series = find("bedrock_budget.client.requests", **{"bedrock_budget.outcome": "ok"})
    assert sorted(p.value for p in ok_series) == [1, 2]  # one series per model

    nano = Decimal("1e-9")
    spent = sum((r.cost_usd.quantize(nano, rounding=ROUND_CEILING) for r in ok), Decimal(0))
    [gauge] = find("bedrock_budget.budget.spent", **{"bedrock_budget.budget": "chat-daily"})
    assert gauge.value == float(spent)
    [limit] = find("bedrock_budget.budget.limit", **{"bedrock_budget.budget": "chat-daily"})
    assert limit.value == 5
    [up] = find("bedrock_budget.store.up")
    assert up.value == 1
