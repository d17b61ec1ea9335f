"""Alert sinks: callables, a webhook (local HTTP server) and SNS (moto)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bedrock_budget.alerts import Alert, CallbackSink, SnsSink, WebhookSink, as_sink

ALERT = Alert(
    budget="chat-daily",
    scope={"app": "chat"},
    window="day",
    timezone="Europe/Berlin",
    window_start=datetime.fromisoformat("2025-06-10T00:00:00+02:00"),
    resets_at=datetime.fromisoformat("2025-06-11T00:00:00+02:00"),
    unit="usd",
    threshold=80,
    spent=Decimal("20.5"),
    limit=Decimal("25"),
    percentage=Decimal("82.00"),
    action="block",
)


class Receiver:
    """A loopback HTTP endpoint answering with scripted status codes."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.headers.append(dict(self.headers))
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=secret"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    statuses = list(getattr(request, "param", []))
    made = Receiver(statuses)
    yield made
    made.close()


def test_alert_json_is_exact() -> None:
    data = ALERT.to_dict()
    assert data["spent"] == "20.5"
    assert data["limit"] == "25"
    assert data["percentage"] == "82.00"
    assert data["window_start"] == "2025-06-10T00:00:00+02:00"
    assert data["threshold"] == 80
    assert data["message"] == (
        "budget chat-daily (app=chat) reached 82.00% of its day limit ($20.5 of $25; threshold 80%)"
    )
    assert (data["refused"], data["held"], data["requested"]) == (False, None, None)


def test_a_refusal_alert_says_the_budget_refuses_calls() -> None:
    refusal = replace(ALERT, threshold=100, refused=True, held=Decimal("3"), requested=Decimal("2"))
    data = refusal.to_dict()
    assert (data["refused"], data["held"], data["requested"]) == (True, "3", "2")
    assert data["message"] == (
        "budget chat-daily (app=chat) started refusing calls at 82.00% of its day limit: $20.5 spent + $3 "
        "held by calls in flight + $2 for the refused call would pass $25 (threshold 100%)"
    )


@pytest.mark.parametrize("receiver", [[500, 429]], indirect=True)
def test_webhook_posts_json_and_retries_server_errors(receiver: Receiver) -> None:
    sink = WebhookSink(receiver.url, retries=3, backoff=0.01, headers={"Authorization": "Bearer x"})
    sink.send(ALERT)
    assert sink.flush(10)
    sink.close()
    assert len(receiver.bodies) == 3
    assert receiver.bodies[-1] == ALERT.to_dict()
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert receiver.headers[0]["Authorization"] == "Bearer x"
    assert (sink.sent, sink.failed, sink.dropped) == (1, 0, 0)
    assert "secret" not in repr(sink)


@pytest.mark.parametrize("receiver", [[400, 500]], indirect=True)
def test_webhook_gives_up_on_client_errors(receiver: Receiver) -> None:
    sink = WebhookSink(receiver.url, retries=3, backoff=0.01)
    sink.send(ALERT)
    sink.close()
    assert len(receiver.bodies) == 1
    assert (sink.sent, sink.failed) == (0, 1)


def test_webhook_bounds_retries_against_a_dead_endpoint() -> None:
    sink = WebhookSink("http://127.0.0.1:9/", retries=2, backoff=0.01, timeout=0.5)
    sink.send(ALERT)
    sink.close()
    assert (sink.sent, sink.failed) == (0, 1)


def test_a_full_queue_drops_loudly(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    gate = threading.Event()

    class Slow(WebhookSink):
        def deliver(self, alert: Alert) -> None:
            gate.wait(5)

    sink = Slow(receiver.url, queue_size=1)
    for _ in range(4):
        sink.send(ALERT)
    gate.set()
    sink.close()
    assert sink.dropped >= 2
    assert "queue" in caplog.text
    sink.send(ALERT)  # after close
    assert "closed" in caplog.text


def test_sns_publishes_through_boto3() -> None:
    import boto3
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    with mock_aws():
        client = boto3.client("sns", region_name="eu-west-1")
        arn = client.create_topic(Name="budget-alerts")["TopicArn"]
        sink = SnsSink(arn)
        assert sink.region_name == "eu-west-1"
        sink.send(ALERT)
        sink.close()
        sent = sns_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].topics[arn].sent_notifications
        assert len(sent) == 1
        _, message, subject, _, _ = sent[0]
        assert json.loads(message) == ALERT.to_dict()
        assert subject == "Budget chat-daily at 82.00%"
        assert (sink.sent, sink.failed) == (1, 0)
        client.close()


def test_sink_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="SNS topic ARN"):
        SnsSink("arn:aws:sqs:us-east-1:1:q")
    with pytest.raises(ValueError, match="http"):
        WebhookSink("ftp://x")
    with pytest.raises(TypeError):
        as_sink(42)  # type: ignore[arg-type]
    calls: list[Alert] = []
    sink = as_sink(calls.append)
    assert isinstance(sink, CallbackSink)
    sink.send(ALERT)
    assert calls == [ALERT]
