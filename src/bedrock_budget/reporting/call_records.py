"""Usage from exported call records: ``CallRecord.as_dict()`` as JSON lines, or the same columns as CSV,
optionally gzip-compressed.

Records describe every call (model, route, region and every attribution key), so they answer any grouping.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import IO, Final, cast

from bedrock_budget.budgets.windows import Window
from bedrock_budget.reporting.tallies import (
    SECONDS_PER_HOUR,
    ZERO,
    ReportError,
    Tally,
    UsageKey,
    UsageSet,
)

__all__ = ["CallRow", "Progress", "parse_record", "read_records", "records_format", "usage_from_records"]

#: Called with the number of bytes of the export read so far.
Progress = Callable[[int], None]

_NO_UNITS: Final[Mapping[str, int]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CallRow:
    """The parts of one exported call record that reports and advice use (ids, counts and money only)."""

    timestamp: datetime
    model: str
    region: str
    route: str
    service_tier: str
    pricing_mode: str
    outcome: str
    attribution: Mapping[str, str]
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cost_usd: Decimal | None = None
    images: int = 0
    video_seconds: int = 0
    rerank_queries: int = 0
    #: Guardrail policy to the text units it processed (``*_image`` policies count images).
    guardrail_text_units: Mapping[str, int] = field(default_factory=lambda: _NO_UNITS, hash=False)
    latency_mode: str = "standard"
    #: Some counts were estimated rather than reported by Bedrock.
    estimated: bool = False
    #: The stream ended before Bedrock reported its final usage.
    partial: bool = False

    @property
    def billed(self) -> bool:
        """Whether the call consumed anything. Blocked calls never reached Bedrock, and calls that failed
        before inference were released, so neither is usage (the store does not count them either)."""
        if self.outcome == "blocked":
            return False
        return bool(
            self.cost_usd
            or self.input_tokens
            or self.output_tokens
            or self.cache_read_tokens
            or self.cache_write_tokens
            or self.images
            or self.video_seconds
            or self.rerank_queries
            or any(self.guardrail_text_units.values())
        )

    def tally(self) -> Tally:
        return Tally(
            calls=1,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens,
            cost_usd=self.cost_usd or ZERO,
            unpriced_calls=1 if self.cost_usd is None else 0,
        )


_COUNTS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "images",
    "video_seconds",
    "rerank_queries",
)


def _count(data: Mapping[str, object], name: str, where: str) -> int:
    return _whole(data.get(name), name, where)


def _whole(value: object, name: str, where: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if type(value) is not int or value < 0:
        raise ReportError(f"{where}: {name} must be a whole number, not {value!r:.40}")
    return value


def _units(value: object, where: str) -> Mapping[str, int]:
    """Guardrail text units: an object of policy to count (a JSON string of one in CSV)."""
    if value is None or value == "" or value == {}:
        return _NO_UNITS
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ReportError(f"{where}: guardrail_text_units is not a JSON object") from None
    if not isinstance(value, Mapping):
        raise ReportError(f"{where}: guardrail_text_units must be an object of policy to units")
    units = {str(k): _whole(v, f"guardrail_text_units[{k!r}]", where) for k, v in value.items()}
    return MappingProxyType({k: v for k, v in units.items() if v})


def _flag(data: Mapping[str, object], name: str, where: str) -> bool:
    value = data.get(name)
    if value is None or value == "" or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ReportError(f"{where}: {name} must be true or false, not {value!r:.40}")


def _text(data: Mapping[str, object], name: str, default: str) -> str:
    value = data.get(name)
    if value is None or value == "":
        return default
    return str(value)


def _attribution(value: object, where: str) -> dict[str, str]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ReportError(f"{where}: attribution is not a JSON object") from None
    if not isinstance(value, Mapping):
        raise ReportError(f"{where}: attribution must be an object of key to value")
    return {str(k): str(v) for k, v in value.items() if v is not None and v != ""}


def _timestamp(value: object, where: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise ReportError(f"{where}: timestamp is missing")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ReportError(f"{where}: timestamp {value!r:.40} is not an ISO 8601 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _cost(value: object, where: str) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool | float):
        raise ReportError(f"{where}: cost_usd must be a decimal string, not {value!r}")
    try:
        cost = Decimal(str(value))
    except InvalidOperation:
        raise ReportError(f"{where}: cost_usd {value!r:.40} is not a number") from None
    if not cost.is_finite() or cost < 0:
        raise ReportError(f"{where}: cost_usd {value!r:.40} is not a non-negative amount")
    return cost


def parse_record(data: Mapping[str, object], where: str) -> CallRow:
    """One exported call record (``CallRecord.as_dict()``, or a CSV row with the same column names, where
    ``attribution`` holds a JSON object or ``attribution.<key>`` columns hold the values)."""
    model = data.get("model_id") or data.get("requested_model_id")
    if not model:
        raise ReportError(f"{where}: the record names no model (model_id / requested_model_id)")
    attribution = _attribution(data.get("attribution"), where)
    for name, value in data.items():
        if name.startswith("attribution.") and value not in (None, ""):
            attribution[name[len("attribution.") :]] = str(value)
    return CallRow(
        timestamp=_timestamp(data.get("timestamp"), where),
        model=str(model),
        region=_text(data, "region", "us-east-1"),
        route=_text(data, "route", "in_region"),
        service_tier=_text(data, "service_tier", "default"),
        pricing_mode=_text(data, "pricing_mode", "on_demand"),
        outcome=_text(data, "outcome", "ok"),
        attribution=MappingProxyType(attribution),
        cost_usd=_cost(data.get("cost_usd"), where),
        guardrail_text_units=_units(data.get("guardrail_text_units"), where),
        latency_mode=_text(data, "latency_mode", "standard"),
        estimated=_flag(data, "estimated", where),
        partial=_flag(data, "partial", where),
        **{name: _count(data, name, where) for name in _COUNTS},
    )


class _Counting(io.RawIOBase):
    """Counts the bytes read from the file on disk, so progress works for compressed exports too."""

    def __init__(self, raw: IO[bytes], progress: Progress | None) -> None:
        self._raw = raw
        self._progress = progress
        self.done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.done += size
        if self._progress is not None and size:
            self._progress(self.done)
        return size


def records_format(path: Path) -> str:
    """``csv`` or ``jsonl``, from the file name (``.gz`` is looked through)."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return "csv" if suffixes and suffixes[-1] == ".csv" else "jsonl"


def read_records(path: Path, *, progress: Progress | None = None) -> Iterator[CallRow]:
    """Stream the call records of a JSONL or CSV export (optionally gzip-compressed)."""
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise ReportError(f"cannot read records file {str(path)!r}: {exc.strerror}") from exc
    with raw:
        counting = _Counting(raw, progress)
        buffered: IO[bytes] = io.BufferedReader(counting, 1 << 16)
        if path.suffix.lower() == ".gz":
            buffered = cast(IO[bytes], gzip.GzipFile(fileobj=buffered, mode="rb"))
        text = io.TextIOWrapper(buffered, encoding="utf-8", newline="")
        try:
            if records_format(path) == "csv":
                yield from _csv_rows(text, path)
            else:
                yield from _jsonl_rows(text, path)
        except (UnicodeDecodeError, OSError, EOFError) as exc:
            raise ReportError(f"{path}: cannot be read as UTF-8 records: {exc}") from exc


def _jsonl_rows(text: IO[str], path: Path) -> Iterator[CallRow]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReportError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise ReportError(f"{where}: a record must be a JSON object")
        yield parse_record(data, where)


def _csv_rows(text: IO[str], path: Path) -> Iterator[CallRow]:
    reader = csv.DictReader(text)
    if not reader.fieldnames or not {"model_id", "requested_model_id"} & set(reader.fieldnames):
        raise ReportError(f"{path}: not a call-record CSV (it needs a header row with model_id)")
    for row in reader:
        yield parse_record({k: v for k, v in row.items() if k is not None}, f"{path}:{reader.line_num}")


def usage_from_records(
    rows: Iterable[CallRow],
    *,
    source: str,
    keep: Iterable[str] = (),
    window: Window | None = None,
    at: datetime | None = None,
) -> UsageSet:
    """Aggregate call records, keeping the attribution keys in ``keep``.

    Without ``window`` every call counts and the period is the whole UTC days the calls span. With a window
    only the calls of one window count: the one holding ``at``, by default the one holding the last call
    (an export is usually read after the fact, so "now" would often find nothing).
    """
    kept = tuple(sorted(set(keep)))
    buckets: dict[int, dict[UsageKey, Tally]] = {}
    spans: dict[int, list[datetime]] = {}
    seen_keys: set[str] = set()
    skipped = 0
    for row in rows:
        if not row.billed:
            skipped += 1
            continue
        seen_keys.update(row.attribution)
        start = window.bounds(row.timestamp.timestamp())[0] if window is not None else 0
        key = UsageKey(
            model=row.model,
            region=row.region,
            route=row.route,
            service_tier=row.service_tier,
            pricing_mode=row.pricing_mode,
            attribution=tuple((k, row.attribution[k]) for k in kept if k in row.attribution),
        )
        bucket = buckets.setdefault(start, {})
        tally = bucket.get(key)
        if tally is None:
            tally = bucket[key] = Tally()
        tally.add(row.tally())
        span = spans.get(start)
        if span is None:
            spans[start] = [row.timestamp, row.timestamp]
        else:
            span[0] = min(span[0], row.timestamp)
            span[1] = max(span[1], row.timestamp)
    notes: list[str] = []
    if skipped:
        notes.append(f"{skipped:,} blocked or failed calls without usage are not counted")
    if not buckets:
        return UsageSet({}, source, "records", tuple(sorted(seen_keys)), notes=tuple(notes))
    chosen = max(buckets) if at is None or window is None else window.bounds(at.timestamp())[0]
    rows_of = buckets.get(chosen, {})
    first, last = spans.get(chosen, [None, None])
    start_time: datetime | None = first
    end_time: datetime | None = last
    hours: Decimal | None = None
    if window is not None and window.kind != "lifetime":
        lo, hi = window.bounds(chosen)
        assert hi is not None
        start_time, end_time = window.local(lo), window.local(hi)
        hours = Decimal(hi - lo) / SECONDS_PER_HOUR
        if len(buckets) > 1:
            notes.append(
                f"calls outside the {window.kind} window from {start_time.isoformat()} are not counted"
            )
    elif first is not None and last is not None:
        days = (last.astimezone(UTC).date() - first.astimezone(UTC).date()).days + 1
        hours = Decimal(24 * days)
    return UsageSet(
        rows=MappingProxyType(rows_of),
        source=source,
        kind="records",
        keys=tuple(sorted(seen_keys)),
        period_start=start_time,
        period_end=end_time,
        period_hours=hours,
        notes=tuple(notes),
    )
