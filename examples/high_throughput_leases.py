"""Many calls per second from one process: capacity leases on a shared Redis budget.

Without leases every budgeted call costs one Redis round trip before it goes out (its reservation).
With ``lease_fraction=0.01`` the ledger reserves 1 % of a budget's limit at a time - a *lease* - and
admits the following calls against it in memory; ``settle_mode="background"`` takes the settlements off
the calling threads too. A lease is a reservation like any other, so the limit still holds across every
thread, process and host that shares the store; the trade-off is that other processes see a lease's
spend when it closes (about ``lease_seconds`` later), not after each call.

Here eight threads share one wrapped client. Each works for a team, under a per-team daily budget and an
org-wide daily budget, and calls until a budget refuses it (``BudgetExceededError``: the call never
reached Bedrock) or it has made ``MAX_CALLS_PER_THREAD`` calls. At the end the ledger is closed, which
closes the last leases and applies every queued settlement, and a fresh ledger reads the spend back from
Redis: it equals, to the nano-dollar, what the call records add up to, and it stays within the limits.

Run against the Redis on 127.0.0.1:6379 and the local fake Bedrock (the default limits are sized for
the fake's short answers, so the org budget runs out within seconds)::

    bedrock-budget fake-bedrock --port 4010 &
    BEDROCK_ENDPOINT_URL=http://127.0.0.1:4010 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x \\
        python examples/high_throughput_leases.py

Environment: ``BEDROCK_BUDGET_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``),
``BEDROCK_BUDGET_KEY_PREFIX`` (default ``load-test-<run id>:bb:``, new on every run, so a second run the
same day starts from empty budgets instead of the first run's spend; the keys expire after the day),
``BEDROCK_ENDPOINT_URL`` (unset: AWS - the calls are real and billed).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import boto3
from botocore.config import Config

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger

MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
TEAMS = ("search", "support", "billing", "growth")
THREADS = 8
MAX_CALLS_PER_THREAD = 2_000
# Each run its own budgets: the daily limits would otherwise still hold an earlier run's spend.
RUN_PREFIX = f"load-test-{uuid.uuid4().hex[:8]}:bb:"

BUDGETS = [
    bb.Budget("org-daily", window="day", limit_usd="0.08"),
    bb.Budget("team-daily", scope={"team": "*"}, window="day", limit_usd="0.05"),
]


def bedrock_client() -> Any:
    # An unset BEDROCK_ENDPOINT_URL means boto3's regional endpoint, so one script serves AWS and the fake.
    # One connection per thread: boto3 clients are thread-safe, their default pool holds 10.
    return boto3.client(
        "bedrock-runtime",
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_url=os.environ.get("BEDROCK_ENDPOINT_URL") or None,
        config=Config(max_pool_connections=THREADS),
    )


def store_uri() -> str:
    base = os.environ.get("BEDROCK_BUDGET_REDIS_URL", "redis://127.0.0.1:6379/0")
    options = {
        "prefix": os.environ.get("BEDROCK_BUDGET_KEY_PREFIX") or RUN_PREFIX,
        "socket_timeout": "0.25",
        "connect_timeout": "0.25",
        "retries": "1",
    }
    return f"{base}{'&' if '?' in base else '?'}{urlencode(options)}"


class CostTotals:
    """Adds up the cost of every CallRecord, per team; listeners run on the calling threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_team: dict[str, Decimal] = dict.fromkeys(TEAMS, Decimal(0))

    def __call__(self, record: bb.CallRecord) -> None:
        with self._lock:
            team = record.attribution.get("team", "-")
            self.by_team[team] = self.by_team.get(team, Decimal(0)) + record.cost_usd


class Counts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.made: dict[str, int] = dict.fromkeys(TEAMS, 0)
        self.refused = 0

    def add(self, team: str, made: int, refused: bool) -> None:
        with self._lock:
            self.made[team] += made
            self.refused += refused


def worker(client: Any, team: str, counts: Counts) -> None:
    made = 0
    refused = False
    with bb.attribute(team=team):
        while made < MAX_CALLS_PER_THREAD:
            try:
                client.converse(
                    modelId=MODEL,
                    messages=[{"role": "user", "content": [{"text": "Say hi."}]}],
                    inferenceConfig={"maxTokens": 32},
                )
            except bb.BudgetExceededError:
                refused = True
                break
            made += 1
    counts.add(team, made, refused)


def main() -> int:
    costs = CostTotals()
    counts = Counts()
    ledger = Ledger(
        store_uri(),
        BUDGETS,
        settle_mode="background",
        lease_fraction=0.01,
        lease_seconds=1.0,
    )
    # The ledger is passed explicitly so that this program can close it: closing retires the leases,
    # settles them and drains the background queue before the store connection goes away.
    with ledger:
        client = bb.wrap(bedrock_client(), ledger=ledger, listeners=[costs], attribution={"app": "load"})
        threads = [
            threading.Thread(target=worker, args=(client, TEAMS[i % len(TEAMS)], counts), name=f"w{i}")
            for i in range(THREADS)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        leases = ledger.leases_live

    # A fresh ledger without leases reads what the store holds, as any other process would.
    with Ledger(store_uri(), BUDGETS) as reader:
        org = reader.read("org-daily")
        teams = {team: reader.read("team-daily", {"team": team}) for team in TEAMS}

    made = sum(counts.made.values())
    total = sum(costs.by_team.values(), Decimal(0))
    print(
        f"calls_made={made} calls_refused={counts.refused} calls_per_s={made / elapsed:.0f} "
        f"leases_live_at_end={leases} key_prefix={os.environ.get('BEDROCK_BUDGET_KEY_PREFIX') or RUN_PREFIX}"
    )
    for team, status in teams.items():
        print(
            f"team={team} calls={counts.made[team]} record_cost_usd={costs.by_team[team]} "
            f"spent_usd={status.spent_usd} reserved_usd={status.reserved_usd} limit_usd={status.limit_usd}"
        )
    print(
        f"org record_cost_usd={total} spent_usd={org.spent_usd} reserved_usd={org.reserved_usd} "
        f"limit_usd={org.limit_usd}"
    )
    exact = total == org.spent_usd and all(costs.by_team[t] == s.spent_usd for t, s in teams.items())
    within = all(s.spent_usd <= (s.limit_usd or 0) for s in (org, *teams.values()))
    print(f"records_match_store={exact} within_limits={within}")
    return 0 if exact and within else 1


if __name__ == "__main__":
    raise SystemExit(main())
