"""The log reader on every shape a record reaches a disk in, and the command's edges: tolerance, bad input,
an 80-column terminal and a pipe."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from bedrock_budget.reporting.invocation_logs import LogReadStats, read_invocation_logs
from bedrock_budget.reporting.tallies import ReportError

from .conftest import Traffic, log_records, reconcile_cli, reconcile_json


def record(request_id: str, **counts: int) -> dict[str, Any]:
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": "2026-03-11T00:38:02Z",
        "accountId": "111122223333",
        "identity": {"arn": "arn:aws:iam::111122223333:user/alice"},
        "region": "us-east-1",
        "requestId": request_id,
        "operation": "ConverseStream",
        "modelId": "amazon.nova-lite-v1:0",
        "input": {
            "inputContentType": "application/json",
            "inputTokenCount": counts.get("input", 4),
            "cacheReadInputTokenCount": counts.get("cache_read", 0),
            "cacheWriteInputTokenCount": counts.get("cache_write", 0),
        },
        "output": {"outputContentType": "application/json", "outputTokenCount": counts.get("output", 38)},
    }


def read(path: Path) -> tuple[list[str], LogReadStats]:
    stats = LogReadStats()
    return [r.request_id for r in read_invocation_logs(path, stats)], stats


def test_a_record_keeps_ids_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(record("r-1", input=12, output=7, cache_read=5, cache_write=3)) + "\n")
    [found] = list(read_invocation_logs(path, LogReadStats()))
    assert (found.input_tokens, found.output_tokens, found.cache_read_tokens, found.cache_write_tokens) == (
        12,
        7,
        5,
        3,
    )
    assert found.identity_arn == "arn:aws:iam::111122223333:user/alice"
    assert found.operation == "ConverseStream"
    assert found.timestamp is not None
    assert found.timestamp.isoformat() == "2026-03-11T00:38:02+00:00"
    assert found.where == f"{path}:1"


def test_json_lines_concatenated_objects_and_prefixed_lines(tmp_path: Path) -> None:
    path = tmp_path / "mixed.log"
    path.write_text(
        "\n".join(
            [
                json.dumps(record("a")),
                json.dumps(record("b")) + "  " + json.dumps(record("c")),
                "2026-03-11T00:38:02.123Z " + json.dumps(record("d")),
                "1773189482123\t" + json.dumps(record("e")),
                json.dumps({"timestamp": 1, "message": json.dumps(record("f"))}),
                json.dumps([record("g"), record("h")]),
                "",
            ]
        )
    )
    ids, stats = read(path)
    assert ids == list("abcdefgh")
    assert (stats.files, stats.records, stats.bad, stats.skipped) == (1, 8, 0, 0)


def test_a_tree_of_gzip_objects_with_other_json_skipped(tmp_path: Path) -> None:
    hour = (
        tmp_path / "AWSLogs" / "111122223333" / "BedrockModelInvocationLogs" / "us-east-1" / "2026/03/11/00"
    )
    hour.mkdir(parents=True)
    (hour / "x.json.gz").write_bytes(
        gzip.compress(b"".join(json.dumps(record(i)).encode() + b"\n" for i in "pq"))
    )
    # Compressed without the .gz name: recognised by its magic bytes.
    (hour / "y.json").write_bytes(gzip.compress(json.dumps(record("r")).encode()))
    # Large-data bodies Bedrock writes beside the records are JSON, but not records.
    data = hour / "data"
    data.mkdir()
    (data / "body.json").write_text(json.dumps({"messages": []}))
    (hour / ".x.json.gz.partial").write_text("half an object")
    ids, stats = read(tmp_path)
    assert ids == ["p", "q", "r"]
    assert (stats.files, stats.skipped, stats.bad) == (3, 1, 0)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("garbage", "not JSON"),
        ('{"schemaType": "ModelInvocationLog", "requestId": "x"', "not JSON"),
        ('"a string"', "a record must be a JSON object"),
        ('{"schemaType": "ModelInvocationLog", "modelId": "m"}', "the record has no requestId"),
        ('{"schemaType": "ModelInvocationLog", "requestId": "x"}', "the record has no modelId"),
        (json.dumps(dict(record("x"), input={"inputTokenCount": "12"})), "inputTokenCount must be a whole"),
        (json.dumps(dict(record("x"), output={"outputTokenCount": 1.5})), "outputTokenCount must be a whole"),
        (json.dumps(dict(record("x"), input=[1])), "input must be an object"),
        (json.dumps(dict(record("x"), timestamp="yesterday")), "is not an ISO 8601 time"),
    ],
)
def test_bad_lines_are_counted_with_their_reason(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(record("ok")) + "\n" + line + "\n")
    ids, stats = read(path)
    assert ids == ["ok"]
    assert stats.bad == 1
    assert stats.examples[0].startswith(f"{path}:2: ")
    assert reason in stats.examples[0]


def test_only_the_first_reasons_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("x\n" * 1_000)
    _, stats = read(path)
    assert stats.bad == 1_000
    assert len(stats.examples) == 5


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no such file or directory"):
        list(read_invocation_logs(tmp_path / "nope", LogReadStats()))


def test_tolerance_makes_small_differences_equal(
    traffic: Traffic, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = traffic.calls.read_text().splitlines()
    first = json.loads(lines[0])
    first["output_tokens"] += 2
    lines[0] = json.dumps(first)
    traffic.calls.write_text("\n".join(lines) + "\n")
    code, result = reconcile_json(capsys, traffic.calls, traffic.logs, "--tolerance-tokens", "1")
    assert code == 1
    assert result["classes"]["mismatched"]["calls"] == 1
    code, result = reconcile_json(capsys, traffic.calls, traffic.logs, "--tolerance-tokens", "2")
    assert code == 0
    assert result["within_tolerance"] == 1
    assert "1 matched calls within 2 tokens per type" in result["notes"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--records", "{tmp}/none.jsonl", "--invocation-logs", "{logs}"], "cannot read records file"),
        (["--records", "{calls}", "--invocation-logs", "{tmp}/none"], "no such file or directory"),
        (["--records", "{calls}", "--invocation-logs", "{logs}", "--tolerance-tokens", "-1"], "-1"),
        (["--records", "{calls}", "--invocation-logs", "{logs}", "--format", "xml"], "xml"),
        (["--records", "{calls}"], "--invocation-logs"),
        (["--records", "{bad}", "--invocation-logs", "{logs}"], "not JSON"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    traffic: Traffic, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    bad = traffic.folder / "bad.jsonl"
    bad.write_text("{not json\n")
    names = {"tmp": traffic.folder, "logs": traffic.logs, "calls": traffic.calls, "bad": bad}
    code, out, err = reconcile_cli(capsys, *(arg.format(**names) for arg in args))
    assert code == 2
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("error: ")
    assert message in line
    assert "Traceback" not in err


def _terminal(monkeypatch: pytest.MonkeyPatch, columns: int | None) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("TTY_COMPATIBLE", "0" if columns is None else "1")
    monkeypatch.setenv("COLUMNS", str(columns or 80))


@pytest.mark.parametrize("columns", [80, None], ids=["80-columns", "piped"])
def test_the_table_fits_80_columns_and_pipes_whole_rows(
    traffic: Traffic, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int | None
) -> None:
    plain = traffic.unwrapped("AKIAUNWRAPPEDCALLER")
    plain.converse(
        modelId="us.anthropic.claude-3-5-haiku-20241022-v1:0",
        messages=[{"role": "user", "content": [{"text": "x"}]}],
    )
    edited = traffic.calls.read_text().splitlines()
    row = json.loads(edited[1])
    row["input_tokens"] += 3
    edited[1] = json.dumps(row)
    traffic.calls.write_text("\n".join(edited) + "\n")
    _, result = reconcile_json(capsys, traffic.calls, traffic.logs)
    _terminal(monkeypatch, columns)
    code, out, _ = reconcile_cli(
        capsys, "--records", str(traffic.calls), "--invocation-logs", str(traffic.logs)
    )
    assert code == 1
    assert "…" not in out
    lines = out.splitlines()
    ids = [d["request_id"] for d in result["discrepancies"]]
    amounts = [result["classes"][k]["usd"] for k in ("matched", "unrecorded")]
    for value in [
        *ids,
        *amounts,
        "arn:aws:sts::123456789012:assumed-role/fake-bedrock-caller/AKIAUNWRAPPEDCALLER",
    ]:
        assert any(value in line for line in lines), f"{value} is cut in:\n{out}"
    prose = ("records", "logs", "note: ", "result: ", "bad line")
    if columns is not None:
        assert max(len(line.rstrip()) for line in lines if not line.startswith(prose)) <= columns, out
    else:
        rows = {line.split()[0]: line for line in lines if line[:8] in {i[:8] for i in ids}}
        assert len(rows) == 2
    assert lines[-1] == "result: disagree, 2 calls not matched with equal counts"


def test_the_logs_written_match_the_records_read_back(traffic: Traffic) -> None:
    written = {r["requestId"] for r in log_records(traffic.logs)}
    ids, stats = read(traffic.logs)
    assert set(ids) == written == {r.request_id for r in traffic.records}
    assert stats.bad == 0
