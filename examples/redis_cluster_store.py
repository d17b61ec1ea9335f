"""Budgets on a Redis Cluster (or ElastiCache / MemoryDB in cluster mode).

A call usually touches several budgets (app, user, tenant, org...). On a cluster their counters live in
different hash slots, so the store runs one Lua script per slot - in parallel by default - and keeps the
reservation all-or-nothing: if any slot refuses or fails, the slots that granted are released again.
Give the URI a few seed nodes; the client discovers the rest and follows slot moves and failovers.

Run against a cluster (seed nodes from the environment)::

    BEDROCK_BUDGET_REDIS_CLUSTER_URL=redis+cluster://10.0.0.5:6379,10.0.0.6:6379 \\
        python examples/redis_cluster_store.py

Use ``rediss+cluster://`` for TLS (ElastiCache with in-transit encryption). Other settings:
``BEDROCK_BUDGET_KEY_PREFIX`` (default ``chat-prod:bb:``), ``BEDROCK_BUDGET_ON_STORE_ERROR``
(``deny``/``allow``), ``BEDROCK_ENDPOINT_URL`` (unset: AWS; e.g. ``bedrock-budget fake-bedrock``).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Literal
from urllib.parse import urlencode

import boto3

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger

MODEL = "us.amazon.nova-pro-v1:0"
TENANT = "acme"
USER = "u-17"


def bedrock_client() -> Any:
    # An unset BEDROCK_ENDPOINT_URL means boto3's regional endpoint, so one script serves AWS and the fake.
    return boto3.client(
        "bedrock-runtime",
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_url=os.environ.get("BEDROCK_ENDPOINT_URL") or None,
    )


def store_uri(seeds: str) -> str:
    options = {
        "prefix": os.environ.get("BEDROCK_BUDGET_KEY_PREFIX", "chat-prod:bb:"),
        # Per node: a slow node must not hold every call for long before the outage policy decides.
        "socket_timeout": "0.25",
        "connect_timeout": "0.25",
        "retries": "1",
        # Slots are reserved concurrently; "false" runs them one after another (fewer threads).
        "parallel": "true",
    }
    return f"{seeds}{'&' if '?' in seeds else '?'}{urlencode(options)}"


# Four budgets per call, so a reservation spans several hash slots.
BUDGETS = [
    bb.Budget("org-monthly", window="month", limit_usd="4000.00"),
    bb.Budget("chat-app-daily", scope={"app": "chat"}, window="day", limit_usd="120.00"),
    bb.Budget("per-tenant-daily", scope={"tenant": "*"}, window="day", limit_usd="40.00"),
    bb.Budget("per-user-daily", scope={"user": "*"}, window="day", limit_usd="1.50"),
]


def main() -> int:
    seeds = os.environ.get("BEDROCK_BUDGET_REDIS_CLUSTER_URL")
    if not seeds:
        print(
            "set BEDROCK_BUDGET_REDIS_CLUSTER_URL=redis+cluster://host:port[,host:port...]", file=sys.stderr
        )
        return 2
    setting = os.environ.get("BEDROCK_BUDGET_ON_STORE_ERROR", "deny")
    if setting not in ("deny", "allow"):
        print(f"BEDROCK_BUDGET_ON_STORE_ERROR must be deny or allow, not {setting!r}", file=sys.stderr)
        return 2
    policy: Literal["deny", "allow"] = "allow" if setting == "allow" else "deny"
    with Ledger(store_uri(seeds), BUDGETS, on_store_error=policy) as ledger:
        client = bb.wrap(bedrock_client(), ledger=ledger, attribution={"app": "chat"})
        with bb.attribute(tenant=TENANT, user=USER):
            try:
                response = client.converse(
                    modelId=MODEL,
                    messages=[{"role": "user", "content": [{"text": "Draft a two-line status update."}]}],
                    inferenceConfig={"maxTokens": 256},
                )
            except bb.StoreUnavailableError as exc:
                print(f"refused: {exc}")
                return 3
        print(f"output_tokens={response['usage']['outputTokens']}")
        if ledger.flush():  # sends what is queued; how many settlements the cluster has not taken
            print(f"store unavailable; journal_depth={ledger.journal_depth}")
            return 0
        scopes = {"per-tenant-daily": {"tenant": TENANT}, "per-user-daily": {"user": USER}}
        for budget in BUDGETS:
            status = ledger.read(budget.name, scopes.get(budget.name))
            print(f"{budget.name} spent_usd={status.spent_usd} reserved_usd={status.reserved_usd}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
