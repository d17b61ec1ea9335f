"""``advise --store`` reads the spend ledger: a store with no budget at all gets advice on every tracked
call, per app when the ledger tracks app and model together; through ``CliRunner`` and through a real
process writing to a pipe at 80 columns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from queue import Queue
from typing import Any

from click.testing import CliRunner

import bedrock_budget as bb
from bedrock_budget.cli.app import _register, cli
from bedrock_budget.testing import FakeBedrock

from . import _spend_worker
from .conftest import Target

PAIRED = {"track": ["user", "app", "model", ("app", "model")]}


def calls(fake: FakeBedrock, target: Target, options: dict[str, Any], count: int = 30) -> tuple[int, int]:
    results: Any = Queue()
    _spend_worker.mixed_calls(fake.endpoint_url, target.store, target.prefix, 3, count, options, results)
    made: tuple[int, int] = results.get()
    return made


def runner() -> CliRunner:
    if not cli.commands:
        _register()
    return CliRunner()


def store_uri(target: Target) -> str:
    assert target.uri is not None
    return f"{target.uri}{'&' if '?' in target.uri else '?'}prefix={target.prefix}"


def test_advise_reads_the_ledger_of_a_store_without_budgets(fake: FakeBedrock, shared_target: Target) -> None:
    made, nanos = calls(fake, shared_target, PAIRED)
    result = runner().invoke(cli, ["advise", "--store", store_uri(shared_target), "--json"])
    assert result.exit_code == 0, result.output
    advice = json.loads(result.output)
    assert advice["source"].startswith("spend ledger in ")
    assert advice["recorded"]["calls"] == made
    assert Decimal(advice["recorded"]["cost_usd"]) == bb.SpendRow((), (), nanos, 0).cost_usd
    targets = {(s["lever"], s["target"]) for s in advice["levers"]}
    # Per-app levers need the app of each model's traffic: the tracked (app, model) pair gives it.
    assert any(lever == "cascade" and "chat" in target for lever, target in targets), targets
    assert not any("per app" in line for line in advice["not_evaluated"]), advice["not_evaluated"]
    assert any("cache writes" in line for line in advice["assumptions"]), advice["assumptions"]


def test_without_the_pair_per_app_levers_say_how_to_get_them(
    fake: FakeBedrock, shared_target: Target
) -> None:
    made, _ = calls(fake, shared_target, {})
    argv = ["advise", "--store", store_uri(shared_target), "--batch-apps", "legal", "--json"]
    result = runner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    advice = json.loads(result.output)
    assert advice["recorded"]["calls"] == made
    skipped = " ".join(advice["not_evaluated"])
    assert '("app", "model")' in skipped
    assert not any(s["lever"] == "batch" for s in advice["levers"])
    assert any(s["lever"] == "prompt-caching" for s in advice["levers"])


def test_advise_from_a_shell_through_a_pipe_at_80_columns(fake: FakeBedrock, shared_target: Target) -> None:
    made, _ = calls(fake, shared_target, PAIRED, count=20)
    env = {**os.environ, "COLUMNS": "80"}
    command = [sys.executable, "-c", "import sys; from bedrock_budget.cli import main; sys.exit(main())"]
    run = subprocess.run(
        [*command, "advise", "--store", store_uri(shared_target), "--batch-apps", "legal"],
        capture_output=True,  # stdout is a pipe, not a terminal
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("source: spend ledger in ")
    assert lines[1].startswith(f"recorded: {made:,} calls, $")
    assert any("batch" in line and "legal" in line for line in lines), run.stdout
    # Through a pipe the table is plain lines, whatever the width: nothing cut to fit 80 columns.
    assert "…" not in run.stdout
    assert any("app legal: amazon.nova-micro-v1:0 (" in line for line in lines), run.stdout
    assert "assumes: " in run.stdout
    assert "cache writes" in run.stdout
