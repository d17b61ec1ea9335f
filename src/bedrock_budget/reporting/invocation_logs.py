"""Bedrock's own model-invocation log records, read for reconciliation.

Bedrock writes one JSON record per model invocation (``schemaType`` ``"ModelInvocationLog"``) to CloudWatch
Logs, to S3 (gzip'd objects under ``AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/``,
each holding one or more records), or both. This module reads any of the shapes those records reach a
disk in, from one file or a directory tree, a line at a time:

- JSON lines (one record per line, several records concatenated on a line are read too);
- the gzip'd S3 objects themselves (``*.gz`` or any file starting with the gzip magic bytes);
- CloudWatch Logs exports: lines prefixed by their timestamp (what an export task writes to S3), or the
  ``aws logs`` events (objects whose ``message`` holds the record), one per line or as the CLI's whole
  pretty-printed ``{"events": [...]}`` document (such a document is parsed as a whole, one file at a time).

Only ids and counts are kept (:class:`InvocationLogRecord`): the logged request and response bodies are
never copied into a record. A line that cannot be read is counted with the first few reasons
(:class:`LogReadStats`) and skipped; JSON that is not an invocation record (such as the large-data bodies
Bedrock writes under ``data/``) is counted as skipped.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final, cast

from bedrock_budget.reporting.tallies import ReportError

__all__ = [
    "LOGGED_OPERATIONS",
    "SCHEMA_TYPE",
    "InvocationLogRecord",
    "LogReadStats",
    "parse_log_record",
    "read_invocation_logs",
]

SCHEMA_TYPE: Final = "ModelInvocationLog"
#: The runtime operations whose invocations Bedrock logs (and whose records reconciliation compares).
LOGGED_OPERATIONS: Final = frozenset(
    {"Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream"}
)
#: How many bad-line reasons are kept for the report.
EXAMPLES: Final = 5
_GZIP_MAGIC: Final = b"\x1f\x8b"
# What a CloudWatch Logs export puts before each message: an ISO 8601 time or epoch milliseconds.
_PREFIX: Final = re.compile(
    r"(?:\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?|\d{10,13})\s+"
)
_DECODER: Final = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class InvocationLogRecord:
    """The parts of one invocation log record that reconciliation uses: ids and token counts only.

    ``input_tokens`` is ``input.inputTokenCount``, which (like Converse ``usage.inputTokens``) excludes the
    tokens read from or written to the prompt cache; ``cache_write_tokens`` is every cache write, whatever
    its TTL (the log does not split them).
    """

    request_id: str
    model_id: str
    operation: str
    timestamp: datetime | None
    region: str | None
    account_id: str | None
    identity_arn: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    error_code: str | None
    where: str

    @property
    def billed(self) -> bool:
        """Whether the record shows anything consumed (a failed call can be logged with no counts)."""
        return bool(
            self.input_tokens or self.output_tokens or self.cache_read_tokens or self.cache_write_tokens
        )


@dataclass(slots=True)
class LogReadStats:
    """What reading the logs met: files, records, JSON that was not a record, and lines that were bad."""

    files: int = 0
    records: int = 0
    skipped: int = 0
    bad: int = 0
    examples: list[str] = field(default_factory=list)

    def bad_line(self, where: str, reason: str) -> None:
        self.bad += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(f"{where}: {reason}")

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "records": self.records,
            "skipped": self.skipped,
            "bad_lines": self.bad,
            "bad_line_examples": list(self.examples),
        }


class _NotARecordError(Exception):
    """Valid JSON that is not an invocation log record."""


def _count(section: Mapping[str, object], name: str) -> int:
    value = section.get(name)
    if value is None:
        return 0
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int or value < 0:
        raise ValueError(f"{name} must be a whole number of tokens, not {value!r:.40}")
    return value


def _section(data: Mapping[str, object], name: str) -> Mapping[str, object]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be an object")
    return value


def _optional_text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _timestamp(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if type(value) is int:
        return datetime.fromtimestamp(value / 1000, UTC)
    if not isinstance(value, str):
        raise ValueError(f"timestamp {value!r:.40} is not a time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"timestamp {value!r:.40} is not an ISO 8601 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_log_record(data: Mapping[str, object], where: str) -> InvocationLogRecord:
    """One invocation log record; raises ``ValueError`` saying what is wrong with it."""
    schema = data.get("schemaType")
    request_id = data.get("requestId")
    if schema is not None and schema != SCHEMA_TYPE:
        raise _NotARecordError
    if schema is None and not isinstance(request_id, str):
        raise _NotARecordError
    if not isinstance(request_id, str) or not request_id:
        raise ValueError("the record has no requestId")
    model_id = data.get("modelId")
    if not isinstance(model_id, str) or not model_id:
        raise ValueError("the record has no modelId")
    source = _section(data, "input")
    result = _section(data, "output")
    identity = _section(data, "identity")
    return InvocationLogRecord(
        request_id=request_id,
        model_id=model_id,
        operation=str(data.get("operation") or ""),
        timestamp=_timestamp(data.get("timestamp")),
        region=_optional_text(data.get("region")),
        account_id=_optional_text(data.get("accountId")),
        identity_arn=_optional_text(identity.get("arn")),
        input_tokens=_count(source, "inputTokenCount"),
        output_tokens=_count(result, "outputTokenCount"),
        cache_read_tokens=_count(source, "cacheReadInputTokenCount"),
        cache_write_tokens=_count(source, "cacheWriteInputTokenCount"),
        error_code=_optional_text(data.get("errorCode")),
        where=where,
    )


def _documents(text: str) -> list[object]:
    """The JSON values on one line: one, several concatenated, or one after an export's timestamp."""
    if not text.startswith(("{", "[")):
        match = _PREFIX.match(text)
        if match is not None and text[match.end() :].startswith(("{", "[")):
            text = text[match.end() :]
    try:
        return [json.loads(text)]
    except json.JSONDecodeError as exc:
        first_error = exc
    values: list[object] = []
    position = 0
    try:
        while position < len(text):
            value, position = _DECODER.raw_decode(text, position)
            values.append(value)
            while position < len(text) and text[position].isspace():
                position += 1
    except json.JSONDecodeError:
        raise ValueError(f"not JSON ({first_error.msg})") from None
    return values


def _unwrap(value: object, depth: int = 0) -> Iterator[Mapping[str, object]]:
    """Records inside what a line held: the record itself, a CloudWatch event's ``message``, the events of
    an ``aws logs`` answer, or the items of a list."""
    if depth > 3:
        raise ValueError("nested too deeply to be an invocation log")
    if isinstance(value, list):
        for item in value:
            yield from _unwrap(item, depth + 1)
        return
    if not isinstance(value, Mapping):
        raise ValueError("a record must be a JSON object")
    if "schemaType" not in value:
        message = value.get("message")
        if isinstance(message, str):
            yield from (item for doc in _documents(message.strip()) for item in _unwrap(doc, depth + 1))
            return
        events = value.get("events") or value.get("logEvents")
        if isinstance(events, list):
            yield from _unwrap(events, depth + 1)
            return
    yield value


def _records_of(value: object, where: str, stats: LogReadStats) -> Iterator[InvocationLogRecord]:
    try:
        # The common case, a record on its own, skips the unwrapping.
        found = [value] if type(value) is dict and "schemaType" in value else list(_unwrap(value))
    except ValueError as exc:
        stats.bad_line(where, str(exc))
        return
    for item in found:
        try:
            record = parse_log_record(item, where)
        except _NotARecordError:
            stats.skipped += 1
            continue
        except ValueError as exc:
            stats.bad_line(where, str(exc))
            continue
        stats.records += 1
        yield record


def _open_text(raw: io.BufferedReader[io.FileIO]) -> IO[str]:
    if raw.peek(2)[:2] == _GZIP_MAGIC:
        unzipped = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
        return io.TextIOWrapper(unzipped, encoding="utf-8", errors="replace", newline=None)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline=None)


def _read_file(path: Path, stats: LogReadStats) -> Iterator[InvocationLogRecord]:
    try:
        raw = io.BufferedReader(io.FileIO(path, "rb"), 1 << 16)
    except OSError as exc:
        stats.bad_line(str(path), f"cannot be read ({exc.strerror})")
        return
    number = 0
    try:
        with raw, _open_text(raw) as text:
            stats.files += 1
            for number, line in enumerate(text, start=1):
                stripped = line.strip()
                if not stripped:
                    continue
                if number == 1 and stripped in ("{", "["):
                    # A pretty-printed document (the `aws logs` CLI's answer): parsed whole.
                    rest = stripped + text.read()
                    yield from _whole_document(rest, f"{path}", stats)
                    return
                where = f"{path}:{number}"
                try:
                    values = _documents(stripped)
                except ValueError as exc:
                    stats.bad_line(where, str(exc))
                    continue
                for value in values:
                    yield from _records_of(value, where, stats)
    except (OSError, EOFError, zlib.error) as exc:
        stats.bad_line(f"{path}:{number + 1}", f"the file is cut short or corrupt ({exc})")


def _whole_document(text: str, where: str, stats: LogReadStats) -> Iterator[InvocationLogRecord]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        stats.bad_line(f"{where}:{exc.lineno}", f"not JSON ({exc.msg})")
        return
    yield from _records_of(value, where, stats)


def _files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).parts
        if path.is_file() and not any(part.startswith(".") for part in relative):
            yield path


def read_invocation_logs(path: Path, stats: LogReadStats) -> Iterator[InvocationLogRecord]:
    """Stream the invocation log records of one file or of every file under a directory (hidden files
    and directories left out), counting what was read into ``stats``."""
    if not path.exists():
        raise ReportError(f"invocation logs {str(path)!r}: no such file or directory")
    if not path.is_file() and not path.is_dir():
        raise ReportError(f"invocation logs {str(path)!r}: not a file or a directory")
    for file in _files(path):
        yield from _read_file(file, stats)
