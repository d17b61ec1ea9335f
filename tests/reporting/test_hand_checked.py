"""Report and advice on a recorded workload whose every number was worked out by hand.

The workload (fixtures/calls.jsonl, all on 2026-11-01 UTC, so the observed period is one day = 24 h), priced
with fixtures/prices/acme.yaml (USD per 1M tokens):

    acme.large   input 10, output 50, cache read 1, cache write 12.50; global route 9 / 45 / 0.90 / 11.25;
                 batch 5 / 25; provisioned $20/h (no commitment), $10/h (6-month)
    acme.medium  input 4, output 20 (no cache rates: cache tokens fall back to the input rate)
    acme.small   input 1, output 5, cache read 0.10, cache write 1.25; no global route, no batch rate
    acme.tiny    input 0.10, output 0.50, but legacy (never a cascade target)

    chat, large, in-region:  10 calls x (10,000 in, 2,000 out) = 10 x $0.20             = $2.00
                              1 call  (2,000 in, 10,000 cache write, 1,000 out)
                                       = 0.02 + 0.125 + 0.05                             = $0.195
                              3 calls (2,000 in, 10,000 cache read, 1,000 out)
                                       = 3 x (0.02 + 0.01 + 0.05)                        = $0.24
                             chat: 14 calls, 108,000 in, 24,000 out, 30,000 read, 10,000 write = $2.435
    reports, large, global:   4 calls x (20,000 in, 4,000 out) = 4 x (0.18 + 0.18)      = $1.44
    search, small, in-region: 2 calls x (5,000 in, 1,000 out) = 2 x (0.005 + 0.005)      = $0.02
    plus one blocked call (no usage, not counted)                               total 20 calls $3.895

Users: u1 = 5 plain chat calls (1.00) + the cache write (0.195) + one read (0.08) + search (0.02) = 1.295;
u2 = 5 plain (1.00) + two reads (0.16) = 1.16; u3 = the reports calls = 1.44.
"""

from __future__ import annotations

import csv
import gzip
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.budgets.model import Budget
from bedrock_budget.cli import main
from bedrock_budget.pricing import PriceTable
from bedrock_budget.reporting.advise import Advice, AdviseOptions, Saving, advise
from bedrock_budget.reporting.report import build_report
from bedrock_budget.reporting.sources import (
    ReportError,
    UsageSet,
    read_records,
    usage_from_records,
    usage_from_store,
)
from bedrock_budget.stores.memory import MemoryStore

from .conftest import CALLS, LARGE, PRICE_DATE, PRICES, SMALL, calls, replay

OPTIONS = AdviseOptions(batch_apps=frozenset({"reports"}), at=PRICE_DATE)


def usage(keep: set[str]) -> UsageSet:
    return usage_from_records(read_records(CALLS), source="fixture", keep=keep)


def groups(by: str, source: UsageSet | None = None) -> dict[str, tuple[int, str, str | None]]:
    report = build_report(source or usage({by}), by)
    return {
        row.group: (
            row.tally.calls,
            str(row.tally.cost_usd),
            None if row.share_percent is None else str(row.share_percent),
        )
        for row in report.rows
    }


def test_fixture_costs_are_what_the_price_file_says(acme: PriceTable) -> None:
    from bedrock_budget.usage import Usage

    for row in calls():
        if not row.billed:
            assert row.outcome == "blocked"
            continue
        model = f"global.{row.model}" if row.route == "global" else row.model
        usage = Usage(
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            cache_read_tokens=row.cache_read_tokens,
            cache_write_tokens=row.cache_write_tokens,
        )
        assert acme.price(model, usage, at=PRICE_DATE).total_usd == row.cost_usd


def test_report_by_app_user_and_model() -> None:
    # Shares: 2.435 / 3.895 = 62.516% -> 62.52; 1.44 / 3.895 = 36.971% -> 36.97; 0.02 / 3.895 = 0.51%.
    assert groups("app") == {
        "chat": (14, "2.435", "62.52"),
        "reports": (4, "1.44", "36.97"),
        "search": (2, "0.02", "0.51"),
    }
    # 1.295 / 3.895 = 33.248% -> 33.25; 1.16 / 3.895 = 29.782% -> 29.78.
    assert groups("user") == {
        "u3": (4, "1.44", "36.97"),
        "u1": (9, "1.295", "33.25"),
        "u2": (7, "1.16", "29.78"),
    }
    assert groups("model", usage(set())) == {LARGE: (18, "3.875", "99.49"), SMALL: (2, "0.02", "0.51")}
    report = build_report(usage({"app"}), "app")
    assert report.total.cost_usd == Decimal("3.895")
    assert report.total.calls == 20
    assert report.total.input_tokens == 198_000
    assert report.total.cache_read_tokens == 30_000
    assert any("1 blocked" in note for note in report.notes)


def test_report_rejects_a_key_no_record_carries() -> None:
    with pytest.raises(
        ReportError, match=r"no call record carries the attribution key 'team' \(keys seen: app, user\)"
    ):
        build_report(usage({"team"}), "team")


def by_lever(advice: Advice) -> dict[tuple[str, str], Saving]:
    return {(s.lever, s.target): s for s in advice.savings}


def amounts(saving: Saving) -> tuple[str, str, str, str | None]:
    """now, after, saving in the period and per month, as the JSON output prints them."""
    data = saving.as_dict()
    return (
        str(data["current_usd"]),
        str(data["projected_usd"]),
        str(data["saving_usd"]),
        None if data["monthly_saving_usd"] is None else str(data["monthly_saving_usd"]),
    )


def test_advise_every_lever_by_hand(acme: PriceTable) -> None:
    advice = advise(acme, usage({"app"}), OPTIONS)
    assert advice.period_hours == 24
    assert advice.recorded.cost_usd == Decimal("3.895")
    levers = by_lever(advice)
    # Monthly figures: saving x 730 / 24, rounded to cents.

    # global-routing, chat's in-region large traffic (the reports traffic already uses global):
    #   108,000 x (10 - 9) + 24,000 x (50 - 45) + 30,000 x (1 - 0.90) + 10,000 x (12.50 - 11.25), per 1M
    #   = 0.108 + 0.12 + 0.003 + 0.0125 = 0.2435; 2.435 -> 2.1915; monthly 0.2435 x 730 / 24 = 7.406 -> 7.41
    routing = levers[("global-routing", f"{LARGE} (in_region, us-east-1, 14 calls)")]
    assert amounts(routing) == ("2.435", "2.1915", "0.2435", "7.41")
    assert routing.arithmetic[-1] == "in_region $2.435 -> global $2.1915: saves $0.2435"

    # prompt-caching, large in-region: k = 30,000 reads / 10,000 writes = 3 (one write per 1 + 3 sends);
    #   blended = (12.50 + 3 x 1.00) / 4 = 3.875 per 1M; re-sent = 50% x 108,000 = 54,000 tokens
    #   now 54,000 x 10 = 0.54; cached 54,000 x 3.875 = 0.20925; saves 0.33075; monthly 10.060 -> 10.06
    caching = levers[("prompt-caching", f"{LARGE} (in_region, us-east-1, 14 calls)")]
    assert amounts(caching) == ("0.54", "0.20925", "0.33075", "10.06")
    assert "reads per write k = 30,000 / 10,000 = 3 (this model's cache history)" in caching.arithmetic
    # Already realised: 30,000 x (10 - 1) - 10,000 x (12.50 - 10) = 0.27 - 0.025 = 0.245.
    assert caching.arithmetic[-1].endswith("= $0.245 saved so far")
    # large via global: blended (11.25 + 3 x 0.90) / 4 = 3.4875; 40,000 x (9 - 3.4875) = 0.2205
    # (monthly 6.706 -> 6.71)
    caching_global = levers[("prompt-caching", f"{LARGE} (global, us-east-1, 4 calls)")]
    assert amounts(caching_global) == ("0.36", "0.1395", "0.2205", "6.71")
    # small has no cache history of its own, so k = 3 from all recorded history:
    #   (1.25 + 3 x 0.10) / 4 = 0.3875; 5,000 x (1 - 0.3875) = 0.0030625 (0.093 -> 0.09)
    caching_small = levers[("prompt-caching", f"{SMALL} (in_region, us-east-1, 2 calls)")]
    assert amounts(caching_small) == ("0.005", "0.0019375", "0.0030625", "0.09")
    assert "(all recorded cache history)" in caching_small.arithmetic[1]

    # batch for the reports app: batch rates override the route;
    #   80,000 x 5 + 16,000 x 25 = 0.40 + 0.40 = 0.80 against 1.44: saves 0.64 (19.467 -> 19.47)
    batch = levers[("batch", f"app reports: {LARGE} (4 calls)")]
    assert amounts(batch) == ("1.44", "0.80", "0.64", "19.47")

    # cascade, 80% of chat's large calls to the cheapest active acme model for that mix:
    #   on small 108,000 x 1 + 24,000 x 5 + 30,000 x 0.10 + 10,000 x 1.25 = 0.2435
    #   (medium: 1.072; tiny is cheaper but legacy)
    #   0.8 x (2.435 - 0.2435) = 1.7532 (53.327 -> 53.33)
    chat = levers[("cascade", f"app chat: {LARGE} -> {SMALL} (14 calls)")]
    assert amounts(chat) == ("1.948", "0.1948", "1.7532", "53.33")
    assert "acme.medium-v1:0 $1.072" in chat.arithmetic[-1]
    # reports: small has no global route, so its base rates: 80,000 x 1 + 16,000 x 5 = 0.16;
    #   0.8 x (1.44 - 0.16) = 1.024 (31.147 -> 31.15)
    reports = levers[("cascade", f"app reports: {LARGE} -> {SMALL} (4 calls)")]
    assert amounts(reports) == ("1.152", "0.128", "1.024", "31.15")

    # provisioned, large: on-demand 3.875 in 24 h -> 3.875 x 730 / 24 = 117.86 a month. One unit for 730 h:
    #   no commitment 20 x 730 = 14,600; 6-month 10 x 730 = 7,300 (the cheaper). Per call 3.875 / 18;
    #   break-even 7,300 x 18 / 3.875 = 33,909.7 -> 33,910 calls/month; 117.86 / 7,300 = 1.6%.
    #   The period's share of the commitment: 7,300 x 24 / 730 = 240. Not worth it.
    provisioned = levers[("provisioned", f"{LARGE} (us-east-1, 1 model unit, 6-month commitment)")]
    assert amounts(provisioned) == ("3.875", "240.00", "0.00", None)
    assert not provisioned.recommended
    assert (
        provisioned.arithmetic[0] == "on-demand: $3.875 in 24 h x 730 / 24 = $117.86/month (548 calls/month)"
    )
    assert "= 33,910 calls/month; this workload is 1.6% of it" in provisioned.arithmetic[3]
    assert (
        provisioned.arithmetic[-1] == "stay on-demand: provisioned costs $7182.14 more a month at this volume"
    )

    assert [s.lever for s in advice.savings if s.recommended] == [
        "cascade",
        "cascade",
        "batch",
        "prompt-caching",
        "global-routing",
        "prompt-caching",
        "prompt-caching",
    ]
    assert set(advice.not_evaluated) == {
        f"global-routing: no global-profile rate in the price table for {SMALL}",
        f"cascade: already on the cheapest active model of the family: {SMALL} (app search)",
        f"provisioned: no Provisioned Throughput price in the price table for {SMALL}",
    }
    assert any("not additive" in a for a in advice.assumptions)


def test_advise_options_change_the_arithmetic(acme: PriceTable) -> None:
    options = AdviseOptions(
        batch_apps=frozenset({"search", "nightly"}),
        cascade_share=Decimal("0.5"),
        cascade_apps=frozenset({"chat"}),
        cache_share=Decimal("0.2"),
        cache_reads_per_write=Decimal(9),
        at=PRICE_DATE,
        period_hours=Decimal(730),
    )
    advice = advise(acme, usage({"app"}), options)
    levers = by_lever(advice)
    # k = 9 given: (12.50 + 9 x 1.00) / 10 = 2.15; re-sent 20% x 108,000 = 21,600;
    # 21,600 x (10 - 2.15) = 0.16956; a 730 h period makes monthly = the period's figure.
    caching = levers[("prompt-caching", f"{LARGE} (in_region, us-east-1, 14 calls)")]
    assert amounts(caching) == ("0.216", "0.04644", "0.16956", "0.17")
    # search's small model has no batch rate: 50% of 0.02.
    batch = levers[("batch", f"app search: {SMALL} (2 calls)")]
    assert amounts(batch) == ("0.02", "0.01", "0.01", "0.01")
    assert any("usual 50% batch discount" in a for a in batch.assumptions)
    assert "batch: no recorded usage for app 'nightly'" in advice.not_evaluated
    # cascade only for chat, half the calls: 0.5 x (2.435 - 0.2435) = 1.09575
    cascades = [s for s in advice.savings if s.lever == "cascade"]
    assert [amounts(s) for s in cascades] == [("1.2175", "0.12175", "1.09575", "1.10")]


def test_records_as_csv_and_gzip_give_the_same_numbers(acme: PriceTable, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in CALLS.read_text().splitlines()]
    columns = [
        "timestamp",
        "model_id",
        "region",
        "route",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
    ]
    columns += ["cache_write_tokens", "cost_usd", "outcome", "attribution.app", "attribution.user"]
    path = tmp_path / "calls.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            flat = {**row, **{f"attribution.{k}": v for k, v in row["attribution"].items()}}
            writer.writerow(["" if flat.get(c) is None else flat[c] for c in columns])
    packed = tmp_path / "calls.jsonl.gz"
    packed.write_bytes(gzip.compress(CALLS.read_bytes()))
    expected = advise(acme, usage({"app"}), OPTIONS).as_dict()
    for source in (path, packed):
        seen: list[int] = []
        got = usage_from_records(read_records(source, progress=seen.append), source="fixture", keep={"app"})
        assert advise(acme, got, OPTIONS).as_dict() == expected
        assert seen[-1:] == [source.stat().st_size]


def test_store_tallies_give_the_same_report_and_advice(acme: PriceTable) -> None:
    # The same calls recorded by a ledger: an all-calls budget and one per app, both monthly.
    # 2026-10-26 00:00 UTC: the October window has run 25 days = 600 hours.
    now = datetime(2026, 10, 26, tzinfo=UTC).timestamp()
    budgets = [
        Budget("company", window="month", limit_usd="1000"),
        Budget("per-app", scope={"app": "*"}, window="month", limit_usd="1000"),
    ]
    with MemoryStore() as store:
        ledger = Ledger(store, budgets, clock=lambda: now)
        try:
            assert replay(ledger, calls()) == 20
        finally:
            ledger.close()
        by_app = usage_from_store(store, by="app", now=now, budgets=budgets)
        everything = usage_from_store(store, by="model", now=now, budgets=budgets)
    assert by_app.budget == "per-app"
    assert everything.budget == "company"
    assert everything.period_hours == 600
    assert groups("app", by_app) == {
        "chat": (14, "2.435", "62.52"),
        "reports": (4, "1.44", "36.97"),
        "search": (2, "0.02", "0.51"),
    }
    assert groups("model", everything) == {LARGE: (18, "3.875", "99.49"), SMALL: (2, "0.02", "0.51")}
    with MemoryStore() as empty, pytest.raises(ReportError, match=r"no budget is counted per user"):
        usage_from_store(empty, by="user", now=now, budgets=budgets)

    advice = advise(acme, everything, OPTIONS, by_app=by_app)
    levers = by_lever(advice)
    # The store keeps no route. Large's tally mixes chat (in-region) and reports (global) traffic:
    # recorded 3.875; at in-region rates its tokens cost 1.88 + 2.00 + 0.03 + 0.125 = 4.035, at global
    # rates 3.6315. What the non-global calls added is 3.875 - 3.6315 = 0.2435: the records' answer.
    # Monthly from the 600 hours of the window so far: 0.2435 x 730 / 600 = 0.296 -> 0.30.
    routing = levers[("global-routing", f"{LARGE} (recorded routes, us-east-1, 18 calls)")]
    assert amounts(routing) == ("3.875", "3.6315", "0.2435", "0.30")
    # Per app the route is inferred from the recorded cost (reports: exactly the global price), so batch and
    # cascade match the records.
    # (0.64 x 730 / 600 = 0.779 -> 0.78; 1.7532 x 730 / 600 = 2.133 -> 2.13)
    assert amounts(levers[("batch", f"app reports: {LARGE} (4 calls)")]) == ("1.44", "0.80", "0.64", "0.78")
    chat = levers[("cascade", f"app chat: {LARGE} -> {SMALL} (14 calls)")]
    assert amounts(chat) == ("1.948", "0.1948", "1.7532", "2.13")
    assert any("route is the one" in a for a in advice.assumptions)
    assert any(
        "per-app levers (batch, cascade) use the tallies of budget per-app" in a for a in advice.assumptions
    )


def test_cli_report_and_advise_json_on_records(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--records", str(CALLS), "--by", "user", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [(g["user"], g["cost_usd"]) for g in payload["groups"]] == [
        ("u3", "1.44"),
        ("u1", "1.295"),
        ("u2", "1.16"),
    ]
    assert payload["total"]["cost_usd"] == "3.895"

    assert main(["report", "--records", str(CALLS), "--by", "app", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0]
        == "app,calls,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,cost_usd,share_percent"
    )
    assert lines[1] == "chat,14,108000,24000,30000,10000,2.435,62.52"
    assert lines[-1] == "total,20,198000,42000,30000,10000,3.895,100"

    args = ["advise", "--records", str(CALLS), "--prices", str(PRICES), "--batch-apps", "reports"]
    assert main([*args, "--price-date", "2026-11-22", "--json"]) == 0
    advice = json.loads(capsys.readouterr().out)
    batch = next(lever for lever in advice["levers"] if lever["lever"] == "batch")
    assert (batch["saving_usd"], batch["monthly_saving_usd"]) == ("0.64", "19.47")
    assert advice["period_hours"] == "24"

    assert main([*args, "--price-date", "2026-11-22"]) == 0
    text = capsys.readouterr().out
    assert "cached: (1 write x $12.50/1M + 3 reads x $1.00/1M) / 4 = $3.875/1M" in text
    assert "worth it" in text


def test_records_window_keeps_the_last_window(tmp_path: Path) -> None:
    lines = CALLS.read_text().splitlines()
    moved = json.loads(lines[0])
    moved["timestamp"] = "2026-11-03T09:00:00+00:00"
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join([*lines, json.dumps(moved)]) + "\n")
    from bedrock_budget.budgets.windows import Window

    last_day = usage_from_records(read_records(path), source="x", keep={"app"}, window=Window("day"))
    assert last_day.total().calls == 1
    assert last_day.period_hours == 24
    assert last_day.period_start is not None
    assert last_day.period_start.isoformat() == "2026-11-03T00:00:00+00:00"
    whole = usage_from_records(read_records(path), source="x", keep={"app"})
    assert whole.total().calls == 21
    assert whole.period_hours == 72  # 1 to 3 November: three calendar days


def test_big_exports_show_progress_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bedrock_budget.cli import report_commands

    monkeypatch.setattr(report_commands, "PROGRESS_BYTES", 1)
    monkeypatch.setattr(report_commands, "_stderr_is_terminal", lambda: True)
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich draws only on what it takes for a terminal
    assert main(["report", "--records", str(CALLS), "--by", "app", "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "total,20,198000,42000,30000,10000,3.895,100"
    assert "calls.jsonl" in err
