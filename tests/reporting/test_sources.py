"""Reading exports, and choosing which budget's tallies answer a grouping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.budgets.model import Budget
from bedrock_budget.reporting.report import build_report
from bedrock_budget.reporting.sources import (
    ReportError,
    current_counters,
    read_records,
    usage_from_store,
)
from bedrock_budget.stores.base import Store
from bedrock_budget.stores.memory import MemoryStore

from .conftest import CALLS

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp()
TOKENS = {"input": 100, "output": 10, "cache_read": 0, "cache_write": 0}


def record(store: Store, budgets: list[Budget], calls: list[tuple[dict[str, str], str, int]]) -> None:
    ledger = Ledger(store, budgets, clock=lambda: NOW)
    try:
        for attribution, model, nanos in calls:
            ledger.settle(ledger.reserve(attribution, model, None, nanos, TOKENS), nanos, TOKENS)
    finally:
        ledger.close()


CALL_MIX = [
    ({"user": "u1", "app": "chat"}, "m-a", 1_000_000_000),
    ({"user": "u2", "app": "chat"}, "m-a", 500_000_000),
    ({"app": "batch"}, "m-b", 250_000_000),  # no user: per-user budgets that skip such calls never see it
]


def test_calls_a_budget_does_not_count_show_as_the_rest() -> None:
    budgets = [
        Budget("per-user", scope={"user": "*"}, window="month", limit_usd="10", on_unattributed="skip"),
        Budget("company", window="month", limit_usd="100"),
    ]
    with MemoryStore() as store:
        record(store, budgets, CALL_MIX)
        usage = usage_from_store(store, by="user", now=NOW)  # without the file: from what the store holds
    assert usage.budget == "per-user"
    report = build_report(usage, "user")
    assert {row.group: str(row.tally.cost_usd) for row in report.rows} == {
        "u1": "1",
        "u2": "0.5",
        "(not counted by per-user)": "0.25",
    }
    assert str(report.total.cost_usd) == "1.75"
    assert report.total.calls == 3


def test_without_an_all_calls_budget_the_gap_is_a_note() -> None:
    budgets = [
        Budget("per-user", scope={"user": "*"}, window="day", limit_usd="10", on_unattributed="skip"),
        Budget("company", window="month", limit_usd="100"),
    ]
    with MemoryStore() as store:
        record(store, budgets, CALL_MIX)
        usage = usage_from_store(store, by="user", now=NOW, budgets=budgets)
        by_model = usage_from_store(store, by="model", now=NOW, budgets=budgets)
    assert str(usage.total().cost_usd) == "1.5"
    assert usage.notes == (
        "covers only calls attributed with some user (what budget per-user counts); an all-calls budget "
        "with the same window would show the rest",
    )
    assert usage.period_hours == 12  # the day window has run since midnight UTC
    assert by_model.budget == "company"
    assert str(by_model.total().cost_usd) == "1.75"
    assert by_model.period_hours == 19 * 24 + 12


def test_choice_prefers_wider_budgets_then_longer_windows() -> None:
    budgets = [
        Budget("chat-users", scope={"app": "chat", "user": "*"}, window="month", limit_usd="10"),
        Budget("users-daily", scope={"user": "*"}, window="day", limit_usd="10"),
        Budget("users-weekly", scope={"user": "*"}, window="week", limit_usd="10"),
        Budget("per-model", model="*", window="day", limit_usd="10"),
    ]
    with MemoryStore() as store:
        record(store, budgets, CALL_MIX)
        counters = current_counters(store, budgets, NOW)
        assert usage_from_store(store, by="user", now=NOW, counters=counters).budget == "users-weekly"
        daily = usage_from_store(store, by="user", now=NOW, counters=counters, window="day")
        assert daily.budget == "users-daily"
        # A per-model budget counts every call, so it answers --by model.
        assert usage_from_store(store, by="model", now=NOW, counters=counters).budget == "per-model"
        chat_only = usage_from_store(store, by="app", now=NOW, counters=counters)
        assert chat_only.budget == "chat-users"
        assert chat_only.notes[0].startswith(
            "partial view: only what budgets chat-users (app=chat, some user)"
        )
        assert {row.group for row in build_report(chat_only, "app").rows} == {"chat"}
        with pytest.raises(ReportError, match=r"only in these windows: day \(users-daily\), month"):
            usage_from_store(store, by="user", now=NOW, counters=counters, window="hour")


DEMO_LIKE = [
    Budget("company", window="month", limit_usd="100"),
    Budget("chat-daily", scope={"app": "chat"}, window="day", limit_usd="10"),
    Budget("batch-daily", scope={"app": "batch"}, window="day", limit_usd="10"),
    Budget("search-sonnet", scope={"app": "search"}, model="m-s", window="day", limit_usd="10"),
]
APPS_MIX = [
    ({"app": "chat"}, "m-a", 1_000_000_000),
    ({"app": "chat"}, "m-b", 500_000_000),
    ({"app": "batch"}, "m-b", 250_000_000),
    ({"app": "search"}, "m-s", 125_000_000),
    ({"app": "search"}, "m-a", 100_000_000),  # a model search-sonnet does not count
    ({"app": "ops"}, "m-a", 25_000_000),  # an app no budget scopes
]


@pytest.mark.parametrize("with_file", [True, False])
def test_budgets_fixing_one_value_each_report_together_and_say_what_is_missing(with_file: bool) -> None:
    with MemoryStore() as store:
        record(store, DEMO_LIKE, APPS_MIX)
        usage = usage_from_store(store, by="app", now=NOW, budgets=DEMO_LIKE if with_file else None)
    report = build_report(usage, "app")
    assert {row.group: str(row.tally.cost_usd) for row in report.rows} == {
        "chat": "1.5",
        "batch": "0.25",
        "search": "0.125",
    }
    # Not every call: no row may claim a share of the whole, and the total row has none either.
    assert [row.share_percent for row in report.rows] == [None, None, None]
    assert report.csv_rows()[-1][-1] == ""
    assert report.as_dict()["partial"] is True
    assert set(usage.budgets) == {"chat-daily", "batch-daily", "search-sonnet"}
    (note,) = usage.notes
    assert note.startswith("partial view: only what budgets ")
    assert "search-sonnet (app=search, model=m-s)" in note
    assert "$1.875, 93.8% of the $2.00 budget company recorded in its current month window" in note
    assert 'app values no budget scopes are not tracked (a budget with scope {app: "*"}' in note
    assert "  " not in note


def test_budgets_fixing_one_value_each_get_the_rest_from_a_same_window_all_calls_budget() -> None:
    budgets = [b.replace(window="month") if b.name != "company" else b for b in DEMO_LIKE]
    with MemoryStore() as store:
        record(store, budgets, APPS_MIX)
        usage = usage_from_store(store, by="app", now=NOW, budgets=budgets)
    report = build_report(usage, "app")
    rest = "(not counted by batch-daily, chat-daily, search-sonnet)"
    shares = {row.group: (str(row.tally.cost_usd), str(row.share_percent)) for row in report.rows}
    assert shares == {
        "chat": ("1.5", "75.00"),
        "batch": ("0.25", "12.50"),
        "search": ("0.125", "6.25"),
        rest: ("0.125", "6.25"),
    }
    assert usage.whole
    assert usage.notes == ()


def test_an_empty_store_says_so() -> None:
    with MemoryStore() as store, pytest.raises(ReportError, match="the store holds no budget counters"):
        usage_from_store(store, by="model", now=NOW)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json\n", r"bad\.jsonl:1: not JSON"),
        ("[1, 2]\n", r"bad\.jsonl:1: a record must be a JSON object"),
        ('{"timestamp": "2026-11-01T00:00:00Z"}\n', r"bad\.jsonl:1: the record names no model"),
        (
            '{"model_id": "m", "timestamp": "yesterday"}\n',
            r"bad\.jsonl:1: timestamp 'yesterday' is not an ISO",
        ),
        (
            '{"model_id": "m", "timestamp": "2026-11-01T00:00:00Z", "input_tokens": -3}\n',
            r"bad\.jsonl:1: input_tokens must be a whole number",
        ),
        (
            '\n{"model_id": "m", "timestamp": "2026-11-01T00:00:00Z", "cost_usd": 0.1}\n',
            r"bad\.jsonl:2: cost_usd must be a decimal string",
        ),
        (
            '{"model_id": "m", "timestamp": "2026-11-01T00:00:00Z", "attribution": [1]}\n',
            r"bad\.jsonl:1: attribution must be an object",
        ),
    ],
)
def test_malformed_records_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(ReportError, match=message):
        list(read_records(path))


def test_csv_needs_its_header(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ReportError, match="not a call-record CSV"):
        list(read_records(path))


def test_csv_attribution_as_json_column(tmp_path: Path) -> None:
    first = json.loads(CALLS.read_text().splitlines()[0])
    path = tmp_path / "calls.csv"
    path.write_text(
        "timestamp,model_id,attribution,cost_usd\n"
        f'{first["timestamp"]},{first["model_id"]},"{{""app"": ""chat""}}",0.20\n'
    )
    (row,) = read_records(path)
    assert dict(row.attribution) == {"app": "chat"}
    assert str(row.cost_usd) == "0.20"
    assert row.route == "in_region"
