"""Ids and money are never cut: in narrow terminals, in a real pseudo-terminal, and through pipes; JSON keeps
JSON types; ``prices show`` prints JSON only when asked; ``advise`` rounds hours and money for people."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from bedrock_budget import stores
from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.budgets.loading import load_budgets
from bedrock_budget.cli import main
from bedrock_budget.stores.memory import MemoryStore

REPORTING = Path(__file__).resolve().parent.parent / "reporting" / "fixtures"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SONNET = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
BUDGETS = """\
budgets:
  - name: company-monthly-all-calls
    window: month
    limit_usd: "25.00"
  - name: legal-review-sonnet-daily
    scope: {app: legal-review, model: global.anthropic.claude-sonnet-4-5-20250929-v1:0}
    window: day
    limit_usd: "0.03"
  - name: per-user-daily
    scope: {user: "*"}
    window: day
    limit_usd: "0.08"
  - name: per-app-daily
    scope: {app: "*"}
    window: day
    limit_usd: "10"
"""
# (attribution, model, exact cost in USD, input tokens, output tokens): odd amounts, CJK and base64 ids.
SPEND = [
    ({"app": "legal-review", "user": "山田太郎"}, SONNET, "0.004031235", 41_999, 1_337),
    ({"app": "support-chat", "user": "dXNlcjpZV3hwWTJVPQ=="}, HAIKU, "0.000193615", 123, 45),
    ({"app": "search", "user": "u-07"}, HAIKU, "0.0664343", 7_777, 333),
]


def _terminal(monkeypatch: pytest.MonkeyPatch, columns: int | None) -> None:
    """A terminal ``columns`` wide (rich honours TTY_COMPATIBLE), or, with None, a pipe."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    if columns is None:
        monkeypatch.setenv("TTY_COMPATIBLE", "0")
        monkeypatch.setenv("COLUMNS", "80")
    else:
        monkeypatch.setenv("TTY_COMPATIBLE", "1")
        monkeypatch.setenv("COLUMNS", str(columns))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return ANSI.sub("", capsys.readouterr().out)


def assert_whole(out: str, values: list[str], columns: int | None) -> None:
    """Every id and amount appears whole on one line, nothing is ellipsized, and no table line is wider than
    the terminal."""
    assert "…" not in out
    lines = out.splitlines()
    for value in values:
        assert any(value in line for line in lines), f"{value!r} is cut in:\n{out}"
    if columns is not None:
        from rich.cells import cell_len

        # Notes after the table are prose: the terminal wraps them between words.
        prose = ("source: ", "note: ", "recorded: ", "recommendation: ", "break-even: ")
        table = [line for line in lines if not line.startswith(prose)]
        assert max(cell_len(line.rstrip()) for line in table) <= columns, out


WIDTHS = pytest.mark.parametrize("columns", [80, 60, None], ids=["80-columns", "60-columns", "piped"])


@WIDTHS
def test_prices_list_keeps_every_id_and_rate(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int | None
) -> None:
    models = json.loads(run(capsys, "prices", "list", "--json"))["models"]
    _terminal(monkeypatch, columns)
    out = run(capsys, "prices", "list")
    values = [m["id"] for m in models] + [m["per_million_tokens"].get("input", "-") for m in models]
    assert_whole(out, values, columns)
    if columns is None:
        # A pipe gets one full row per model: id and lifecycle on the same line.
        rows = {line.split()[0]: line for line in out.splitlines()[2:]}
        assert set(rows) == {m["id"] for m in models}
        assert all(rows[m["id"]].endswith(m["lifecycle"]) for m in models)


@pytest.fixture
def shared_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[str]]:
    """A memory store the in-process CLI reaches by a test scheme, holding SPEND; yields the CLI options."""
    monkeypatch.delenv("BEDROCK_BUDGET_STORE", raising=False)
    monkeypatch.delenv("BEDROCK_BUDGETS_FILE", raising=False)
    budgets_file = tmp_path / "budgets.yaml"
    budgets_file.write_text(BUDGETS, encoding="utf-8")
    shared = MemoryStore()
    monkeypatch.setitem(stores._REGISTRY, "bbouttest", lambda uri, **options: shared)
    ledger = Ledger(shared, load_budgets(budgets_file))
    try:
        for attribution, model, usd, input_tokens, output_tokens in SPEND:
            nanos = int(Decimal(usd) * 10**9)
            tokens = {"input": input_tokens, "output": output_tokens, "cache_read": 0, "cache_write": 0}
            ledger.settle(ledger.reserve(attribution, model, "claude", nanos, tokens), nanos, tokens)
    finally:
        ledger.close()
    yield ["--store", "bbouttest://", "--budgets", str(budgets_file)]
    shared.close()


@WIDTHS
def test_budgets_list_keeps_names_scopes_and_amounts(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    shared_store: list[str],
    columns: int | None,
) -> None:
    windows = json.loads(run(capsys, "budgets", "list", *shared_store, "--json"))["windows"]
    _terminal(monkeypatch, columns)
    out = run(capsys, "budgets", "list", *shared_store)
    values = [w["budget"] for w in windows] + [f"${w['spent_usd']}" for w in windows]
    values += [f"{k}={v}" for w in windows for k, v in w["scope"].items()]
    assert {"user=山田太郎", "user=dXNlcjpZV3hwWTJVPQ==", f"model={SONNET}", "$0.004031235"} <= set(values)
    assert_whole(out, values, columns)


@WIDTHS
def test_report_keeps_model_ids_and_costs(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    shared_store: list[str],
    columns: int | None,
) -> None:
    report = json.loads(run(capsys, "report", *shared_store, "--json"))
    groups = report["groups"]
    assert {g["model"] for g in groups} == {SONNET, HAIKU}
    _terminal(monkeypatch, columns)
    out = run(capsys, "report", *shared_store)
    values = [g["model"] for g in groups] + [f"${g['cost_usd']}" for g in groups]
    assert "$0.004031235" in values
    assert_whole(out, [*values, f"${report['total']['cost_usd']}"], columns)


def test_a_real_pseudo_terminal_60_columns_wide_cuts_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """No environment tricks: the size comes from the terminal itself, as it does for a person."""
    import fcntl
    import pty
    import struct
    import termios

    models = json.loads(run(capsys, "prices", "list", "--json"))["models"]
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 60, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES", "TTY_COMPATIBLE"}}
    process = subprocess.Popen(
        [sys.executable, "-m", "bedrock_budget.cli.app", "prices", "list"],
        stdout=follower,
        stderr=subprocess.PIPE,
        env={**env, "NO_COLOR": "1", "TERM": "xterm-256color"},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes when the command exits
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0
    assert process.stderr is not None
    process.stderr.close()
    out = ANSI.sub("", b"".join(chunks).decode().replace("\r\n", "\n"))
    assert_whole(out, [m["id"] for m in models], 60)


def test_pipe_gets_full_rows_through_a_real_pipe() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bedrock_budget.cli.app", "prices", "list", "--provider", "amazon"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert "amazon.nova-2-lite-v1:0" in result.stdout.split()
    assert not set("┃│━…") & set(result.stdout)


def test_prices_show_prints_json_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    model = "amazon.nova-micro-v1:0"
    text = run(capsys, "prices", "show", model)
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert not text.lstrip().startswith("{")
    assert f"id: {model}" in text.splitlines()
    payload = json.loads(run(capsys, "prices", "show", model, "--json"))
    assert payload["id"] == model
    # Every rate the JSON gives is in the text view too.
    rates = payload["prices"][0]["per_million_tokens"]
    lines = [line.strip() for line in text.splitlines()]
    assert all(f"{name}: {rate}" in lines for name, rate in rates.items())


def test_prices_show_writes_flags_as_the_json_does(capsys: pytest.CaptureFixture[str]) -> None:
    text = run(capsys, "prices", "show", "amazon.nova-2-multimodal-embeddings-v1:0")
    lines = [line.strip() for line in text.splitlines()]
    assert "effective_assumed: true" in lines
    assert not any(line.endswith((": True", ": False")) for line in lines)


def test_json_flags_are_booleans_and_counts_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["price", "amazon.nova-micro-v1:0", "--input-tokens", "1000", "--json"]
    batch = json.loads(run(capsys, *args, "--batch"))
    assert batch["batch"] is True
    assert json.loads(run(capsys, *args))["batch"] is False
    assert batch["lines"][0]["quantity"] == 1000
    assert batch["total_usd"] == "0.0000175"  # money stays an exact decimal string
    provisioned = json.loads(
        run(
            capsys,
            "price-provisioned",
            "anthropic.claude-instant-v1",
            "--model-units",
            "2",
            "--commitment",
            "1-month",
            "--hours",
            "1.5",
            "--json",
        )
    )
    assert provisioned["model_units"] == 2
    assert provisioned["lines"][0]["quantity"] == "3.0"  # a fractional quantity stays exact
    imported = json.loads(
        run(capsys, "price-import", "--custom-model-units", "1", "--active-windows", "1", "--json")
    )
    assert isinstance(imported["window_minutes"], int)


def test_advise_rounds_hours_and_money_for_people(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, shared_store: list[str]
) -> None:
    _terminal(monkeypatch, None)
    out = run(capsys, "advise", *shared_store)
    (recorded,) = [line for line in out.splitlines() if line.startswith("recorded: ")]
    assert re.fullmatch(r"recorded: 3 calls, \$0\.0707 over \d+(\.\d{1,2})? h", recorded), recorded
    start = out.index("Savings levers")
    table_lines = out[start : out.index("\n\n", start)].splitlines()[2:]
    amounts = [a for line in table_lines for a in re.findall(r"\$([\d.]+)", line)]
    assert amounts
    for amount in amounts:
        digits = amount.replace(".", "").lstrip("0")
        assert len(digits) <= 3 or re.fullmatch(r"\d+\.\d\d", amount), amount
    # The JSON keeps them exact.
    exact = json.loads(run(capsys, "advise", *shared_store, "--json"))
    assert exact["recorded"]["cost_usd"] == "0.07065915"


@pytest.mark.parametrize("columns", [80, 60])
def test_a_narrow_table_does_not_fold_the_id_in_its_title(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    _terminal(monkeypatch, columns)
    out = run(
        capsys,
        "plan",
        SONNET,
        "--requests-per-month",
        "1000000",
        "--input-tokens-per-request",
        "1000",
        "--output-tokens-per-request",
        "100",
    )
    assert_whole(out, [SONNET, "$4500.00", "$2250.00"], columns)
