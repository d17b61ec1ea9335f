"""Budget enforcement in the call pipeline: estimate the worst case, reserve it, settle or release it.

Installed into ``wrap()`` / ``instrument()`` when they are given ``budgets=``, ``store=`` or ``ledger=``.
A refused call raises :class:`~bedrock_budget.errors.BudgetExceededError` before any byte goes to Bedrock.
A ``downgrade`` budget switches the call to its cheaper model (re-estimated, re-reserved) — for Converse
and ConverseStream, and for InvokeModel only within one model family, since other families need another
request body.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bedrock_budget.alerts.model import Alert
from bedrock_budget.budget_options import LEDGER_OPTION_NAMES
from bedrock_budget.budgets.clamping import fits, largest_fitting, minimum_output
from bedrock_budget.budgets.ledger import Ledger, OutagePolicy
from bedrock_budget.budgets.live import StoreBudgets, budgets_option
from bedrock_budget.budgets.model import Budget
from bedrock_budget.budgets.outcomes import Refusal, Reservation
from bedrock_budget.budgets.token_counts import TokenCountCache
from bedrock_budget.errors import (
    BedrockBudgetError,
    ClampRequiredError,
    ConfigurationError,
    DowngradeRequiredError,
    UnknownModelError,
)
from bedrock_budget.extract.estimate import worst_case_usage
from bedrock_budget.extract.request import inspect_request
from bedrock_budget.extract.types import RequestInfo
from bedrock_budget.pipeline.context import Admission, Admitted, CallContext, Clamp, Downgrade, Refused
from bedrock_budget.pricing.cost import Cost
from bedrock_budget.pricing.table import PriceTable
from bedrock_budget.stores.base import Store
from bedrock_budget.usage import Usage

if TYPE_CHECKING:
    from bedrock_budget.budgets.async_ledger import AsyncLedger


def usage_tokens(usage: Usage) -> dict[str, int]:
    """Token counts by type, as budgets weigh them."""
    return {
        "input": usage.input_tokens,
        "output": usage.output_tokens,
        "cache_read": usage.cache_read_tokens,
        "cache_write": usage.cache_write_tokens,
    }


class StoreObserver(Protocol):
    """Told about failed store operations and the local journal (e.g. the Prometheus store metrics)."""

    def error(self, operation: str, kind: str = "error") -> None: ...

    def journal(self, *, depth: int, dropped: int = 0, file_errors: int = 0) -> None: ...

    def leases(self, *, live: int, taken: int = 0, refused: int = 0) -> None: ...

    def reservation_exceeded(self, budget: str, *, count: int, excess_nanos: int) -> None: ...

    def renewals(self, *, renewed: int = 0, failed: int = 0, overdue: int = 0) -> None: ...

    def unattributed(self, budget: str, policy: str, *, count: int) -> None: ...


class BudgetGuard:
    """The wrapper's budget hooks over one :class:`Ledger`."""

    def __init__(
        self, ledger: Ledger | AsyncLedger, price_table: PriceTable, *, count_tokens: bool = False
    ) -> None:
        self.ledger = ledger
        self.price_table = price_table
        self._token_counts = TokenCountCache() if count_tokens else None
        self._observers: tuple[StoreObserver, ...] = ()
        # The ledger's running counts as last reported, so each report passes on only what is new.
        self._seen: dict[str, int] = dict(_ledger_counts(ledger))
        self._seen_overrun_version = ledger.overruns.version
        self._seen_overruns = ledger.overruns.totals()
        self._seen_unattributed_version = ledger.unattributed.version
        self._seen_unattributed = ledger.unattributed.totals()
        self._report_lock = threading.Lock()

    def add_store_observer(self, observer: StoreObserver) -> None:
        self._observers = (*self._observers, observer)

    def _report(self, operation: str) -> None:
        """Pass on what the ledger counted during one operation: store failures and the journal."""
        if not self._observers:
            return
        ledger = self.ledger
        with self._report_lock:
            new: dict[str, int] = {}
            for name, count in _ledger_counts(ledger):
                new[name] = count - self._seen[name]
                self._seen[name] = count
            overruns = self._new_overruns()
            unattributed = self._new_unattributed()
        leasing = ledger.lease_fraction is not None
        renewals = new["holds_renewed"] or new["renewal_failures"] or new["overdue_calls"]
        for observer in self._observers:
            for _ in range(new["store_errors"]):
                observer.error(operation, "unavailable")
            observer.journal(
                depth=ledger.journal_depth,
                dropped=new["journal_dropped"],
                file_errors=new["journal_file_errors"],
            )
            if leasing:
                observer.leases(
                    live=ledger.leases_live, taken=new["leases_taken"], refused=new["leases_refused"]
                )
            if renewals:
                observer.renewals(
                    renewed=new["holds_renewed"], failed=new["renewal_failures"], overdue=new["overdue_calls"]
                )
            for budget, (count, excess) in overruns.items():
                observer.reservation_exceeded(budget, count=count, excess_nanos=excess)
            for (budget, policy), count in unattributed.items():
                observer.unattributed(budget, policy, count=count)

    def _new_unattributed(self) -> dict[tuple[str, str], int]:
        """Unattributed calls counted since the last report (caller holds the report lock)."""
        tally = self.ledger.unattributed
        if tally.version == self._seen_unattributed_version:
            return {}
        self._seen_unattributed_version = tally.version
        totals = tally.totals()
        seen = self._seen_unattributed
        self._seen_unattributed = totals
        return {key: count - seen.get(key, 0) for key, count in totals.items() if count != seen.get(key, 0)}

    def _new_overruns(self) -> dict[str, tuple[int, int]]:
        """Overruns counted since the last report, per budget (caller holds the report lock)."""
        tally = self.ledger.overruns
        if tally.version == self._seen_overrun_version:
            return {}
        self._seen_overrun_version = tally.version
        totals = tally.totals()
        seen = self._seen_overruns
        new = {
            name: (
                total.count - seen[name].count if name in seen else total.count,
                total.excess_nanos - seen[name].excess_nanos if name in seen else total.excess_nanos,
            )
            for name, total in totals.items()
        }
        self._seen_overruns = totals
        return {name: delta for name, delta in new.items() if delta[0]}

    def admit(self, ctx: CallContext, kwargs: Mapping[str, Any]) -> Admission:
        """Reserve the call's worst case against every budget that applies, or say why it may not go out."""
        try:
            cost_nanos, usage, model_id, family = self._estimate(ctx, self._exact_input(ctx, kwargs))
            ledger = self.ledger
            if not isinstance(ledger, Ledger):
                raise ConfigurationError("this budget layer serves async clients: await admit_async()")
            reservation = ledger.reserve(ctx.attribution, model_id, family, cost_nanos, usage_tokens(usage))
        except BedrockBudgetError as exc:
            return self._not_admitted(ctx, exc)
        finally:
            self._report("reserve")
        return self._admitted(reservation, usage, cost_nanos)

    def _not_admitted(self, ctx: CallContext, exc: BedrockBudgetError) -> Admission:
        """The decision a refusal from the estimate or the ledger stands for."""
        if isinstance(exc, DowngradeRequiredError):
            return Downgrade(exc)
        if isinstance(exc, ClampRequiredError):
            return self._clamp(ctx, exc)
        return Refused(exc)

    @staticmethod
    def _admitted(reservation: Reservation, usage: Usage, cost_nanos: int) -> Admitted:
        warnings = tuple(refusal.budget.name for refusal in reservation.warnings)
        return Admitted(reservation, usage, cost_nanos, warnings)

    def _clamp(self, ctx: CallContext, error: ClampRequiredError) -> Admission:
        """The largest output cap whose worst case fits every refusing ``clamp`` budget, if it is at least
        their ``min_output_tokens``; otherwise the refusal stands. Counts input at its bound (no CountTokens
        round trip per candidate), so it never admits more than fits."""
        refusals = [r for r in error.refusals if isinstance(r, Refusal)]
        request, resolved = ctx.request, ctx.resolved
        model = self.price_table.find(resolved.base_id) if resolved is not None else None
        if request is None or model is None or not refusals:
            return Refused(error)
        current = worst_case_usage(request, model_max_output_tokens=model.max_output_tokens).output_tokens

        def fit(max_output_tokens: int) -> bool:
            capped = dataclasses.replace(request, max_output_tokens=max_output_tokens)
            cost_nanos, usage = self._worst_case(ctx, capped)
            return fits(refusals, cost_nanos, usage_tokens(usage))

        try:
            cap = largest_fitting(minimum_output(refusals), current - 1, fit)
        except BedrockBudgetError:  # a model this table cannot price per call: the refusal stands
            cap = None
        if cap is None:
            return Refused(error)
        return Clamp(error, cap, request.max_output_tokens or current)

    def _worst_case(self, ctx: CallContext, request: RequestInfo) -> tuple[int, Usage]:
        """The worst case of a priceable on-demand call as ``request`` describes it."""
        resolved = ctx.resolved
        assert resolved is not None
        model = self.price_table.find(resolved.base_id)
        usage = worst_case_usage(request, model_max_output_tokens=model.max_output_tokens if model else None)
        return self._price(ctx, request, resolved.base_id, resolved.route, usage).total_nanos, usage

    def _exact_input(self, ctx: CallContext, kwargs: Mapping[str, Any]) -> int | None:
        """The call's input tokens as Bedrock's CountTokens counts them, when enabled and it can tell."""
        counts, model_id = self._token_counts, counted_model(ctx)
        if counts is None or model_id is None:
            return None
        return counts.count(ctx.client, model_id, ctx.operation.name, kwargs)

    def _estimate(self, ctx: CallContext, exact_input: int | None) -> tuple[int, Usage, str, str | None]:
        """The worst case of the call in nano-dollars and tokens, and the model it is counted under.
        ``exact_input``: the input tokens CountTokens gave for the call (None: reserve the estimate)."""
        request = (
            ctx.request if ctx.request is not None else inspect_request(ctx.operation.name, ctx.family, {})
        )
        resolved = ctx.resolved
        if not ctx.operation.has_model:
            usage = worst_case_usage(request, model_max_output_tokens=None)
            cost = self.price_table.price_guardrail(
                {k: v for k, v in usage.guardrail_text_units.items() if not k.endswith("_image")}
            )
            return cost.total_nanos, usage, "guardrail", None
        if resolved is None:
            if self._dollar_budget_applies(ctx):
                raise UnknownModelError(ctx.requested_model_id, base_id=None)
            usage = worst_case_usage(request, model_max_output_tokens=None)
            return 0, usage, ctx.requested_model_id, None
        model = self.price_table.find(resolved.base_id)
        usage = worst_case_usage(request, model_max_output_tokens=model.max_output_tokens if model else None)
        if exact_input is not None:
            usage = _with_exact_input(usage, exact_input)
        family = model.family if model else None
        if model is None:
            if self._dollar_budget_applies(ctx, resolved.base_id):
                raise UnknownModelError(resolved.base_id, base_id=resolved.base_id)
            return 0, usage, resolved.base_id, family
        if resolved.pricing_mode in ("provisioned", "custom_model_import"):
            return 0, usage, resolved.base_id, family
        cost = self._price(ctx, request, resolved.base_id, resolved.route, usage)
        return cost.total_nanos, usage, resolved.base_id, family

    def _price(self, ctx: CallContext, request: RequestInfo, base_id: str, route: str, usage: Usage) -> Cost:
        try:
            return self.price_table.price(
                base_id,
                usage,
                region=ctx.region,
                route=route,  # type: ignore[arg-type]
                service_tier=_requested(request.service_tier, "default"),  # type: ignore[arg-type]
                latency=_requested(request.latency, "standard"),  # type: ignore[arg-type]
            )
        except BedrockBudgetError:
            # A requested tier or latency the price table does not offer: reserve at the standard rate.
            return self.price_table.price(base_id, usage, region=ctx.region, route=route)  # type: ignore[arg-type]

    def _dollar_budget_applies(self, ctx: CallContext, model_id: str | None = None) -> bool:
        return any(
            budget.limit_usd is not None
            for budget, _ in self.ledger.matching(ctx.attribution, model_id or ctx.requested_model_id, None)
        )

    def settle(self, ctx: CallContext, cost: Cost | None, usage: Usage) -> None:
        hold = ctx.hold
        if hold is None:
            return
        # An unpriceable result keeps the reserved worst case: recorded spend must never understate.
        nanos = cost.total_nanos if cost is not None else ctx.reserved_nanos
        try:
            self.ledger.settle(hold, nanos, usage_tokens(usage))
        finally:
            self._report("settle")

    def on_overdue(self, ctx: CallContext, callback: Callable[[], None]) -> None:
        if ctx.hold is not None:
            self.ledger.on_overdue(ctx.hold, callback)

    def release(self, ctx: CallContext) -> None:
        if ctx.hold is not None:
            try:
                self.ledger.release(ctx.hold)
            finally:
                self._report("release")


# Running counts of the ledger that observers hear about as increments.
_LEDGER_COUNTS = (
    "store_errors",
    "journal_dropped",
    "journal_file_errors",
    "leases_taken",
    "leases_refused",
    "holds_renewed",
    "renewal_failures",
    "overdue_calls",
)


def _ledger_counts(ledger: Ledger | AsyncLedger) -> Iterator[tuple[str, int]]:
    for name in _LEDGER_COUNTS:
        yield name, int(getattr(ledger, name))


def counted_model(ctx: CallContext) -> str | None:
    """The model whose CountTokens would count this call's input: the resolved one, asked through the
    unwrapped client the call itself goes out on, so the count never passes through the meter."""
    if ctx.client is None or ctx.resolved is None or not ctx.operation.has_model:
        return None
    return ctx.resolved.base_id


def _requested(value: str | None, default: str) -> str:
    return value or default


def _with_exact_input(usage: Usage, exact: int) -> Usage:
    if usage.cache_write_tokens:
        # Cache points: the whole prompt may be written to the cache, the dearest reading.
        return Usage(
            output_tokens=usage.output_tokens,
            cache_write_tokens=exact,
            cache_write_1h_tokens=exact if usage.cache_write_1h_tokens else 0,
            images=usage.images,
            image_size=usage.image_size,
            image_quality=usage.image_quality,
        )
    return Usage(
        input_tokens=exact,
        output_tokens=usage.output_tokens,
        images=usage.images,
        image_size=usage.image_size,
        image_quality=usage.image_quality,
    )


def build_guard(options: Mapping[str, Any]) -> BudgetGuard | None:
    """``wrap()``'s budget keywords → a guard. Unknown keywords are configuration errors."""
    options = dict(options)
    price_table: PriceTable = options.pop("price_table")
    ledger = options.pop("ledger", None)
    count_tokens = bool(options.pop("count_tokens", False))
    ledger_options: dict[str, Any] = {}
    for key in LEDGER_OPTION_NAMES:
        if key in options:
            ledger_options[key] = options.pop(key)
    store: Store | str | None = options.pop("store", None)
    given: Iterable[Budget] | str | Path | StoreBudgets = options.pop("budgets", ())
    budgets, follow = budgets_option(given, store=store, ledger=ledger)
    if options:
        raise ConfigurationError(f"unknown wrap() option(s): {', '.join(sorted(options))}")
    if ledger is not None:
        if ledger_options or budgets or store is not None:
            raise ConfigurationError("give either ledger= or store=/budgets=/on_store_error=, not both")
        if not isinstance(ledger, Ledger):
            raise ConfigurationError(f"ledger must be a bedrock_budget Ledger, got {type(ledger).__name__}")
    else:
        if isinstance(budgets, str | Path):
            from bedrock_budget.budgets.loading import load_budgets

            budgets = load_budgets(budgets)
        policy: OutagePolicy = ledger_options.pop("on_store_error", "deny")
        uri = store if store is not None else "memory://"
        ledger = Ledger(uri, list(budgets), on_store_error=policy, **ledger_options)
        if follow is not None:
            ledger.follow_published(follow.refresh_seconds)
    return BudgetGuard(ledger, price_table, count_tokens=count_tokens)


__all__ = ["Alert", "BudgetGuard", "build_guard", "usage_tokens"]
