"""Prometheus metrics for bedrock-budget.

Nothing here imports prometheus_client or creates a metric at import time; metrics are created when a
:class:`PrometheusListener` is built (usually when the client is wrapped), on the registry you pass
(default: prometheus_client's global registry)::

    import bedrock_budget as bb
    from bedrock_budget.metrics import PrometheusListener, start_http_server

    client = bb.wrap(boto3.client("bedrock-runtime"), listeners=[PrometheusListener()])
    start_http_server(9464)            # http://127.0.0.1:9464/metrics

Per call (all names start with ``bedrock_budget_``):

=======================================  ==========  ===============================================
metric                                   type        labels
=======================================  ==========  ===============================================
``requests_total``                       counter     operation, model, app, outcome [, user]
``tokens_total``                         counter     model, app, type [, user]
``cost_usd_total``                       counter     model, app [, user]
``blocked_total``                        counter     budget
``downgraded_total``                     counter     budget
``clamped_total``                        counter     budget
``budget_warnings_total``                counter     budget
``unpriced_total``                       counter     model, reason
``label_overflow_total``                 counter     label (app, user)
``request_duration_seconds``             histogram   operation, model
``time_to_first_token_seconds``          histogram   operation, model
``store_errors_total``                   counter     operation, kind
``journal_entries``                      gauge       (none)
``journal_dropped_total``                counter     (none)
``unattributed_calls_total``             counter     budget, policy
=======================================  ==========  ===============================================

``outcome`` is ok, error, blocked or partial; token ``type`` is input, output, cache_read or cache_write.
``blocked_total`` names the refusing budget (``unknown`` when the call was refused for another reason, such
as the store being down under the ``deny`` policy); blocked calls are not observed in the latency histogram.
Money is kept exact (integer femto-dollars) everywhere else and becomes a float only when handed to
Prometheus. A call adds to plain per-label-combination counts under one lock (:mod:`.series`); one
collector on the registry turns them into the families above when it is scraped (in multiprocess mode,
where each worker must write its own files, they are prometheus_client metrics instead). The budget layer
reports store failures and its journal through :class:`StoreMetrics` (``listener.store_metrics`` or
:func:`store_metrics`).

Budget gauges come from :class:`BudgetCollector`, which reads the budget store at scrape time (cached for
5 s) through a :class:`StoreBudgetSource` (store + budget definitions) or a :class:`LedgerBudgetSource` (an
in-process ledger), so every process, and the ``bedrock-budget serve-metrics`` exporter, reports the same
numbers::

    registry.register(BudgetCollector(StoreBudgetSource(store, budgets)))

Gauges:
``budget_limit_usd``, ``budget_spent_usd``, ``budget_reserved_usd``, the same three in ``_tokens``,
``budget_utilisation_ratio{unit}``, ``budget_reset_seconds``, ``budget_counters`` (all labelled
``budget``) and ``store_up``.

Store health (:class:`StoreHealthCollector`, registered with the store metrics, read at scrape time; one
series set per Redis store of the process, labelled ``store``): ``store_breaker_state{store, state}`` (1 for
the circuit breaker's current state: closed, open or half-open), ``store_breaker_transitions_total{store,
state}`` and ``store_evicted_keys_total{store}`` (the server's ``evicted_keys``; any growth means budget
counters may have been evicted).

Cardinality
-----------
Every label has a bounded set of values, whatever callers send:

- ``model``: the canonical id of a model in the price table; anything else (a mistyped id, an unknown
  or custom model) is ``other``; calls without a model (ApplyGuardrail) are ``none``.
- ``app``: the first ``app_labels`` (default 50) distinct apps keep their name, later ones become
  ``other``; or pass an allow-list, ``app_labels=["chat", "search"]``.
- ``user``: **off by default** (per-user questions are answered by the store and the CLI). Switch it on
  with an allow-list, ``user_labels=["alice", "bob"]``, or with ``top_n=20``: a bounded heavy-hitter
  sketch labels the (at most) 20 heaviest spenders it sees, for the life of the process; everyone else,
  and a user's spend before admission, is ``other``.
- ``budget``: budget names come from configuration; capped at ``budget_labels`` (default 100).
- ``operation``/``outcome``/``type``/``reason``/``kind``: fixed sets.

``label_overflow_total{label}`` counts calls folded into ``other``, so a cap that is too small shows up.
Caps hold per process (and per registry); first-seen caps in several processes may admit different
values, so give fleets an allow-list when the exact set matters.

Multiprocess mode
-----------------
With gunicorn/uwsgi workers, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the workers
start (and clear it on deploy). Each worker writes its metrics to files there; serve them from one place
with :func:`make_wsgi_app` / :func:`make_asgi_app` / :func:`start_http_server` called without a registry,
which then aggregate every worker's files (counters and histograms are summed; ``journal_entries`` is
summed over live workers). Call ``prometheus_client.multiprocess.mark_process_dead(pid)`` from the
server's ``child_exit`` hook. Register the :class:`BudgetCollector` on the exposition side only
(``start_http_server(9464, collectors=[collector])``): it reads the shared store, not worker memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from bedrock_budget._lazy_exports import lazy_exports

_EXPORTS: Final = {
    "PrometheusListener": "bedrock_budget.metrics.listener",
    "StoreMetrics": "bedrock_budget.metrics.instruments",
    "store_metrics": "bedrock_budget.metrics.instruments",
    "BudgetCollector": "bedrock_budget.metrics.collector",
    "BudgetState": "bedrock_budget.metrics.collector",
    "BudgetStateSource": "bedrock_budget.metrics.collector",
    "StoreBudgetSource": "bedrock_budget.metrics.collector",
    "LedgerBudgetSource": "bedrock_budget.metrics.collector",
    "StoreHealthCollector": "bedrock_budget.metrics.store_health",
    "MetricsServer": "bedrock_budget.metrics.exposition",
    "start_http_server": "bedrock_budget.metrics.exposition",
    "make_wsgi_app": "bedrock_budget.metrics.exposition",
    "make_asgi_app": "bedrock_budget.metrics.exposition",
    "exposition_registry": "bedrock_budget.metrics.exposition",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:
    from bedrock_budget.metrics.collector import BudgetCollector as BudgetCollector
    from bedrock_budget.metrics.collector import BudgetState as BudgetState
    from bedrock_budget.metrics.collector import BudgetStateSource as BudgetStateSource
    from bedrock_budget.metrics.collector import LedgerBudgetSource as LedgerBudgetSource
    from bedrock_budget.metrics.collector import StoreBudgetSource as StoreBudgetSource
    from bedrock_budget.metrics.exposition import MetricsServer as MetricsServer
    from bedrock_budget.metrics.exposition import exposition_registry as exposition_registry
    from bedrock_budget.metrics.exposition import make_asgi_app as make_asgi_app
    from bedrock_budget.metrics.exposition import make_wsgi_app as make_wsgi_app
    from bedrock_budget.metrics.exposition import start_http_server as start_http_server
    from bedrock_budget.metrics.instruments import StoreMetrics as StoreMetrics
    from bedrock_budget.metrics.instruments import store_metrics as store_metrics
    from bedrock_budget.metrics.listener import PrometheusListener as PrometheusListener
    from bedrock_budget.metrics.store_health import StoreHealthCollector as StoreHealthCollector
