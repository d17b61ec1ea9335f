"""The compiled price table: price files in, exact costs out.

Price files compile lazily into per-(model, region, route, mode) rate cards of integer femto-dollars per
unit (:mod:`.rate_card`), cached, so pricing one call is two dict lookups and a handful of integer
multiplications. Provisioned Throughput, guardrails and Custom Model Import are priced by
:mod:`.service_features` from the prices this table looks up.
"""

from __future__ import annotations

import datetime as dt
import difflib
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Literal

from bedrock_budget._memo import remember
from bedrock_budget.errors import (
    ConfigurationError,
    ModelResolutionError,
    UnknownModelError,
    UnsupportedPricingError,
    shown,
)
from bedrock_budget.model_ids import ModelRef, Route, parse_model_id, strip_version
from bedrock_budget.pricing.bundled import BUNDLED_PRICES
from bedrock_budget.pricing.cost import Cost
from bedrock_budget.pricing.money import parse_usd
from bedrock_budget.pricing.rate_card import RateCard, compile_rate_card
from bedrock_budget.pricing.schema import (
    CustomModelImportPrices,
    GuardrailPrices,
    ModelSpec,
    PriceEntry,
    PriceFile,
    price_files_in,
    validate_paths,
)
from bedrock_budget.pricing.service_features import (
    Commitment,
    custom_model_import_cost,
    guardrail_cost,
    provisioned_cost,
    provisioned_terms,
)
from bedrock_budget.usage import Usage

__all__ = [
    "DEFAULT_REGION",
    "GOVCLOUD_DEFAULT_REGION",
    "Commitment",
    "Latency",
    "PriceTable",
    "RateCard",
    "ServiceTier",
    "default_price_table",
    "load_price_table",
]

DEFAULT_REGION = "us-east-1"
# us-gov. profiles exist only in AWS GovCloud (US); an id priced without a region is priced there.
GOVCLOUD_DEFAULT_REGION = "us-gov-west-1"
# Rate cards and parsed ids kept per table: emptied once more than 10 000 are held (only endless distinct
# ids or options get there).
_MEMO_ENTRIES = 10_001

ServiceTier = Literal["default", "priority", "flex", "reserved"]
Latency = Literal["standard", "optimized"]


class PriceTable:
    """All known prices. Build one with :func:`load_price_table`; instances are safe to share."""

    def __init__(
        self,
        files: Sequence[PriceFile],
        *,
        discount_percent: Decimal | None = None,
    ) -> None:
        self._models: dict[str, ModelSpec] = {}
        self._aliases: dict[str, str] = {}
        for price_file in files:
            for model in price_file.models:
                # Later files override earlier ones: that is how user files replace bundled entries.
                previous = self._models.get(model.id)
                if previous is not None:
                    for alias in previous.aliases:
                        self._aliases.pop(alias, None)
                self._models[model.id] = model
                for alias in model.aliases:
                    self._aliases[alias] = model.id
        self._by_stripped: dict[str, str | None] = {}
        for ident in (*self._models, *self._aliases):
            key = strip_version(ident)
            target = self._aliases.get(ident, ident)
            existing = self._by_stripped.get(key, target)
            self._by_stripped[key] = target if existing == target else None
        self._guardrails: tuple[GuardrailPrices, ...] = ()
        self._imports: tuple[CustomModelImportPrices, ...] = ()
        for price_file in files:
            if price_file.guardrails:
                self._guardrails = price_file.guardrails
            if price_file.custom_model_import:
                self._imports = price_file.custom_model_import
        self._discount = (
            (Decimal(100) - discount_percent) / Decimal(100) if discount_percent is not None else None
        )
        self._cards: dict[tuple[object, ...], RateCard] = {}
        self._refs: dict[str, tuple[ModelSpec, ModelRef]] = {}
        self._lock = threading.Lock()
        # The UTC day the undated cards were built for, as epoch seconds [start, end).
        self._day = _utc_day_bounds()

    # --- lookup ---------------------------------------------------------------------------------------

    @property
    def models(self) -> Mapping[str, ModelSpec]:
        return self._models

    def providers(self) -> list[str]:
        return sorted({model.provider for model in self._models.values()})

    def priced_regions(self) -> frozenset[str]:
        """Every Region some price names explicitly (token rates that differ from us-east-1, Custom Model
        Import rates), plus us-east-1 itself."""
        regions = {DEFAULT_REGION}
        for model in self._models.values():
            for entry in model.prices:
                regions.update(entry.regions)
        for prices in self._imports:
            regions.update(prices.cmu_minute)
        return frozenset(regions)

    def find(self, base_id: str) -> ModelSpec | None:
        """The model priced under a base id, an alias, or the same id with another ``:N`` version suffix."""
        ident = self._aliases.get(base_id, base_id)
        model = self._models.get(ident)
        if model is None:
            target = self._by_stripped.get(strip_version(base_id))
            model = self._models.get(target) if target else None
        return model

    def model(self, model_id: str) -> ModelSpec:
        """The model behind any id form that names it (base id, ``us.``/``global.`` profile, FM ARN, ...)."""
        return self._lookup(model_id)[0]

    def _lookup(self, model_id: str) -> tuple[ModelSpec, ModelRef]:
        cached = self._refs.get(model_id)
        if cached is not None:
            return cached
        ref = parse_model_id(model_id)
        if ref.base_id is None:
            raise ModelResolutionError(
                model_id,
                f"a {ref.kind.replace('_', ' ')} ARN does not name its model; resolve it first "
                "(bedrock_budget.resolver.ModelResolver, or a static model mapping)",
            )
        model = self.find(ref.base_id)
        if model is None:
            suggestions = difflib.get_close_matches(ref.base_id, list(self._models), n=3, cutoff=0.6)
            raise UnknownModelError(model_id, base_id=ref.base_id, suggestions=suggestions)
        with self._lock:
            remember(self._refs, model_id, (model, ref), _MEMO_ENTRIES)
        return model, ref

    @staticmethod
    def entry_at(model: ModelSpec, at: dt.date) -> PriceEntry:
        return PriceTable.entry_in_force(model, at)[0]

    @staticmethod
    def entry_in_force(model: ModelSpec, at: dt.date) -> tuple[PriceEntry, bool]:
        """The price in force on ``at``, and whether that is assumed: a day before the first price's date,
        when the file says that date is only when the price was first seen (``effective_assumed``)."""
        chosen = None
        for entry in model.prices:
            if entry.effective <= at:
                chosen = entry
        if chosen is not None:
            return chosen, False
        first = model.prices[0]
        if first.effective_assumed:
            return first, True
        raise UnsupportedPricingError(
            model.id,
            "",  # not one dimension: the model had no price at all on that day
            f"no price in force on {at.isoformat()} (first: {first.effective})",
        )

    # --- token, image, video, rerank pricing ------------------------------------------------------------

    def price(
        self,
        model_id: str,
        usage: Usage,
        *,
        region: str | None = None,
        route: Route | None = None,
        batch: bool = False,
        service_tier: ServiceTier = "default",
        latency: Latency = "standard",
        at: dt.date | None = None,
    ) -> Cost:
        """Price one call exactly. ``route`` defaults to what the id says (``global.`` → global, ...).

        ``region`` is the source Region of the call; without one, the Region of an ARN, GovCloud
        (us-gov-west-1) for a ``us-gov.`` profile, else us-east-1.
        """
        # The cached card is looked up here too: this runs once per metered call.
        start, end = self._day
        card = self._cards.get((model_id, region, route, batch, service_tier, latency, at))
        if card is None or (at is None and not start <= time.time() < end):
            card = self.rate_card(
                model_id,
                region=region,
                route=route,
                batch=batch,
                service_tier=service_tier,
                latency=latency,
                at=at,
            )
        return card.price(usage)

    def rate_card(
        self,
        model_id: str,
        *,
        region: str | None = None,
        route: Route | None = None,
        batch: bool = False,
        service_tier: ServiceTier = "default",
        latency: Latency = "standard",
        at: dt.date | None = None,
    ) -> RateCard:
        key = (model_id, region, route, batch, service_tier, latency, at)
        if at is None:
            start, end = self._day
            if not start <= time.time() < end:
                with self._lock:
                    # Another UTC day may bring another price in force: rebuild undated cards. Checked
                    # before building one too, so a card is never kept for a day it was not built in.
                    self._cards = {k: v for k, v in self._cards.items() if k[-1] is not None}
                    self._day = _utc_day_bounds()
        card = self._cards.get(key)
        if card is not None:
            return card
        model, ref = self._lookup(model_id)
        source_region = _source_region(ref, region)
        entry, assumed = self.entry_in_force(model, at or _utc_today())
        card = compile_rate_card(
            model,
            entry,
            assumed,
            region=source_region,
            route=route or ref.route,
            batch=batch,
            service_tier=service_tier,
            latency=latency,
            discount=self._discount,
        )
        with self._lock:
            remember(self._cards, key, card, _MEMO_ENTRIES)
        return card

    # --- capacity and service-feature pricing -----------------------------------------------------------

    def price_provisioned(
        self,
        model_id: str,
        *,
        model_units: int,
        commitment: Commitment,
        hours: Decimal | int,
        region: str = DEFAULT_REGION,
        at: dt.date | None = None,
    ) -> Cost:
        """Provisioned Throughput: model units × hours at the hourly rate of the commitment term."""
        commitment_key, hours_d = provisioned_terms(model_units, commitment, hours)
        model, _ = self._lookup(model_id)
        spec = self.entry_at(model, at or _utc_today()).for_region(region)
        return provisioned_cost(
            model.id,
            spec,
            commitment=commitment,
            commitment_key=commitment_key,
            model_units=model_units,
            hours=hours_d,
            region=region,
            discount=self._discount,
        )

    def price_guardrail(
        self,
        text_units: Mapping[str, int],
        *,
        image_units: Mapping[str, int] | None = None,
        at: dt.date | None = None,
    ) -> Cost:
        """Guardrail policies: text units (up to 1,000 characters each) per policy, priced per 1,000."""
        return guardrail_cost(self._guardrails, at or _utc_today(), text_units, image_units, self._discount)

    def price_custom_model_import(
        self,
        *,
        custom_model_units: int,
        active_windows: int,
        region: str = DEFAULT_REGION,
        storage_months: Decimal | int = 0,
        at: dt.date | None = None,
    ) -> Cost:
        """Custom Model Import: CMUs × active 5-minute windows × the per-CMU-minute rate, plus storage."""
        return custom_model_import_cost(
            self._imports,
            at or _utc_today(),
            custom_model_units=custom_model_units,
            active_windows=active_windows,
            region=region,
            storage_months=storage_months,
            discount=self._discount,
        )


def _source_region(ref: ModelRef, region: str | None) -> str:
    if ref.geo == "us-gov":
        if region is None:
            return GOVCLOUD_DEFAULT_REGION
        if not region.startswith("us-gov-"):
            raise ConfigurationError(
                f"{ref.raw} is a us-gov. profile, which runs only in AWS GovCloud (us-gov-east-1, "
                f"us-gov-west-1), not in {region}"
            )
        return region
    return region or ref.region or DEFAULT_REGION


def _utc_day_bounds() -> tuple[float, float]:
    start = time.time() // 86400 * 86400
    return start, start + 86400


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


_default_table: PriceTable | None = None
_default_lock = threading.Lock()


def load_price_table(
    paths: Iterable[str | Path] | None = None,
    *,
    extra_files: Iterable[str | Path] = (),
    discount_percent: Decimal | str | int | None = None,
) -> PriceTable:
    """Load price files into a table.

    ``paths`` defaults to the bundled price files; ``extra_files`` (files or folders) are layered on top: a
    model there replaces the bundled entry with the same id. ``discount_percent`` (e.g. ``"12.5"`` for a
    negotiated discount) lowers every price by that percentage.
    """
    base = list(paths) if paths is not None else [BUNDLED_PRICES]
    extras = [p for path in extra_files for p in price_files_in(path)]
    bundled_files = validate_paths(base)
    extra = [f for path in extras for f in validate_paths([path])]
    discount = None
    if discount_percent is not None:
        try:
            discount = parse_usd(discount_percent, what="discount_percent")
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        if discount >= 100:
            raise ConfigurationError(f"discount_percent must be below 100, got {shown(discount)}")
    return PriceTable([*bundled_files, *extra], discount_percent=discount)


def default_price_table() -> PriceTable:
    """The bundled price table, loaded once on first use (never at import)."""
    global _default_table
    if _default_table is None:
        with _default_lock:
            if _default_table is None:
                _default_table = load_price_table()
    return _default_table
