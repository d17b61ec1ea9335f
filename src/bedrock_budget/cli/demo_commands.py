"""``demo``: the whole product in one command, with no AWS account and nothing to set up."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bedrock_budget.cli.output import money

if TYPE_CHECKING:
    from bedrock_budget.budgets.model import Budget
    from bedrock_budget.stores.base import Store


@click.command("demo")
@click.option(
    "--calls", type=click.IntRange(1, 100_000), default=240, show_default=True, help="User requests."
)
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same workload.")
@click.option(
    "--store", default="memory://", show_default=True, help="Budget store URI (memory://, redis://...)."
)
@click.option(
    "--budgets",
    "budgets_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Budgets YAML (default: the demo budgets bundled with the package).",
)
@click.option(
    "--metrics-port", type=click.IntRange(0, 65535), default=None, help="Serve /metrics on this port."
)
@click.option(
    "--linger",
    type=click.FloatRange(0, 86_400),
    default=0,
    metavar="SECONDS",
    help="Keep /metrics up this long after the run (needs --metrics-port), so Prometheus can scrape it.",
)
@click.option(
    "--latency", type=click.FloatRange(0, 5), default=0.03, show_default=True, help="Fake model latency."
)
@click.option(
    "--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Concurrent callers."
)
@click.option("--json", "as_json", is_flag=True, help="No live view; print the summary as one JSON object.")
def demo(
    calls: int,
    seed: int,
    store: str,
    budgets_path: Path | None,
    metrics_port: int | None,
    linger: float,
    latency: float,
    workers: int,
    as_json: bool,
) -> None:
    """Run a multi-tenant workload against a local fake Bedrock, metered and capped by budgets.

    Three apps and a dozen users make Converse, streaming and InvokeModel calls across cheap and
    expensive models, with prompt-cache hits and guardrail checks. A live view shows spend per app and
    user, budget utilisation, and the calls budgets blocked, downgraded or clamped; a summary follows.

    With --metrics-port the run serves /metrics: the per-call series and the budget gauges
    (bedrock_budget_budget_*) that the Grafana dashboard in grafana/ reads. The run takes seconds, less
    than a usual scrape interval: --linger keeps /metrics up afterwards (Ctrl-C ends it early).

    \b
    Example:
      bedrock-budget demo --calls 300 --seed 7 --metrics-port 9464 --linger 60
      bedrock-budget demo --store redis://127.0.0.1:6379/0 --json
    """
    from bedrock_budget.budgets.loading import load_budgets
    from bedrock_budget.demo.runner import DEFAULT_BUDGETS, run_demo
    from bedrock_budget.stores import from_uri

    if linger and metrics_port is None:
        raise click.UsageError("--linger keeps /metrics up after the run: it needs --metrics-port")
    budgets_path = budgets_path or DEFAULT_BUDGETS
    with ExitStack() as stack:
        listeners: tuple[Any, ...] = ()
        live_hook = None
        run_store: Any = store
        if metrics_port is not None:
            # One open store for the run and the exporter, so the budget gauges outlive the run's ledger.
            run_store = stack.enter_context(from_uri(store))
            listeners = _serve_metrics(
                stack, metrics_port, run_store, load_budgets(budgets_path), quiet=as_json
            )
        if not as_json:
            live_hook = _live_view()
        summary = run_demo(
            calls=calls,
            seed=seed,
            store=run_store,
            budgets_path=budgets_path,
            latency=latency,
            workers=workers,
            extra_listeners=listeners,
            on_start=live_hook,
        )
        data = summary.as_dict()
        if as_json:
            click.echo(json.dumps(data, indent=2))
        else:
            _print_summary(data)
        if linger:
            _linger(linger, quiet=as_json)


def _linger(seconds: float, *, quiet: bool) -> None:
    import time

    # Ctrl-C ends the linger with status 0 from the moment the summary can have been read.
    with suppress(KeyboardInterrupt):
        sys.stdout.flush()
        if not quiet:
            click.echo(f"keeping /metrics up for {seconds:g} s (Ctrl-C to stop)", err=True)
        time.sleep(seconds)


def _serve_metrics(
    stack: ExitStack, port: int, store: Store, budgets: list[Budget], *, quiet: bool
) -> tuple[Any, ...]:
    """Per-call metrics from a listener, and the budget gauges read from the store the way
    ``serve-metrics`` reads them."""
    from prometheus_client import CollectorRegistry

    from bedrock_budget.metrics import PrometheusListener, start_http_server
    from bedrock_budget.metrics.collector import BudgetCollector, StoreBudgetSource

    registry = CollectorRegistry()
    listener = PrometheusListener(registry=registry)
    # A short cache: the demo changes budgets every second, and only one Prometheus scrapes it.
    collector = BudgetCollector(StoreBudgetSource(store, budgets), cache_seconds=1.0)
    server = start_http_server(port, registry=registry, collectors=[collector])
    stack.callback(server.close)
    if not quiet:
        click.echo(f"serving Prometheus metrics on {server.url}", err=True)
    return (listener,)


def _live_view() -> Any:
    from rich.console import Console
    from rich.live import Live

    from bedrock_budget.demo.display import LiveView

    def start(tally: Any, ledger: Any, planned: int) -> Any:
        view = LiveView(tally, ledger, planned)
        console = Console()
        if not console.is_terminal:
            # A file or a pipe gets the final state once, in full rows, instead of redrawn frames.
            return lambda: click.echo(view.plain())
        live = Live(view, console=console, refresh_per_second=8)
        live.start()

        def stop() -> None:
            view.read_now()  # the last frame shows the final state, not a throttled read
            live.stop()

        return stop

    return start


def _print_summary(data: dict[str, Any]) -> None:
    from decimal import Decimal

    click.echo("")
    click.echo(
        f"summary: {data['calls_planned']} calls planned, spend {money(Decimal(data['spend_usd']))} "
        f"(store recorded {money(Decimal(data['store_spend_usd']))}), "
        f"{data['blocked']} blocked, {data['downgraded']} downgraded, {data['clamped']} clamped"
    )
    for name, app in data["apps"].items():
        click.echo(
            f"  {name:<14} {app['calls']:>4} calls  {app['blocked']:>3} blocked  "
            f"{app['downgraded']:>3} downgraded  {money(Decimal(app['spend_usd']))}"
        )
    if data["blocked_by"]:
        reasons = ", ".join(f"{name} x{count}" for name, count in sorted(data["blocked_by"].items()))
        click.echo(f"  blocked by: {reasons}")
    for message in data["alerts"]:
        click.echo(f"  alert: {message}")
    click.echo("Every number above came from real boto3 calls over HTTP to a local fake Bedrock.")
    sys.stdout.flush()


def register(group: click.Group) -> None:
    group.add_command(demo)
