"""``report`` and ``advise`` on what the demo leaves in a real Redis: its budgets fix one app each (no
budget is counted per app), so per-app figures are partial and must say so."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from backends import delete_prefix
from bedrock_budget.cli import main


@pytest.fixture
def demo_store(redis_url: str, capsys: pytest.CaptureFixture[str]) -> Iterator[tuple[str, dict[str, object]]]:
    prefix = f"demo-report-{uuid.uuid4().hex[:8]}:"
    store = f"{redis_url}?prefix={prefix}"
    try:
        assert main(["demo", "--json", "--latency", "0", "--calls", "120", "--store", store]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert isinstance(summary, dict)
        yield store, summary
    finally:
        delete_prefix(redis_url, prefix)


def test_report_by_app_shows_every_app_a_budget_scopes_without_claiming_the_whole(
    demo_store: tuple[str, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    store, summary = demo_store
    apps = summary["apps"]
    assert isinstance(apps, dict)

    assert main(["report", "--store", store, "--by", "app", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    groups = {g["app"]: g for g in report["groups"]}
    assert set(groups) == {"support-chat", "search", "legal-review"}
    # Budgets that count a whole app agree with the demo's own call records.
    for app in ("support-chat", "search"):
        assert Decimal(groups[app]["cost_usd"]) == Decimal(apps[app]["spend_usd"]) > 0
    # legal-review's budget counts only its Sonnet calls.
    assert 0 < Decimal(groups["legal-review"]["cost_usd"]) <= Decimal(apps["legal-review"]["spend_usd"])
    assert all(g["share_percent"] is None for g in report["groups"])
    assert report["partial"] is True
    (note,) = report["notes"]
    covered = sum(Decimal(g["cost_usd"]) for g in report["groups"])
    assert f"${covered}" in note
    assert f"the ${Decimal(str(summary['spend_usd']))} budget company-monthly recorded" in note
    assert "legal-review-daily (app=legal-review, model=anthropic.claude-sonnet-4-5" in note
    assert "app values no budget scopes are not tracked" in note
    assert "  " not in note

    assert main(["report", "--store", store, "--by", "app"]) == 0
    table = capsys.readouterr().out
    assert "100.00%" not in table
    assert "partial view:" in table


def test_advise_batch_uses_the_app_budgets_the_store_holds(
    demo_store: tuple[str, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = demo_store
    args = ["advise", "--store", store, "--batch-apps", "support-chat,nightly", "--json"]
    assert main(args) == 0
    advice = json.loads(capsys.readouterr().out)
    batch = [s for s in advice["levers"] if s["lever"] == "batch"]
    assert batch
    assert all(s["target"].startswith("app support-chat:") for s in batch)
    skipped = " | ".join(advice["not_evaluated"])
    assert "no recorded usage for app 'support-chat'" not in skipped
    assert "no budget in the store scopes app 'nightly'" in skipped
    assert "tracked: legal-review, search, support-chat" in skipped
