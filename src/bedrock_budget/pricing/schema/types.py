"""The typed form of a validated price file: what :mod:`bedrock_budget.pricing.schema` loads and the price
table compiles (the file format itself is described in prices/README.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

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
