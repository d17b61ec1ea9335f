"""The README's "see it in Prometheus" recipe: the shipped Prometheus config, a real Prometheus, and the
demo lingering with --metrics-port; the budget gauges the dashboard needs must reach Prometheus."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import GRAFANA, free_port, wait_until
from .test_prometheus_e2e import Prometheus

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
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                prometheus_bin,
                f"--config.file={path}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    instance = Prometheus(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_until(instance.ready, 30, "prometheus to become ready")
        yield instance, demo_port
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_recipe_prometheus_scrapes_the_lingering_demos_budget_gauges(
    recipe_prometheus: tuple[Prometheus, int],
) -> None:
    prometheus, demo_port = recipe_prometheus
    interval = float(yaml.safe_load(RECIPE_CONFIG.read_text())["global"]["scrape_interval"].rstrip("s"))
    cli = str(Path(sys.executable).with_name("bedrock-budget"))
    # Linger a scrape interval and a margin: the first scrape may come up to one interval after the run.
    linger = str(int(interval) + 10)
    command = [cli, "demo", "--json", "--latency", "0", "--calls", "60"]
    command += ["--metrics-port", str(demo_port), "--linger", linger]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as demo:
        try:
            assert demo.stdout is not None
            lines = []
            for line in demo.stdout:  # the summary is printed once the run is over
                lines.append(line)
                if line == "}\n":
                    break
            summary = json.loads("".join(lines))
            names = {b["budget"] for b in summary["budgets"]}

            def scraped() -> bool:
                assert demo.poll() is None, "the demo stopped serving before Prometheus scraped it"
                found = prometheus.query('bedrock_budget_budget_limit_usd{job="bedrock-budget-demo"}')
                return {r["metric"]["budget"] for r in found} >= names - {"search-tokens-daily"}

            wait_until(scraped, interval + 5, "the demo's budget gauges in Prometheus", interval=0.5)
            spent = prometheus.query('bedrock_budget_budget_spent_usd{budget="company-monthly"}')
            tokens = prometheus.query('bedrock_budget_budget_utilisation_ratio{unit="tokens"}')
            assert demo.wait(timeout=60) == 0
        finally:
            if demo.poll() is None:
                demo.kill()
    assert [float(r["value"][1]) for r in spent] == [pytest.approx(float(summary["spend_usd"]), rel=1e-9)]
    assert [r["metric"]["budget"] for r in tokens] == ["search-tokens-daily"]
