"""Runs in a separate process: hammer one shared budget through a ledger on a shared store."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.errors import BudgetExceededError
from bedrock_budget.stores import from_uri


def hammer(
    uri: str,
    prefix: str,
    limit_usd: str,
    cost: int,
    ops: int,
    start: Any,
    results: Any,
    options: Mapping[str, Any] = MappingProxyType({}),
) -> None:
    store = from_uri(uri, prefix=prefix)
    ledger = Ledger(store, [Budget("shared", window="lifetime", limit_usd=limit_usd)], **options)
    granted = refused = 0
    try:
        start.wait(30)
        for _ in range(ops):
            try:
                reservation = ledger.reserve({"user": "anyone"}, "model", None, cost, {"output": 1})
            except BudgetExceededError:
                refused += 1
                continue
            granted += 1
            ledger.settle(reservation, cost, {"output": 1})
    finally:
        # Closing settles this process's leases and queued settlements before the parent reads the store.
        ledger.close()
        store.close()
    results.put((granted, refused))
