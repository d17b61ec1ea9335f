"""Real traffic for reconciliation: a wrapped boto3 client talks to the fake Bedrock over HTTP, its call
records are exported as JSON lines, and the fake writes Bedrock's invocation logs from what it answered."""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.cli import main
from bedrock_budget.testing import FakeBedrock, UsageSpec

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
HAIKU_US = f"us.{HAIKU}"
NOVA = "amazon.nova-micro-v1:0"
NOVA_LITE = "amazon.nova-lite-v1:0"
# Nothing of a prompt may reach a log: this marker is in every prompt sent.
MARKER = "zebra-quartz-prompt-marker"
MESSAGES = [{"role": "user", "content": [{"text": f"Summarise {MARKER} please."}]}]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Traffic:
    """One run: the fake (still serving), the wrapped client's records and where they and the logs are."""

    fake: FakeBedrock
    client: Any
    records: list[bb.CallRecord]
    folder: Path
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    @property
    def calls(self) -> Path:
        return self.folder / "calls.jsonl"

    def listen(self, record: bb.CallRecord) -> None:
        with self.lock:
            self.records.append(record)

    def export(self) -> Path:
        """The records as the product exports them: ``CallRecord.as_dict()`` as JSON lines."""
        with self.calls.open("w", encoding="utf-8") as out:
            for record in self.records:
                out.write(json.dumps(record.as_dict()) + "\n")
        return self.calls

    def unwrapped(self, key: str) -> Any:
        """A plain boto3 client signing with its own access key, so the logs name another caller."""
        return self.fake.client(aws_access_key_id=key, aws_secret_access_key="secret")


def drive(client: Any) -> None:
    """One call of every logged operation, with prompt-cache traffic on the Anthropic ones."""
    client.converse(modelId=HAIKU_US, messages=MESSAGES, requestMetadata={"app": "chat"})
    for _ in client.converse_stream(modelId=NOVA, messages=MESSAGES)["stream"]:
        pass
    reply = client.invoke_model(modelId=NOVA_LITE, body=json.dumps({"messages": MESSAGES}))
    reply["body"].read()
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 300, "messages": MESSAGES}
    stream = client.invoke_model_with_response_stream(modelId=HAIKU, body=json.dumps(body))
    for _ in stream["body"]:
        pass


def configure_usage(fake: FakeBedrock) -> None:
    fake.set_usage(
        "anthropic",
        UsageSpec(
            input_tokens=1_234,
            output_tokens=321,
            cache_read_tokens=2_048,
            cache_write_tokens=1_025,
            cache_write_1h_tokens=77,
        ),
    )
    fake.set_usage("nova", UsageSpec(input_tokens=517, output_tokens=89))


@pytest.fixture
def traffic(tmp_path: Path) -> Iterator[Traffic]:
    """Clean traffic: every call went through the wrapped client, and the logs and records agree."""
    with FakeBedrock(invocation_log_dir=tmp_path / "logs") as fake:
        configure_usage(fake)
        run = Traffic(fake=fake, client=None, records=[], folder=tmp_path)
        run.client = bb.wrap(fake.client(), listeners=[run.listen])
        drive(run.client)
        drive(run.client)
        run.export()
        yield run
        assert not fake.server_errors


def log_objects(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.json.gz"))


def log_records(folder: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in log_objects(folder)
        for line in gzip.decompress(path.read_bytes()).decode().splitlines()
        if line.strip()
    ]


def reconcile_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["reconcile", *args])
    out, err = capsys.readouterr()
    return code, ANSI.sub("", out), err


def reconcile_json(
    capsys: pytest.CaptureFixture[str], records: Path, logs: Path, *extra: str
) -> tuple[int, Any]:
    code, out, err = reconcile_cli(
        capsys, "--records", str(records), "--invocation-logs", str(logs), "--format", "json", *extra
    )
    assert code in (0, 1), err
    return code, json.loads(out)
