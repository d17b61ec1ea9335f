"""Runs in a separate process: calls against a shared request limit, some of them failing before inference."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.errors import BudgetExceededError
from bedrock_budget.stores import from_uri


def calls(
    uri: str,
    prefix: str,
    budget: Mapping[str, Any],
    attempts: int,
    release_every: int,
    options: Mapping[str, Any],
    start: Any,
    results: Any,
) -> None:
    """``attempts`` reservations; with ``release_every=n`` every n-th attempt that is admitted is released
    (Bedrock failed before inference), the others settled. Reports (settled, released, refused)."""
    store = from_uri(uri, prefix=prefix)
    ledger = Ledger(store, [Budget(**budget)], **options)
    settled = released = refused = 0
    try:
        start.wait(30)
        for attempt in range(attempts):
            try:
                reservation = ledger.reserve({"user": "anyone"}, "model", None, 1000, {"output": 1})
            except BudgetExceededError:
                refused += 1
                continue
            if release_every and attempt % release_every == release_every - 1:
                ledger.release(reservation)
                released += 1
            else:
                ledger.settle(reservation, 900, {"output": 1})
                settled += 1
    finally:
        ledger.close()
        store.close()
    results.put((settled, released, refused))
