"""Rate cards: the femto-dollars per unit of one (model, region, route, tier, latency, batch) combination,
compiled from the price entry in force, and what a call's usage costs at that card."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from bedrock_budget.errors import ConfigurationError, UnsupportedPricingError
from bedrock_budget.model_ids import Route
from bedrock_budget.pricing.cost import ContextValue, Cost, RawLine
from bedrock_budget.pricing.money import usd_to_femto
from bedrock_budget.pricing.schema import ImageBand, ModelSpec, PriceEntry, PriceSpec, TokenRates
from bedrock_budget.usage import Usage

_PER_MILLION = 1_000_000

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


def compile_rate_card(
    model: ModelSpec,
    entry: PriceEntry,
    assumed: bool,
    *,
    region: str,
    route: Route,
    batch: bool,
    service_tier: str,
    latency: str,
    discount: Decimal | None,
) -> RateCard:
    """The card of ``entry`` (the price of ``model`` in force; ``assumed`` when its start is assumed) for
    one combination, every rate multiplied by the service tier's factor, the batch multiplier and
    ``discount`` (the fraction of list price paid, or ``None``)."""
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
            raise UnsupportedPricingError(model.id, "batch", "this model is not offered for batch inference")
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
    multiplier = _tier_multiplier(model, spec, service_tier) * batch_multiplier
    if discount is not None:
        multiplier *= discount
    long_card = None
    threshold = None
    if spec.long_context is not None and (not batch or spec.batch_multiplier is not None):
        threshold = spec.long_context.threshold_tokens
        long_rates = _merge_rates(rates, spec.route_long_context.get(route, spec.long_context.rates))
        long_card = _card_from(model, spec, long_rates, multiplier, {**context, "long_context": True})
    card = _card_from(model, spec, rates, multiplier, context)
    return replace(card, long_threshold=threshold, long_card=long_card)


def _tier_multiplier(model: ModelSpec, spec: PriceSpec, service_tier: str) -> Decimal:
    if service_tier in ("default", "reserved"):
        return Decimal(1)
    if service_tier not in ("priority", "flex"):
        raise ConfigurationError(
            f"service tier must be default, priority, flex or reserved, got {service_tier!r}"
        )
    factor = spec.service_tiers.get(service_tier)
    if factor is None:
        raise UnsupportedPricingError(model.id, f"{service_tier} service tier", "not offered for this model")
    return factor


def _card_from(
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


def _image_rate(band: ImageBand, femto: int) -> _ImageRate:
    size = f"{band.width}x{band.height}" if band.width is not None else "any size"
    label = f"{size}, {band.quality}" if band.quality else size
    return _ImageRate(band.pixels, band.quality, femto, label)
