"""The whole loop with real boto3 over HTTP: a wrapped client, its exported records, the fake's invocation
logs, and `bedrock-budget reconcile` finding each planted discrepancy with its exact dollar effect."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bedrock_budget import Usage, default_price_table

from .conftest import (
    HAIKU,
    MARKER,
    MESSAGES,
    NOVA,
    NOVA_LITE,
    Traffic,
    drive,
    log_objects,
    log_records,
    reconcile_cli,
    reconcile_json,
)

PRICES = default_price_table()


def total(result: dict[str, Any], kind: str) -> tuple[int, Decimal, int]:
    found = result["classes"][kind]
    return found["calls"], Decimal(found["usd"]), found["unpriced_calls"]


def recorded_total(traffic: Traffic) -> Decimal:
    return sum((r.cost_usd for r in traffic.records), Decimal(0))


def test_clean_traffic_agrees_and_exits_0(traffic: Traffic, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = reconcile_json(capsys, traffic.calls, traffic.logs)
    assert code == 0
    assert result["agree"] is True
    classes = result["classes"]
    assert classes["matched"]["calls"] == len(traffic.records) == 8
    assert Decimal(classes["matched"]["usd"]) == recorded_total(traffic) > 0
    for kind in ("mismatched", "unrecorded", "unlogged"):
        assert classes[kind] == {"calls": 0, "usd": "0.00", "unpriced_calls": 0}
    assert result["logs"]["bad_lines"] == 0
    assert result["discrepancies"] == []
    code, out, err = reconcile_cli(
        capsys, "--records", str(traffic.calls), "--invocation-logs", str(traffic.logs)
    )
    assert code == 0, err
    assert out.rstrip().endswith("result: agree")


def test_every_operation_is_logged_from_the_counts_returned(traffic: Traffic) -> None:
    logged = {r["requestId"]: r for r in log_records(traffic.logs)}
    assert len(logged) == 8
    assert len(log_objects(traffic.logs)) == 8
    for record in traffic.records:
        entry = logged[record.request_id or ""]
        assert entry["schemaType"] == "ModelInvocationLog"
        assert entry["operation"] == record.operation
        assert entry["modelId"] == record.requested_model_id
        usage = record.usage
        assert entry["input"]["inputTokenCount"] == usage.input_tokens
        assert entry["input"]["cacheReadInputTokenCount"] == usage.cache_read_tokens
        assert entry["input"]["cacheWriteInputTokenCount"] == usage.cache_write_tokens
        assert entry["output"]["outputTokenCount"] == usage.output_tokens
        assert datetime.fromisoformat(entry["timestamp"]).tzinfo is not None
    assert {r["operation"] for r in logged.values()} == {
        "Converse",
        "ConverseStream",
        "InvokeModel",
        "InvokeModelWithResponseStream",
    }
    converse = next(r for r in logged.values() if r["operation"] == "Converse")
    assert converse["requestMetadata"] == {"app": "chat"}
    # The tree is the one Bedrock writes to S3.
    relative = log_objects(traffic.logs)[0].relative_to(traffic.logs).parts
    assert relative[:5] == ("AWSLogs", "123456789012", "BedrockModelInvocationLogs", "us-east-1", relative[4])
    assert len(relative) == 9
    assert relative[-1].endswith(".json.gz")


def test_no_prompt_or_completion_reaches_the_logs(traffic: Traffic) -> None:
    for path in log_objects(traffic.logs):
        text = gzip.decompress(path.read_bytes()).decode()
        assert MARKER not in text
        assert "lorem" not in text  # the fake's completion filler
        for field in ("inputBodyJson", "outputBodyJson", "messages", "content"):
            assert field not in text


def price(model: str, usage: Usage, **options: Any) -> Decimal:
    return PRICES.price(model, usage, region="us-east-1", **options).total_usd


def test_an_unwrapped_clients_calls_are_found_with_their_cost(
    traffic: Traffic, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = traffic.unwrapped("AKIAUNWRAPPED")
    plain.converse(modelId=NOVA, messages=MESSAGES)
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 300, "messages": MESSAGES}
    plain.invoke_model(modelId=HAIKU, body=json.dumps(body))["body"].read()
    code, result = reconcile_json(capsys, traffic.calls, traffic.logs)
    assert code == 1
    assert result["agree"] is False
    # Priced independently: Nova Micro 517 in / 89 out; Haiku 1,234 in, 321 out, 2,048 cache reads and
    # 1,102 cache writes (all priced as five-minute writes: the log does not split them by TTL).
    expected = price(NOVA, Usage(input_tokens=517, output_tokens=89)) + price(
        HAIKU,
        Usage(input_tokens=1_234, output_tokens=321, cache_read_tokens=2_048, cache_write_tokens=1_102),
    )
    assert total(result, "unrecorded") == (2, expected, 0)
    by_caller = result["unrecorded_by_identity"]
    assert list(by_caller) == ["arn:aws:sts::123456789012:assumed-role/fake-bedrock-caller/AKIAUNWRAPPED"]
    assert Decimal(next(iter(by_caller.values()))["usd"]) == expected
    assert result["classes"]["matched"]["calls"] == 8
    assert {d["class"] for d in result["discrepancies"]} == {"unrecorded"}


def edit_record(path: Path, request_id: str, **changes: int) -> dict[str, Any]:
    lines = path.read_text(encoding="utf-8").splitlines()
    edited: dict[str, Any] = {}
    for index, line in enumerate(lines):
        data = json.loads(line)
        if data["request_id"] == request_id:
            data.update(changes)
            lines[index] = json.dumps(data)
            edited = data
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return edited


def test_a_record_whose_tokens_were_edited_is_a_mismatch_priced_exactly(
    traffic: Traffic, capsys: pytest.CaptureFixture[str]
) -> None:
    target = next(r for r in traffic.records if r.requested_model_id == NOVA_LITE)
    assert target.request_id is not None
    edit_record(traffic.calls, target.request_id, output_tokens=89 + 1_000, input_tokens=500)
    code, result = reconcile_json(capsys, traffic.calls, traffic.logs)
    assert code == 1
    logged = Usage(input_tokens=517, output_tokens=89)
    ours = Usage(input_tokens=500, output_tokens=1_089)
    expected = price(NOVA_LITE, logged) - price(NOVA_LITE, ours)
    assert expected < 0  # we recorded more than Bedrock counted
    assert total(result, "mismatched") == (1, expected, 0)
    types = result["token_types"]
    output_alone = price(NOVA_LITE, Usage(input_tokens=500, output_tokens=89)) - price(NOVA_LITE, ours)
    assert dict(types["output"], usd=Decimal(types["output"]["usd"])) == {
        "calls": 1,
        "recorded_tokens": 1_089,
        "logged_tokens": 89,
        "difference": -1_000,
        "usd": output_alone,
    }
    assert types["input"]["difference"] == 17
    assert types["cache_read"]["calls"] == types["cache_write"]["calls"] == 0
    [detail] = result["discrepancies"]
    assert detail["request_id"] == target.request_id
    assert detail["recorded_tokens"]["output"] == 1_089
    assert detail["logged_tokens"]["output"] == 89
    assert result["classes"]["matched"]["calls"] == 7


def test_a_record_bedrock_never_logged_is_found_with_our_cost(
    traffic: Traffic, capsys: pytest.CaptureFixture[str]
) -> None:
    target = next(r for r in traffic.records if r.operation == "InvokeModelWithResponseStream")
    for path in log_objects(traffic.logs):
        if target.request_id in gzip.decompress(path.read_bytes()).decode():
            path.unlink()
    code, result = reconcile_json(capsys, traffic.calls, traffic.logs)
    assert code == 1
    assert total(result, "unlogged") == (1, target.cost_usd, 0)
    assert result["discrepancies"][0]["class"] == "unlogged"
    assert result["discrepancies"][0]["request_id"] == target.request_id


def test_one_gzip_object_holding_many_records_reads_the_same(
    traffic: Traffic, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tree = tmp_path / "bucket" / "AWSLogs" / "123456789012" / "BedrockModelInvocationLogs" / "us-east-1"
    folder = tree / "2026" / "01" / "02" / "03"
    folder.mkdir(parents=True)
    records = log_records(traffic.logs)
    lines = "".join(json.dumps(r) + "\n" for r in records[:5])
    (folder / "a.json.gz").write_bytes(gzip.compress(lines.encode()))
    # Several records on one line, pretty-printed whitespace between them: still read.
    (folder / "b.json.gz").write_bytes(gzip.compress("".join(json.dumps(r) for r in records[5:]).encode()))
    code, result = reconcile_json(capsys, traffic.calls, tmp_path / "bucket")
    assert code == 0
    assert result["logs"]["files"] == 2
    assert result["logs"]["records"] == 8
    assert Decimal(result["classes"]["matched"]["usd"]) == recorded_total(traffic)


def test_cloudwatch_exports_read_the_same(
    traffic: Traffic, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    records = log_records(traffic.logs)
    # An export task's object: each message after its timestamp, gzip'd.
    task = tmp_path / "export" / "exportedlogs" / "000000.gz"
    task.parent.mkdir(parents=True)
    text = "".join(f"{r['timestamp'].replace('Z', '.123Z')} {json.dumps(r)}\n" for r in records)
    task.write_bytes(gzip.compress(text.encode()))
    code, result = reconcile_json(capsys, traffic.calls, task.parent.parent)
    assert (code, result["logs"]["records"], result["logs"]["bad_lines"]) == (0, 8, 0)
    # `aws logs filter-log-events` output: the CLI's whole pretty-printed document.
    events = [{"logStreamName": "aws/bedrock", "timestamp": 1, "message": json.dumps(r)} for r in records]
    answer = tmp_path / "events.json"
    answer.write_text(json.dumps({"events": events, "searchedLogStreams": []}, indent=4))
    code, result = reconcile_json(capsys, traffic.calls, answer)
    assert (code, result["logs"]["records"], result["logs"]["bad_lines"]) == (0, 8, 0)
    # The same events one per line (`jq -c '.events[]'`).
    lines = tmp_path / "events.jsonl"
    lines.write_text("".join(json.dumps(e) + "\n" for e in events))
    code, result = reconcile_json(capsys, traffic.calls, lines)
    assert (code, result["logs"]["records"]) == (0, 8)
    assert Decimal(result["classes"]["matched"]["usd"]) == recorded_total(traffic)


def test_corrupt_lines_are_counted_not_fatal(
    traffic: Traffic, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    records = log_records(traffic.logs)
    path = tmp_path / "logs.jsonl"
    good = [json.dumps(r) for r in records]
    negative = dict(records[0], requestId="other", input={"inputTokenCount": -5})
    bad = ["not json at all", good[0][:40], json.dumps(negative), '{"schemaType": "ModelInvocationLog"}']
    path.write_text("\n".join([bad[0], *good[:4], bad[1], *good[4:], bad[2], "", bad[3]]) + "\n")
    code, out, err = reconcile_cli(capsys, "--records", str(traffic.calls), "--invocation-logs", str(path))
    assert code == 0, err
    assert "bad lines: 4 (skipped" in out
    assert f"bad line: {path}:1: not JSON" in out
    assert f"bad line: {path}:6: not JSON" in out
    assert "inputTokenCount must be a whole number of tokens" in out
    assert "the record has no requestId" in out
    # A gzip object cut short: the records before the cut count, the cut is one bad line.
    cut = tmp_path / "cut" / "x.json.gz"
    cut.parent.mkdir()
    whole = gzip.compress("".join(g + "\n" for g in good).encode())
    cut.write_bytes(whole[: len(whole) - 30])
    code, result = reconcile_json(capsys, traffic.calls, cut.parent)
    assert code == 1
    assert result["logs"]["bad_lines"] == 1
    assert "cut short or corrupt" in result["logs"]["bad_line_examples"][0]
    assert result["classes"]["unlogged"]["calls"] == 8 - result["logs"]["records"]


def test_nothing_readable_is_bad_input(
    traffic: Traffic, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    junk = tmp_path / "junk.log"
    junk.write_text("garbage\n{oops\n")
    code, out, err = reconcile_cli(capsys, "--records", str(traffic.calls), "--invocation-logs", str(junk))
    assert code == 2
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("error: no invocation log records in")
    assert "2 bad lines" in line


def test_a_stream_cut_mid_way_shows_our_estimate_against_bedrocks_empty_count(
    traffic: Traffic, capsys: pytest.CaptureFixture[str]
) -> None:
    traffic.fake.fail_mid_stream(1, operation="ConverseStream")
    with pytest.raises(Exception, match="modelStreamErrorException"):
        for _ in traffic.client.converse_stream(modelId=NOVA, messages=MESSAGES)["stream"]:
            pass
    traffic.export()
    cut = traffic.records[-1]
    assert cut.partial
    assert cut.estimated
    [entry] = [r for r in log_records(traffic.logs) if r["requestId"] == cut.request_id]
    assert entry["errorCode"] == "ModelStreamErrorException"
    assert "inputTokenCount" not in entry["input"]
    code, result = reconcile_json(capsys, traffic.calls, traffic.logs)
    assert code == 1
    ours = cut.usage
    expected = -price(NOVA, Usage(input_tokens=ours.input_tokens, output_tokens=ours.output_tokens))
    assert total(result, "mismatched") == (1, expected, 0)


def test_running_twice_gives_the_same_answer(traffic: Traffic, capsys: pytest.CaptureFixture[str]) -> None:
    drive(traffic.unwrapped("AKIASECOND"))
    first = reconcile_cli(capsys, "--records", str(traffic.calls), "--invocation-logs", str(traffic.logs))
    second = reconcile_cli(capsys, "--records", str(traffic.calls), "--invocation-logs", str(traffic.logs))
    assert first == second
    assert first[0] == 1
