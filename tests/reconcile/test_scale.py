"""50,000 calls on each side, with a few of each discrepancy class planted: every one is found with its exact
dollar effect, and the run is timed (the figure is printed, not asserted)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bedrock_budget import Usage, default_price_table
from bedrock_budget.testing.invocation_log_writer import InvocationLogWriter, log_record
from bedrock_budget.testing.usage import ReportedUsage

from .conftest import HAIKU, NOVA, reconcile_json

CALLS = 50_000
PLANTED = 10
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp()


def usage_of(index: int) -> Usage:
    if index % 3:
        return Usage(input_tokens=100 + index % 997, output_tokens=10 + index % 89)
    return Usage(
        input_tokens=50 + index % 211,
        output_tokens=index % 401,
        cache_read_tokens=1_000 + index % 13,
        cache_write_tokens=index % 7,
    )


def model_of(index: int) -> str:
    return NOVA if index % 3 else HAIKU


@pytest.mark.slow
def test_fifty_thousand_calls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prices = default_price_table()
    writer = InvocationLogWriter(tmp_path / "logs", account_id="123456789012", region="us-east-1")
    expected = {kind: Decimal(0) for kind in ("matched", "mismatched", "unrecorded", "unlogged")}
    batch: list[dict[str, object]] = []
    with (tmp_path / "calls.jsonl").open("w", encoding="utf-8") as records:
        for index in range(CALLS + PLANTED):
            moment = START + index * 0.05
            usage, model = usage_of(index), model_of(index)
            at = datetime.fromtimestamp(moment, UTC)
            cost = prices.price(model, usage, region="us-east-1", at=at.date()).total_usd
            request_id = f"req-{index:08d}"
            logged = usage
            if index < PLANTED:  # Bedrock counted five more output tokens than we did
                logged = Usage(
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens + 5,
                    cache_read_tokens=usage.cache_read_tokens,
                    cache_write_tokens=usage.cache_write_tokens,
                )
                again = prices.price(model, logged, region="us-east-1", at=at.date()).total_usd
                expected["mismatched"] += again - cost
            if index >= CALLS:  # logged by Bedrock only: a client that was not wrapped
                expected["unrecorded"] += cost
            else:
                row = {
                    "timestamp": at.isoformat(),
                    "request_id": request_id,
                    "operation": "Converse",
                    "model_id": model,
                    "requested_model_id": model,
                    "region": "us-east-1",
                    "route": "in_region",
                    "attribution": {"app": f"app-{index % 17}"},
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "cache_read_tokens": usage.cache_read_tokens,
                    "cache_write_tokens": usage.cache_write_tokens,
                    "cost_usd": str(cost),
                    "outcome": "ok",
                }
                records.write(json.dumps(row) + "\n")
            if PLANTED <= index < 2 * PLANTED:  # recorded by us only
                expected["unlogged"] += cost
                continue
            if index >= PLANTED and index < CALLS:
                expected["matched"] += cost
            reported = ReportedUsage(
                input_tokens=logged.input_tokens,
                output_tokens=logged.output_tokens,
                cache_read_tokens=logged.cache_read_tokens,
                cache_write_tokens=logged.cache_write_tokens,
            )
            batch.append(
                log_record(
                    request_id=request_id,
                    operation="Converse",
                    model_id=model,
                    received=moment,
                    account_id="123456789012",
                    region="us-east-1",
                    identity_arn="arn:aws:iam::123456789012:user/app",
                    usage=reported,
                )
            )
            if len(batch) == 1_000:
                writer.write(batch, at=moment)
                batch = []
    if batch:
        writer.write(batch, at=moment)

    started = time.perf_counter()
    code, result = reconcile_json(capsys, tmp_path / "calls.jsonl", tmp_path / "logs")
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        logs = result["logs"]
        print(
            f"\nreconcile: {CALLS:,} records, {logs['records']:,} log records, "
            f"{logs['files']} objects: {elapsed:.2f} s"
        )
    assert code == 1
    classes = result["classes"]
    assert classes["matched"]["calls"] == CALLS - 2 * PLANTED
    for kind in ("mismatched", "unrecorded", "unlogged"):
        assert classes[kind]["calls"] == PLANTED
    for kind, amount in expected.items():
        assert Decimal(classes[kind]["usd"]) == amount, kind
    assert result["token_types"]["output"]["difference"] == 5 * PLANTED
    assert result["logs"]["records"] == CALLS - PLANTED + PLANTED
    assert result["logs"]["bad_lines"] == 0
