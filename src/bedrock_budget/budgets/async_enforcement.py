"""The budget layer of the async client: :class:`~bedrock_budget.budgets.enforcement.BudgetGuard` over an
:class:`~bedrock_budget.budgets.async_ledger.AsyncLedger`, with the reservation awaited.

Estimating, clamping, downgrading and the metrics reports are the sync guard's own methods; only the
ledger call differs. Settling and releasing are the sync guard's too: the async ledger's ``settle`` and
``release`` queue their store work for a loop task and return at once, so the driver's (sync) steps after
the call never wait on the store.

With ``count_tokens=True`` the CountTokens call is awaited on the unwrapped aiobotocore client, through
the sync guard's cache and fallback rules (:mod:`bedrock_budget.budgets.token_counts`). It comes before
the reservation, so a call cancelled while Bedrock counts holds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bedrock_budget.budget_options import LEDGER_OPTION_NAMES
from bedrock_budget.budgets.async_ledger import AsyncLedger
from bedrock_budget.budgets.enforcement import BudgetGuard, counted_model, usage_tokens
from bedrock_budget.budgets.live import StoreBudgets, budgets_option
from bedrock_budget.budgets.model import Budget
from bedrock_budget.errors import BedrockBudgetError, ConfigurationError
from bedrock_budget.pipeline.context import Admission, CallContext
from bedrock_budget.pricing.table import PriceTable

__all__ = ["AsyncBudgetGuard", "build_async_guard"]

#: The ledger options an ``AsyncLedger`` takes from ``wrap()`` as they are (``settle_mode`` is checked apart).
_LEDGER_OPTIONS = tuple(n for n in LEDGER_OPTION_NAMES if n != "settle_mode")


class AsyncBudgetGuard(BudgetGuard):
    """The async driver's budget hooks: ``await guard.admit_async(ctx, kwargs)`` before the call."""

    ledger: AsyncLedger

    def __init__(self, ledger: AsyncLedger, price_table: PriceTable, *, count_tokens: bool = False) -> None:
        super().__init__(ledger, price_table, count_tokens=count_tokens)

    async def admit_async(self, ctx: CallContext, kwargs: Mapping[str, Any]) -> Admission:
        """:meth:`BudgetGuard.admit` with the CountTokens call and the reservation awaited."""
        try:
            cost_nanos, usage, model_id, family = self._estimate(
                ctx, await self._exact_input_async(ctx, kwargs)
            )
            reservation = await self.ledger.reserve(
                ctx.attribution, model_id, family, cost_nanos, usage_tokens(usage)
            )
        except BedrockBudgetError as exc:
            return self._not_admitted(ctx, exc)
        finally:
            self._report("reserve")
        return self._admitted(reservation, usage, cost_nanos)

    async def _exact_input_async(self, ctx: CallContext, kwargs: Mapping[str, Any]) -> int | None:
        """:meth:`BudgetGuard._exact_input` with CountTokens awaited on the unwrapped async client."""
        counts, model_id = self._token_counts, counted_model(ctx)
        if counts is None or model_id is None:
            return None
        return await counts.count_async(ctx.client, model_id, ctx.operation.name, kwargs)


def build_async_guard(options: Mapping[str, Any]) -> AsyncBudgetGuard:
    """``wrap()``'s budget keywords for an async client → a guard over an :class:`AsyncLedger`."""
    options = dict(options)
    price_table: PriceTable = options.pop("price_table")
    count_tokens = bool(options.pop("count_tokens", False))
    mode = options.pop("settle_mode", None)
    if mode not in (None, "background"):
        raise ConfigurationError(
            f"settle_mode={mode!r}: async clients always settle in batches from a loop task ('background')"
        )
    ledger = options.pop("ledger", None)
    ledger_options = {key: options.pop(key) for key in _LEDGER_OPTIONS if key in options}
    store = options.pop("store", None)
    given: Iterable[Budget] | str | Path | StoreBudgets = options.pop("budgets", ())
    budgets, follow = budgets_option(given, store=store, ledger=ledger)
    if options:
        raise ConfigurationError(f"unknown wrap() option(s): {', '.join(sorted(options))}")
    if ledger is not None:
        if ledger_options or budgets or store is not None:
            raise ConfigurationError("give either ledger= or store=/budgets=/on_store_error=, not both")
        if not isinstance(ledger, AsyncLedger):
            kind = type(ledger).__name__
            raise ConfigurationError(f"an async client needs a budgets.AsyncLedger, got {kind}")
    else:
        if isinstance(budgets, str | Path):
            from bedrock_budget.budgets.loading import load_budgets

            budgets = load_budgets(budgets)
        ledger = AsyncLedger(store if store is not None else "memory://", list(budgets), **ledger_options)
        if follow is not None:
            # A URI: the follower opens a sync connection of its own; a sync store: the one behind it.
            ledger.follow_published(follow.refresh_seconds, store=store if isinstance(store, str) else None)
    return AsyncBudgetGuard(ledger, price_table, count_tokens=count_tokens)
