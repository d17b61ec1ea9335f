"""``serve-metrics`` without a budgets file serves the budgets published in the store, and follows them:
a limit changed with ``budgets set`` shows in the gauges without restarting the exporter."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import bedrock_budget as bb
from bedrock_budget.budgets import published
from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.stores import from_uri
from polling import wait_until
from service_fixtures import free_port

from .conftest import LAUNCH, scrape

USD = 1_000_000_000


def _limit(text: str | None, budget: str) -> float | None:
    if text is None:
        return None
    found = re.search(rf'bedrock_budget_budget_limit_usd{{budget="{budget}"[^}}]*}} (\S+)', text)
    return float(found.group(1)) if found else None


def test_serve_metrics_follows_the_published_budgets(redis_url: str) -> None:
    prefix = f"bbpub{time.time_ns()}:"
    uri = f"{redis_url}?prefix={prefix}"
    with from_uri(uri) as store:
        per_user = bb.Budget(
            "per-user", scope={"user": "*"}, limit_usd="5", overrides={"vip": {"limit_usd": "50"}}
        )
        published.publish(store, [per_user])
        with Ledger(store, [per_user]) as ledger:  # the vip is the fullest: 20% of 50 beats 10% of 5
            ledger.settle(ledger.reserve({"user": "vip"}, "m", None, 10 * USD, {}), 10 * USD, {})
            ledger.settle(ledger.reserve({"user": "u1"}, "m", None, USD // 2, {}), USD // 2, {})
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BEDROCK_BUDGET")}
        args = ["serve-metrics", "--store", uri, "--port", str(port), "--cache-seconds", "0"]
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, *args], stderr=subprocess.PIPE, env=env, text=True
        )
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            assert wait_until(lambda: _limit(scrape(url), "per-user"), 30, message="serve-metrics") == 50.0
            published.set_limit(store, "per-user", value="vip", limit_usd="200")
            # 10/200 = 5% is now below u1's 10% of 5: the fullest counter, and its limit, change.
            assert wait_until(lambda: _limit(scrape(url), "per-user") == 5.0, 10, message="the new limit")
            text = scrape(url)
            assert text is not None
            # The exporter also reports the server's evictions, as the applications' own metrics do.
            assert re.search(r'bedrock_budget_store_evicted_keys_total\{store="redis://[^"]+"\} \d', text)
            assert 'bedrock_budget_store_breaker_state{state="closed",store=' in text
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=15)
            for key in store.client.scan_iter(f"{prefix}*"):
                store.client.delete(key)
        assert "published in the store, version 1, followed" in err
