"""Budgets shared by every worker and host through Redis.

With the default ``memory://`` store each process counts on its own, so ten workers could each spend the
whole budget. Pointing every process at the same Redis makes them share one counter per budget: the
worst case of each call is reserved there atomically (one Lua script) before the call goes out.

Settings shown here, and why:

* ``prefix``: every key this app writes starts with it, so several apps or environments can share one
  Redis (and ``SCAN prefix*`` finds exactly this app's counters).
* ``socket_timeout`` / ``connect_timeout`` / ``retries``: the store sits on the hot path of every call;
  a few hundred milliseconds is the most a dead Redis may add before the outage policy decides, and
  only to the first calls: the store's circuit breaker then applies the policy at once until Redis
  answers again.
* ``on_store_error``: ``"deny"`` (default) refuses calls while Redis is unreachable - nothing can be
  spent unchecked. ``"allow"`` lets calls through and journals their spend locally, replayed into Redis
  once it answers again; pick it when availability matters more than a hard cap.

Run against the Redis on 127.0.0.1:6379 (any Redis ≥ 6 or Valkey; ``make services`` starts one)::

    python examples/redis_store.py

Environment: ``BEDROCK_BUDGET_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``),
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

MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
USER = "u-17"


def bedrock_client() -> Any:
    # An unset BEDROCK_ENDPOINT_URL means boto3's regional endpoint, so one script serves AWS and the fake.
    return boto3.client(
        "bedrock-runtime",
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_url=os.environ.get("BEDROCK_ENDPOINT_URL") or None,
    )


def store_uri() -> str:
    base = os.environ.get("BEDROCK_BUDGET_REDIS_URL", "redis://127.0.0.1:6379/0")
    # Store options ride in the query string, so one URI in a config file or secret says everything.
    options = {
        "prefix": os.environ.get("BEDROCK_BUDGET_KEY_PREFIX", "chat-prod:bb:"),
        "socket_timeout": "0.25",
        "connect_timeout": "0.25",
        "retries": "1",
    }
    return f"{base}{'&' if '?' in base else '?'}{urlencode(options)}"


BUDGETS = [
    bb.Budget("chat-app-daily", scope={"app": "chat"}, window="day", limit_usd="120.00"),
    bb.Budget("per-user-daily", scope={"user": "*"}, window="day", limit_usd="1.50"),
]


def print_record(record: bb.CallRecord) -> None:
    print(f"{record.operation} model={record.model_id} outcome={record.outcome} cost_usd={record.cost_usd}")


def main() -> int:
    setting = os.environ.get("BEDROCK_BUDGET_ON_STORE_ERROR", "deny")
    if setting not in ("deny", "allow"):
        print(f"BEDROCK_BUDGET_ON_STORE_ERROR must be deny or allow, not {setting!r}", file=sys.stderr)
        return 2
    policy: Literal["deny", "allow"] = "allow" if setting == "allow" else "deny"
    # The ledger owns the store it opened from the URI and closes it, after a last journal replay.
    with Ledger(store_uri(), BUDGETS, on_store_error=policy) as ledger:
        client = bb.wrap(
            bedrock_client(),
            ledger=ledger,
            attribution={"app": "chat"},
            listeners=[print_record],
        )
        with bb.attribute(user=USER):
            for question in ("What is a hash slot?", "And a hash tag?"):
                try:
                    client.converse(
                        modelId=MODEL,
                        messages=[{"role": "user", "content": [{"text": question}]}],
                        inferenceConfig={"maxTokens": 256},
                    )
                except bb.StoreUnavailableError as exc:
                    print(f"refused: {exc}")
                    return 3
        # Send what is still queued (each call's spend-ledger entry goes out in a background batch) and
        # replay the journal if Redis answers; flush() says how many settlements Redis has not taken.
        if ledger.flush():
            # Outage under "allow": the calls went out; their spend (two entries per call: its budgets'
            # spend and its spend-ledger entry) waits here for Redis to come back.
            print(f"store unavailable; journal_depth={ledger.journal_depth}")
            return 0
        user = ledger.read("per-user-daily", {"user": USER})
        app = ledger.read("chat-app-daily")
        print(f"user_spent_usd={user.spent_usd} app_spent_usd={app.spent_usd} resets_at={user.resets_at}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
