"""The per-call metric objects, created once per registry.

A registry refuses a second metric of the same name, and two wrapped clients usually share the global
registry, so every :class:`~bedrock_budget.metrics.PrometheusListener` (and :class:`StoreMetrics`) on
one registry shares one :class:`Instruments`, label policies included: two listeners each admitting
their own 50 apps would double the series the cap promises.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

from bedrock_budget.errors import ConfigurationError
from bedrock_budget.metrics.labels import OTHER, CappedLabels, TopUsers
from bedrock_budget.metrics.series import (
    CallSeries,
    CallSeriesCollector,
    NativeSeries,
    Slot,
    SlotKey,
    counting_families,
    multiprocess_mode,
    upper_bounds,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter
    from prometheus_client.metrics_core import Metric

PREFIX: Final = "bedrock_budget_"
_NANOS_PER_USD: Final = 1e9
# Budget names are configuration, not user input; the cap only guards against a generated set of them.
_BUDGET_LABELS: Final = 100
# LLM calls take from tens of milliseconds (embeddings) to minutes (long generations).
DURATION_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)
STORE_OPERATIONS: Final = frozenset(
    {"reserve", "settle", "release", "read", "list", "reset", "ping", "replay"}
)
STORE_ERROR_KINDS: Final = frozenset({"unavailable", "timeout", "error"})

UserPolicy = CappedLabels | TopUsers | None


class _Family:
    """A metric family's full name (without ``_total``), help text and label names."""

    __slots__ = ("doc", "labels", "name")

    def __init__(self, name: str, doc: str, labels: tuple[str, ...]) -> None:
        self.name = PREFIX + name
        self.doc = doc
        self.labels = labels


class Instruments:
    """Every per-call metric of one registry, plus the label policies that feed them.

    Requests, tokens, cost and the latency histograms are counted in :mod:`~bedrock_budget.metrics.series`
    (``slot(key)`` gives a label combination's slot) and shown by one collector, together with the rarer
    counters (blocked, clamped, ...), which stay prometheus_client metrics.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        apps: CappedLabels,
        users: UserPolicy,
        budgets: CappedLabels,
        duration_buckets: tuple[float, ...] = DURATION_BUCKETS,
        ttft_buckets: tuple[float, ...] = TTFT_BUCKETS,
    ) -> None:
        from prometheus_client import Counter
        from prometheus_client.metrics_core import Metric

        self.apps = apps
        self.users = users
        self.budgets = budgets
        self.duration_buckets = duration_buckets
        self.ttft_buckets = ttft_buckets
        duration_bounds = upper_bounds(duration_buckets)
        ttft_bounds = upper_bounds(ttft_buckets)
        # Fixed by the wrapper; capped anyway so records from elsewhere cannot add series.
        self.operations = CappedLabels(16)
        self.outcomes = CappedLabels(8)
        user = ("user",) if users is not None else ()
        per_call = (
            _Family(
                "requests", "Metered Bedrock calls by outcome (ok, error, blocked, partial).",
                ("operation", "model", "app", "outcome", *user),
            ),
            _Family(
                "tokens", "Tokens consumed, by type (input, output, cache_read, cache_write).",
                ("model", "app", "type", *user),
            ),
            _Family("cost_usd", "Priced cost of metered calls in US dollars.", ("model", "app", *user)),
            _Family(
                "request_duration_seconds",
                "Wall time of metered calls (for streams: until the stream finished).",
                ("operation", "model"),
            ),
            _Family(
                "time_to_first_token_seconds",
                "Time from request to the first streamed event.",
                ("operation", "model"),
            ),
        )  # fmt: skip

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
            # Not registered: the registry sees them through the one collector below.
            return Counter(PREFIX + name, doc, labels, registry=None)

        self.blocked: Counter = counter(
            "blocked", "Calls refused by a budget before reaching Bedrock.", ("budget",)
        )
        self.clamped: Counter = counter(
            "clamped", "Calls a clamp budget sent out with a lower output-token cap.", ("budget",)
        )
        self.downgraded: Counter = counter(
            "downgraded", "Calls a budget switched to a cheaper model.", ("budget",)
        )
        self.warned: Counter = counter(
            "budget_warnings", "Calls over a warn-only (shadow) budget that went ahead.", ("budget",)
        )
        self.unpriced: Counter = counter(
            "unpriced", "Calls recorded without a price (counts and tokens still kept).", ("model", "reason")
        )
        self.overflow: Counter = counter(
            "label_overflow",
            "Calls whose label value was folded into 'other' by a cardinality cap.",
            ("label",),
        )
        # Created up front so a cap that never overflows shows as 0 rather than as a missing series.
        self.app_overflow: Callable[[float], None] = self.overflow.labels("app").inc
        self.user_overflow: Callable[[float], None] = self.overflow.labels("user").inc
        others = (self.blocked, self.clamped, self.downgraded, self.warned, self.unpriced, self.overflow)

        self.slot: Callable[[SlotKey], Slot]
        per_call_metrics: Callable[[], Iterable[Metric]]
        if multiprocess_mode():
            native = NativeSeries(per_call, duration_bounds, ttft_bounds)
            self.slot = native.slot
            per_call_metrics = native.collect
        else:
            series = CallSeries(duration_bounds, ttft_bounds)
            self.slot = series.slot

            def per_call_metrics() -> Iterable[Metric]:
                return counting_families(series, per_call)

        def describe() -> list[Metric]:
            kinds = ("counter", "counter", "counter", "histogram", "histogram")
            described = [Metric(f.name, f.doc, kind) for f, kind in zip(per_call, kinds, strict=True)]
            for counter_ in others:
                described.extend(counter_.describe())
            return described

        registry.register(CallSeriesCollector(describe, per_call_metrics, others))

    def settings(self) -> tuple[object, ...]:
        return self.wanted(self.apps, self.users, self.budgets, self.duration_buckets, self.ttft_buckets)

    @staticmethod
    def wanted(
        apps: CappedLabels,
        users: UserPolicy,
        budgets: CappedLabels,
        duration_buckets: tuple[float, ...],
        ttft_buckets: tuple[float, ...],
    ) -> tuple[object, ...]:
        user_settings = users.settings() if users is not None else None
        return (apps.settings(), user_settings, budgets.settings(), duration_buckets, ttft_buckets)


_lock = threading.Lock()
_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, Instruments] = weakref.WeakKeyDictionary()


def instruments_for(
    registry: CollectorRegistry | None, build: Callable[[CollectorRegistry], Instruments]
) -> Instruments:
    """The registry's instruments, built by ``build`` on first use. A later listener must ask for the same
    label settings: two policies writing into the same series would break the cap."""
    if registry is None:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    with _lock:
        existing = _by_registry.get(registry)
        if existing is not None:
            return existing
        made = build(registry)
        _by_registry[registry] = made
        return made


def check_same(existing: Instruments, wanted: tuple[object, ...]) -> None:
    if existing.settings() != wanted:
        raise ConfigurationError(
            "bedrock-budget metrics already exist on this registry with other label settings "
            f"({existing.settings()!r}); give every PrometheusListener on one registry the same "
            "app/user/budget label settings, or pass a separate registry"
        )


class StoreMetrics:
    """What the budget layer reports about its store: failed operations, the local spend journal, capacity
    leases, hold renewals and reservations that were exceeded.

    ``metrics.error("settle", "unavailable")``; ``metrics.journal(depth=n, dropped=k, file_errors=f)``;
    ``metrics.leases(live=n, taken=k, refused=j)``; ``metrics.renewals(renewed=n, failed=k, overdue=j)``.
    Operations outside :data:`STORE_OPERATIONS` and kinds outside :data:`STORE_ERROR_KINDS` are folded into
    ``other``/``error``, so no caller can grow the series. One instance per registry: get it with
    :func:`store_metrics` or ``PrometheusListener(...).store_metrics``.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge

        self._errors = Counter(
            PREFIX + "store_errors",
            "Failed budget-store operations.",
            ("operation", "kind"),
            registry=registry,
        )
        self._dropped = Counter(
            PREFIX + "journal_dropped",
            "Settlements lost because the local spend journal was full.",
            registry=registry,
        )
        # livesum: in multiprocess mode each worker holds its own journal; the fleet's backlog is the sum.
        self._depth = Gauge(
            PREFIX + "journal_entries",
            "Settlements waiting in the local journal for the budget store to come back.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._leases = Gauge(
            PREFIX + "leases",
            "Budget counters this process holds a capacity lease on (lease_fraction).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        lease_requests = Counter(
            PREFIX + "lease_requests",
            "Capacity lease requests, by whether the store granted them (a refused one sends the call down "
            "the ordinary path).",
            ("outcome",),
            registry=registry,
        )
        self._leases_granted = lease_requests.labels("granted")
        self._leases_refused = lease_requests.labels("refused")
        self._children: dict[tuple[str, str], Callable[[float], None]] = {}
        self._exceeded = Counter(
            PREFIX + "reservation_exceeded",
            "Settled calls that cost more than their reservation, per budget: the reservation was not a "
            "bound, so concurrent calls near the limit could overshoot it.",
            ("budget",),
            registry=registry,
        )
        self._excess = Counter(
            PREFIX + "reservation_excess_usd",
            "USD by which settled calls exceeded their reservations, per budget.",
            ("budget",),
            registry=registry,
        )
        self._budgets = CappedLabels(_BUDGET_LABELS)
        self._unattributed = Counter(
            PREFIX + "unattributed_calls",
            'Calls lacking an attribution key a per-value ("*") budget needs, by budget and its '
            'on_unattributed policy (pool: counted under "(none)"; refuse: refused; skip: not capped).',
            ("budget", "policy"),
            registry=registry,
        )
        self._file_errors = Counter(
            PREFIX + "journal_file_errors",
            "Settlements the durable journal file (journal_path) could not write; they still reach the store "
            "but would not survive a crash.",
            registry=registry,
        )
        renewals = Counter(
            PREFIX + "hold_renewals",
            "Store operations renewing the holds of calls that outlive the reservation TTL, by outcome (a "
            "failed one is retried a period later; failing past the TTL lets the holds lapse).",
            ("outcome",),
            registry=registry,
        )
        self._renewed = renewals.labels("renewed")
        self._renewals_failed = renewals.labels("failed")
        self._overdue = Counter(
            PREFIX + "overdue_calls",
            "Calls still open after max_call_seconds: settled at their worst case (unread streams) or no "
            "longer renewed.",
            registry=registry,
        )
        # The breaker state and evictions of this process's Redis stores, read at scrape time.
        from bedrock_budget.metrics.store_health import StoreHealthCollector

        registry.register(StoreHealthCollector())

    def error(self, operation: str, kind: str = "error") -> None:
        key = (operation, kind)
        inc = self._children.get(key)
        if inc is None:
            op = operation if operation in STORE_OPERATIONS else OTHER
            knd = kind if kind in STORE_ERROR_KINDS else "error"
            inc = self._errors.labels(op, knd).inc
            if len(self._children) < 256:
                self._children[key] = inc
        inc(1)

    def journal(self, *, depth: int, dropped: int = 0, file_errors: int = 0) -> None:
        """Set the journal depth; add ``dropped`` settlements lost and ``file_errors`` journal-file writes
        that failed since the last report."""
        self._depth.set(depth)
        if dropped:
            self._dropped.inc(dropped)
        if file_errors:
            self._file_errors.inc(file_errors)

    def renewals(self, *, renewed: int = 0, failed: int = 0, overdue: int = 0) -> None:
        """Add hold renewals that worked and that failed, and calls found overdue, since the last report."""
        if renewed:
            self._renewed.inc(renewed)
        if failed:
            self._renewals_failed.inc(failed)
        if overdue:
            self._overdue.inc(overdue)

    def leases(self, *, live: int, taken: int = 0, refused: int = 0) -> None:
        """Set the number of live leases; add lease requests granted and refused since the last report."""
        self._leases.set(live)
        if taken:
            self._leases_granted.inc(taken)
        if refused:
            self._leases_refused.inc(refused)

    def reservation_exceeded(self, budget: str, *, count: int, excess_nanos: int) -> None:
        """Add ``count`` settlements above their hold, ``excess_nanos`` over it in total, for ``budget``."""
        label = self._budgets(budget)
        self._exceeded.labels(label).inc(count)
        if excess_nanos:
            self._excess.labels(label).inc(excess_nanos / _NANOS_PER_USD)

    def unattributed(self, budget: str, policy: str, *, count: int) -> None:
        """Add ``count`` calls that lacked a wildcard key of ``budget`` (whose policy is ``policy``)."""
        self._unattributed.labels(self._budgets(budget), policy).inc(count)


_store_lock = threading.Lock()
_store_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, StoreMetrics] = weakref.WeakKeyDictionary()


def store_metrics(registry: CollectorRegistry | None = None) -> StoreMetrics:
    """The registry's :class:`StoreMetrics`, created on first use (default: the global registry)."""
    if registry is None:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    with _store_lock:
        made = _store_by_registry.get(registry)
        if made is None:
            made = StoreMetrics(registry)
            _store_by_registry[registry] = made
        return made
