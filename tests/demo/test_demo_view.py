"""The demo's live view and its piped output never cut a budget's name, scope or amounts."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from rich.cells import cell_len

from bedrock_budget.cli import main
from bedrock_budget.pricing.money import format_usd

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ARGS = ("demo", "--calls", "40", "--latency", "0")


def summary(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main([*ARGS, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, dict)
    return data


def final_frame(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int | None
) -> str:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", str(columns or 80))
    monkeypatch.setenv("TTY_COMPATIBLE", "0" if columns is None else "1")
    assert main(list(ARGS)) == 0
    out = ANSI.sub("", capsys.readouterr().out)
    # A terminal gets redrawn frames; the last one, before the summary, is the final state.
    view = out[: out.index("\nsummary: ")]
    return view[view.rindex("calls 44/44") :]


def expected(capsys: pytest.CaptureFixture[str]) -> tuple[list[str], list[str], list[str]]:
    data = summary(capsys)
    budgets = data["budgets"]
    apps = data["apps"]
    assert isinstance(budgets, list)
    assert isinstance(apps, dict)
    names = sorted({b["budget"] for b in budgets})
    scopes = [f"{k}={v}" for b in budgets for k, v in b["scope"].items()]
    amounts = [f"${format_usd(Decimal(b['spent_usd']), min_places=4)}" for b in budgets if b["limit_usd"]]
    amounts += [f"${format_usd(Decimal(a['spend_usd']), min_places=4)}" for a in apps.values()]
    assert "model=anthropic.claude-sonnet-4-5-20250929-v1:0" in scopes
    return names, scopes, amounts


def test_piped_demo_prints_full_rows(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    names, scopes, amounts = expected(capsys)
    view = final_frame(capsys, monkeypatch, None)
    assert not set("┃│━…") & set(view)
    lines = view.splitlines()
    for value in [*names, *amounts]:
        assert any(value in line for line in lines), value
    # Each budget row holds its whole scope on its own line.
    for scope in scopes:
        assert any(scope in line for line in lines), scope


@pytest.mark.parametrize("columns", [80, 60])
def test_live_view_in_a_narrow_terminal_cuts_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    names, scopes, amounts = expected(capsys)
    view = final_frame(capsys, monkeypatch, columns)
    assert "…" not in view
    lines = view.splitlines()
    assert max(cell_len(line.rstrip()) for line in lines if not line.startswith("alert: ")) <= columns
    for value in [*names, *amounts]:
        assert any(value in line for line in lines), f"{value!r} cut in\n{view}"
    # A scope longer than its column folds onto more lines of that column; joined again, nothing is lost.
    first_cells = "".join(
        line.split("│")[1].strip() if line.startswith("│") else line.strip() for line in lines
    )
    for scope in scopes:
        assert scope in first_cells, f"{scope!r} cut in\n{view}"
