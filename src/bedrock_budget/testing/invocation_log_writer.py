"""Model-invocation logs as Bedrock delivers them to S3, written by the fake from what it answered.

Objects go under ``<root>/AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/``, each a
gzip'd file of JSON records, one per line. Records carry ids and token counts only: the request and
response bodies Bedrock can include (``inputBodyJson`` / ``outputBodyJson``) are never written.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from .usage import ReportedUsage

__all__ = ["InvocationLogWriter", "log_record"]

SCHEMA_TYPE: Final = "ModelInvocationLog"
SCHEMA_VERSION: Final = "1.0"
_CREDENTIAL: Final = re.compile(r"Credential=([A-Za-z0-9]+)/")


def caller_arn(account_id: str, authorization: str | None) -> str:
    """A stable identity ARN for the caller, from the access key id its SigV4 signature names."""
    match = _CREDENTIAL.search(authorization or "")
    key = match.group(1) if match else "anonymous"
    return f"arn:aws:sts::{account_id}:assumed-role/fake-bedrock-caller/{key}"


def log_record(
    *,
    request_id: str,
    operation: str,
    model_id: str,
    received: float,
    account_id: str,
    region: str,
    identity_arn: str,
    usage: ReportedUsage | None,
    error_code: str | None = None,
    request_metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One invocation log record. ``usage`` ``None`` (a stream cut by an exception event) leaves the
    token counts out and names the error."""
    moment = datetime.fromtimestamp(received, UTC).replace(microsecond=0)
    source: dict[str, Any] = {"inputContentType": "application/json"}
    result: dict[str, Any] = {"outputContentType": "application/json"}
    if usage is not None:
        source["inputTokenCount"] = usage.input_tokens
        source["cacheReadInputTokenCount"] = usage.cache_read_tokens
        source["cacheWriteInputTokenCount"] = usage.cache_write_total
        result["outputTokenCount"] = usage.output_tokens
    record: dict[str, Any] = {
        "schemaType": SCHEMA_TYPE,
        "schemaVersion": SCHEMA_VERSION,
        "timestamp": moment.isoformat().replace("+00:00", "Z"),
        "accountId": account_id,
        "identity": {"arn": identity_arn},
        "region": region,
        "requestId": request_id,
        "operation": operation,
        "modelId": model_id,
        "input": source,
        "output": result,
    }
    if error_code is not None:
        record["errorCode"] = error_code
    if request_metadata:
        record["requestMetadata"] = dict(request_metadata)
    return record


class InvocationLogWriter:
    """Writes gzip'd objects of invocation log records in an S3-like dated tree under ``root``."""

    def __init__(self, root: Path | str, *, account_id: str, region: str) -> None:
        self.root = Path(root)
        self.account_id = account_id
        self.region = region
        self._lock = threading.Lock()
        self._sequence = itertools.count(1)
        self.objects_written = 0

    def folder(self, moment: datetime) -> Path:
        return (
            self.root
            / "AWSLogs"
            / self.account_id
            / "BedrockModelInvocationLogs"
            / self.region
            / moment.strftime("%Y/%m/%d/%H")
        )

    def record(
        self,
        *,
        request_id: str,
        operation: str,
        model_id: str,
        received: float,
        authorization: str | None,
        usage: ReportedUsage | None,
        error_code: str | None = None,
        request_metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The record of one call to this account and region, by the caller its signature names."""
        return log_record(
            request_id=request_id,
            operation=operation,
            model_id=model_id,
            received=received,
            account_id=self.account_id,
            region=self.region,
            identity_arn=caller_arn(self.account_id, authorization),
            usage=usage,
            error_code=error_code,
            request_metadata=request_metadata,
        )

    def write(self, records: Iterable[Mapping[str, Any]], *, at: float) -> Path:
        """One object holding ``records`` (one JSON record per line), named after ``at`` and a sequence
        number so names never collide; written to a temporary name and renamed, so a reader never sees
        half an object."""
        moment = datetime.fromtimestamp(at, UTC)
        payload = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode("utf-8")
        with self._lock:
            number = next(self._sequence)
        folder = self.folder(moment)
        name = f"{moment.strftime('%Y%m%dT%H%M%SZ')}_{os.getpid()}_{number:08d}.json.gz"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        partial = folder / f".{name}.partial"
        # mtime=0: the same records always make the same bytes.
        partial.write_bytes(gzip.compress(payload, compresslevel=6, mtime=0))
        partial.replace(target)
        with self._lock:
            self.objects_written += 1
        return target
