"""``serve-metrics``: budget gauges for a whole fleet, served from one place."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click


def run_exporter(
    store_uri: str,
    *,
    port: int,
    addr: str = "127.0.0.1",
    budgets_file: Path | None = None,
    prefix: str | None = None,
    cache_seconds: float = 5.0,
    top_spenders: int = 0,
    top_keys: tuple[str, ...] = ("user", "app", "model"),
    stop: threading.Event,
    ready: threading.Event | None = None,
) -> None:
    """Serve the budget gauges (and, with ``top_spenders``, the top spenders of ``top_keys`` today) until
    ``stop`` is set. ``ready`` is set once the port is bound."""
    from prometheus_client import CollectorRegistry

    from bedrock_budget.budgets.loading import configured_budgets
    from bedrock_budget.metrics.collector import BudgetCollector, StoreBudgetSource
    from bedrock_budget.metrics.exposition import start_http_server
    from bedrock_budget.metrics.store_health import StoreHealthCollector
    from bedrock_budget.stores import from_uri

    options = {"prefix": prefix} if prefix is not None else {}
    with from_uri(store_uri, **options) as store:
        store.ping()
        # A file or the environment first; else the budgets published in the store, followed as they
        # change. Serving only who is spending needs no budget definitions at all.
        budgets = configured_budgets(budgets_file, required=False)
        source = StoreBudgetSource(store, budgets)
        follower = None
        if not budgets and store.definitions_version():
            from bedrock_budget.budgets.live import DefinitionsFollower

            follower = DefinitionsFollower(store, source.set_budgets, refresh_seconds=max(cache_seconds, 1.0))
            follower.start()
            budgets = list(source.budgets.values())
        elif not budgets and not top_spenders:
            configured_budgets(budgets_file)  # raises the usual "no budgets defined" error
        # The store's health as this exporter sees it: one place that reports the server's evictions (and
        # this connection's breaker) whatever the applications export.
        collectors: list[Any] = [
            BudgetCollector(source, cache_seconds=cache_seconds),
            StoreHealthCollector(cache_seconds=cache_seconds),
        ]
        if top_spenders:
            from bedrock_budget.metrics.top_spenders import TopSpendersCollector

            collectors.append(
                TopSpendersCollector(store, top=top_spenders, keys=top_keys, cache_seconds=cache_seconds)
            )
        # A registry of its own: the exporter reports budgets, not its own process.
        with start_http_server(port, addr, CollectorRegistry(), collectors=collectors) as server:
            defined = f"{len(budgets)} defined budget(s)"
            if follower is not None:
                defined += f" (published in the store, version {follower.version}, followed)"
            if top_spenders:
                defined += f" and the top {top_spenders} spenders of {', '.join(top_keys)}"
            click.echo(f"serving budget metrics for {defined} from {store.name} on {server.url}", err=True)
            if ready is not None:
                ready.set()
            try:
                while not stop.wait(0.5):
                    pass
            finally:
                if follower is not None:
                    follower.stop()


@click.command("serve-metrics")
@click.option("--store", "store_uri", required=True, help="Budget store URI, e.g. redis://redis:6379/0.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=9464, show_default=True, help="Port to listen on."
)
@click.option(
    "--addr",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind (0.0.0.0 to serve every interface).",
)
@click.option(
    "--budgets",
    "budgets_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Budget definitions (YAML) for limits and windows; default: BEDROCK_BUDGETS* environment variables.",
)
@click.option("--prefix", default=None, help="Store key prefix the clients use (default bb:).")
@click.option(
    "--cache-seconds",
    type=click.FloatRange(0, 300),
    default=5.0,
    show_default=True,
    help="Reuse a store read for this long, however often Prometheus scrapes.",
)
@click.option(
    "--top-spenders",
    type=click.IntRange(0, 100),
    default=0,
    show_default=True,
    help="Also serve the N highest-spending values of each --top-keys key today, from the spend ledger "
    "(0: off).",
)
@click.option(
    "--top-keys",
    default="user,app,model",
    show_default=True,
    help="Tracked keys whose top spenders are served (comma-separated).",
)
def serve_metrics(
    store_uri: str,
    port: int,
    addr: str,
    budgets_file: Path | None,
    prefix: str | None,
    cache_seconds: float,
    top_spenders: int,
    top_keys: str,
) -> None:
    """Serve budget gauges (limit, spent, reserved, utilisation, time to reset) read from the budget
    store, so a fleet's budgets are scraped from one place. Runs until interrupted (Ctrl-C or SIGTERM).

    Per-call metrics (requests, tokens, cost, latency) come from each application's PrometheusListener.
    With --top-spenders N it also serves who is spending today: bedrock_budget_top_spend_usd{key, rank,
    value} for the N highest-spending users, apps and models, read from the spend ledger.

    \b
    Example:
      bedrock-budget serve-metrics --store redis://localhost:6379/0 --port 9464 --budgets budgets.yaml
    """
    keys = tuple(key.strip() for key in top_keys.split(",") if key.strip())
    if top_spenders and not keys:
        raise click.BadParameter("name at least one tracked key", param_hint="--top-keys")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        run_exporter(
            store_uri,
            port=port,
            addr=addr,
            budgets_file=budgets_file,
            prefix=prefix,
            cache_seconds=cache_seconds,
            top_spenders=top_spenders,
            top_keys=keys,
            stop=stop,
        )
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def register(group: click.Group) -> None:
    group.add_command(serve_metrics)
