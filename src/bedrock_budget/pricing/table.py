"""The compiled price table: price files in, exact costs out.

Price files compile lazily into per-(model, region, route, mode) rate cards of integer femto-dollars per
unit, cached, so pricing one call is two dict lookups and a handful of integer multiplications.
"""

from __future__ import annotations

import datetime as dt
import difflib
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Literal, TypeVar

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
from bedrock_budget.pricing.cost import ContextValue, Cost, RawLine
from bedrock_budget.pricing.money import FEMTO_PER_USD, parse_usd, usd_to_femto
from bedrock_budget.pricing.schema import (
    CustomModelImportPrices,
    GuardrailPrices,
    ImageBand,
    ModelSpec,
    PriceEntry,
    PriceFile,
    PriceSpec,
    TokenRates,
    price_files_in,
    validate_paths,
)
from bedrock_budget.usage import Usage

DEFAULT_REGION = "us-east-1"
# us-gov. profiles exist only in AWS GovCloud (US); an id priced without a region is priced there.
GOVCLOUD_DEFAULT_REGION = "us-gov-west-1"
_PER_MILLION = 1_000_000
# Rate cards and parsed ids kept per table: emptied once more than 10 000 are held (only endless distinct
# ids or options get there).
_MEMO_ENTRIES = 10_001

ServiceTier = Literal["default", "priority", "flex", "reserved"]
Latency = Literal["standard", "optimized"]
Commitment = Literal["none", "1-month", "6-month"]
_Dated = TypeVar("_Dated", GuardrailPrices, CustomModelImportPrices)
_COMMITMENT_KEYS: dict[str, str] = {"none": "no_commit", "1-month": "one_month", "6-month": "six_month"}
# Image models generate 1024x1024 unless asked otherwise; a call that does not say is priced at that size.
_DEFAULT_IMAGE_PIXELS = 1024 * 1024


@dataclass(frozen=True, slots=True)
class _ImageRate:
    pixels: int | None
    quality: str | None
    femto: int
    label: str


@dataclass(frozen=True, slots=True)
class RateCard:
    """Femto-dollars per unit for one (model, region, route, tier, latency, batch) combination."""

    model_id: str
    input: int
    output: int
    cache_read: int
    cache_write_5m: int
    cache_write_1h: int
    long_threshold: int | None
    long_card: RateCard | None
    images: tuple[_ImageRate, ...]
    video_second: int
    rerank_query: int
    context: Mapping[str, ContextValue]

    def price(self, usage: Usage) -> Cost:
        card = self
        if (
            self.long_card is not None
            and self.long_threshold is not None
            and usage.prompt_tokens > self.long_threshold
        ):
            card = self.long_card
        cache_1h = usage.cache_write_1h_tokens
        total = (
            usage.input_tokens * card.input
            + usage.output_tokens * card.output
            + usage.cache_read_tokens * card.cache_read
            + (usage.cache_write_tokens - cache_1h) * card.cache_write_5m
            + cache_1h * card.cache_write_1h
        )
        image_line: RawLine | None = None
        if usage.images:
            image = card.image_rate(usage.image_size, usage.image_quality)
            image_line = (f"images ({image.label})", usage.images, image.femto, 1)
            total += usage.images * image.femto
        if usage.video_seconds:
            total += usage.video_seconds * card.video_second
        if usage.rerank_queries:
            total += usage.rerank_queries * card.rerank_query
        return Cost(card.model_id, total, lambda: card._raw_lines(usage, image_line), card.context)

    def _raw_lines(self, usage: Usage, image_line: RawLine | None) -> tuple[RawLine, ...]:
        lines: list[RawLine] = [
            ("input_tokens", usage.input_tokens, self.input, _PER_MILLION),
            ("output_tokens", usage.output_tokens, self.output, _PER_MILLION),
            ("cache_read_tokens", usage.cache_read_tokens, self.cache_read, _PER_MILLION),
            ("cache_write_5m_tokens", usage.cache_write_5m_tokens, self.cache_write_5m, _PER_MILLION),
            ("cache_write_1h_tokens", usage.cache_write_1h_tokens, self.cache_write_1h, _PER_MILLION),
        ]
        if image_line is not None:
            lines.append(image_line)
        lines.append(("video_seconds", usage.video_seconds, self.video_second, 1))
        lines.append(("rerank_queries", usage.rerank_queries, self.rerank_query, 1000))
        return tuple(lines)

    def image_rate(self, size: str | None, quality: str | None) -> _ImageRate:
        if not self.images:
            raise UnsupportedPricingError(self.model_id, "image")
        pixels = _DEFAULT_IMAGE_PIXELS if size is None else _parse_size(self.model_id, size)
        wanted_quality = quality or "standard"
        candidates = [r for r in self.images if r.quality in (None, wanted_quality)]
        if not candidates:
            raise UnsupportedPricingError(self.model_id, "image", f"no {wanted_quality!r} quality price")
        covering = [r for r in candidates if r.pixels is None or r.pixels >= pixels]
        if not covering:
            largest = max(r.pixels or 0 for r in candidates)
            raise UnsupportedPricingError(
                self.model_id, "image", f"no price for {size}; the largest priced size has {largest} pixels"
            )
        return min(covering, key=lambda r: (r.pixels is None, r.pixels or 0))


def _parse_size(model_id: str, size: str) -> int:
    width, sep, height = size.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise UnsupportedPricingError(model_id, "image", f"image size {size!r} is not WIDTHxHEIGHT")
    return int(width) * int(height)


def _merge_rates(base: TokenRates, override: TokenRates | None) -> TokenRates:
    if override is None:
        return base
    return TokenRates(
        **{
            name: getattr(override, name) if getattr(override, name) is not None else getattr(base, name)
            for name in TokenRates.__slots__
        }
    )


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
        card = self._cards.get(key)
        if card is not None:
            start, end = self._day
            if at is not None or start <= time.time() < end:
                return card
            with self._lock:
                # A new UTC day may bring a newly effective price: rebuild undated cards.
                self._cards = {k: v for k, v in self._cards.items() if k[-1] is not None}
                self._day = _utc_day_bounds()
        model, ref = self._lookup(model_id)
        card = self._build_card(
            model,
            region=_source_region(ref, region),
            route=route or ref.route,
            batch=batch,
            service_tier=service_tier,
            latency=latency,
            at=at or _utc_today(),
        )
        with self._lock:
            remember(self._cards, key, card, _MEMO_ENTRIES)
        return card

    def _build_card(
        self,
        model: ModelSpec,
        *,
        region: str,
        route: Route,
        batch: bool,
        service_tier: str,
        latency: str,
        at: dt.date,
    ) -> RateCard:
        entry, assumed = self.entry_in_force(model, at)
        spec = entry.for_region(region)
        context: dict[str, ContextValue] = {
            "region": region,
            "route": route,
            "batch": batch,
            "service_tier": service_tier,
            "latency": latency,
            "price_effective": entry.effective.isoformat(),
            "region_priced": region if region in entry.regions else "default",
        }
        if assumed:
            context["price_effective_assumed"] = True
        batch_multiplier = Decimal(1)
        if batch and spec.batch_multiplier is not None:
            # A fraction of the on-demand price of this route, region and (below) long-context tier.
            batch_multiplier = spec.batch_multiplier
            rates = _merge_rates(spec.rates, spec.routes.get(route))
        elif batch:
            if spec.batch is None:
                raise UnsupportedPricingError(
                    model.id, "batch", "this model is not offered for batch inference"
                )
            # Validation keeps written batch rates to entries without routes and long-context tiers.
            rates = _merge_rates(spec.rates, spec.batch)
        else:
            rates = _merge_rates(spec.rates, spec.routes.get(route))
        if latency == "optimized":
            if spec.latency_optimized is None:
                raise UnsupportedPricingError(model.id, "latency-optimized", "not offered for this model")
            rates = _merge_rates(rates, spec.latency_optimized)
        elif latency != "standard":
            raise ConfigurationError(f"latency must be 'standard' or 'optimized', got {latency!r}")
        multiplier = self._tier_multiplier(model, spec, service_tier) * batch_multiplier
        if self._discount is not None:
            multiplier *= self._discount
        long_card = None
        threshold = None
        if spec.long_context is not None and (not batch or spec.batch_multiplier is not None):
            threshold = spec.long_context.threshold_tokens
            long_rates = _merge_rates(rates, spec.route_long_context.get(route, spec.long_context.rates))
            long_card = self._card_from(
                model, spec, long_rates, multiplier, {**context, "long_context": True}
            )
        card = self._card_from(model, spec, rates, multiplier, context)
        return replace(card, long_threshold=threshold, long_card=long_card)

    @staticmethod
    def _tier_multiplier(model: ModelSpec, spec: PriceSpec, service_tier: str) -> Decimal:
        if service_tier in ("default", "reserved"):
            return Decimal(1)
        if service_tier not in ("priority", "flex"):
            raise ConfigurationError(
                f"service tier must be default, priority, flex or reserved, got {service_tier!r}"
            )
        factor = spec.service_tiers.get(service_tier)
        if factor is None:
            raise UnsupportedPricingError(
                model.id, f"{service_tier} service tier", "not offered for this model"
            )
        return factor

    def _card_from(
        self,
        model: ModelSpec,
        spec: PriceSpec,
        rates: TokenRates,
        multiplier: Decimal,
        context: Mapping[str, ContextValue],
    ) -> RateCard:
        def per_token(value: Decimal | None) -> int:
            return 0 if value is None else usd_to_femto(value * multiplier, _PER_MILLION)

        def per_unit(value: Decimal | None, per: int = 1) -> int:
            return 0 if value is None else usd_to_femto(value * multiplier, per)

        cache_write_5m = rates.cache_write_5m if rates.cache_write_5m is not None else rates.input
        return RateCard(
            model_id=model.id,
            input=per_token(rates.input),
            output=per_token(rates.output),
            cache_read=per_token(rates.cache_read if rates.cache_read is not None else rates.input),
            cache_write_5m=per_token(cache_write_5m),
            cache_write_1h=per_token(
                rates.cache_write_1h if rates.cache_write_1h is not None else cache_write_5m
            ),
            long_threshold=None,
            long_card=None,
            images=tuple(_image_rate(band, per_unit(band.usd)) for band in spec.images),
            video_second=per_unit(spec.video_second),
            rerank_query=per_unit(spec.rerank_per_1000_queries, 1000),
            context=context,
        )

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
        _require_positive("model_units", model_units)
        hours_d = _non_negative_decimal("hours", hours)
        key = _COMMITMENT_KEYS.get(commitment)
        if key is None:
            raise ConfigurationError(f"commitment must be none, 1-month or 6-month, got {commitment!r}")
        model, _ = self._lookup(model_id)
        spec = self.entry_at(model, at or _utc_today()).for_region(region)
        rate = spec.provisioned.get(key)
        if rate is None:
            raise UnsupportedPricingError(model.id, f"provisioned throughput ({commitment} commitment)")
        rate = self._discounted(rate)
        femto_per_hour = usd_to_femto(rate)
        unit_hours = hours_d * model_units
        total = _exact_femto(rate * unit_hours)
        context: dict[str, ContextValue] = {
            "region": region,
            "commitment": commitment,
            "model_units": model_units,
            "hours": str(hours_d),
        }
        return Cost(model.id, total, (("model_unit_hours", unit_hours, femto_per_hour, 1),), context)

    def price_guardrail(
        self,
        text_units: Mapping[str, int],
        *,
        image_units: Mapping[str, int] | None = None,
        at: dt.date | None = None,
    ) -> Cost:
        """Guardrail policies: text units (up to 1,000 characters each) per policy, priced per 1,000."""
        prices = _dated(self._guardrails, at, "guardrails")
        raw: list[RawLine] = []
        total = 0
        for policy, units in text_units.items():
            _require_non_negative(f"text units for {policy}", units)
            rate = prices.per_1000_text_units.get(policy)
            if rate is None:
                known = ", ".join(sorted(prices.per_1000_text_units))
                raise UnsupportedPricingError("guardrails", f"{policy!r} policy", f"known policies: {known}")
            femto = usd_to_femto(self._discounted(rate), 1000)
            raw.append((f"{policy}_text_units", units, femto, 1000))
            total += units * femto
        for policy, units in (image_units or {}).items():
            _require_non_negative(f"image units for {policy}", units)
            rate = prices.per_image.get(policy)
            if rate is None:
                raise UnsupportedPricingError("guardrails", f"{policy!r} image policy")
            femto = usd_to_femto(self._discounted(rate))
            raw.append((f"{policy}_images", units, femto, 1))
            total += units * femto
        return Cost("guardrails", total, tuple(raw), {"price_effective": prices.effective.isoformat()})

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
        _require_positive("custom_model_units", custom_model_units)
        _require_non_negative("active_windows", active_windows)
        months = _non_negative_decimal("storage_months", storage_months)
        prices = _dated(self._imports, at, "custom model import")
        per_minute = prices.cmu_minute.get(region)
        if per_minute is None:
            raise UnsupportedPricingError(
                "custom-model-import",
                f"region {region}",
                f"priced regions: {', '.join(sorted(prices.cmu_minute))}",
            )
        per_minute = self._discounted(per_minute)
        cmu_minutes = custom_model_units * active_windows * prices.window_minutes
        minute_femto = usd_to_femto(per_minute)
        raw: list[RawLine] = [("cmu_minutes", cmu_minutes, minute_femto, 1)]
        total = cmu_minutes * minute_femto
        if months:
            storage = self._discounted(prices.storage_cmu_month)
            cmu_months = months * custom_model_units
            raw.append(("storage_cmu_months", cmu_months, usd_to_femto(storage), 1))
            total += _exact_femto(storage * cmu_months)
        context: dict[str, ContextValue] = {"region": region, "window_minutes": prices.window_minutes}
        return Cost("custom-model-import", total, tuple(raw), context)

    def _discounted(self, amount: Decimal) -> Decimal:
        return amount if self._discount is None else amount * self._discount


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


def _image_rate(band: ImageBand, femto: int) -> _ImageRate:
    size = f"{band.width}x{band.height}" if band.width is not None else "any size"
    label = f"{size}, {band.quality}" if band.quality else size
    return _ImageRate(band.pixels, band.quality, femto, label)


def _dated(entries: Sequence[_Dated], at: dt.date | None, what: str) -> _Dated:
    day = at or _utc_today()
    chosen = None
    for entry in entries:
        if entry.effective <= day:
            chosen = entry
    if chosen is None:
        raise UnsupportedPricingError(what, "price", f"no {what} price in force on {day.isoformat()}")
    return chosen


def _exact_femto(usd: Decimal) -> int:
    return int((usd * FEMTO_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def _require_positive(name: str, value: int) -> None:
    if type(value) is not int or value <= 0:
        raise ConfigurationError(f"{name} must be a positive integer, got {shown(value)}")


def _require_non_negative(name: str, value: int) -> None:
    if type(value) is not int or value < 0:
        raise ConfigurationError(f"{name} must be a non-negative integer, got {shown(value)}")


def _non_negative_decimal(name: str, value: Decimal | int) -> Decimal:
    try:
        return parse_usd(value, what=name)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


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
