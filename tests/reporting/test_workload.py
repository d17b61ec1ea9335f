"""A real workload: a wrapped boto3 client against the fake Bedrock, budgets on a real Redis (standalone,
through Sentinel and as a Cluster), and the ``report`` / ``advise`` commands reading what the store
recorded."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import bedrock_budget as bb
from backends import Backend
from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.budgets.loading import load_budgets
from bedrock_budget.cli import main
from bedrock_budget.stores import from_uri
from bedrock_budget.testing import FakeBedrock, UsageSpec

pytestmark = pytest.mark.redis

HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-lite-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Summarise the ticket."}]}]
BUDGETS = """\
budgets:
  - name: company
    window: month
    limit_usd: "100"
  - name: per-app
    scope: {app: "*"}
    window: day
    limit_usd: "50"
  - name: per-user
    scope: {user: "*"}
    window: day
    limit_tokens: 10000000
"""
# (model id sent, app, user, calls)
WORKLOAD = [
    (f"us.{HAIKU}", "chat", "ana", 4),
    (f"us.{HAIKU}", "chat", "ben", 3),
    (f"global.{SONNET}", "chat", "ana", 2),
    (f"global.{SONNET}", "reports", "cai", 3),
    (NOVA, "search", "ben", 5),
]


def run_workload(fake: FakeBedrock, store_uri: str, prefix: str, budgets_file: Path) -> list[bb.CallRecord]:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=1_200, output_tokens=300))
    fake.set_usage(SONNET, UsageSpec(input_tokens=500, output_tokens=200, cache_read_tokens=2_000))
    fake.set_usage(NOVA, UsageSpec(input_tokens=3_000, output_tokens=100))
    records: list[bb.CallRecord] = []
    store = from_uri(store_uri, prefix=prefix)
    ledger = Ledger(store, load_budgets(budgets_file))
    raw = fake.client()
    try:
        client = bb.wrap(raw, ledger=ledger, listeners=[records.append])
        for model, app, user, count in WORKLOAD:
            with bb.attribute(app=app, user=user):
                for _ in range(count):
                    client.converse(modelId=model, messages=MESSAGES, inferenceConfig={"maxTokens": 400})
    finally:
        raw.close()
        ledger.close()
        store.close()
    return records


def sums(records: list[bb.CallRecord], key: Any) -> dict[str, tuple[int, Decimal]]:
    totals: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    for record in records:
        entry = totals[key(record)]
        entry[0] += 1
        entry[1] += record.cost_usd
    return {k: (v[0], v[1]) for k, v in totals.items()}


def report(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["report", *args, "--json"]) == 0
    payload: dict[str, Any] = json.loads(capsys.readouterr().out)
    return payload


def grouped(payload: dict[str, Any], by: str) -> dict[str, tuple[int, Decimal]]:
    return {g[by]: (g["calls"], Decimal(g["cost_usd"])) for g in payload["groups"]}


@pytest.mark.backends("redis", "sentinel", "cluster")
def test_store_report_totals_equal_the_call_records(
    fake_bedrock: FakeBedrock, backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert backend.uri is not None
    budgets_file = tmp_path / "budgets.yaml"
    budgets_file.write_text(BUDGETS)
    records = run_workload(fake_bedrock, backend.uri, backend.prefix, budgets_file)
    assert len(records) == 17
    assert all(r.cost is not None and r.outcome == "ok" for r in records)
    total = sum((r.cost_usd for r in records), Decimal(0))
    assert total > 0
    store = ["--store", backend.uri, "--prefix", backend.prefix]

    by_model = report(capsys, *store, "--by", "model")
    assert Decimal(by_model["total"]["cost_usd"]) == total
    assert by_model["total"]["calls"] == 17
    assert "budget company" in by_model["source"]
    assert grouped(by_model, "model") == sums(records, lambda r: r.model_id)

    by_app = report(capsys, *store, "--by", "app", "--budgets", str(budgets_file))
    assert "budget per-app" in by_app["source"]
    assert grouped(by_app, "app") == sums(records, lambda r: r.attribution["app"])
    assert Decimal(by_app["total"]["cost_usd"]) == total

    by_user = report(capsys, *store, "--by", "user", "--window", "day")
    assert grouped(by_user, "user") == sums(records, lambda r: r.attribution["user"])
    tokens = sum(r.usage.cache_read_tokens for r in records)
    assert by_user["total"]["cache_read_tokens"] == tokens == 5 * 2_000

    # The same calls exported as JSON lines answer the same question.
    export = tmp_path / "calls.jsonl"
    export.write_text("".join(json.dumps(r.as_dict()) + "\n" for r in records))
    from_records = report(capsys, "--records", str(export), "--by", "user")
    assert grouped(from_records, "user") == grouped(by_user, "user")

    # No budget is counted per team: say which one would be.
    assert main(["report", *store, "--by", "team"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(
        "error: the store's tallies cannot group by 'team': no budget is counted per team"
    )
    assert 'Add a budget with scope {team: "*"}' in error
    assert "--records FILE.jsonl" in error
    assert len(error.splitlines()) == 1
    # Per-user spend exists only in day windows.
    assert main(["report", *store, "--by", "user", "--window", "month"]) == 2
    assert "only in these windows: day (per-user)" in capsys.readouterr().err

    assert main(["advise", *store, "--budgets", str(budgets_file), "--batch-apps", "reports", "--json"]) == 0
    advice = json.loads(capsys.readouterr().out)
    assert Decimal(advice["recorded"]["cost_usd"]) == total
    levers = {(lever["lever"], lever["target"]): lever for lever in advice["levers"]}
    # Haiku went through the us. (geo) profile, which costs 10% more than global: the store keeps no route,
    # so the premium is the recorded cost above the global price. 7 calls x (1,200 x $0.10 + 300 x $0.50)/1M.
    haiku = levers[("global-routing", f"{HAIKU} (recorded routes, us-east-1, 7 calls)")]
    assert haiku["saving_usd"] == "0.00189"
    # Reports runs Sonnet through global at $3/$15/$0.30 per 1M: 3 x (500 x 3 + 200 x 15 + 2,000 x 0.30)/1M
    # = $0.0153. Batch ($1.65/$8.25) has no prompt cache, so the 2,000 cached tokens become input:
    # 3 x (2,500 x 1.65 + 200 x 8.25)/1M = $0.017325, dearer than now: shown, not recommended.
    batch = levers[("batch", f"app reports: {SONNET} (3 calls)")]
    assert (batch["current_usd"], batch["projected_usd"], batch["saving_usd"]) == (
        "0.0153",
        "0.017325",
        "0.00",
    )
    assert batch["recommended"] is False
    assert all(lever["arithmetic"] for lever in advice["levers"])
