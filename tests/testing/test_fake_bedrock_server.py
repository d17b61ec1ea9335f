"""Transport behaviour: keep-alive, speed, clean shutdown, and the CLI entry point."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from botocore.config import Config

from bedrock_budget.testing import FakeBedrock
from polling import wait_until

from .fakebedrock_support import CLAUDE, USER_HELLO


def test_keep_alive_serves_many_requests_on_one_connection(fake: FakeBedrock) -> None:
    body = json.dumps({"messages": USER_HELLO})
    connection = http.client.HTTPConnection(fake.host, fake.port, timeout=5)
    try:
        connection.connect()
        first_socket = connection.sock
        for _ in range(5):
            connection.request("POST", "/model/amazon.nova-lite-v1%3A0/converse", body)
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("Content-Length") == str(len(response.read()))
            assert response.getheader("x-amzn-RequestId")
        assert connection.sock is first_socket
    finally:
        connection.close()


def test_calls_are_fast(fake: FakeBedrock, client: Any) -> None:
    client.converse(modelId=CLAUDE, messages=USER_HELLO)
    started = time.perf_counter()
    for _ in range(100):
        client.converse(modelId=CLAUDE, messages=USER_HELLO)
    # Nagle plus delayed ACKs would cost ~40 ms a call; the fake answers in well under 5 ms.
    assert time.perf_counter() - started < 2.0


def test_stop_is_quick_with_idle_and_busy_connections() -> None:
    outcome: list[str] = []
    with FakeBedrock() as fake:
        idle = fake.client()
        idle.converse(modelId=CLAUDE, messages=USER_HELLO)  # leaves a keep-alive connection open
        fake.set_latency(30)
        busy = fake.client(config=Config(retries={"total_max_attempts": 1}, read_timeout=60))

        def slow_call() -> None:
            try:
                busy.converse(modelId=CLAUDE, messages=USER_HELLO)
                outcome.append("answered")
            except Exception as error:  # the server went away mid-call
                outcome.append(type(error).__name__)

        caller = threading.Thread(target=slow_call)
        caller.start()
        wait_until(
            lambda: fake.request_count >= 2,
            5,
            interval=0.01,
            message="the slow call to reach the fake Bedrock",
        )
        started = time.perf_counter()
    assert time.perf_counter() - started < 2.0
    caller.join(5)
    assert outcome
    assert outcome[0] != "answered"


def test_endpoint_needs_a_running_server() -> None:
    fake = FakeBedrock()
    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.endpoint_url
    with fake:
        assert fake.endpoint_url == f"http://127.0.0.1:{fake.port}"
    fake.stop()  # stopping twice is harmless


def test_serve_prints_its_url_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-W",
            "error",
            "-c",
            "from bedrock_budget.testing import serve; serve('127.0.0.1', 0)",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("fake Bedrock listening on http://127.0.0.1:")
        port = int(line.split("http://127.0.0.1:", 1)[1].split()[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request(
            "POST", "/model/amazon.nova-lite-v1%3A0/converse", json.dumps({"messages": USER_HELLO})
        )
        assert connection.getresponse().status == 200
        connection.close()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
