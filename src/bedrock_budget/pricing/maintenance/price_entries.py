"""From placed Price List rates to price entries: the rates of each model by region, conflicts between
rows, service tiers and batch as multipliers, us-east-1 as the base with the regions that differ as
overrides, and everything that cannot be converted reported."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal, Inexact, localcontext
from typing import Any

from bedrock_budget.pricing.maintenance.model_names import ModelCatalog
from bedrock_budget.pricing.maintenance.price_file_yaml import Quoted
from bedrock_budget.pricing.maintenance.price_list_products import Product, on_demand_price
from bedrock_budget.pricing.maintenance.rate_dimensions import RatePath, dimension
from bedrock_budget.pricing.money import format_usd
from bedrock_budget.pricing.schema import COMMITMENTS, SERVICE_TIERS, TOKEN_RATE_KEYS, ModelSpec
from bedrock_budget.pricing.table import DEFAULT_REGION

# The Price List carries no long-context threshold; this is the boundary AWS documents for the Claude
# models that have long-context rates. Every entry that uses it says so in ``notes``.
LONG_CONTEXT_THRESHOLD = 200_000


_KEY_ORDER = (
    *("threshold_tokens", *TOKEN_RATE_KEYS, "batch", "latency_optimized", "long_context", "routes", "global"),
    *("geo", "service_tiers", *SERVICE_TIERS, "provisioned", *COMMITMENTS, "images", "video_second"),
)


QUALITY_RANK = {"standard": 0, "premium": 1, "": 2}


@dataclasses.dataclass(slots=True)
class ConversionReport:
    unmapped: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    conflicts: list[str] = dataclasses.field(default_factory=list)
    not_emitted: list[str] = dataclasses.field(default_factory=list)
    checks: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(slots=True)
class ModelRates:
    spec: ModelSpec
    # region -> rate path -> price -> usagetypes that quote it (more than one price is a conflict)
    values: dict[str, dict[RatePath, dict[Decimal, list[str]]]] = dataclasses.field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    )
    effective: set[dt.date] = dataclasses.field(default_factory=set)
    published: set[dt.date] = dataclasses.field(default_factory=set)
    service_codes: set[str] = dataclasses.field(default_factory=set)
    # region -> the SKUs of the rows that priced it, so an entry can name exactly what it came from
    skus: dict[str, set[str]] = dataclasses.field(default_factory=lambda: defaultdict(set))


def _where(product: Product) -> str:
    name = product.model_name or "no model name"
    return f"{product.usagetype} [{product.service_code} {product.region or '?'} {name!r}]"


def collect_rates(
    products: Sequence[Product], catalog: ModelCatalog, report: ConversionReport
) -> dict[str, ModelRates]:
    rates: dict[str, ModelRates] = {}
    for product in products:
        price = on_demand_price(product)
        if isinstance(price, str):
            report.skipped.append(f"{_where(product)}: {price}")
            continue
        placed = dimension(product, price)
        if isinstance(placed, str):
            report.skipped.append(f"{_where(product)}: {placed}")
            continue
        if not product.region:
            report.skipped.append(f"{_where(product)}: no regionCode attribute")
            continue
        model = catalog.resolve(product)
        if isinstance(model, str):
            report.unmapped.append(f"{_where(product)}: {model}")
            continue
        path, value = placed
        entry = rates.setdefault(model.id, ModelRates(model))
        entry.values[product.region][path][value].append(product.usagetype)
        entry.service_codes.add(product.service_code)
        if product.sku:
            entry.skus[product.region].add(product.sku)
        if price.effective:
            entry.effective.add(price.effective)
        if product.published:
            entry.published.add(product.published)
    return rates


def _resolved(
    model_id: str,
    region: str,
    values: Mapping[RatePath, Mapping[Decimal, list[str]]],
    report: ConversionReport,
) -> dict[RatePath, Decimal]:
    resolved: dict[RatePath, Decimal] = {}
    for path, prices in values.items():
        if len(prices) == 1:
            resolved[path] = next(iter(prices))
            continue
        quoted = "; ".join(
            f"{format_usd(price)} ({', '.join(sorted(set(usagetypes)))})"
            for price, usagetypes in sorted(prices.items())
        )
        report.conflicts.append(f"{model_id} {region} {'.'.join(path)}: {quoted}")
    return resolved


def _service_tiers(
    model_id: str, region: str, values: Mapping[RatePath, Decimal], report: ConversionReport
) -> dict[str, Decimal]:
    """Tier rates as the multipliers of the standard rates the schema stores, when one multiplier fits all."""
    tiers: dict[str, Decimal] = {}
    for tier in ("priority", "flex"):
        kinds = {path[2]: value for path, value in values.items() if path[:2] == ("tier", tier)}
        if not kinds:
            continue
        ratios: set[Decimal] = set()
        exact = True
        for kind, value in kinds.items():
            standard = values.get((kind,))
            if standard is None or standard == 0:
                exact = False
                break
            with localcontext() as ctx:
                ctx.prec = 28
                ctx.clear_flags()
                ratios.add((value / standard).normalize())
                exact = exact and not ctx.flags[Inexact]
        if exact and len(ratios) == 1:
            tiers[tier] = ratios.pop()
        else:
            listed = ", ".join(f"{kind} {format_usd(value)}" for kind, value in sorted(kinds.items()))
            report.conflicts.append(
                f"{model_id} {region} {tier} tier: rates ({listed}) are not one multiplier of the "
                "standard rates"
            )
    return tiers


def _tree(
    model_id: str, region: str, values: Mapping[RatePath, Decimal], report: ConversionReport
) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    images: list[tuple[str, str, Decimal]] = []
    for path, value in values.items():
        if path[0] == "tier":
            continue
        if path[0] == "images":
            images.append((path[1], path[2], value))
            continue
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    if "long_context" in tree:
        tree["long_context"]["threshold_tokens"] = LONG_CONTEXT_THRESHOLD
    if "batch" in tree:
        _batch_as_multiplier(tree)
    if tiers := _service_tiers(model_id, region, values, report):
        tree["service_tiers"] = tiers
    if images:
        tree["images"] = [
            {
                **({"size": size} if size else {}),
                **({"quality": quality} if quality else {}),
                "usd": usd,
            }
            for size, quality, usd in sorted(
                images, key=lambda band: (image_pixels(band[0]), QUALITY_RANK[band[1]])
            )
        ]
    return tree


def _batch_as_multiplier(tree: dict[str, Any]) -> None:
    """Batch rows that are one fraction of the on-demand rows (AWS's "50% lower") become
    ``batch: {multiplier}``, which the price table applies to every route, long-context tier and Region;
    batch rows that are not one fraction stay written out."""
    batch = tree["batch"]
    if not all(tree.get(kind) for kind in batch):
        return
    ratios = {batch[kind] / tree[kind] for kind in batch}
    if len(ratios) == 1 and 0 < (ratio := ratios.pop()) <= 1:
        tree["batch"] = {"multiplier": ratio}


def _keep_batch_with_its_region(
    model_id: str, entry: dict[str, Any], by_region: Mapping[str, Mapping[str, Any]], report: ConversionReport
) -> None:
    """Written batch rates belong to the Region they were listed for: a Region with its own on-demand rates
    keeps its own batch rows, and when it has none there is no batch price to give it."""
    base = by_region[DEFAULT_REGION]
    written = "batch" in base and "multiplier" not in base["batch"]
    overrides = entry.get("regions", {})
    for region, override in overrides.items():
        tree = by_region[region]
        if "batch" in override or not any(kind in override for kind in TOKEN_RATE_KEYS):
            continue
        if "batch" in tree:
            override["batch"] = ordered(tree["batch"])
        elif written:
            report.checks.append(
                f"{model_id}: {region} has its own on-demand rates but no batch rows; the written "
                f"{DEFAULT_REGION} batch rates would not apply there, so no batch price is emitted"
            )
            entry.pop("batch", None)
            for other in overrides.values():
                other.pop("batch", None)
            return


def image_pixels(size: str) -> int:
    width, _, height = size.partition("x")
    return int(width) * int(height) if width.isdigit() and height.isdigit() else 0


def _diff(base: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    changed: dict[str, Any] = {}
    for key, value in other.items():
        current = base.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            if nested := _diff(current, value):
                changed[key] = nested
        elif value != current:
            changed[key] = value
    return changed


def _missing_required(model: ModelSpec, tree: Mapping[str, Any]) -> str:
    required = {"text": ("input", "output"), "embedding": ("input",)}.get(model.kind, ())
    missing = [rate for rate in required if rate not in tree]
    if missing:
        return f"no {' or '.join(missing)} rate in {DEFAULT_REGION}, which a {model.kind} model needs"
    if not tree:
        return f"no rate in {DEFAULT_REGION}"
    return ""


def region_trees(rates: ModelRates, report: ConversionReport) -> dict[str, dict[str, Any]]:
    """Every region's complete rate tree (not yet reduced to overrides of us-east-1), conflicts reported."""
    model = rates.spec
    return {
        region: _tree(model.id, region, _resolved(model.id, region, values, report), report)
        for region, values in sorted(rates.values.items())
    }


def price_entry(rates: ModelRates, today: dt.date, report: ConversionReport) -> dict[str, Any] | None:
    model = rates.spec
    by_region = region_trees(rates, report)
    base = by_region.get(DEFAULT_REGION)
    if base is None:
        regions = ", ".join(sorted(by_region))
        report.not_emitted.append(
            f"{model.id}: no {DEFAULT_REGION} price to use as the base (priced in {regions})"
        )
        return None
    if problem := _missing_required(model, base):
        report.not_emitted.append(f"{model.id}: {problem}")
        return None
    for kind in ("input", "output"):
        if base.get(kind) == 0:
            report.checks.append(f"{model.id}: {DEFAULT_REGION} {kind} rate is 0 (a placeholder SKU?)")
    notes: list[str] = []
    published = max(rates.published) if rates.published else None
    if rates.effective:
        effective = max(rates.effective)
    else:
        effective = published or today
        notes.append("the price list gives no effectiveDate; effective is the publication or import date")
    if "long_context" in base or any("long_context" in tree for tree in by_region.values()):
        notes.append(
            f"long_context.threshold_tokens {LONG_CONTEXT_THRESHOLD} is assumed "
            "(the price list has no threshold)"
        )
    codes = ", ".join(sorted(rates.service_codes))
    source = (
        f"AWS Price List API ({codes}, {published.isoformat()})"
        if published
        else f"AWS Price List API ({codes})"
    )
    entry: dict[str, Any] = {"effective": effective, "checked": today, "source": Quoted(source)}
    if notes:
        entry["notes"] = Quoted("; ".join(notes))
    entry.update(ordered(base))
    overrides = {
        region: ordered(changed)
        for region, tree in by_region.items()
        if region != DEFAULT_REGION and (changed := _diff(base, tree))
    }
    if overrides:
        entry["regions"] = overrides
    _keep_batch_with_its_region(model.id, entry, by_region, report)
    return entry


def ordered(tree: Mapping[str, Any]) -> dict[str, Any]:
    def rank(key: str) -> tuple[int, str]:
        return (_KEY_ORDER.index(key) if key in _KEY_ORDER else len(_KEY_ORDER), key)

    return {
        key: ordered(value) if isinstance(value, Mapping) else value
        for key, value in sorted(tree.items(), key=lambda item: rank(item[0]))
    }
