"""The per-call Prometheus listener: ``bb.wrap(client, listeners=[PrometheusListener()])``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Final

from bedrock_budget.errors import ConfigurationError
from bedrock_budget.metrics.instruments import (
    DURATION_BUCKETS,
    TTFT_BUCKETS,
    Instruments,
    StoreMetrics,
    check_same,
    instruments_for,
    store_metrics,
)
from bedrock_budget.metrics.labels import NONE, OTHER, CappedLabels, ModelLabels, TopUsers, user_policy

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter

    from bedrock_budget.pricing.table import PriceTable
    from bedrock_budget.records import CallRecord

_FEMTO_PER_USD: Final = 1e15
_CHILD_CACHE_LIMIT: Final = 100_000
_UNPRICED_REASONS: Final = (
    ("unknown model", "unknown_model"),
    ("not resolved", "unresolved"),
    ("internal", "internal_error"),
)

Inc = Callable[[float], None]


class _Children:
    """Bound ``inc``/``observe`` methods for one label combination, so a call does no label work."""

    __slots__ = ("cache_read", "cache_write", "cost", "duration", "input", "output", "requests", "ttft")

    def __init__(
        self, ins: Instruments, operation: str, model: str, app: str, outcome: str, user: str | None
    ):
        extra = () if user is None else (user,)
        self.requests: Inc = ins.requests.labels(operation, model, app, outcome, *extra).inc
        tokens = ins.tokens
        self.input: Inc = tokens.labels(model, app, "input", *extra).inc
        self.output: Inc = tokens.labels(model, app, "output", *extra).inc
        self.cache_read: Inc = tokens.labels(model, app, "cache_read", *extra).inc
        self.cache_write: Inc = tokens.labels(model, app, "cache_write", *extra).inc
        self.cost: Inc = ins.cost.labels(model, app, *extra).inc
        self.duration: Inc = ins.duration.labels(operation, model).observe
        self.ttft: Inc = ins.ttft.labels(operation, model).observe


class PrometheusListener:
    """Turns every :class:`~bedrock_budget.records.CallRecord` into Prometheus metrics.

    ``registry``: where the metrics live (default: prometheus_client's global registry). Metrics are
    created here, never at import; every listener on one registry shares them.

    Label bounds (see :mod:`bedrock_budget.metrics`): ``app_labels`` is the number of distinct apps that
    keep their own label (first seen first served) or an allow-list of app names; ``user_labels`` is off
    by default, an allow-list of user ids, or ``True`` together with ``top_n=N`` to label the N heaviest
    spenders; ``budget_labels`` caps budget names. Everything beyond a cap is labelled ``other``.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        user_labels: bool | Iterable[str] = False,
        top_n: int | None = None,
        app_labels: int | Iterable[str] = 50,
        budget_labels: int = 100,
        app_key: str = "app",
        user_key: str = "user",
        price_table: PriceTable | None = None,
        duration_buckets: Iterable[float] = DURATION_BUCKETS,
        ttft_buckets: Iterable[float] = TTFT_BUCKETS,
    ) -> None:
        users = user_policy(user_labels, top_n)
        try:
            apps = CappedLabels(app_labels)
            budgets = CappedLabels(budget_labels)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        buckets = tuple(float(b) for b in duration_buckets)
        ttft = tuple(float(b) for b in ttft_buckets)
        wanted = Instruments.wanted(apps, users, budgets, buckets, ttft)

        def build(reg: CollectorRegistry) -> Instruments:
            return Instruments(
                reg, apps=apps, users=users, budgets=budgets, duration_buckets=buckets, ttft_buckets=ttft
            )

        self._ins = instruments_for(registry, build)
        check_same(self._ins, wanted)
        if price_table is None:
            from bedrock_budget.pricing.table import default_price_table

            price_table = default_price_table()
        self._models = ModelLabels(price_table)
        self._app_key = app_key
        self._user_key = user_key
        self._children: dict[tuple[str, str, str, str, str | None], _Children] = {}
        self.store_metrics: StoreMetrics = store_metrics(registry)

    def __call__(self, record: CallRecord) -> None:
        ins = self._ins
        attribution: Mapping[str, str] = record.attribution
        raw_app = attribution.get(self._app_key)
        app = ins.apps(raw_app)
        model = self._models(record.model_id)
        cost = record.cost
        users = ins.users
        user: str | None = None
        if users is not None:
            raw_user = attribution.get(self._user_key)
            if isinstance(users, TopUsers):
                user = users(raw_user, cost.total_femto + 1 if cost is not None else 1)
            else:
                user = users(raw_user)
            if user == OTHER and raw_user:
                ins.user_overflow(1)
        if app == OTHER and raw_app:
            ins.app_overflow(1)
        key = (ins.operations(record.operation), model, app, ins.outcomes(record.outcome), user)
        children = self._children.get(key)
        if children is None:
            children = self._make(key)

        children.requests(1)
        usage = record.usage
        if usage.input_tokens:
            children.input(usage.input_tokens)
        if usage.output_tokens:
            children.output(usage.output_tokens)
        if usage.cache_read_tokens:
            children.cache_read(usage.cache_read_tokens)
        if usage.cache_write_tokens:
            children.cache_write(usage.cache_write_tokens)
        if cost is not None:
            if cost.total_femto:
                children.cost(cost.total_femto / _FEMTO_PER_USD)
        elif record.unpriced is not None:
            ins.unpriced.labels(model, _unpriced_reason(record.unpriced)).inc()

        outcome = record.outcome
        if outcome == "blocked":
            self._by_budget(ins.blocked, record.blocked_by)
        else:
            children.duration(record.latency_seconds)
            ttft = record.time_to_first_token_seconds
            if ttft is not None:
                children.ttft(ttft)
        if record.downgraded_from:
            self._by_budget(ins.downgraded, record.downgraded_by)
        if record.clamped_by is not None:
            self._by_budget(ins.clamped, record.clamped_by)
        for budget in record.budget_warnings:
            ins.warned.labels(ins.budgets(budget)).inc()

    def _make(self, key: tuple[str, str, str, str, str | None]) -> _Children:
        children = _Children(self._ins, *key)
        # Every part of the key is already a bounded label value; the limit is a last line of defence.
        if len(self._children) < _CHILD_CACHE_LIMIT:
            self._children[key] = children
        return children

    def _by_budget(self, counter: Counter, names: object) -> None:
        if isinstance(names, str):
            names = (names,)
        if not isinstance(names, tuple | list) or not names:
            counter.labels("unknown").inc()
            return
        for name in names:
            counter.labels(self._ins.budgets(str(name))).inc()


def _unpriced_reason(reason: str) -> str:
    for needle, label in _UNPRICED_REASONS:
        if needle in reason:
            return label
    return "unsupported" if reason else NONE
