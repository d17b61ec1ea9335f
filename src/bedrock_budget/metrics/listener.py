"""The per-call Prometheus listener: ``bb.wrap(client, listeners=[PrometheusListener()])``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
from bedrock_budget.metrics.series import Slot
from bedrock_budget.records import PlainCallObserver

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter

    from bedrock_budget.pricing.cost import Cost
    from bedrock_budget.pricing.table import PriceTable
    from bedrock_budget.records import CallRecord
    from bedrock_budget.usage import Usage

# Raw (operation, model id, app, outcome, user) → slot, for label combinations that no cap folded.
_ROUTE_LIMIT: Final = 4096
_UNPRICED_REASONS: Final = (
    ("unknown model", "unknown_model"),
    ("not resolved", "unresolved"),
    ("internal", "internal_error"),
)


class PrometheusListener(PlainCallObserver):
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
        self._routes: dict[tuple[str, str | None, str | None, str, str | None], Slot] = {}
        self.store_metrics: StoreMetrics = store_metrics(registry)

    def __call__(self, record: CallRecord) -> None:
        cost = record.cost
        outcome = record.outcome
        self.observe_plain_call(
            record.operation,
            record.model_id,
            record.attribution,
            outcome,
            record.usage,
            cost,
            record.latency_seconds if outcome != "blocked" else None,
            record.time_to_first_token_seconds,
        )
        ins = self._ins
        if outcome == "blocked":
            self._by_budget(ins.blocked, record.blocked_by)
        if cost is None and record.unpriced is not None:
            ins.unpriced.labels(self._models(record.model_id), _unpriced_reason(record.unpriced)).inc()
        if record.downgraded_from:
            self._by_budget(ins.downgraded, record.downgraded_by)
        if record.clamped_by is not None:
            self._by_budget(ins.clamped, record.clamped_by)
        for budget in record.budget_warnings:
            ins.warned.labels(ins.budgets(budget)).inc()

    def observe_plain_call(
        self,
        operation: str,
        model_id: str | None,
        attribution: Mapping[str, str],
        outcome: str,
        usage: Usage,
        cost: Cost | None,
        latency_seconds: float | None,
        time_to_first_token_seconds: float | None,
    ) -> None:
        """The requests, tokens, cost and latencies of one call (all a plain call adds; see
        :class:`~bedrock_budget.records.PlainCallObserver`). ``latency_seconds`` is ``None`` for a call
        that never ran (refused), which is not observed in the latency histograms."""
        femto = 0
        if cost is not None:
            femto = cost.total_femto
            if femto < 0:
                raise ValueError("Counters can only be incremented by non-negative amounts.")
        raw_user = None if self._ins.users is None else attribution.get(self._user_key)
        key = (operation, model_id, attribution.get(self._app_key), outcome, raw_user)
        slot = self._routes.get(key)
        if slot is None:
            slot = self._slot(key, femto)
        if latency_seconds is None:
            slot.add(usage, femto, None, None)
        else:
            slot.add(usage, femto, latency_seconds, time_to_first_token_seconds)

    def _slot(self, key: tuple[str, str | None, str | None, str, str | None], femto: int) -> Slot:
        """The slot of a record's label values; remembered for its raw values unless a cap folded one of
        them (each such call counts an overflow, and a top-N user label may change with spend)."""
        operation, model_id, raw_app, raw_outcome, raw_user = key
        ins = self._ins
        app = ins.apps(raw_app)
        op = ins.operations(operation)
        outcome = ins.outcomes(raw_outcome)
        remember = op != OTHER and outcome != OTHER
        if app == OTHER and raw_app:
            ins.app_overflow(1)
            remember = False
        users = ins.users
        user: str | None = None
        if users is not None:
            if isinstance(users, TopUsers):
                user = users(raw_user, femto + 1)
                remember = False
            else:
                user = users(raw_user)
            if user == OTHER and raw_user:
                ins.user_overflow(1)
                remember = False
        slot = ins.slot((op, self._models(model_id), app, outcome, user))
        if remember and len(self._routes) < _ROUTE_LIMIT:
            self._routes[key] = slot
        return slot

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
