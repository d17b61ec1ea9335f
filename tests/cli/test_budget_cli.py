"""``bedrock-budget budgets list|show|set|reset`` against an in-process memory store and a real Redis
(standalone, through Sentinel and as a Cluster)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backends import Backend
from bedrock_budget import stores
from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.budgets.loading import load_budgets
from bedrock_budget.cli import main
from bedrock_budget.errors import ConfigurationError
from bedrock_budget.reporting.budget_admin import budget_windows, parse_scope, set_limits
from bedrock_budget.stores import Store
from bedrock_budget.stores.memory import MemoryStore

BUDGETS = """\
# Budgets of the support product. Keep this comment.
budgets:
  - name: chat-daily      # the chat app
    scope: {app: chat}
    window: day
    limit_usd: "25.00"
  - name: per-user
    scope: {user: "*"}
    window: day
    limit_usd: 2.50
    thresholds: [50, 80, 100]
  - {name: search-tokens, scope: {app: search}, window: day, limit_tokens: 400000}
  - name: company
    window: month
    limit_usd: 100
  - name: per-team
    scope: {team: "*"}
    window: week
    limit_usd: 10
    on_unattributed: skip
"""
TOKENS = {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0}

pytestmark = pytest.mark.backends("memory", "redis", "sentinel", "cluster")


@dataclass
class CliStore:
    """A store of the test's backend and the arguments that point the CLI at it."""

    store: Store
    args: list[str]


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in list(os.environ):
        if variable.startswith("BEDROCK_BUDGET"):
            monkeypatch.delenv(variable)


@pytest.fixture
def shared_memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryStore]:
    """memory:// is private to a process, so the in-process CLI reaches this one store by a test scheme."""
    shared = MemoryStore()
    monkeypatch.setitem(stores._REGISTRY, "bbtest", lambda uri, **options: shared)
    yield shared
    shared.close()


@pytest.fixture
def cli_store(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> CliStore:
    store = backend.make()
    if backend.uri is None:  # memory: the in-process CLI reaches the test's store by a test scheme
        monkeypatch.setitem(stores._REGISTRY, "bbtest", lambda uri, **options: store)
        return CliStore(store, ["--store", "bbtest://"])
    return CliStore(store, ["--store", backend.uri, "--prefix", backend.prefix])


@pytest.fixture
def budgets_file(tmp_path: Path) -> Path:
    path = tmp_path / "budgets.yaml"
    path.write_text(BUDGETS)
    return path


def spend(ledger: Ledger, attribution: dict[str, str], usd: str, **tokens: int) -> None:
    nanos = int(Decimal(usd) * 10**9)
    counts = {**TOKENS, **tokens}
    ledger.settle(
        ledger.reserve(attribution, "anthropic.claude-3-5-haiku-20241022-v1:0", "claude", nanos, counts),
        nanos,
        counts,
    )


@pytest.fixture
def seeded(cli_store: CliStore, budgets_file: Path) -> CliStore:
    """u1 spends $1.50 in chat (60% of its $2.50: the 50% alert fires), u2 $0.50 in chat and $0.01 in
    search (1,000 input + 200 output tokens)."""
    ledger = Ledger(cli_store.store, load_budgets(budgets_file))
    try:
        spend(ledger, {"app": "chat", "user": "u1"}, "0.75", input=1000, output=100)
        spend(ledger, {"app": "chat", "user": "u1"}, "0.75", input=1000, output=100)
        spend(ledger, {"app": "chat", "user": "u2"}, "0.50", input=600, output=50)
        spend(ledger, {"app": "search", "user": "u2"}, "0.01", input=1000, output=200)
    finally:
        ledger.close()
    return cli_store


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def listing(
    capsys: pytest.CaptureFixture[str], cli_store: CliStore, budgets_file: Path
) -> dict[tuple[str, str], Any]:
    code, out, _ = run(capsys, "budgets", "list", *cli_store.args, "--budgets", str(budgets_file), "--json")
    assert code == 0
    payload = json.loads(out)
    return {(w["budget"], ",".join(f"{k}={v}" for k, v in w["scope"].items())): w for w in payload["windows"]}


def test_list_shows_every_current_window(
    seeded: CliStore, budgets_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    windows = listing(capsys, seeded, budgets_file)
    assert set(windows) == {
        ("chat-daily", "app=chat"),
        ("per-user", "user=u1"),
        ("per-user", "user=u2"),
        ("search-tokens", "app=search"),
        ("company", ""),
        ("per-team", "team=*"),
    }
    chat = windows[("chat-daily", "app=chat")]
    assert (chat["limit_usd"], chat["spent_usd"], chat["reserved_usd"]) == ("25.00", "2.00", "0.00")
    assert chat["utilisation_percent"] == "8.00"
    assert (chat["window"], chat["timezone"]) == ("day", "UTC")
    assert chat["window_start"].endswith("T00:00:00+00:00")
    assert chat["resets_at"] > chat["window_start"]
    assert windows[("per-user", "user=u1")]["utilisation_percent"] == "60.00"
    assert windows[("per-user", "user=u2")]["spent_usd"] == "0.51"
    tokens = windows[("search-tokens", "app=search")]
    assert (tokens["limit_usd"], tokens["limit_tokens"], tokens["spent_tokens"]) == (None, "400000", "1200")
    assert tokens["utilisation_percent"] == "0.30"
    assert windows[("company", "")]["spent_usd"] == "2.01"
    # A wildcard budget nobody spent against yet still shows its window.
    team = windows[("per-team", "team=*")]
    assert (team["spent_usd"], team["utilisation_percent"]) == ("0.00", "0.00")

    code, out, _ = run(capsys, "budgets", "list", *seeded.args, "--budgets", str(budgets_file))
    assert code == 0
    for text in ("chat-daily", "60.00%", "team=* (no spend yet)"):
        assert text in out


def test_show_lists_models_and_crossed_thresholds(
    seeded: CliStore, budgets_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    args = ["budgets", "show", "per-user", "--scope", "user=u1", *seeded.args, "--budgets", str(budgets_file)]
    code, out, _ = run(capsys, *args, "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["budget"]["limit_usd"] == "2.50"
    (window,) = payload["windows"]
    assert window["scope"] == {"user": "u1"}
    assert window["alerts_fired"] == ["u50"]
    assert window["models"] == {
        "anthropic.claude-3-5-haiku-20241022-v1:0": {
            "calls": 2,
            "cost_usd": "1.50",
            "input_tokens": 2000,
            "output_tokens": 200,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
        }
    }
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert "alert thresholds crossed: u50" in out
    assert "used 60.00%" in out


def test_set_rewrites_only_the_limit_and_keeps_the_spend(
    seeded: CliStore, budgets_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--budgets", str(budgets_file)]
    code, out, _ = run(
        capsys, "budgets", "set", "chat-daily", "--limit-usd", "40.00", *base, *seeded.args, "--json"
    )
    assert code == 0
    payload = json.loads(out)
    assert (payload["before"]["limit_usd"], payload["after"]["limit_usd"]) == ("25.00", "40.00")
    # Spend recorded under the old limit is still there: 2.00 of 40.00 is 5%.
    assert payload["windows"][0]["spent_usd"] == "2.00"
    assert payload["windows"][0]["utilisation_percent"] == "5.00"
    assert budgets_file.read_text() == BUDGETS.replace('limit_usd: "25.00"', 'limit_usd: "40.00"')

    # A limit the entry does not have yet is added (block and flow style), leaving everything else.
    assert run(capsys, "budgets", "set", "per-user", "--limit-tokens", "5000", *base)[0] == 0
    assert run(capsys, "budgets", "set", "search-tokens", "--limit-usd", "1.5", *base)[0] == 0
    expected = (
        BUDGETS.replace('limit_usd: "25.00"', 'limit_usd: "40.00"')
        .replace("  - name: per-user\n", "  - name: per-user\n    limit_tokens: 5000\n")
        .replace("limit_tokens: 400000}", "limit_tokens: 400000, limit_usd: 1.5}")
    )
    assert budgets_file.read_text() == expected
    budgets = {b.name: b for b in load_budgets(budgets_file)}
    assert budgets["per-user"].limit_tokens == 5000
    assert budgets["per-user"].limit_usd == Decimal("2.50")
    assert budgets["search-tokens"].limit_usd == Decimal("1.5")
    windows = listing(capsys, seeded, budgets_file)
    assert windows[("search-tokens", "app=search")]["utilisation_percent"] == "0.67"  # $0.01 of $1.50

    code, out, _ = run(capsys, "budgets", "set", "company", "--limit-usd", "250", *base)
    assert code == 0
    assert out.startswith(f"company: limit $100.00 -> $250.00 in {budgets_file}")


def test_set_refuses_bad_values_and_leaves_the_file(
    budgets_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--budgets", str(budgets_file)]
    for args in (
        ["chat-daily", "--limit-usd", "abc"],
        ["chat-daily", "--limit-usd", "1.0000000001"],
        ["chat-daily", "--limit-usd", "-1"],
        ["chat-daily"],
        ["nope", "--limit-usd", "1"],
    ):
        code, out, err = run(capsys, "budgets", "set", *args, *base)
        assert code == 2, args
        assert err.startswith("error: "), err
        assert len(err.strip().splitlines()) == 1, err
        assert out == ""
    assert budgets_file.read_text() == BUDGETS


def test_reset_asks_first_and_clears_only_the_given_scope(
    seeded: CliStore, budgets_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = [
        "budgets",
        "reset",
        "per-user",
        "--scope",
        "user=u1",
        *seeded.args,
        "--budgets",
        str(budgets_file),
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, _, err = run(capsys, *args)
    assert code == 130
    assert "Reset the current day window of per-user (user=u1 spent $1.50)?" in err
    assert ("per-user", "user=u1") in listing(capsys, seeded, budgets_file)

    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert out.strip() == "reset 1 window(s) of per-user: user=u1 spent $1.50"
    windows = listing(capsys, seeded, budgets_file)
    assert ("per-user", "user=u1") not in windows
    assert windows[("per-user", "user=u2")]["spent_usd"] == "0.51"
    assert windows[("chat-daily", "app=chat")]["spent_usd"] == "2.00"

    code, out, _ = run(capsys, *args, "--yes", "--json")
    assert (code, json.loads(out)["reset"]) == (0, 0)

    code, out, _ = run(
        capsys,
        "budgets",
        "reset",
        "chat-daily",
        "--yes",
        "--json",
        *seeded.args,
        "--budgets",
        str(budgets_file),
    )
    assert code == 0
    assert json.loads(out)["reset"] == 1
    assert listing(capsys, seeded, budgets_file)[("chat-daily", "app=chat")]["spent_usd"] == "0.00"


def test_environment_names_the_store_and_the_file(
    seeded: CliStore, budgets_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEDROCK_BUDGETS_FILE", str(budgets_file))
    monkeypatch.setenv("BEDROCK_BUDGET_STORE", seeded.args[1])
    code, out, _ = run(capsys, "budgets", "list", "--json", *seeded.args[2:])
    assert code == 0
    assert len(json.loads(out)["windows"]) == 6


def test_budgets_commands_read_every_budget_variable_as_serve_metrics_does(
    seeded: CliStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Budgets inline and one per variable, no file: what a container's environment typically holds.
    monkeypatch.setenv(
        "BEDROCK_BUDGETS", "[{name: chat-daily, scope: {app: chat}, window: day, limit_usd: 25}]"
    )
    monkeypatch.setenv("BEDROCK_BUDGET__PER_USER", "window=day;limit_usd=2.50;scope.user=*")
    monkeypatch.setenv("BEDROCK_BUDGET_STORE", seeded.args[1])
    code, out, err = run(capsys, "budgets", "list", "--json", *seeded.args[2:])
    assert (code, err) == (0, ""), err
    spent = {(w["budget"], json.dumps(w["scope"])): w["spent_usd"] for w in json.loads(out)["windows"]}
    assert spent == {
        ("chat-daily", '{"app": "chat"}'): "2.00",
        ("per-user", '{"user": "u1"}'): "1.50",
        ("per-user", '{"user": "u2"}'): "0.51",
    }
    code, out, err = run(
        capsys, "budgets", "show", "per-user", "--scope", "user=u2", "--json", *seeded.args[2:]
    )
    assert (code, err) == (0, ""), err
    assert [w["spent_usd"] for w in json.loads(out)["windows"]] == ["0.51"]
    code, _, err = run(capsys, "budgets", "show", "company", *seeded.args[2:])
    assert code == 2
    assert err == "error: unknown budget 'company' (budgets in the environment: chat-daily, per-user)\n"
    # The same environment is what serve-metrics serves, through the same function.
    from bedrock_budget.budgets.loading import budgets_from_env

    assert [b.name for b in budgets_from_env()] == ["chat-daily", "per-user"]


def test_budgets_set_edits_the_file_the_environment_names(
    budgets_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEDROCK_BUDGETS_FILE", str(budgets_file))
    code, _, err = run(capsys, "budgets", "set", "company", "--limit-usd", "80")
    assert (code, err) == (0, ""), err
    assert "    limit_usd: 80\n" in budgets_file.read_text()
    monkeypatch.delenv("BEDROCK_BUDGETS_FILE")
    monkeypatch.setenv("BEDROCK_BUDGET__COMPANY", "limit_usd=100")
    code, _, err = run(capsys, "budgets", "set", "company", "--limit-usd", "80")
    assert code == 2
    assert err.startswith("error: no budgets file to edit: pass --budgets FILE or set BEDROCK_BUDGETS_FILE")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["budgets", "list", "--budgets", "{file}"],
            "error: no budget store: pass --store URI or set BEDROCK_BUDGET_STORE",
        ),
        (
            ["budgets", "list", "--store", "bbtest://"],
            "error: no budgets defined: pass a budgets file (--budgets FILE), or set",
        ),
        (
            ["budgets", "show", "nope", "--store", "bbtest://", "--budgets", "{file}"],
            "error: unknown budget 'nope'",
        ),
        (
            [
                "budgets",
                "show",
                "per-user",
                "--scope",
                "app=x",
                "--store",
                "bbtest://",
                "--budgets",
                "{file}",
            ],
            "error: budget 'per-user' has no scope key 'app' (its scope keys: user)",
        ),
        (
            [
                "budgets",
                "reset",
                "chat-daily",
                "--scope",
                "app=search",
                "--store",
                "bbtest://",
                "--budgets",
                "{file}",
            ],
            "error: budget 'chat-daily' only counts app=chat, not app=search",
        ),
        (
            ["budgets", "list", "--store", "bbtest://", "--budgets", "{bad}"],
            "error: budget 'x': window: 'fortnight' is not one of",
        ),
        (
            ["budgets", "list", "--store", "bbtest://", "--budgets", "{missing}"],
            "error: cannot read budgets file",
        ),
        (
            ["budgets", "list", "--store", "nosuch://x", "--budgets", "{file}"],
            "error: unknown store scheme 'nosuch'",
        ),
        (
            ["report", "--store", "bbtest://", "--by", "User Id"],
            "error: --by 'User Id' is neither 'model' nor",
        ),
        (["report", "--store", "bbtest://", "--by", "user"], "error: the store holds no budget counters"),
        (["report", "--by", "app"], "error: no budget store"),
        (["report", "--records", "{missing}"], "error: cannot read records file"),
        (["report", "--records", "{bad}"], "error: {bad}:1: not JSON"),
        (
            ["advise", "--records", "{file}", "--cascade-share", "1.5"],
            "error: Invalid value for '--cascade-share'",
        ),
    ],
)
def test_bad_input_is_exit_2_with_one_line(
    args: list[str],
    message: str,
    shared_memory: MemoryStore,
    budgets_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("budgets:\n  - name: x\n    window: fortnight\n    limit_usd: 1\n")
    names = {"file": str(budgets_file), "bad": str(bad), "missing": str(tmp_path / "missing.yaml")}
    argv = [a.format(**names) for a in args]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith(message.format(**names)), err
    assert len(err.strip().splitlines()) == 1, err
    assert out == ""


def test_functions_directly_on_a_memory_store(budgets_file: Path) -> None:
    budgets = load_budgets(budgets_file)
    now = 1_800_000_000.0
    with MemoryStore() as store:
        ledger = Ledger(store, budgets, clock=lambda: now)
        nanos = 300_000_000
        ledger.settle(
            ledger.reserve({"team": "core", "app": "chat"}, "m", None, nanos, TOKENS), nanos, TOKENS
        )
        ledger.close()
        windows = budget_windows(store, budgets, "per-team", now=now)
        assert [(dict(w.scope), w.spent_usd, w.utilisation_percent) for w in windows] == [
            ({"team": "core"}, Decimal("0.3"), Decimal("3.00"))
        ]
        assert windows[0].resets_at is not None
        assert windows[0].resets_at.weekday() == 0  # weeks start on Monday
        assert budget_windows(store, budgets, "per-team", scope={"team": "other"}, now=now) == []
    per_user = next(b for b in budgets if b.name == "per-user")
    assert parse_scope(per_user, ["user=u9"]) == {"user": "u9"}
    for pairs in (["user"], ["user=*"], ["team=a"]):
        with pytest.raises(ConfigurationError):
            parse_scope(per_user, pairs)
    before, after = set_limits(budgets_file, "company", limit_usd="75")
    assert (before.limit_usd, after.limit_usd) == (Decimal(100), Decimal(75))
    assert "    limit_usd: 75\n" in budgets_file.read_text()


def test_set_edits_a_file_keyed_by_name(tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    text = "chat-daily:   # keyed by name\n  window: day\n  limit_usd: '5'\nsearch: {limit_tokens: 10}\n"
    path.write_text(text)
    set_limits(path, "chat-daily", limit_usd="7.25")
    set_limits(path, "search", limit_tokens="20", limit_usd="1")
    assert path.read_text() == (
        "chat-daily:   # keyed by name\n  window: day\n  limit_usd: '7.25'\n"
        "search: {limit_tokens: 20, limit_usd: 1}\n"
    )
