"""Validating one dated price entry: its token rates, batch, routes, long context, service tiers, images,
provisioned throughput and per-region overrides."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from bedrock_budget.pricing.schema.fields import (
    Problems,
    as_choice,
    as_date,
    as_mapping,
    as_positive_int,
    as_price,
    as_text,
    check_keys,
)
from bedrock_budget.pricing.schema.types import (
    COMMITMENTS,
    IMAGE_QUALITIES,
    ROUTE_CLASSES,
    SERVICE_TIERS,
    TOKEN_RATE_KEYS,
    ImageBand,
    LongContext,
    PriceEntry,
    PriceSpec,
    TokenRates,
)

# Fractions of a femto-dollar per token cannot be represented; nine decimals of USD per 1M tokens can.
_MAX_TOKEN_RATE_DECIMALS = 9


def _token_rates(
    problems: Problems, where: str, value: Any, *, extra: Iterable[str] = ()
) -> TokenRates | None:
    data = as_mapping(problems, where, value)
    if data is None:
        return None
    check_keys(problems, where, data, (*TOKEN_RATE_KEYS, *extra))
    rates = {
        key: as_price(problems, f"{where}.{key}", data[key], max_decimals=_MAX_TOKEN_RATE_DECIMALS)
        for key in TOKEN_RATE_KEYS
        if key in data
    }
    return TokenRates(**rates)


def decimal_map(
    problems: Problems, where: str, value: Any, allowed: Iterable[str] | None = None
) -> dict[str, Decimal]:
    data = as_mapping(problems, where, value)
    if data is None:
        return {}
    if allowed is not None:
        check_keys(problems, where, data, allowed)
    result: dict[str, Decimal] = {}
    for key, raw in data.items():
        amount = as_price(problems, f"{where}.{key}", raw)
        if amount is not None:
            result[str(key)] = amount
    return result


def _image_size(problems: Problems, where: str, value: Any) -> tuple[int | None, int | None]:
    if isinstance(value, str):
        width, sep, height = value.lower().partition("x")
        if sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0:
            return int(width), int(height)
    problems.add(where, f'must be WIDTHxHEIGHT such as "1024x1024", got {value!r}')
    return None, None


def _images(problems: Problems, where: str, value: Any) -> tuple[ImageBand, ...]:
    if not isinstance(value, list) or not value:
        problems.add(where, "must be a non-empty list of image price bands")
        return ()
    bands: list[ImageBand] = []
    for index, raw in enumerate(value):
        here = f"{where}[{index}]"
        data = as_mapping(problems, here, raw)
        if data is None or not check_keys(problems, here, data, ("size", "quality", "usd"), ("usd",)):
            continue
        width = height = None
        if "size" in data:
            width, height = _image_size(problems, f"{here}.size", data["size"])
        quality = (
            as_choice(problems, f"{here}.quality", data["quality"], IMAGE_QUALITIES)
            if "quality" in data
            else None
        )
        usd = as_price(problems, f"{here}.usd", data["usd"])
        if usd is not None:
            bands.append(ImageBand(width, height, quality, usd))
    seen: set[tuple[int | None, int | None, str | None]] = set()
    for band in bands:
        key = (band.width, band.height, band.quality)
        if key in seen:
            problems.add(where, f"duplicate image band {band.width}x{band.height} {band.quality}")
        seen.add(key)
    return tuple(bands)


SPEC_KEYS = (
    *TOKEN_RATE_KEYS,
    "batch",
    "latency_optimized",
    "long_context",
    "routes",
    "service_tiers",
    "images",
    "video_second",
    "rerank_per_1000_queries",
    "provisioned",
)
_ENTRY_META_KEYS = ("effective", "effective_assumed", "checked", "source", "notes", "regions")
_BATCH_MULTIPLIER_KEY = "multiplier"


def _spec(problems: Problems, where: str, data: Mapping[str, Any]) -> PriceSpec:
    rates = (
        _token_rates(problems, where, {k: v for k, v in data.items() if k in TOKEN_RATE_KEYS}) or TokenRates()
    )
    spec = PriceSpec(rates=rates)
    updates: dict[str, Any] = {}
    if "batch" in data:
        _batch(problems, f"{where}.batch", data["batch"], updates)
    if "latency_optimized" in data:
        updates["latency_optimized"] = _token_rates(
            problems, f"{where}.latency_optimized", data["latency_optimized"]
        )
    if "long_context" in data:
        here = f"{where}.long_context"
        raw = as_mapping(problems, here, data["long_context"])
        if raw is not None:
            long_rates = _token_rates(problems, here, raw, extra=("threshold_tokens",))
            threshold = None
            if "threshold_tokens" in raw:
                threshold = as_positive_int(problems, f"{here}.threshold_tokens", raw["threshold_tokens"])
            else:
                problems.add(here, "missing required key 'threshold_tokens'")
            if long_rates is not None and threshold is not None:
                updates["long_context"] = LongContext(threshold, long_rates)
    if "routes" in data:
        routes = as_mapping(problems, f"{where}.routes", data["routes"]) or {}
        check_keys(problems, f"{where}.routes", routes, ROUTE_CLASSES)
        route_rates: dict[str, TokenRates] = {}
        route_long: dict[str, TokenRates] = {}
        for name, raw in routes.items():
            if name not in ROUTE_CLASSES:
                continue
            here = f"{where}.routes.{name}"
            route_rate = _token_rates(problems, here, raw, extra=("long_context",))
            if route_rate is not None:
                route_rates[name] = route_rate
            if isinstance(raw, Mapping) and "long_context" in raw:
                long_rates = _token_rates(problems, f"{here}.long_context", raw["long_context"])
                if long_rates is not None:
                    route_long[name] = long_rates
        updates["routes"] = route_rates
        updates["route_long_context"] = route_long
    if "service_tiers" in data:
        updates["service_tiers"] = decimal_map(
            problems, f"{where}.service_tiers", data["service_tiers"], SERVICE_TIERS
        )
    if "provisioned" in data:
        updates["provisioned"] = decimal_map(
            problems, f"{where}.provisioned", data["provisioned"], COMMITMENTS
        )
    if "images" in data:
        updates["images"] = _images(problems, f"{where}.images", data["images"])
    for key in ("video_second", "rerank_per_1000_queries"):
        if key in data:
            updates[key] = as_price(problems, f"{where}.{key}", data[key])
    if updates:
        spec = PriceSpec(**{**_spec_fields(spec), **updates})
    return spec


def _batch(problems: Problems, where: str, value: Any, updates: dict[str, Any]) -> None:
    data = as_mapping(problems, where, value)
    if data is None:
        return
    if _BATCH_MULTIPLIER_KEY not in data:
        updates["batch"] = _token_rates(problems, where, data)
        return
    if len(data) > 1:
        problems.add(where, f"give either {_BATCH_MULTIPLIER_KEY!r} or batch rates, not both")
        return
    multiplier = as_price(problems, f"{where}.{_BATCH_MULTIPLIER_KEY}", data[_BATCH_MULTIPLIER_KEY])
    if multiplier is not None and not 0 < multiplier <= 1:
        problems.add(f"{where}.{_BATCH_MULTIPLIER_KEY}", f"must be above 0 and at most 1, got {multiplier}")
        return
    updates["batch_multiplier"] = multiplier


def _check_written_batch(
    problems: Problems, where: str, spec: PriceSpec, regions: Mapping[str, PriceSpec], own_batch: set[str]
) -> None:
    """Written-out batch rates are the in-region, standard-context rates of the region they are written
    for. Where the on-demand price of a call would differ (another route, the long-context tier, a region
    with its own rates), they do not say what batch costs, so the file must say it another way."""
    fix = f"write batch as {{{_BATCH_MULTIPLIER_KEY}: ...}} (a fraction of the on-demand price)"
    own = ((f".regions.{r}", s) for r, s in regions.items() if r in own_batch)
    for label, region_spec in (("", spec), *own):
        if region_spec.batch is None:
            continue
        if region_spec.routes:
            problems.add(f"{where}{label}.batch", f"written batch rates cannot follow routes; {fix}")
        if region_spec.long_context is not None:
            problems.add(f"{where}{label}.batch", f"written batch rates cannot follow long_context; {fix}")
    if spec.batch is None:
        return
    for region, region_spec in regions.items():
        if region in own_batch or region_spec.batch is None:
            continue
        on_demand = (region_spec.rates, region_spec.routes, region_spec.long_context)
        if on_demand != (spec.rates, spec.routes, spec.long_context):
            problems.add(
                f"{where}.regions.{region}",
                f"has its own on-demand rates but would inherit batch rates written for the default region; "
                f"give regions.{region}.batch or {fix}",
            )


def _spec_fields(spec: PriceSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in PriceSpec.__slots__}


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def price_entry(problems: Problems, where: str, raw: Any, defaults: Mapping[str, Any]) -> PriceEntry | None:
    data = as_mapping(problems, where, raw)
    if data is None:
        return None
    check_keys(problems, where, data, (*SPEC_KEYS, *_ENTRY_META_KEYS), ("effective", "checked", "source"))
    effective = as_date(problems, f"{where}.effective", data.get("effective"))
    assumed = data.get("effective_assumed", False)
    if not isinstance(assumed, bool):
        problems.add(f"{where}.effective_assumed", f"must be true or false, got {assumed!r}")
        assumed = False
    checked = as_date(problems, f"{where}.checked", data.get("checked"))
    source = as_text(problems, f"{where}.source", data.get("source"))
    notes = data.get("notes", "")
    if not isinstance(notes, str):
        problems.add(f"{where}.notes", "must be a string")
        notes = ""
    base_raw = _deep_merge(defaults, {k: v for k, v in data.items() if k in SPEC_KEYS})
    spec = _spec(problems, where, base_raw)
    regions: dict[str, PriceSpec] = {}
    own_batch: set[str] = set()
    if "regions" in data:
        region_map = as_mapping(problems, f"{where}.regions", data["regions"]) or {}
        for region, override in region_map.items():
            here = f"{where}.regions.{region}"
            override_map = as_mapping(problems, here, override)
            if override_map is None:
                continue
            if check_keys(problems, here, override_map, SPEC_KEYS):
                merged = _deep_merge(base_raw, {k: v for k, v in override_map.items() if k != "batch"})
                if "batch" in override_map:
                    # A region's batch replaces the base one whole: it may switch between written rates
                    # and a multiplier, and half of one merged with half of the other means nothing.
                    merged["batch"] = override_map["batch"]
                    own_batch.add(str(region))
                regions[str(region)] = _spec(problems, here, merged)
    _check_written_batch(problems, where, spec, regions, own_batch)
    if effective is None or checked is None or source is None:
        return None
    return PriceEntry(effective, checked, source, notes, spec, regions, assumed)
