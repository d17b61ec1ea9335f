"""Budget threshold alerts and where they go."""

from __future__ import annotations

from bedrock_budget.alerts.model import Alert
from bedrock_budget.alerts.sinks import AlertSink, BackgroundSink, CallbackSink, SnsSink, WebhookSink, as_sink

__all__ = ["Alert", "AlertSink", "BackgroundSink", "CallbackSink", "SnsSink", "WebhookSink", "as_sink"]
