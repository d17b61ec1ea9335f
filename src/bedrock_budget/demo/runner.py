"""Runs the demo workload: a local fake Bedrock, a real boto3 client wrapped with budgets, and a tally of
every call record."""

from __future__ import annotations

import math
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import bedrock_budget as bb
from bedrock_budget.alerts.model import Alert
from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.budgets.loading import load_budgets
from bedrock_budget.budgets.outcomes import BudgetStatus
from bedrock_budget.demo.workload import HAIKU_45, SONNET_45, PlannedCall, plan
from bedrock_budget.pricing.money import nanos_to_usd
from bedrock_budget.records import CallRecord
from bedrock_budget.stores.base import Store

DEFAULT_BUDGETS = Path(__file__).resolve().parent / "budgets.yaml"
_METHODS = {"embed": "invoke_model"}
_CACHED_SYSTEM_TOKENS = 1400


@dataclass
class AppTally:
    calls: int = 0
    ok: int = 0
    blocked: int = 0
    downgraded: int = 0
    clamped: int = 0
    warned: int = 0
    partial: int = 0
    spend_nanos: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0


@dataclass
class Tally:
    """Everything the demo shows, built from the call records alone."""

    apps: dict[str, AppTally] = field(default_factory=lambda: defaultdict(AppTally))
    users: Counter[str] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    blocked_by: Counter[str] = field(default_factory=Counter)
    alerts: list[Alert] = field(default_factory=list)
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, record: CallRecord) -> None:
        app = record.attribution.get("app", "-")
        with self.lock:
            tally = self.apps[app]
            tally.calls += 1
            if record.outcome == "blocked":
                tally.blocked += 1
                self.blocked_by[record.blocked_by or "?"] += 1
                return
            if record.outcome in ("ok", "partial"):
                tally.ok += 1
            tally.partial += record.partial
            tally.downgraded += record.downgraded_from is not None
            tally.clamped += record.clamped_to is not None
            tally.warned += bool(record.budget_warnings)
            nanos = record.cost.total_nanos if record.cost is not None else 0
            tally.spend_nanos += nanos
            tally.input_tokens += record.usage.input_tokens
            tally.output_tokens += record.usage.output_tokens
            tally.cache_read_tokens += record.usage.cache_read_tokens
            self.users[record.attribution.get("user", "-")] += nanos
            if record.model_id:
                self.models[record.model_id] += nanos

    def alert(self, alert: Alert) -> None:
        with self.lock:
            self.alerts.append(alert)

    @property
    def spend_nanos(self) -> int:
        return sum(app.spend_nanos for app in self.apps.values())


@dataclass(frozen=True, slots=True)
class DemoSummary:
    calls_planned: int
    tally: Tally
    budgets: list[BudgetStatus]
    store_spend_nanos: int

    def as_dict(self) -> dict[str, Any]:
        apps = {
            name: {
                "calls": t.calls,
                "ok": t.ok,
                "blocked": t.blocked,
                "downgraded": t.downgraded,
                "clamped": t.clamped,
                "warned": t.warned,
                "spend_usd": str(nanos_to_usd(t.spend_nanos)),
                "input_tokens": t.input_tokens,
                "output_tokens": t.output_tokens,
                "cache_read_tokens": t.cache_read_tokens,
            }
            for name, t in sorted(self.tally.apps.items())
        }
        return {
            "calls_planned": self.calls_planned,
            "spend_usd": str(nanos_to_usd(self.tally.spend_nanos)),
            "store_spend_usd": str(nanos_to_usd(self.store_spend_nanos)),
            "blocked": sum(t.blocked for t in self.tally.apps.values()),
            "downgraded": sum(t.downgraded for t in self.tally.apps.values()),
            "clamped": sum(t.clamped for t in self.tally.apps.values()),
            "blocked_by": dict(self.tally.blocked_by),
            "apps": apps,
            "users": {user: str(nanos_to_usd(n)) for user, n in sorted(self.tally.users.items())},
            "budgets": [
                {
                    "budget": s.budget.name,
                    "scope": dict(s.scope),
                    "spent_usd": str(s.spent_usd),
                    "spent_tokens": str(s.spent_tokens),
                    "limit_usd": None if s.budget.limit_usd is None else str(s.budget.limit_usd),
                    "limit_tokens": None if s.budget.limit_tokens is None else str(s.budget.limit_tokens),
                    "resets_at": s.resets_at.isoformat() if s.resets_at else None,
                }
                for s in self.budgets
            ],
            "alerts": [alert.message for alert in self.tally.alerts],
        }


def _fake_usage(ctx: Any) -> Any:
    from bedrock_budget.testing import UsageSpec

    total = max(1, math.ceil(ctx.prompt_bytes / 4))
    if ctx.base_model_id == HAIKU_45.split(".", 1)[1]:
        # The support system prompt is cached: most of the input is read back from the cache.
        cached = min(total - 1, _CACHED_SYSTEM_TOKENS)
        return UsageSpec(input_tokens=total - cached, cache_read_tokens=cached, default_output_tokens=260)
    if ctx.base_model_id == SONNET_45.split(".", 1)[1]:
        return UsageSpec(input_tokens=total, default_output_tokens=900)
    return UsageSpec(input_tokens=total, default_output_tokens=160)


@contextmanager
def demo_client(
    *,
    store: str | Store,
    budgets_path: Path,
    tally: Tally,
    latency: float,
    extra_listeners: tuple[Any, ...] = (),
) -> Iterator[tuple[Any, Ledger]]:
    from bedrock_budget.testing import FakeBedrock

    ledger = Ledger(store, load_budgets(budgets_path), alert_sinks=[tally.alert])
    try:
        with FakeBedrock() as fake:
            fake.set_usage("*", _fake_usage)
            if latency > 0:
                fake.set_latency(latency, first_byte_delay=latency / 3)
            client = bb.wrap(fake.client(), ledger=ledger, listeners=[tally, *extra_listeners])
            yield client, ledger
    finally:
        ledger.close()


def execute(client: Any, call: PlannedCall) -> None:
    method = getattr(client, _METHODS.get(call.operation, call.operation))
    with bb.attribute(app=call.app, user=call.user):
        try:
            response = method(**call.kwargs())
        except bb.BudgetExceededError:
            return
        stream = response.get("stream") or (
            response.get("body") if call.operation == "invoke_model_with_response_stream" else None
        )
        if stream is not None:
            for _ in stream:
                pass
        elif call.operation in ("invoke_model", "embed"):
            response["body"].read()


def run_demo(
    *,
    calls: int,
    seed: int,
    store: str | Store = "memory://",
    budgets_path: Path = DEFAULT_BUDGETS,
    latency: float = 0.03,
    workers: int = 1,
    extra_listeners: tuple[Any, ...] = (),
    on_start: Callable[[Tally, Ledger, int], Callable[[], None]] | None = None,
) -> DemoSummary:
    """Run the planned calls. ``store`` is a URI (opened and closed here) or an open store, which is
    left open: a metrics exporter reading it can keep serving after the run."""
    planned = plan(calls, seed)
    tally = Tally()
    with demo_client(
        store=store, budgets_path=budgets_path, tally=tally, latency=latency, extra_listeners=extra_listeners
    ) as (client, ledger):
        before = _global_spend_nanos(ledger)
        stop = on_start(tally, ledger, len(planned)) if on_start is not None else None
        try:
            if workers <= 1:
                for call in planned:
                    execute(client, call)
                    tally.done += 1
            else:
                _run_parallel(client, planned, tally, workers)
            ledger.flush()
        finally:
            # The live view reads the ledger: it must stop before the ledger closes.
            if stop is not None:
                stop()
        statuses = ledger.status()
        # A store shared with earlier runs already holds their spend: report this run's share.
        store_spend = _global_spend_nanos(ledger) - before
    return DemoSummary(len(planned), tally, statuses, store_spend)


def _global_spend_nanos(ledger: Ledger) -> int:
    """Spend of the first budget that covers every call (no scope), in nano-dollars."""
    for status in ledger.status():
        if not status.scope and status.budget.limit_usd is not None:
            return int(status.spent_usd * 10**9)
    return 0


def _run_parallel(client: Any, planned: list[PlannedCall], tally: Tally, workers: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def one(call: PlannedCall) -> None:
        execute(client, call)
        with tally.lock:
            tally.done += 1

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, planned))


def total_usd(summary: DemoSummary) -> Decimal:
    return nanos_to_usd(summary.tally.spend_nanos)
