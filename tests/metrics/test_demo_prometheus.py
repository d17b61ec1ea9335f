"""The README's "see it in Prometheus" recipe: the shipped Prometheus config, a real Prometheus, and the
demo lingering with --metrics-port; the budget gauges the dashboard needs must reach Prometheus."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from polling import wait_until
from service_fixtures import free_port, lingering_demo, stop_lingering

from .conftest import GRAFANA, Prometheus, running_prometheus

pytestmark = pytest.mark.prometheus

RECIPE_CONFIG = GRAFANA / "prometheus" / "demo.prometheus.yml"
DEMO_PORT = "9464"


@pytest.fixture
def recipe_prometheus(prometheus_bin: str, tmp_path: Path) -> Iterator[tuple[Prometheus, int]]:
    """Prometheus started on the recipe's config, the demo target moved to a free port (9464 may be taken
    on a shared machine); the scrape interval stays the recipe's."""
    config = yaml.safe_load(RECIPE_CONFIG.read_text())
    (job,) = config["scrape_configs"]
    (static,) = job["static_configs"]
    assert static["targets"] == [f"127.0.0.1:{DEMO_PORT}"]
    demo_port = free_port()
    static["targets"] = [f"127.0.0.1:{demo_port}"]
    config["rule_files"] = [str(RECIPE_CONFIG.parent / name) for name in config["rule_files"]]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    with running_prometheus(prometheus_bin, path, tmp_path) as instance:
        yield instance, demo_port


def test_recipe_prometheus_scrapes_the_lingering_demos_budget_gauges(
    recipe_prometheus: tuple[Prometheus, int],
) -> None:
    prometheus, demo_port = recipe_prometheus
    interval = float(yaml.safe_load(RECIPE_CONFIG.read_text())["global"]["scrape_interval"].rstrip("s"))
    # Linger a scrape interval and a margin: the first scrape may come up to one interval after the run.
    with lingering_demo(demo_port, linger=int(interval) + 10) as (demo, summary):
        names = {b["budget"] for b in summary["budgets"]}

        def scraped() -> bool:
            assert demo.poll() is None, "the demo stopped serving before Prometheus scraped it"
            found = prometheus.query('bedrock_budget_budget_limit_usd{job="bedrock-budget-demo"}')
            return {r["metric"]["budget"] for r in found} >= names - {"search-tokens-daily"}

        wait_until(scraped, interval + 5, interval=0.5, message="the demo's budget gauges in Prometheus")
        spent = prometheus.query('bedrock_budget_budget_spent_usd{budget="company-monthly"}')
        tokens = prometheus.query('bedrock_budget_budget_utilisation_ratio{unit="tokens"}')
        assert stop_lingering(demo) == 0  # scraped: the rest of the linger is not needed
    assert [float(r["value"][1]) for r in spent] == [pytest.approx(float(summary["spend_usd"]), rel=1e-9)]
    assert [r["metric"]["budget"] for r in tokens] == ["search-tokens-daily"]
