"""Where reports and advice get their numbers: exported call records, or the tallies the budget store keeps.

Both sources produce the same shape, a :class:`UsageSet`: :class:`Tally` rows (calls, tokens by type, cost)
keyed by :class:`UsageKey` (model, route, region, service tier and the attribution values kept).

- **Call records** (``CallRecord.as_dict()`` as JSON lines, or the same columns as CSV) describe every call:
  model, route, region and every attribution key, so they answer any grouping.
- **The store** keeps, per budget counter (budget x concrete scope values x window), per-model tallies of
  calls, cost and input/output/cache-read/cache-write tokens. It can group only by what some budget is
  counted by (``--by user`` needs a budget with ``scope: {user: "*"}``), it keeps only current windows
  (keys expire soon after their window ends), and it records neither route nor region.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import IO, Final, cast

from bedrock_budget.budgets.model import FAMILY_KEY, MODEL_KEY, WILDCARD, Budget
from bedrock_budget.budgets.units import nanos_to_usd
from bedrock_budget.budgets.windows import WINDOW_KINDS, Window
from bedrock_budget.errors import ConfigurationError
from bedrock_budget.pricing.money import format_usd
from bedrock_budget.stores.base import CounterState, Store

ZERO: Final = Decimal(0)
NONE_VALUE: Final = "(none)"
MODEL_GROUP: Final = "model"
_HOUR: Final = Decimal(3600)
_MODEL_KEYS: Final = frozenset({MODEL_KEY, FAMILY_KEY})
_WINDOW_RANK: Final = {kind: rank for rank, kind in enumerate(WINDOW_KINDS)}

#: Called with the number of bytes of the export read so far.
Progress = Callable[[int], None]


class ReportError(ConfigurationError):
    """A report or advice the given source cannot produce; the message says what would be needed."""


@dataclass(slots=True)
class Tally:
    """Calls, tokens by type and cost (exact USD) of some traffic."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cost_usd: Decimal = ZERO
    unpriced_calls: int = 0

    def add(self, other: Tally) -> None:
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.cache_write_1h_tokens += other.cache_write_1h_tokens
        self.cost_usd += other.cost_usd
        self.unpriced_calls += other.unpriced_calls

    def minus(self, other: Tally) -> Tally:
        return Tally(
            calls=self.calls - other.calls,
            input_tokens=self.input_tokens - other.input_tokens,
            output_tokens=self.output_tokens - other.output_tokens,
            cache_read_tokens=self.cache_read_tokens - other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens - other.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens - other.cache_write_1h_tokens,
            cost_usd=self.cost_usd - other.cost_usd,
            unpriced_calls=self.unpriced_calls - other.unpriced_calls,
        )

    @property
    def negative(self) -> bool:
        counts = (self.calls, self.input_tokens, self.output_tokens, self.cache_read_tokens)
        return min(counts) < 0 or self.cache_write_tokens < 0 or self.cost_usd < 0

    @property
    def empty(self) -> bool:
        return not (self.calls or self.total_tokens or self.cost_usd)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

    def as_dict(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cost_usd": format_usd(self.cost_usd),
            "unpriced_calls": self.unpriced_calls,
        }


def total_of(tallies: Iterable[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total.add(tally)
    return total


@dataclass(frozen=True, slots=True)
class UsageKey:
    """What a tally row is about. ``region``/``route`` are ``None`` when the source does not know them."""

    model: str
    region: str | None = None
    route: str | None = None
    service_tier: str = "default"
    pricing_mode: str = "on_demand"
    attribution: tuple[tuple[str, str], ...] = ()

    def value(self, key: str) -> str | None:
        if key == MODEL_GROUP:
            return self.model
        for name, value in self.attribution:
            if name == key:
                return value
        return None


def sort_key(key: UsageKey) -> tuple[str, ...]:
    return (
        key.model,
        key.region or "",
        key.route or "",
        key.service_tier,
        key.pricing_mode,
        str(key.attribution),
    )


@dataclass(frozen=True, slots=True)
class UsageSet:
    """Tallies from one source over one period, with a description of where they came from."""

    rows: Mapping[UsageKey, Tally]
    source: str
    #: ``records`` or ``store``.
    kind: str
    #: Attribution keys seen in the source (records: in any call; store: the chosen budget's scope keys).
    keys: tuple[str, ...] = ()
    period_start: datetime | None = None
    period_end: datetime | None = None
    period_hours: Decimal | None = None
    notes: tuple[str, ...] = ()
    #: For store sets: the budget whose counters the rows come from.
    budget: str | None = None
    #: For store sets: every budget whose counters the rows come from (several when each fixes one value).
    budgets: tuple[str, ...] = ()
    #: False when the rows are only part of the period's spend: shares of their total would mislead.
    whole: bool = True

    def total(self) -> Tally:
        return total_of(self.rows.values())

    def grouped(self, by: str) -> dict[str, Tally]:
        groups: dict[str, Tally] = {}
        for key, tally in self.rows.items():
            groups.setdefault(key.value(by) or NONE_VALUE, Tally()).add(tally)
        return groups


# --- call records ---------------------------------------------------------------------------------------


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
)


def _count(data: Mapping[str, object], name: str, where: str) -> int:
    value = data.get(name)
    if value is None or value == "":
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if type(value) is not int or value < 0:
        raise ReportError(f"{where}: {name} must be a whole number of tokens, not {value!r:.40}")
    return value


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
        hours = Decimal(hi - lo) / _HOUR
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


# --- the store ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BudgetCounters:
    """The current-window counters of one budget as found in the store."""

    budget: str
    window: str
    timezone: str
    start: int
    end: int | None
    config: Budget | None
    states: tuple[CounterState, ...] = field(default=())

    @property
    def keys(self) -> tuple[str, ...]:
        """Scope keys (``model``/``model_family`` included) the budget's counters are split by."""
        if self.config is not None:
            names = list(self.config.scope)
            if self.config.model is not None:
                names.append(MODEL_KEY)
            if self.config.model_family is not None:
                names.append(FAMILY_KEY)
            return tuple(sorted(names))
        found: set[str] = set()
        for state in self.states:
            found.update(k for k, _ in state.ref.scope)
        return tuple(sorted(found))

    def fixed(self) -> dict[str, str]:
        """Scope values every counter shares: a fixed budget scope narrows what the budget counts."""
        if self.config is not None:
            values = dict(self.config.scope)
            if self.config.model is not None:
                values[MODEL_KEY] = self.config.model
            if self.config.model_family is not None:
                values[FAMILY_KEY] = self.config.model_family
            return {k: v for k, v in values.items() if v != WILDCARD}
        if len(self.states) != 1:
            return {}
        return dict(self.states[0].ref.scope)

    def wildcard(self, key: str) -> bool:
        if self.config is None:
            return key not in self.fixed()
        return key in self.keys and key not in self.fixed()

    def describe(self) -> str:
        if self.config is not None:
            scope = dict(self.config.scope)
            if self.config.model is not None:
                scope[MODEL_KEY] = self.config.model
            if self.config.model_family is not None:
                scope[FAMILY_KEY] = self.config.model_family
            parts = ", ".join(f"{k}={v}" for k, v in sorted(scope.items()))
        else:
            fixed = self.fixed()
            parts = ", ".join(f"{k}={fixed.get(k, WILDCARD)}" for k in self.keys)
        return f"{self.budget} ({parts or 'all calls'}; {self.window} window, {self.timezone})"

    @property
    def restrictions(self) -> int:
        """How many scope conditions narrow what the budget counts (wildcard model keys narrow nothing)."""
        fixed = self.fixed()
        return sum(1 for k in self.keys if k not in _MODEL_KEYS or k in fixed)


def current_counters(store: Store, budgets: Sequence[Budget] | None, now: float) -> list[BudgetCounters]:
    """Every budget's counters of its current window. With ``budgets`` (the configuration) the current
    window is computed from it and budgets without spend are included; without it, each budget's latest
    window still open at ``now`` is taken from what the store holds."""
    now_ms = int(now * 1000)
    states = store.list(now_ms=now_ms)
    by_budget: dict[str, list[CounterState]] = {}
    for state in states:
        by_budget.setdefault(state.ref.budget, []).append(state)
    found: list[BudgetCounters] = []
    if budgets is not None:
        for budget in budgets:
            start, end = budget.window.bounds(now)
            mine = tuple(
                s
                for s in by_budget.get(budget.name, ())
                if s.ref.window == budget.window.kind
                and s.ref.timezone == budget.timezone
                and s.ref.start == start
            )
            found.append(
                BudgetCounters(budget.name, budget.window.kind, budget.timezone, start, end, budget, mine)
            )
        return found
    for name, mine_all in sorted(by_budget.items()):
        open_now = [s for s in mine_all if s.ref.end is None or s.ref.end * 1000 > now_ms]
        if not open_now:
            continue
        latest = max(open_now, key=lambda s: s.ref.start).ref
        mine = tuple(
            s
            for s in open_now
            if (s.ref.window, s.ref.timezone, s.ref.start) == (latest.window, latest.timezone, latest.start)
        )
        found.append(
            BudgetCounters(name, latest.window, latest.timezone, latest.start, latest.end, None, mine)
        )
    return found


def _rank(candidate: BudgetCounters, by: str) -> tuple[int, int, int, str]:
    fixed_by = 1 if by != MODEL_GROUP and not candidate.wildcard(by) else 0
    others = candidate.restrictions - (1 if by in candidate.keys and by in candidate.fixed() else 0)
    return (others, fixed_by, -_WINDOW_RANK[candidate.window], candidate.budget)


def choose_counters(candidates: Sequence[BudgetCounters], by: str, window: str | None) -> BudgetCounters:
    """The budget whose tallies best answer a grouping: counted by ``by`` (any budget for ``model``), with
    the fewest other scope conditions (so it covers the most calls), then the longest window."""
    if not candidates:
        raise ReportError(
            "the store holds no budget counters: nothing has been recorded yet, or --store (or its ?prefix=) "
            "points somewhere else"
        )
    able = [c for c in candidates if by == MODEL_GROUP or by in c.keys]
    pool = [c for c in able if window is None or c.window == window]
    if pool:
        return min(pool, key=lambda c: _rank(c, by))
    known = "; ".join(c.describe() for c in candidates)
    wanted = f" and window: {window}" if window else ""
    if able:
        windows = ", ".join(sorted({f"{c.window} ({c.budget})" for c in able}))
        raise ReportError(
            f"the store's tallies can group by {by!r} only in these windows: {windows}; pass one of them as "
            f'--window, add a budget with scope {{{by}: "*"}}{wanted}, or use --records FILE.jsonl'
        )
    if by == MODEL_GROUP:
        raise ReportError(f"no budget has {window} windows in the store (budgets: {known})")
    raise ReportError(
        f"the store's tallies cannot group by {by!r}: no budget is counted per {by} (budgets: {known}). "
        f'Add a budget with scope {{{by}: "*"}}{wanted} so the store keeps per-{by} tallies, '
        "or report from exported call records with --records FILE.jsonl"
    )


def _tally_of(counts: Mapping[str, int]) -> Tally:
    return Tally(
        calls=counts.get("calls", 0),
        input_tokens=counts.get("input", 0),
        output_tokens=counts.get("output", 0),
        cache_read_tokens=counts.get("cache_read", 0),
        cache_write_tokens=counts.get("cache_write", 0),
        cost_usd=nanos_to_usd(counts.get("cost", 0)),
    )


def _rows_of(states: Iterable[CounterState]) -> dict[UsageKey, Tally]:
    rows: dict[UsageKey, Tally] = {}
    for state in states:
        attribution = tuple((k, v) for k, v in state.ref.scope if k not in _MODEL_KEYS)
        for model, counts in state.models.items():
            key = UsageKey(model=model, attribution=attribution)
            rows.setdefault(key, Tally()).add(_tally_of(counts))
    return rows


def _same_window(a: BudgetCounters, b: BudgetCounters) -> bool:
    return (a.window, a.timezone, a.start) == (b.window, b.timezone, b.start)


def _conditions(candidate: BudgetCounters, by: str) -> str:
    """Scope conditions other than ``by`` that narrow what a budget counts, e.g. ``model=X, some user``."""
    fixed = candidate.fixed()
    parts = [f"{k}={v}" for k, v in sorted(fixed.items()) if k != by]
    parts += [f"some {k}" for k in candidate.keys if k not in fixed and k not in _MODEL_KEYS and k != by]
    return ", ".join(parts)


def _per_value(candidates: Sequence[BudgetCounters], chosen: BudgetCounters, by: str) -> list[BudgetCounters]:
    """For a key no budget is counted per, the budgets that each fix one value of it (``scope: {app:
    search}``), in the chosen budget's window: for each value the one that covers the most calls."""
    best: dict[str, BudgetCounters] = {}
    for candidate in candidates:
        value = candidate.fixed().get(by)
        if value is None or not _same_window(candidate, chosen):
            continue
        held = best.get(value)
        if held is None or _rank(candidate, by) < _rank(held, by):
            best[value] = candidate
    return [best[value] for value in sorted(best)]


def _all_calls(candidates: Sequence[BudgetCounters], chosen: BudgetCounters) -> BudgetCounters | None:
    """An all-calls budget whose window is the chosen one's, or failing that the shortest current window
    holding it (its spend is then a larger period's, and said so)."""
    holding = [
        c
        for c in candidates
        if not c.restrictions
        and c.start <= chosen.start
        and (c.end is None or (chosen.end is not None and c.end >= chosen.end))
    ]
    same = [c for c in holding if _same_window(c, chosen)]
    if same:
        return same[0]
    return min(holding, key=lambda c: (-_WINDOW_RANK[c.window], c.budget), default=None)


def _rest_rows(
    rows: Mapping[UsageKey, Tally], everything: BudgetCounters, by: str, label: str
) -> tuple[dict[UsageKey, Tally], str | None]:
    """What the all-calls budget holds beyond ``rows``, per model, as rows grouped under ``label``; or a
    note when it holds less (added or reset during the window)."""
    counted: dict[str, Tally] = {}
    for key, tally in rows.items():
        counted.setdefault(key.model, Tally()).add(tally)
    rest: dict[UsageKey, Tally] = {}
    for key, tally in _rows_of(everything.states).items():
        left = tally.minus(counted.get(key.model, Tally()))
        if left.negative:
            return {}, (
                f"budget {everything.budget} holds less than the budgets above for {key.model} "
                "(added or reset during the window), so calls they do not cover are not shown"
            )
        if not left.empty:
            rest[UsageKey(model=key.model, attribution=((by, label),))] = left
    return rest, None


def usage_from_store(
    store: Store,
    *,
    by: str,
    now: float,
    budgets: Sequence[Budget] | None = None,
    window: str | None = None,
    counters: Sequence[BudgetCounters] | None = None,
) -> UsageSet:
    """The store's per-model tallies from the budget that best answers ``by`` (see
    :func:`choose_counters`). When no budget is counted per ``by`` but budgets fix single values of it
    (``scope: {app: search}``), their tallies together are the rows, one group per value.

    When the rows do not count every call and an all-calls budget with the same window exists, the
    difference appears as one more group, so totals and shares still match. Without one the set is marked
    partial (``whole=False``: no shares) and a note says which budgets the figures come from and what part
    of the known spend they are."""
    candidates = list(counters) if counters is not None else current_counters(store, budgets, now)
    chosen = choose_counters(candidates, by, window)
    sources = [chosen]
    if by != MODEL_GROUP and not chosen.wildcard(by):
        sources = _per_value(candidates, chosen, by)
    rows: dict[UsageKey, Tally] = {}
    for counted in sources:
        for key, tally in _rows_of(counted.states).items():
            rows.setdefault(key, Tally()).add(tally)
    notes: list[str] = []
    whole = True
    # A budget counted per ``by`` and nothing else misses only calls without a ``by`` value.
    per_key_only = by != MODEL_GROUP and chosen.wildcard(by) and not _conditions(chosen, by)
    if chosen.restrictions:
        names = ", ".join(c.budget for c in sources)
        everything = _all_calls(candidates, chosen)
        if everything is not None and _same_window(everything, chosen):
            rest, problem = _rest_rows(rows, everything, by, f"(not counted by {names})")
            if problem is not None:
                notes.append(problem)
                whole = per_key_only
            rows.update(rest)
        elif per_key_only:
            notes.append(
                f"covers only calls attributed with some {by} (what budget {chosen.budget} counts); an "
                "all-calls budget with the same window would show the rest"
            )
        else:
            whole = False
            notes.append(_coverage_note(sources, everything, rows, by))
    start = Window(chosen.window, chosen.timezone).local(chosen.start)
    end_epoch = now if chosen.end is None else min(now, float(chosen.end))
    hours = None if chosen.window == "lifetime" else Decimal(int(end_epoch) - chosen.start) / _HOUR
    end = Window(chosen.window, chosen.timezone).local(int(end_epoch))
    described = "; ".join(c.describe() for c in sources)
    plural = "budgets" if len(sources) > 1 else "budget"
    source = f"store {store.name}, {plural} {described}, current window since {start.isoformat()}"
    return UsageSet(
        rows=MappingProxyType(rows),
        source=source,
        kind="store",
        keys=tuple(sorted({k for c in sources for k in c.keys if k not in _MODEL_KEYS})),
        period_start=start if chosen.window != "lifetime" else None,
        period_end=end,
        period_hours=hours if hours is None or hours > 0 else None,
        notes=tuple(notes),
        budget=chosen.budget,
        budgets=tuple(c.budget for c in sources),
        whole=whole,
    )


def _coverage_note(
    sources: Sequence[BudgetCounters],
    everything: BudgetCounters | None,
    rows: Mapping[UsageKey, Tally],
    by: str,
) -> str:
    """One line: where the figures come from, what part of the known spend they are, what is missing."""
    parts = []
    for counted in sources:
        conditions = _conditions(counted, by)
        value = counted.fixed().get(by)
        what = ", ".join(p for p in (f"{by}={value}" if value and by != MODEL_GROUP else "", conditions) if p)
        parts.append(f"{counted.budget} ({what or 'all calls'})")
    covered = total_of(rows.values()).cost_usd
    line = f"partial view: only what budgets {', '.join(parts)} count, ${format_usd(covered)}"
    if everything is not None:
        known = total_of(_rows_of(everything.states).values()).cost_usd
        period = "" if _same_window(everything, sources[0]) else f" in its current {everything.window} window"
        share = f"{(covered * 100 / known).quantize(Decimal('0.1'))}% of " if known else ""
        line += f", {share}the ${format_usd(known)} budget {everything.budget} recorded{period}"
    else:
        line += " (no all-calls budget tells the total)"
    if by != MODEL_GROUP and any(c.fixed().get(by) for c in sources):
        line += (
            f"; {by} values no budget scopes are not tracked "
            f'(a budget with scope {{{by}: "*"}} would track them)'
        )
    return line
