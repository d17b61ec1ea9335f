"""An SDK meter provider read in memory, and helpers that flatten what it collected."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
SONNET = "anthropic.claude-3-5-sonnet-20241022-v2:0"
TITAN_EMBED = "amazon.titan-embed-text-v2:0"
MESSAGES = [{"role": "user", "content": [{"text": "hello there"}]}]


@dataclass(frozen=True)
class Point:
    """One collected data point: its metric's name and unit, its attributes, and its value (a sum, a
    gauge value, or a histogram's sum and count)."""

    name: str
    unit: str
    attributes: Mapping[str, Any]
    value: float
    count: int | None = None


@dataclass
class Collected:
    provider: MeterProvider
    reader: InMemoryMetricReader

    def points(self) -> list[Point]:
        data = self.reader.get_metrics_data()
        found: list[Point] = []
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for dp in metric.data.data_points:
                        if hasattr(dp, "bucket_counts"):
                            found.append(
                                Point(metric.name, metric.unit, dict(dp.attributes), dp.sum, dp.count)
                            )
                        else:
                            found.append(Point(metric.name, metric.unit, dict(dp.attributes), dp.value))
        return found

    @classmethod
    @contextlib.contextmanager
    def new(cls) -> Iterator[Collected]:
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        try:
            yield cls(provider, reader)
        finally:
            provider.shutdown()

    def named(self, name: str) -> list[Point]:
        return [p for p in self.points() if p.name == name]


@pytest.fixture
def collected() -> Iterator[Collected]:
    with Collected.new() as collected:
        yield collected


def where(points: list[Point], **attributes: Any) -> list[Point]:
    """Points whose attributes include every given one (dots written as ``__``)."""
    wanted = {k.replace("__", "."): v for k, v in attributes.items()}
    return [p for p in points if all(p.attributes.get(k) == v for k, v in wanted.items())]
