"""``prices update``: turn the AWS Price List into a dated price layer and a diff against current prices.

Products are read and placed exactly as ``prices import-price-list`` does (:mod:`.price_list`); this module
decides what they change. "Current" is the price table the caller passes (the bundled files plus their
layers, including the layer being updated), so running the same update twice changes nothing the second
time.

* **Names to ids.** Rows carry display names. After the names in the price files, the names of
  ``bedrock.list_foundation_models()`` are tried, so a model new to Bedrock gets its id (and name, provider,
  kind, lifecycle) without a hand-kept table. Provisioned-only variants (``…:0:28k``) are left out of the
  join. A row that still maps to nothing, or to several models, is reported as unmapped.
* **Partial rows never replace a complete entry.** A region whose rows lack a rate the model's kind needs
  (a text model's input or output, say Anthropic rows in ``AmazonBedrock`` that quote input only) is
  reported and left as it is. A complete region updates only the rates the Price List quotes; rates it does
  not quote (batch, cache, provisioned, other regions) are kept from the current entry.
* **Dated entries.** A change becomes a new entry appended to the model's history, effective from the
  rows' ``effectiveDate``, or from today when that date is not after the current entry (the history is
  never rewritten). The layer holds each changed model whole, history included, because a layered model
  replaces the bundled one with the same id.
* **Removed.** A model whose current entry came from an offer that answered, and that the offer no longer
  lists, is marked ``lifecycle: legacy`` (its prices stay: old usage still needs them).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import functools
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bedrock_budget.errors import PriceListError, PriceUpdateError
from bedrock_budget.pricing import price_list as pl
from bedrock_budget.pricing.schema import ModelKind, ModelSpec, price_files_in, validate_paths
from bedrock_budget.pricing.table import DEFAULT_REGION, PriceTable

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_pricing import PricingClient

SERVICE_CODES = ("AmazonBedrock", "AmazonBedrockFoundationModels")
# The Price List Query API is served from these Regions only.
PRICING_REGIONS = ("us-east-1", "eu-central-1", "ap-south-1")
# ListFoundationModels gives no output limit, and a text model's price entry needs one for worst-case
# estimates: a new model gets this (generous, so reservations err high) until someone sets the real one.
ASSUMED_MAX_OUTPUT_TOKENS = 65_536
SOURCE_PREFIX = "AWS Price List API"

_CONTEXT_VARIANT = re.compile(r":(?:\d+k|mm)$")
_CALLABLE_TYPES = frozenset({"ON_DEMAND", "INFERENCE_PROFILE"})
_KIND_BY_MODALITY: tuple[tuple[str, ModelKind], ...] = (
    ("TEXT", "text"),
    ("EMBEDDING", "embedding"),
    ("IMAGE", "image"),
    ("VIDEO", "video"),
)
_Flat = dict[tuple[str, ...], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class RateChange:
    """One rate of one region: ``rate`` is a dotted path such as ``batch.output`` or
    ``images.1024x1024.standard``; ``old`` is ``None`` for a rate that is new."""

    region: str
    rate: str
    old: Decimal | None
    new: Decimal | None


@dataclasses.dataclass(frozen=True, slots=True)
class ModelUpdate:
    model_id: str
    name: str
    provider: str
    effective: dt.date
    changes: tuple[RateChange, ...]
    notes: str = ""


@dataclasses.dataclass(slots=True)
class UpdatePlan:
    """What an update found; :attr:`documents` is the whole layer to write, one document per provider."""

    today: dt.date
    products: int
    offers: dict[str, str] = dataclasses.field(default_factory=dict)
    new: list[ModelUpdate] = dataclasses.field(default_factory=list)
    changed: list[ModelUpdate] = dataclasses.field(default_factory=list)
    removed: list[str] = dataclasses.field(default_factory=list)
    refreshed: list[str] = dataclasses.field(default_factory=list)
    partial: list[str] = dataclasses.field(default_factory=list)
    unmapped: list[str] = dataclasses.field(default_factory=list)
    not_converted: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    documents: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    touched: set[str] = dataclasses.field(default_factory=set)

    @property
    def has_changes(self) -> bool:
        return bool(self.new or self.changed or self.removed or self.refreshed)


# --- reading AWS ----------------------------------------------------------------------------------------


def fetch_price_list(
    client: PricingClient, service_codes: Sequence[str] = SERVICE_CODES
) -> list[dict[str, Any]]:
    """Every product of each offer, as GetProducts pages (``{"PriceList": [...]}``) the converter reads."""
    from botocore.exceptions import BotoCoreError, ClientError

    pages: list[dict[str, Any]] = []
    try:
        paginator = client.get_paginator("get_products")
        for code in service_codes:
            for page in paginator.paginate(ServiceCode=code, FormatVersion="aws_v1"):
                pages.append({"PriceList": list(page.get("PriceList", []))})
    except (BotoCoreError, ClientError) as exc:
        raise PriceUpdateError("the AWS Price List Query API", _aws_reason(exc)) from exc
    return pages


def fetch_foundation_models(client: BedrockClient) -> list[dict[str, Any]]:
    """``modelSummaries`` of ``bedrock.list_foundation_models()`` for the client's Region."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        summaries = client.list_foundation_models().get("modelSummaries", [])
    except (BotoCoreError, ClientError) as exc:
        raise PriceUpdateError("Bedrock ListFoundationModels", _aws_reason(exc)) from exc
    return [dict(summary) for summary in summaries]


def read_foundation_models(path: Path) -> list[dict[str, Any]]:
    """The ``modelSummaries`` of saved ``aws bedrock list-foundation-models`` output."""
    data = pl.read_price_list_files([path])
    summaries = data.get("modelSummaries") if isinstance(data, Mapping) else None
    if not isinstance(summaries, list) or not all(isinstance(item, Mapping) for item in summaries):
        raise PriceListError(str(path), ["not ListFoundationModels output: expected 'modelSummaries'"])
    return [dict(item) for item in summaries]


def _aws_reason(exc: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return str(exc)


# --- names to ids ---------------------------------------------------------------------------------------


def discovered_models(
    summaries: Iterable[Mapping[str, Any]], table: PriceTable
) -> dict[str, dict[str, ModelSpec]]:
    """Name keys (as the converter matches them) to the models Bedrock lists under that name: the table's
    model when it prices the id, otherwise a new model described from the summary."""
    found: dict[str, dict[str, ModelSpec]] = {}
    for summary in summaries:
        model = _summary_model(summary, table)
        if model is None:
            continue
        for key in pl._name_keys(str(summary.get("modelName", ""))):
            found.setdefault(key, {})[model.id] = model
    return found


def _summary_model(summary: Mapping[str, Any], table: PriceTable) -> ModelSpec | None:
    model_id = summary.get("modelId")
    name = str(summary.get("modelName") or "").strip()
    if not isinstance(model_id, str) or "." not in model_id or not name or _CONTEXT_VARIANT.search(model_id):
        return None
    types = summary.get("inferenceTypesSupported")
    if isinstance(types, list) and types and not _CALLABLE_TYPES.intersection(types):
        return None  # provisioned-only: never priced on demand
    known = table.find(model_id)
    if known is not None:
        return known
    modalities = summary.get("outputModalities") or []
    kind = next((kind for modality, kind in _KIND_BY_MODALITY if modality in modalities), None)
    if kind is None:
        return None
    status = (
        summary.get("modelLifecycle", {}).get("status")
        if isinstance(summary.get("modelLifecycle"), Mapping)
        else None
    )
    provider, _, rest = model_id.partition(".")
    family = re.match(r"[a-z]+", rest.lower())
    return ModelSpec(
        id=model_id,
        provider=provider.lower(),
        name=name,
        family=family.group(0) if family else provider.lower(),
        kind=kind,
        max_output_tokens=ASSUMED_MAX_OUTPUT_TOKENS if kind == "text" else None,
        context_window=None,
        lifecycle="legacy" if status == "LEGACY" else "active",
        aliases=(),
        prices=(),
        source_file="",
    )


# --- planning -------------------------------------------------------------------------------------------


def plan_update(
    data: Any,
    *,
    table: PriceTable,
    foundation_models: Iterable[Mapping[str, Any]] = (),
    layer: Mapping[str, Mapping[str, Any]] | None = None,
    base: PriceTable | None = None,
    today: dt.date | None = None,
) -> UpdatePlan:
    """Compare Price List output (``data``, any shape :func:`.price_list.convert_price_list` reads) with
    ``table`` and return the changes and the updated layer.

    ``layer`` holds the documents already in the layer being updated (by provider), and ``base`` the
    table under it (``table`` without the layer): a model the layer holds whole would otherwise hide every
    later fix to the bundled prices, so entries and model facts (name, limits, aliases) ``base`` gained
    since are copied into the layer first."""
    day = today or dt.date.today()
    products = pl._products(data, "price list")
    plan = UpdatePlan(today=day, products=len(products))
    for product in products:
        if product.published:
            previous = plan.offers.get(product.service_code, "")
            plan.offers[product.service_code] = max(previous, product.published.isoformat())
        else:
            plan.offers.setdefault(product.service_code, "")
    catalog = pl._Catalog(table.models.values(), discovered_models(foundation_models, table))
    report = pl._Report()
    rates = pl._collect(products, catalog, report)
    documents = {provider: _document_index(doc) for provider, doc in (layer or {}).items()}
    if base is not None:
        _refresh_from_base(plan, documents, base)
    for model_id in sorted(rates):
        _plan_model(plan, rates[model_id], table, documents, report)
    answered = set(plan.offers)
    for model in sorted(table.models.values(), key=lambda m: m.id):
        if model.id in rates or model.lifecycle != "active" or not model.prices:
            continue
        source = model.prices[-1].source
        codes = set(re.findall(r"\bAmazonBedrock\w*", source))
        if source.startswith(SOURCE_PREFIX) and codes and codes <= answered:
            doc = documents.get(model.provider, {}).get(model.id) or _raw_model(model)
            doc["lifecycle"] = "legacy"
            documents.setdefault(model.provider, {})[model.id] = doc
            plan.removed.append(model.id)
            plan.touched.add(model.provider)
    plan.unmapped = sorted(set(report.unmapped))
    plan.skipped = sorted(set(report.skipped))
    plan.not_converted += sorted(set(report.not_emitted)) + sorted(set(report.conflicts))
    plan.documents = {
        provider: {"schema_version": 1, "provider": provider, "models": [models[k] for k in sorted(models)]}
        for provider, models in sorted(documents.items())
        if models
    }
    return plan


_MODEL_FACTS = ("aliases", "name", "family", "kind", "max_output_tokens", "context_window")


def _refresh_from_base(
    plan: UpdatePlan, documents: dict[str, dict[str, dict[str, Any]]], base: PriceTable
) -> None:
    for provider, models in documents.items():
        for model_id, document in models.items():
            under = base.models.get(model_id)
            if under is None:
                continue
            raw = _raw_model(under)
            what: list[str] = []
            for fact in _MODEL_FACTS:
                if fact in raw and raw[fact] != document.get(fact):
                    document[fact] = raw[fact]
                    what.append(fact)
            held = {_as_date(entry.get("effective")): entry for entry in document.get("prices", [])}
            taken: list[str] = []
            for entry in raw["prices"]:
                day = _as_date(entry.get("effective"))
                mine = held.get(day)
                # Entries the Price List wrote belong to the layer; every other one to the prices under it.
                if mine is None or (
                    not str(mine.get("source", "")).startswith(SOURCE_PREFIX) and not _same_entry(mine, entry)
                ):
                    held[day] = entry
                    taken.append(str(day))
            if taken:
                document["prices"] = [held[day] for day in sorted(held, key=lambda day: day or dt.date.min)]
                what.append(f"entr{'ies' if len(taken) > 1 else 'y'} effective {', '.join(taken)}")
            if what:
                plan.refreshed.append(f"{model_id}: {'; '.join(what)} taken from the prices under the layer")
                plan.touched.add(provider)


def _same_entry(one: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    def normal(entry: Mapping[str, Any]) -> tuple[Any, ...]:
        meta = tuple(str(entry.get(key, "")) for key in ("effective", "checked", "source", "notes"))
        return meta, _full_trees(entry)

    return normal(one) == normal(other)


def _document_index(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    models = document.get("models") or []
    return {str(model["id"]): copy.deepcopy(dict(model)) for model in models if isinstance(model, Mapping)}


def _plan_model(
    plan: UpdatePlan,
    rates: pl._ModelRates,
    table: PriceTable,
    documents: dict[str, dict[str, dict[str, Any]]],
    report: pl._Report,
) -> None:
    model = rates.spec
    trees = pl._region_trees(rates, report)
    complete: dict[str, _Flat] = {}
    partial: dict[str, list[str]] = {}
    for region, tree in trees.items():
        missing = _missing(model.kind, tree)
        if missing:
            partial.setdefault(missing, []).append(region)
        else:
            complete[region] = _flatten(tree)
    for missing, regions in partial.items():
        plan.partial.append(
            f"{model.id} {regions_text(regions)}: the Price List quotes no {missing}; nothing taken from it"
        )
    current = table.models.get(model.id)
    if current is None:
        base = complete.get(DEFAULT_REGION)
        if base is None:
            why = "its rows there are partial" if DEFAULT_REGION in trees else "it is not priced there"
            plan.not_converted.append(
                f"{model.id}: new model without a complete {DEFAULT_REGION} price ({why})"
            )
            return
        old: dict[str, _Flat] = {}
        # Regions priced like us-east-1 add nothing to a new model (the file would not list them either).
        new = {
            region: flat
            for region, flat in complete.items()
            if region == DEFAULT_REGION or any(base.get(path) != value for path, value in flat.items())
        }
        effective, notes = _first_effective(rates, plan.today)
        history: list[dict[str, Any]] = []
        document = _new_model_document(model)
        if model.max_output_tokens == ASSUMED_MAX_OUTPUT_TOKENS and model.kind == "text":
            notes.append(
                f"max_output_tokens {ASSUMED_MAX_OUTPUT_TOKENS} is assumed "
                "(ListFoundationModels does not give it)"
            )
    else:
        held = documents.get(model.provider, {}).get(model.id)
        document = copy.deepcopy(held) if held is not None else _raw_model(current)
        history = document["prices"]
        dated = [(_as_date(entry.get("effective")) or dt.date.min, entry) for entry in history]
        in_force, raw_entry = next(
            (pair for pair in reversed(dated) if pair[0] <= plan.today),
            dated[0] if dated else (dt.date.min, {}),
        )
        later = [day for day, _ in dated if day > in_force]
        if later:
            plan.not_converted.append(
                f"{model.id}: the table already has an entry effective {later[-1]}; not compared"
            )
            return
        old = _full_trees(raw_entry)
        new = {region: dict(flat) for region, flat in old.items()}
        for region, flat in complete.items():
            new[region] = {**old.get(region, old[DEFAULT_REGION]), **flat}
        effective, notes = _next_effective(rates, in_force, plan.today)
    changes = _changes(old, _as_written(new))
    if not changes:
        return
    entry_doc = _entry_document(rates, new, effective, notes, plan.today)
    document["prices"] = [*history, entry_doc]
    documents.setdefault(model.provider, {})[model.id] = document
    plan.touched.add(model.provider)
    update = ModelUpdate(model.id, model.name, model.provider, effective, tuple(changes), "; ".join(notes))
    (plan.changed if current is not None else plan.new).append(update)


def regions_text(regions: Sequence[str], shown: int = 3) -> str:
    """``us-east-1, us-west-2 and 5 more regions``: first us-east-1, then alphabetical."""
    ordered = sorted(regions, key=lambda region: (region != DEFAULT_REGION, region))
    more = len(ordered) - shown
    head = ", ".join(ordered[:shown])
    return f"{head} and {more} more region{'s' if more != 1 else ''}" if more > 0 else head


def _missing(kind: str, tree: Mapping[str, Any]) -> str:
    needed = {"text": ("input", "output"), "embedding": ("input",), "image": ("images",)}.get(kind, ())
    if kind == "video":
        needed = ("video_second",)
    absent = [name for name in needed if name not in tree]
    if absent:
        return " or ".join(f"{name} rate" for name in absent)
    return "" if tree else "rate"


def _first_effective(rates: pl._ModelRates, today: dt.date) -> tuple[dt.date, list[str]]:
    if rates.effective:
        return max(rates.effective), []
    published = max(rates.published) if rates.published else None
    note = (
        "the Price List gives no effectiveDate; effective is the offer's publication date or the update date"
    )
    return published or today, [note]


def _next_effective(rates: pl._ModelRates, current: dt.date, today: dt.date) -> tuple[dt.date, list[str]]:
    stated, notes = _first_effective(rates, today)
    if stated > current:
        return stated, notes
    effective = today if today > current else current + dt.timedelta(days=1)
    notes.append(
        f"the Price List's effectiveDate {stated} is not after the current entry's {current}; "
        f"effective from {effective}, when the difference was found"
    )
    return effective, notes


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


# --- rate trees: nested (as in price files) and flat (path -> value) -----------------------------------


_META_KEYS = ("effective", "checked", "source", "notes", "regions")


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    return value


def _flatten(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> _Flat:
    """Rates by path. An image band list is one value (a sorted tuple of bands): a price list's bands
    replace a file's bands whole, as a region override's do, so an unsized band never lingers beside sized
    ones."""
    flat: _Flat = {}
    for key, value in tree.items():
        if key in _META_KEYS and not prefix:
            continue
        if key == "images" and isinstance(value, list):
            flat[(*prefix, "images")] = tuple(
                sorted(
                    (str(band.get("size", "")), str(band.get("quality", "")), _number(band["usd"]))
                    for band in value
                )
            )
        elif isinstance(value, Mapping):
            flat.update(_flatten(value, (*prefix, str(key))))
        else:
            flat[(*prefix, str(key))] = _number(value)
    return flat


def _nest(flat: _Flat) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if path[-1] == "images":
            value = [
                {**({"size": size} if size else {}), **({"quality": quality} if quality else {}), "usd": usd}
                for size, quality, usd in sorted(
                    value, key=lambda band: (pl._pixels(band[0]), pl._QUALITY_RANK.get(band[1], 2))
                )
            ]
        node[path[-1]] = value
    return pl._ordered(tree)


def _full_trees(raw_entry: Mapping[str, Any]) -> dict[str, _Flat]:
    base = _flatten(raw_entry)
    trees = {DEFAULT_REGION: base}
    for region, override in (raw_entry.get("regions") or {}).items():
        trees[str(region)] = {**base, **_flatten(override)}
    return trees


def _as_written(trees: Mapping[str, _Flat]) -> dict[str, _Flat]:
    """Each region's rates as the written entry gives them: us-east-1's, overridden where the region
    differs. (A region inherits a rate us-east-1 gains; the file cannot say "not in this region".)"""
    base = trees[DEFAULT_REGION]
    return {region: {**base, **flat} for region, flat in trees.items()}


def _changes(old: Mapping[str, _Flat], new: Mapping[str, _Flat]) -> list[RateChange]:
    changes: list[RateChange] = []
    for region in sorted(set(old) | set(new), key=lambda r: (r != DEFAULT_REGION, r)):
        before = _banded(old.get(region, old.get(DEFAULT_REGION, {})))
        after = _banded(new.get(region, new.get(DEFAULT_REGION, {})))
        for path in sorted(set(before) | set(after)):
            if before.get(path) != after.get(path):
                rate = ".".join(part for part in path if part)
                changes.append(RateChange(region, rate, _money(before.get(path)), _money(after.get(path))))
    return changes


def _banded(flat: _Flat) -> _Flat:
    """``flat`` with image bands spread out by size and quality, for showing what changed."""
    spread: _Flat = {}
    for path, value in flat.items():
        if path[-1] == "images":
            for size, quality, usd in value:
                spread[(*path, size or "any-size", quality)] = usd
        else:
            spread[path] = value
    return spread


def _money(value: Any) -> Decimal | None:
    return value if isinstance(value, Decimal) else None if value is None else Decimal(value)


def _entry_document(
    rates: pl._ModelRates, trees: Mapping[str, _Flat], effective: dt.date, notes: list[str], today: dt.date
) -> dict[str, Any]:
    base = trees[DEFAULT_REGION]
    codes = ", ".join(sorted(rates.service_codes))
    published = max(rates.published).isoformat() if rates.published else "publication date unknown"
    skus = sorted(rates.skus.get(DEFAULT_REGION, ()))
    source = f"{SOURCE_PREFIX} ({codes}, {published})" + (f"; SKU {', '.join(skus)}" if skus else "")
    if any(path[0] == "long_context" or "long_context" in path for tree in trees.values() for path in tree):
        notes = [
            *notes,
            f"long_context.threshold_tokens {pl.LONG_CONTEXT_THRESHOLD} is assumed "
            "(the price list has no threshold)",
        ]
    entry: dict[str, Any] = {"effective": effective, "checked": today, "source": source}
    if notes:
        entry["notes"] = "; ".join(notes)
    entry.update(_nest(base))
    overrides = {
        region: _nest({path: value for path, value in flat.items() if base.get(path) != value})
        for region, flat in sorted(trees.items())
        if region != DEFAULT_REGION and any(base.get(path) != value for path, value in flat.items())
    }
    if overrides:
        entry["regions"] = overrides
    return entry


# --- model documents ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _raw_file(path: str, mtime_ns: int) -> Any:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _raw_model(model: ModelSpec) -> dict[str, Any]:
    """The model's document as its price file has it (file defaults folded into each entry), to copy."""
    path = Path(model.source_file)
    data = _raw_file(str(path), path.stat().st_mtime_ns)
    defaults = data.get("defaults") or {}
    raw = next(m for m in data.get("models", []) if m.get("id") == model.id)
    document: dict[str, Any] = copy.deepcopy(dict(raw))
    document["prices"] = [
        {
            **{k: v for k, v in entry.items() if k in _META_KEYS and k != "regions"},
            **_nest({**_flatten(defaults), **_flatten(entry)}),
            **({"regions": entry["regions"]} if "regions" in entry else {}),
        }
        for entry in document.get("prices", [])
    ]
    return document


def _new_model_document(model: ModelSpec) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": model.id,
        "name": model.name,
        "family": model.family,
        "kind": model.kind,
    }
    if model.max_output_tokens is not None:
        document["max_output_tokens"] = model.max_output_tokens
    document["lifecycle"] = model.lifecycle
    document["prices"] = []
    return document


# --- the layer on disk ----------------------------------------------------------------------------------


def read_layer(folder: Path) -> dict[str, dict[str, Any]]:
    """The documents of an existing layer folder, by provider (empty when the folder does not exist)."""
    if not folder.exists():
        return {}
    documents: dict[str, dict[str, Any]] = {}
    for path in price_files_in(folder):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, Mapping) and isinstance(data.get("provider"), str):
            documents[data["provider"]] = dict(data)
    return documents


def render_document(plan: UpdatePlan, provider: str) -> str:
    offers = ", ".join(f"{code} published {date or 'unknown'}" for code, date in sorted(plan.offers.items()))
    header = (
        f"# Prices from the AWS Price List, written by `bedrock-budget prices update` on {plan.today}\n"
        f"# ({offers}).\n"
        "# Layer this folder over the bundled prices: --prices FOLDER, or wrap(prices=[FOLDER]).\n"
        "# A layered model replaces the bundled one whole, so each model here carries its full history.\n"
    )
    body = yaml.dump(
        pl._yaml_ready(_quoted(plan.documents[provider])),
        Dumper=pl._Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=1000,
    )
    return header + body


def _quoted(value: Any, key: str = "") -> Any:
    """Prices copied from a file become Decimals (written as quoted decimal strings, like new ones); free
    text is quoted so a colon or a leading digit in it never changes its meaning."""
    if isinstance(value, Mapping):
        return {name: _quoted(item, str(name)) for name, item in value.items()}
    if isinstance(value, list):
        return [_quoted(item, key) for item in value]
    if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value):
        return Decimal(value)
    if isinstance(value, str) and key in ("name", "source", "notes"):
        return pl._Quoted(value)
    return value


def write_layer(plan: UpdatePlan, folder: Path) -> list[Path]:
    """Write the providers the plan touched into ``folder``; all are validated before any replaces a file."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(dir=folder, prefix=".update-") as scratch:
        staged = []
        for provider in sorted(plan.touched):
            if provider not in plan.documents:
                continue
            path = Path(scratch) / f"{provider}.yaml"
            path.write_text(render_document(plan, provider), encoding="utf-8")
            staged.append(path)
        validate_paths(staged)
        for path in staged:
            target = folder / path.name
            os.replace(path, target)
            written.append(target)
    return written
