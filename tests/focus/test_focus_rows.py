"""FOCUS rows from call records: exact totals, one row per hour x resource x dimension x attribution, and
the unkind records (no attribution, zero cost, estimated, unpriced, across an hour, prices that differ)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bedrock_budget.pricing import PriceTable, load_price_table
from bedrock_budget.reporting.call_records import CallRow, parse_record, read_records
from bedrock_budget.reporting.focus import FocusSettings, focus_export
from bedrock_budget.reporting.focus_csv import write_focus_csv

FIXTURES = Path(__file__).resolve().parents[1] / "reporting" / "fixtures"
LARGE = "acme.large-v1:0"  # $10 input, $50 output, $1 cache read per 1M tokens


@pytest.fixture(scope="module")
def acme() -> PriceTable:
    return load_price_table([FIXTURES / "prices"])


def row(**fields: Any) -> CallRow:
    data: dict[str, Any] = {
        "timestamp": "2026-11-01T10:15:00+00:00",
        "model_id": LARGE,
        "region": "us-east-1",
        "input_tokens": 1000,
        "output_tokens": 100,
        "cost_usd": "0.015",
        "attribution": {"app": "chat"},
    }
    data.update(fields)
    return parse_record(data, "test")


def lines(acme: PriceTable, rows: list[CallRow]) -> list[dict[str, str]]:
    out = io.StringIO()
    write_focus_csv(out, rows, settings=FocusSettings(), list_prices=acme, contracted_prices=acme)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_the_fixture_workload_sums_exactly(acme: PriceTable) -> None:
    rows = list(read_records(FIXTURES / "calls.jsonl"))
    recorded = sum((r.cost_usd or Decimal(0) for r in rows if r.billed), Decimal(0))
    export = focus_export(rows, acme, acme)
    assert export.billed_usd == export.recorded_usd == recorded == Decimal("3.895")
    assert export.counts == {"priced": 20}
    csv_rows = lines(acme, rows)
    assert sum(Decimal(r["BilledCost"]) for r in csv_rows) == recorded
    tokens = sum(r.input_tokens for r in rows if r.billed)
    assert sum(Decimal(r["PricingQuantity"]) for r in csv_rows if r["SkuMeter"] == "Input Tokens") == tokens
    for line in csv_rows:
        assert Decimal(line["ListUnitPrice"]) * Decimal(line["PricingQuantity"]) == Decimal(line["ListCost"])
        assert line["ContractedCost"] == line["EffectiveCost"] == line["BilledCost"]


def test_one_row_per_dimension_with_unit_prices(acme: PriceTable) -> None:
    out = lines(acme, [row(cache_read_tokens=2000, cost_usd="0.017")])
    assert [(r["SkuMeter"], r["PricingQuantity"], r["ListUnitPrice"], r["BilledCost"]) for r in out] == [
        ("Cache Read Input Tokens", "2000.0", "0.000001", "0.002"),
        ("Input Tokens", "1000.0", "0.00001", "0.01"),
        ("Output Tokens", "100.0", "0.00005", "0.005"),
    ]
    first = out[0]
    assert first["ResourceId"] == LARGE
    assert first["RegionId"] == "us-east-1"
    assert first["RegionName"] == "US East (N. Virginia)"
    assert first["Tags"] == '{"app":"chat"}'
    assert first["ChargePeriodStart"] == "2026-11-01T10:00:00Z"
    assert first["ChargePeriodEnd"] == "2026-11-01T11:00:00Z"
    assert (first["BillingPeriodStart"], first["BillingPeriodEnd"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    assert first["x_PriceStatus"] == "priced"


def test_same_key_calls_add_up_and_attribution_splits_rows(acme: PriceTable) -> None:
    calls = [row(), row(timestamp="2026-11-01T10:59:00+00:00"), row(attribution={"app": "search"})]
    out = lines(acme, calls)
    chat = [r for r in out if r["Tags"] == '{"app":"chat"}']
    assert {r["x_Calls"] for r in chat} == {"2"}
    assert {r["PricingQuantity"] for r in chat if r["SkuMeter"] == "Input Tokens"} == {"2000.0"}
    assert len(out) == 4


def test_records_without_attribution_have_null_tags(acme: PriceTable) -> None:
    out = lines(acme, [row(attribution=None), row(attribution={})])
    assert {r["Tags"] for r in out} == {""}
    assert {r["x_Calls"] for r in out} == {"2"}


def test_a_call_is_charged_whole_to_the_hour_it_settled_in(acme: PriceTable) -> None:
    before = row(timestamp="2026-11-01T10:59:59.999999+00:00", latency_seconds=3.0)
    after = row(timestamp="2026-11-01T11:00:00+00:00", latency_seconds=3.0)
    # 12:30 in UTC+02:00 is 10:30 UTC.
    offset = row(timestamp="2026-11-01T12:30:00+02:00")
    out = lines(acme, [before, after, offset])
    starts = sorted({(r["ChargePeriodStart"], r["x_Calls"]) for r in out})
    assert starts == [("2026-11-01T10:00:00Z", "2"), ("2026-11-01T11:00:00Z", "1")]
    assert sum(Decimal(r["BilledCost"]) for r in out) == Decimal("0.045")
    for line in out:
        assert line["ChargePeriodEnd"] > line["ChargePeriodStart"]


def test_a_month_boundary_moves_the_billing_period(acme: PriceTable) -> None:
    out = lines(acme, [row(timestamp="2026-12-31T23:59:59+00:00"), row(timestamp="2027-01-01T00:00:00Z")])
    periods = {(r["BillingPeriodStart"], r["BillingPeriodEnd"]) for r in out}
    assert periods == {
        ("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        ("2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"),
    }


def test_zero_cost_calls_without_usage_are_left_out_and_said(acme: PriceTable) -> None:
    export = focus_export([row(input_tokens=0, output_tokens=0, cost_usd="0"), row()], acme, acme)
    assert export.skipped == 1
    assert export.billed_usd == Decimal("0.015")
    assert any("not exported" in note for note in export.notes())


def test_capacity_calls_are_zero_cost_usage(acme: PriceTable) -> None:
    out = lines(acme, [row(pricing_mode="provisioned", cost_usd="0")])
    assert {r["x_PriceStatus"] for r in out} == {"capacity"}
    assert {r["BilledCost"] for r in out} == {"0.0"}
    assert {r["PricingCategory"] for r in out} == {"Other"}


def test_estimated_counts_get_rows_of_their_own(acme: PriceTable) -> None:
    out = lines(acme, [row(), row(estimated=True), row(partial=True, outcome="partial")])
    flags = sorted((r["SkuMeter"], r["x_UsageEstimated"], r["x_Calls"]) for r in out)
    assert flags == [
        ("Input Tokens", "false", "1"),
        ("Input Tokens", "true", "2"),
        ("Output Tokens", "false", "1"),
        ("Output Tokens", "true", "2"),
    ]
    for line in out:
        estimated = line["x_UsageEstimated"] == "true"
        assert ("counts estimated" in line["ChargeDescription"]) is estimated


def test_unpriced_calls_keep_their_usage_at_no_cost(acme: PriceTable) -> None:
    calls = [row(cost_usd=None, model_id="acme.unknown-v9:0"), row()]
    export = focus_export(calls, acme, acme)
    assert export.counts == {"unpriced": 1, "priced": 1}
    assert export.billed_usd == Decimal("0.015")
    out = lines(acme, calls)
    unpriced = [r for r in out if r["x_PriceStatus"] == "unpriced"]
    assert {r["BilledCost"] for r in unpriced} == {"0.0"}
    assert {r["ResourceId"] for r in unpriced} == {"acme.unknown-v9:0"}
    assert all("not priced" in r["ChargeDescription"] for r in unpriced)


def test_a_cost_the_table_disagrees_with_is_kept_per_request(acme: PriceTable) -> None:
    # Priced elsewhere at 0.0123: the export keeps that cost and never states the table's price.
    calls = [row(cost_usd="0.0123"), row(cost_usd="0.0123"), row(cost_usd="0.0124")]
    out = lines(acme, calls)
    assert {r["x_PriceStatus"] for r in out} == {"recorded"}
    assert sorted((r["PricingQuantity"], r["ListUnitPrice"], r["BilledCost"]) for r in out) == [
        ("1.0", "0.0124", "0.0124"),
        ("2.0", "0.0123", "0.0246"),
    ]
    assert {r["PricingUnit"] for r in out} == {"Requests"}


def test_the_total_is_exact_to_the_nano_dollar_over_many_odd_costs(acme: PriceTable) -> None:
    # Costs with nine decimals that floats cannot hold, priced by the table (input 10 per 1M tokens).
    calls = [
        row(input_tokens=n, output_tokens=0, cost_usd=str(Decimal(n) * Decimal("0.00001")))
        for n in range(1, 1001)
    ]
    export = focus_export(calls, acme, acme)
    expected = sum((c.cost_usd or Decimal(0) for c in calls), Decimal(0))
    assert export.billed_usd == expected == Decimal("5.005")
    assert export.counts == {"priced": 1000}
    assert len(export.rows) == 1


def test_new_row_fields_parse_from_csv_text() -> None:
    parsed = parse_record(
        {
            "timestamp": "2026-11-01T10:15:00",
            "model_id": LARGE,
            "images": "2",
            "guardrail_text_units": json.dumps({"content_filters": 3, "denied_topics": 0}),
            "estimated": "true",
            "partial": "false",
        },
        "x.csv:2",
    )
    assert parsed.timestamp == datetime(2026, 11, 1, 10, 15, tzinfo=UTC)
    assert (parsed.images, parsed.estimated, parsed.partial) == (2, True, False)
    assert dict(parsed.guardrail_text_units) == {"content_filters": 3}
    with pytest.raises(ValueError, match="estimated must be true or false"):
        parse_record({"timestamp": "2026-11-01T10:15:00", "model_id": LARGE, "estimated": "maybe"}, "x")


def test_batch_calls_are_priced_per_dimension_at_the_batch_rate(acme: PriceTable) -> None:
    # 1,000 input at $5 and 100 output at $25 per 1M (half the on-demand rate): $0.0075.
    out = lines(acme, [row(pricing_mode="batch", cost_usd="0.0075")])
    assert [(r["SkuMeter"], r["ListUnitPrice"], r["BilledCost"], r["x_PriceStatus"]) for r in out] == [
        ("Input Tokens", "0.000005", "0.005", "priced"),
        ("Output Tokens", "0.000025", "0.0025", "priced"),
    ]
