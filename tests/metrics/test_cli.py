"""``bedrock-budget serve-metrics``."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bedrock_budget.cli.metrics_commands import register, run_exporter, serve_metrics
from bedrock_budget.errors import ConfigurationError
from polling import wait_until
from service_fixtures import free_port

from .conftest import LAUNCH, scrape

BUDGETS_YAML = """
budgets:
  - name: chat-daily
    scope: {app: chat}
    window: day
    limit_usd: 25.00
  - name: per-user
    scope: {user: "*"}
    window: month
    limit_tokens: 2000000
"""


def group() -> click.Group:
    cli = click.Group("bedrock-budget")
    register(cli)
    return cli


def test_help_ends_with_an_example() -> None:
    result = CliRunner().invoke(group(), ["serve-metrics", "--help"])
    assert result.exit_code == 0
    assert "--store" in result.output
    assert "--budgets" in result.output
    assert "Example:\n    bedrock-budget serve-metrics --store " in result.output
    doc = (serve_metrics.help or "").rstrip().splitlines()
    assert doc[-2].strip() == "Example:"


def test_serve_metrics_until_sigterm(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(BUDGETS_YAML)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    args = ["serve-metrics", "--store", "memory://", "--port", str(port), "--budgets", str(budgets)]
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCH, *args], stderr=stderr)
    try:
        wait_until(
            lambda: scrape(url) is not None or proc.poll() is not None, 30, message="serve-metrics to listen"
        )
        text = scrape(url)
        assert text is not None, log.read_text()
        assert 'bedrock_budget_budget_limit_usd{budget="chat-daily"} 25.0' in text
        assert 'bedrock_budget_budget_limit_tokens{budget="per-user"} 2e+06' in text
        assert "bedrock_budget_store_up 1.0" in text
        assert "process_cpu_seconds_total" not in text, "the exporter reports budgets, not itself"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert f"on http://127.0.0.1:{port}/metrics" in log.read_text()


def test_run_exporter_in_a_thread_with_budgets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEDROCK_BUDGET__TEAM_DAILY", "window=day;limit_usd=3;scope.app=team")
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_exporter("memory://", port=0, stop=stop, ready=ready)
        except BaseException as exc:
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert ready.wait(15)
        assert not errors
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()


def test_bad_store_uri_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEDROCK_BUDGET__TEAM_DAILY", "window=day;limit_usd=3")
    result = CliRunner().invoke(group(), ["serve-metrics", "--store", "nosuch://x", "--port", "0"])
    assert isinstance(result.exception, ConfigurationError)
    assert "unknown store scheme" in str(result.exception)
