"""`bedrock-budget fake-bedrock --invocation-log-dir` writes the logs from a separate process, as a user
runs it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import boto3

from .conftest import MESSAGES, NOVA, log_records

LAUNCH = "import sys; from bedrock_budget.cli import main; sys.exit(main())"


def test_the_command_writes_invocation_logs(tmp_path: Path) -> None:
    logs = tmp_path / "new" / "logs"
    command = [sys.executable, "-c", LAUNCH, "fake-bedrock", "--port", "0", "--invocation-log-dir", str(logs)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        _call_and_check(server, logs)


def _call_and_check(server: subprocess.Popen[str], logs: Path) -> None:
    try:
        assert server.stdout is not None
        match = re.search(r"http://\S+", server.stdout.readline())
        assert match is not None
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=match.group(0),
            region_name="us-east-1",
            aws_access_key_id="AKIACOMMAND",
            aws_secret_access_key="x",
        )
        reply = client.converse(modelId=NOVA, messages=MESSAGES)  # type: ignore[arg-type]
        [entry] = log_records(logs)
        assert entry["requestId"] == reply["ResponseMetadata"]["RequestId"]
        assert entry["input"]["inputTokenCount"] == reply["usage"]["inputTokens"]
        assert entry["output"]["outputTokenCount"] == reply["usage"]["outputTokens"]
        assert entry["identity"]["arn"].endswith("/AKIACOMMAND")
        client.close()
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(10) == 0


def test_an_unwritable_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, "fake-bedrock", "--invocation-log-dir", str(blocker / "logs")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ")
    assert "--invocation-log-dir" in line
