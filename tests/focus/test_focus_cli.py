"""``report --format focus`` on the command line: bad flags end with one line and exit 2, the output goes to
a file or through a pipe, and running it twice gives the same file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bedrock_budget.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "reporting" / "fixtures"
BASE = ["report", "--records", str(FIXTURES / "calls.jsonl"), "--prices", str(FIXTURES / "prices")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "focus", "--discount-percent", "abc"], "'abc' is not a number"),
        (["--format", "focus", "--discount-percent", "-5"], "must be a non-negative number"),
        (["--format", "focus", "--discount-percent", "100"], "100 must be below 100"),
        (["--format", "focus", "--account-id", " "], "--account-id"),
        (["--format", "focus", "--account-name", "a\tb"], "--account-name"),
        (["--format", "csv", "--account-id", "1"], "--account-id, --prices only apply to --format focus"),
        (["--format", "focus", "--output", "/nonexistent-dir/x.csv"], "/nonexistent-dir/x.csv"),
    ],
)
def test_bad_flags_give_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*BASE, *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert message in lines[0]


def test_focus_needs_records(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--format", "focus"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --format focus reads exported call records: give --records FILE"
    )


def test_twice_run_writes_the_same_file_and_stdout_matches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "focus.csv"
    assert main([*BASE, "--format", "focus", "--output", str(out)]) == 0
    first = out.read_bytes()
    assert main([*BASE, "--format", "focus", "--output", str(out)]) == 0
    assert out.read_bytes() == first
    assert list(tmp_path.iterdir()) == [out]
    capsys.readouterr()
    assert main([*BASE, "--format", "focus"]) == 0
    captured = capsys.readouterr()
    assert captured.out.encode() == first
    assert "39 rows from 20 calls, BilledCost total 3.895 USD" in captured.err


def test_through_a_closed_pipe() -> None:
    command = [sys.executable, "-c", "import sys; from bedrock_budget.cli import main; sys.exit(main())"]
    with subprocess.Popen(
        [*command, *BASE, "--format", "focus"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as pipe:
        assert pipe.stdout is not None
        header = pipe.stdout.readline()
        pipe.stdout.close()
        assert pipe.wait(timeout=60) == 0
    assert header.startswith(b"BilledCost,BillingAccountId,")
