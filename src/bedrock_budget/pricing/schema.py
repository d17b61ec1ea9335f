"""Typed loading and strict validation of price files (the schema is described in prices/README.md).

Every problem in a file is collected and reported at once, each with its location, so a reviewer fixes a
price file in one pass. Validation rejects unknown keys, duplicate keys and ids, unsorted ids and dates,
negative or float prices and missing required fields.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml

from bedrock_budget.errors import PriceFileError
from bedrock_budget.pricing.money import parse_usd

SCHEMA_VERSION = 1
TOKEN_RATE_KEYS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")
MODEL_KINDS = ("text", "embedding", "image", "video", "rerank")
LIFECYCLES = ("active", "legacy")
ROUTE_CLASSES = ("geo", "global")
SERVICE_TIERS = ("priority", "flex")
COMMITMENTS = ("no_commit", "one_month", "six_month")
IMAGE_QUALITIES = ("standard", "premium")
GUARDRAIL_POLICIES = (
    "content_filters",
    "denied_topics",
    "contextual_grounding",
    "sensitive_information",
    "sensitive_information_regex",
    "word_filters",
    "automated_reasoning",
)
# Fractions of a femto-dollar per token cannot be represented; nine decimals of USD per 1M tokens can.
_MAX_TOKEN_RATE_DECIMALS = 9

ModelKind = Literal["text", "embedding", "image", "video", "rerank"]


@dataclass(frozen=True, slots=True)
class TokenRates:
    """USD per 1,000,000 tokens; ``None`` where the file gives no rate."""

    input: Decimal | None = None
    output: Decimal | None = None
    cache_read: Decimal | None = None
    cache_write_5m: Decimal | None = None
    cache_write_1h: Decimal | None = None


@dataclass(frozen=True, slots=True)
class LongContext:
    threshold_tokens: int
    rates: TokenRates


@dataclass(frozen=True, slots=True)
class ImageBand:
    width: int | None
    height: int | None
    quality: str | None
    usd: Decimal

    @property
    def pixels(self) -> int | None:
        return None if self.width is None or self.height is None else self.width * self.height


@dataclass(frozen=True, slots=True)
class PriceSpec:
    """All the rates of one model in one region at one point in time."""

    rates: TokenRates
    # Batch prices are either written out (``batch``: the in-region, standard-context rates of this region)
    # or given as a fraction of the on-demand price of the same route, region and long-context tier
    # (``batch_multiplier``), which is how AWS states them for most models ("50% of on-demand").
    batch: TokenRates | None = None
    batch_multiplier: Decimal | None = None
    latency_optimized: TokenRates | None = None
    long_context: LongContext | None = None
    routes: Mapping[str, TokenRates] = field(default_factory=dict)
    # Long-context rates of a route class, when they differ from the in-region long-context rates.
    route_long_context: Mapping[str, TokenRates] = field(default_factory=dict)
    service_tiers: Mapping[str, Decimal] = field(default_factory=dict)
    images: tuple[ImageBand, ...] = ()
    video_second: Decimal | None = None
    rerank_per_1000_queries: Decimal | None = None
    provisioned: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PriceEntry:
    effective: dt.date
    checked: dt.date
    source: str
    notes: str
    spec: PriceSpec
    regions: Mapping[str, PriceSpec]
    # True when ``effective`` is the date the price was first seen, not the date it started: the price is
    # then taken to hold back to the model's launch (see prices/README.md).
    effective_assumed: bool = False

    def for_region(self, region: str) -> PriceSpec:
        return self.regions.get(region, self.spec)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    provider: str
    name: str
    family: str
    kind: ModelKind
    max_output_tokens: int | None
    context_window: int | None
    lifecycle: str
    aliases: tuple[str, ...]
    prices: tuple[PriceEntry, ...]
    source_file: str


@dataclass(frozen=True, slots=True)
class GuardrailPrices:
    effective: dt.date
    checked: dt.date
    source: str
    per_1000_text_units: Mapping[str, Decimal]
    per_image: Mapping[str, Decimal]


@dataclass(frozen=True, slots=True)
class CustomModelImportPrices:
    effective: dt.date
    checked: dt.date
    source: str
    window_minutes: int
    storage_cmu_month: Decimal
    cmu_minute: Mapping[str, Decimal]


@dataclass(frozen=True, slots=True)
class PriceFile:
    path: str
    provider: str
    models: tuple[ModelSpec, ...] = ()
    guardrails: tuple[GuardrailPrices, ...] = ()
    custom_model_import: tuple[CustomModelImportPrices, ...] = ()


# --- YAML with duplicate-key detection -------------------------------------------------------------------

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _DuplicateKeyError(Exception):
    def __init__(self, key: object, line: int) -> None:
        self.key = key
        self.line = line


class _StrictLoader(_BaseLoader):  # type: ignore[misc]
    pass


def _construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise _DuplicateKeyError(key, key_node.start_mark.line + 1)
        seen.add(key)
    return dict(loader.construct_mapping(node, deep=deep))


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceFileError(str(path), [f"cannot read file: {exc.strerror or exc}"]) from exc
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKeyError as exc:
        raise PriceFileError(str(path), [f"line {exc.line}: duplicate key {exc.key!r}"]) from None
    except yaml.YAMLError as exc:
        raise PriceFileError(str(path), [f"not valid YAML: {exc}"]) from exc


# --- validation helpers ----------------------------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")


def _check_keys(
    problems: _Problems,
    where: str,
    data: Mapping[str, Any],
    allowed: Iterable[str],
    required: Iterable[str] = (),
) -> bool:
    allowed_set = set(allowed)
    ok = True
    for key in data:
        if key not in allowed_set:
            problems.add(where, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed_set))})")
            ok = False
    for key in required:
        if key not in data:
            problems.add(where, f"missing required key {key!r}")
            ok = False
    return ok


def _mapping(problems: _Problems, where: str, value: Any) -> Mapping[str, Any] | None:
    if not isinstance(value, Mapping):
        problems.add(where, f"must be a mapping, got {type(value).__name__}")
        return None
    return value


def _price(problems: _Problems, where: str, value: Any, *, max_decimals: int | None = None) -> Decimal | None:
    if isinstance(value, float):
        problems.add(where, f'price must be a quoted decimal string (write "{value}"), not a YAML float')
        return None
    try:
        amount = parse_usd(value)
    except ValueError as exc:
        problems.add(where, str(exc))
        return None
    exponent = amount.as_tuple().exponent
    if max_decimals is not None and isinstance(exponent, int) and -exponent > max_decimals:
        problems.add(where, f"price {value!r} has more than {max_decimals} decimal places")
        return None
    return amount


def _date(problems: _Problems, where: str, value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    problems.add(where, f"must be an ISO date (YYYY-MM-DD), got {value!r}")
    return None


def _positive_int(problems: _Problems, where: str, value: Any) -> int | None:
    if type(value) is not int or value <= 0:
        problems.add(where, f"must be a positive integer, got {value!r}")
        return None
    return value


def _text(problems: _Problems, where: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.add(where, "must be a non-empty string")
        return None
    return value


def _choice(problems: _Problems, where: str, value: Any, choices: Iterable[str]) -> str | None:
    options = tuple(choices)
    if value not in options:
        problems.add(where, f"must be one of {', '.join(options)}, got {value!r}")
        return None
    return str(value)


def _token_rates(
    problems: _Problems, where: str, value: Any, *, extra: Iterable[str] = ()
) -> TokenRates | None:
    data = _mapping(problems, where, value)
    if data is None:
        return None
    _check_keys(problems, where, data, (*TOKEN_RATE_KEYS, *extra))
    rates = {
        key: _price(problems, f"{where}.{key}", data[key], max_decimals=_MAX_TOKEN_RATE_DECIMALS)
        for key in TOKEN_RATE_KEYS
        if key in data
    }
    return TokenRates(**rates)


def _decimal_map(
    problems: _Problems, where: str, value: Any, allowed: Iterable[str] | None = None
) -> dict[str, Decimal]:
    data = _mapping(problems, where, value)
    if data is None:
        return {}
    if allowed is not None:
        _check_keys(problems, where, data, allowed)
    result: dict[str, Decimal] = {}
    for key, raw in data.items():
        amount = _price(problems, f"{where}.{key}", raw)
        if amount is not None:
            result[str(key)] = amount
    return result


def _image_size(problems: _Problems, where: str, value: Any) -> tuple[int | None, int | None]:
    if isinstance(value, str):
        width, sep, height = value.lower().partition("x")
        if sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0:
            return int(width), int(height)
    problems.add(where, f'must be WIDTHxHEIGHT such as "1024x1024", got {value!r}')
    return None, None


def _images(problems: _Problems, where: str, value: Any) -> tuple[ImageBand, ...]:
    if not isinstance(value, list) or not value:
        problems.add(where, "must be a non-empty list of image price bands")
        return ()
    bands: list[ImageBand] = []
    for index, raw in enumerate(value):
        here = f"{where}[{index}]"
        data = _mapping(problems, here, raw)
        if data is None or not _check_keys(problems, here, data, ("size", "quality", "usd"), ("usd",)):
            continue
        width = height = None
        if "size" in data:
            width, height = _image_size(problems, f"{here}.size", data["size"])
        quality = (
            _choice(problems, f"{here}.quality", data["quality"], IMAGE_QUALITIES)
            if "quality" in data
            else None
        )
        usd = _price(problems, f"{here}.usd", data["usd"])
        if usd is not None:
            bands.append(ImageBand(width, height, quality, usd))
    seen: set[tuple[int | None, int | None, str | None]] = set()
    for band in bands:
        key = (band.width, band.height, band.quality)
        if key in seen:
            problems.add(where, f"duplicate image band {band.width}x{band.height} {band.quality}")
        seen.add(key)
    return tuple(bands)


_SPEC_KEYS = (
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


def _spec(problems: _Problems, where: str, data: Mapping[str, Any]) -> PriceSpec:
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
        raw = _mapping(problems, here, data["long_context"])
        if raw is not None:
            long_rates = _token_rates(problems, here, raw, extra=("threshold_tokens",))
            threshold = None
            if "threshold_tokens" in raw:
                threshold = _positive_int(problems, f"{here}.threshold_tokens", raw["threshold_tokens"])
            else:
                problems.add(here, "missing required key 'threshold_tokens'")
            if long_rates is not None and threshold is not None:
                updates["long_context"] = LongContext(threshold, long_rates)
    if "routes" in data:
        routes = _mapping(problems, f"{where}.routes", data["routes"]) or {}
        _check_keys(problems, f"{where}.routes", routes, ROUTE_CLASSES)
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
        updates["service_tiers"] = _decimal_map(
            problems, f"{where}.service_tiers", data["service_tiers"], SERVICE_TIERS
        )
    if "provisioned" in data:
        updates["provisioned"] = _decimal_map(
            problems, f"{where}.provisioned", data["provisioned"], COMMITMENTS
        )
    if "images" in data:
        updates["images"] = _images(problems, f"{where}.images", data["images"])
    for key in ("video_second", "rerank_per_1000_queries"):
        if key in data:
            updates[key] = _price(problems, f"{where}.{key}", data[key])
    if updates:
        spec = PriceSpec(**{**_spec_fields(spec), **updates})
    return spec


def _batch(problems: _Problems, where: str, value: Any, updates: dict[str, Any]) -> None:
    data = _mapping(problems, where, value)
    if data is None:
        return
    if _BATCH_MULTIPLIER_KEY not in data:
        updates["batch"] = _token_rates(problems, where, data)
        return
    if len(data) > 1:
        problems.add(where, f"give either {_BATCH_MULTIPLIER_KEY!r} or batch rates, not both")
        return
    multiplier = _price(problems, f"{where}.{_BATCH_MULTIPLIER_KEY}", data[_BATCH_MULTIPLIER_KEY])
    if multiplier is not None and not 0 < multiplier <= 1:
        problems.add(f"{where}.{_BATCH_MULTIPLIER_KEY}", f"must be above 0 and at most 1, got {multiplier}")
        return
    updates["batch_multiplier"] = multiplier


def _check_written_batch(
    problems: _Problems, where: str, spec: PriceSpec, regions: Mapping[str, PriceSpec], own_batch: set[str]
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


def _price_entry(problems: _Problems, where: str, raw: Any, defaults: Mapping[str, Any]) -> PriceEntry | None:
    data = _mapping(problems, where, raw)
    if data is None:
        return None
    _check_keys(problems, where, data, (*_SPEC_KEYS, *_ENTRY_META_KEYS), ("effective", "checked", "source"))
    effective = _date(problems, f"{where}.effective", data.get("effective"))
    assumed = data.get("effective_assumed", False)
    if not isinstance(assumed, bool):
        problems.add(f"{where}.effective_assumed", f"must be true or false, got {assumed!r}")
        assumed = False
    checked = _date(problems, f"{where}.checked", data.get("checked"))
    source = _text(problems, f"{where}.source", data.get("source"))
    notes = data.get("notes", "")
    if not isinstance(notes, str):
        problems.add(f"{where}.notes", "must be a string")
        notes = ""
    base_raw = _deep_merge(defaults, {k: v for k, v in data.items() if k in _SPEC_KEYS})
    spec = _spec(problems, where, base_raw)
    regions: dict[str, PriceSpec] = {}
    own_batch: set[str] = set()
    if "regions" in data:
        region_map = _mapping(problems, f"{where}.regions", data["regions"]) or {}
        for region, override in region_map.items():
            here = f"{where}.regions.{region}"
            override_map = _mapping(problems, here, override)
            if override_map is None:
                continue
            if _check_keys(problems, here, override_map, _SPEC_KEYS):
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


_MODEL_KEYS = (
    "id",
    "aliases",
    "name",
    "family",
    "kind",
    "max_output_tokens",
    "context_window",
    "lifecycle",
    "prices",
)


def _model(
    problems: _Problems, where: str, raw: Any, provider: str, defaults: Mapping[str, Any], path: str
) -> ModelSpec | None:
    data = _mapping(problems, where, raw)
    if data is None:
        return None
    model_id = data.get("id")
    if isinstance(model_id, str):
        where = f"{where} ({model_id})"
    _check_keys(problems, where, data, _MODEL_KEYS, ("id", "name", "family", "kind", "prices"))
    ident = _text(problems, f"{where}.id", model_id)
    if ident is not None and (ident != ident.strip() or any(c.isspace() for c in ident)):
        problems.add(f"{where}.id", "must not contain whitespace")
    name = _text(problems, f"{where}.name", data.get("name"))
    family = _text(problems, f"{where}.family", data.get("family"))
    if family is not None and family != family.lower():
        problems.add(f"{where}.family", f"must be lowercase, got {family!r}")
    kind = _choice(problems, f"{where}.kind", data.get("kind"), MODEL_KINDS)
    lifecycle = _choice(problems, f"{where}.lifecycle", data.get("lifecycle", "active"), LIFECYCLES)
    max_output = None
    if "max_output_tokens" in data:
        max_output = _positive_int(problems, f"{where}.max_output_tokens", data["max_output_tokens"])
    elif kind == "text":
        problems.add(where, "missing required key 'max_output_tokens' (required for text models)")
    context = (
        _positive_int(problems, f"{where}.context_window", data["context_window"])
        if "context_window" in data
        else None
    )
    aliases_raw = data.get("aliases", [])
    aliases: tuple[str, ...] = ()
    if not isinstance(aliases_raw, list) or not all(isinstance(a, str) and a for a in aliases_raw):
        problems.add(f"{where}.aliases", "must be a list of model ids")
    else:
        aliases = tuple(aliases_raw)
        if list(aliases) != sorted(set(aliases)):
            problems.add(f"{where}.aliases", "must be sorted and unique")
    prices_raw = data.get("prices")
    entries: list[PriceEntry] = []
    if not isinstance(prices_raw, list) or not prices_raw:
        problems.add(f"{where}.prices", "must be a non-empty list of dated price entries")
    else:
        for index, entry_raw in enumerate(prices_raw):
            entry = _price_entry(problems, f"{where}.prices[{index}]", entry_raw, defaults)
            if entry is not None:
                entries.append(entry)
        dates = [entry.effective for entry in entries]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            problems.add(f"{where}.prices", "entries must be sorted by 'effective' date, one entry per date")
        for index, entry in enumerate(entries[1:], start=1):
            if entry.effective_assumed:
                problems.add(
                    f"{where}.prices[{index}].effective_assumed",
                    "only the first price can have an assumed start (a later one starts where the "
                    "earlier one ends)",
                )
    required_rates = {"text": ("input", "output"), "embedding": ("input",)}.get(kind or "", ())
    for index, entry in enumerate(entries):
        for rate in required_rates:
            if getattr(entry.spec.rates, rate) is None:
                problems.add(f"{where}.prices[{index}]", f"a {kind} model needs an {rate!r} rate")
    if ident is None or name is None or family is None or kind is None or lifecycle is None:
        return None
    return ModelSpec(
        id=ident,
        provider=provider,
        name=name,
        family=family,
        kind=kind,  # type: ignore[arg-type]
        max_output_tokens=max_output,
        context_window=context,
        lifecycle=lifecycle,
        aliases=aliases,
        prices=tuple(entries),
        source_file=path,
    )


def _dated_list(
    problems: _Problems, where: str, raw: Any, parse: Callable[[_Problems, str, Mapping[str, Any]], Any]
) -> list[Any]:
    if not isinstance(raw, list) or not raw:
        problems.add(where, "must be a non-empty list of dated entries")
        return []
    parsed = []
    for index, item in enumerate(raw):
        here = f"{where}[{index}]"
        data = _mapping(problems, here, item)
        if data is not None:
            value = parse(problems, here, data)
            if value is not None:
                parsed.append(value)
    dates = [item.effective for item in parsed]
    if dates != sorted(dates) or len(set(dates)) != len(dates):
        problems.add(where, "entries must be sorted by 'effective' date, one entry per date")
    return parsed


def _dated_meta(problems: _Problems, where: str, data: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return (
        _date(problems, f"{where}.effective", data.get("effective")),
        _date(problems, f"{where}.checked", data.get("checked")),
        _text(problems, f"{where}.source", data.get("source")),
    )


def _guardrail_entry(problems: _Problems, where: str, data: Mapping[str, Any]) -> GuardrailPrices | None:
    _check_keys(
        problems,
        where,
        data,
        ("effective", "checked", "source", "notes", "per_1000_text_units", "per_image"),
        ("effective", "checked", "source", "per_1000_text_units"),
    )
    effective, checked, source = _dated_meta(problems, where, data)
    text = _decimal_map(
        problems, f"{where}.per_1000_text_units", data.get("per_1000_text_units", {}), GUARDRAIL_POLICIES
    )
    images = _decimal_map(problems, f"{where}.per_image", data.get("per_image", {}))
    if None in (effective, checked, source):
        return None
    return GuardrailPrices(effective, checked, source, text, images)


def _import_entry(problems: _Problems, where: str, data: Mapping[str, Any]) -> CustomModelImportPrices | None:
    keys = ("effective", "checked", "source", "notes", "window_minutes", "storage_cmu_month", "cmu_minute")
    _check_keys(problems, where, data, keys, tuple(k for k in keys if k != "notes"))
    effective, checked, source = _dated_meta(problems, where, data)
    window = _positive_int(problems, f"{where}.window_minutes", data.get("window_minutes"))
    storage = _price(problems, f"{where}.storage_cmu_month", data.get("storage_cmu_month"))
    per_minute = _decimal_map(problems, f"{where}.cmu_minute", data.get("cmu_minute", {}))
    if None in (effective, checked, source, window, storage) or not per_minute:
        if not per_minute:
            problems.add(f"{where}.cmu_minute", "needs at least one region")
        return None
    assert window is not None
    assert storage is not None
    return CustomModelImportPrices(effective, checked, source, window, storage, per_minute)


def load_price_file(path: str | Path) -> PriceFile:
    """Load and validate one price file; raises :class:`PriceFileError` listing every problem."""
    file_path = Path(path)
    problems = _Problems()
    data = _mapping(problems, "top level", _read_yaml(file_path))
    if data is None:
        raise PriceFileError(str(file_path), problems.items)
    _check_keys(
        problems,
        "top level",
        data,
        (
            "schema_version",
            "provider",
            "display_name",
            "defaults",
            "models",
            "guardrails",
            "custom_model_import",
        ),
        ("schema_version", "provider"),
    )
    if data.get("schema_version") != SCHEMA_VERSION:
        problems.add("schema_version", f"must be {SCHEMA_VERSION}, got {data.get('schema_version')!r}")
    provider = data.get("provider")
    if provider != file_path.stem and not file_path.stem.startswith(f"{provider}-"):
        problems.add("provider", f"must match the file name {file_path.stem!r}, got {provider!r}")
    provider_name = str(provider)
    defaults = _mapping(problems, "defaults", data.get("defaults", {})) or {}
    _check_keys(problems, "defaults", defaults, _SPEC_KEYS)
    models: list[ModelSpec] = []
    if "models" in data:
        raw_models = data["models"]
        if not isinstance(raw_models, list):
            problems.add("models", "must be a list")
            raw_models = []
        for index, raw in enumerate(raw_models):
            model = _model(problems, f"models[{index}]", raw, provider_name, defaults, str(file_path))
            if model is not None:
                models.append(model)
        ids = [model.id for model in models]
        for previous, current in itertools.pairwise(ids):
            if current <= previous:
                kind = "duplicate id" if current == previous else "ids must be sorted"
                problems.add("models", f"{kind}: {current!r} comes after {previous!r}")
    guardrails = (
        _dated_list(problems, "guardrails", data["guardrails"], _guardrail_entry)
        if "guardrails" in data
        else []
    )
    imports = (
        _dated_list(problems, "custom_model_import", data["custom_model_import"], _import_entry)
        if "custom_model_import" in data
        else []
    )
    if problems.items:
        raise PriceFileError(str(file_path), problems.items)
    return PriceFile(str(file_path), provider_name, tuple(models), tuple(guardrails), tuple(imports))


def price_files_in(path: str | Path) -> list[Path]:
    """The ``*.yaml`` files of a folder (sorted), or the file itself."""
    target = Path(path)
    if target.is_dir():
        return sorted(p for p in target.glob("*.yaml") if p.is_file())
    return [target]


def validate_paths(paths: Iterable[str | Path]) -> list[PriceFile]:
    """Load every file and check cross-file rules (ids and aliases unique across files)."""
    files: list[PriceFile] = []
    errors: list[str] = []
    for path in paths:
        for file_path in price_files_in(path):
            try:
                files.append(load_price_file(file_path))
            except PriceFileError as exc:
                errors.extend(f"{exc.path}: {problem}" for problem in exc.problems)
    owners: dict[str, str] = {}
    for price_file in files:
        for model in price_file.models:
            for ident in (model.id, *model.aliases):
                if ident in owners:
                    errors.append(f"{price_file.path}: id {ident!r} is also defined in {owners[ident]}")
                owners.setdefault(ident, price_file.path)
    if errors:
        raise PriceFileError("price files", errors)
    return files


def _main(argv: list[str]) -> int:
    from bedrock_budget.pricing.bundled import BUNDLED_PRICES

    targets = argv or [str(BUNDLED_PRICES)]
    try:
        files = validate_paths(targets)
    except PriceFileError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    count = sum(len(f.models) for f in files)
    print(f"ok: {len(files)} files, {count} models")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
