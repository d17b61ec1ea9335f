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

This module plans; AWS is read by :mod:`.aws_sources`, rates are compared by :mod:`.rate_trees`, the layer
is read and written by :mod:`.update_layer`, and what the plan holds (:mod:`.update_types`) is shown by
:mod:`.update_report`.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from bedrock_budget.pricing.maintenance.aws_sources import (
    ASSUMED_MAX_OUTPUT_TOKENS,
    PRICING_REGIONS,
    SERVICE_CODES,
    discovered_models,
    fetch_foundation_models,
    fetch_price_list,
    read_foundation_models,
)
from bedrock_budget.pricing.maintenance.model_names import ModelCatalog
from bedrock_budget.pricing.maintenance.price_entries import (
    ConversionReport,
    ModelRates,
    collect_rates,
    region_trees,
)
from bedrock_budget.pricing.maintenance.price_list_products import parse_products
from bedrock_budget.pricing.maintenance.rate_trees import Flat, as_written, flatten, full_trees, rate_changes
from bedrock_budget.pricing.maintenance.update_layer import (
    SOURCE_PREFIX,
    entry_document,
    new_model_document,
    raw_model,
    read_layer,
    render_document,
    write_layer,
)
from bedrock_budget.pricing.maintenance.update_types import ModelUpdate, RateChange, UpdatePlan, regions_text
from bedrock_budget.pricing.table import DEFAULT_REGION, PriceTable

__all__ = [
    "ASSUMED_MAX_OUTPUT_TOKENS",
    "PRICING_REGIONS",
    "SERVICE_CODES",
    "SOURCE_PREFIX",
    "ModelUpdate",
    "RateChange",
    "UpdatePlan",
    "discovered_models",
    "fetch_foundation_models",
    "fetch_price_list",
    "plan_update",
    "read_foundation_models",
    "read_layer",
    "regions_text",
    "render_document",
    "write_layer",
]


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
    products = parse_products(data, "price list")
    plan = UpdatePlan(today=day, products=len(products))
    for product in products:
        if product.published:
            previous = plan.offers.get(product.service_code, "")
            plan.offers[product.service_code] = max(previous, product.published.isoformat())
        else:
            plan.offers.setdefault(product.service_code, "")
    catalog = ModelCatalog(table.models.values(), discovered_models(foundation_models, table))
    report = ConversionReport()
    rates = collect_rates(products, catalog, report)
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
            doc = documents.get(model.provider, {}).get(model.id) or raw_model(model)
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
            raw = raw_model(under)
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
        return meta, full_trees(entry)

    return normal(one) == normal(other)


def _document_index(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    models = document.get("models") or []
    return {str(model["id"]): copy.deepcopy(dict(model)) for model in models if isinstance(model, Mapping)}


def _plan_model(
    plan: UpdatePlan,
    rates: ModelRates,
    table: PriceTable,
    documents: dict[str, dict[str, dict[str, Any]]],
    report: ConversionReport,
) -> None:
    model = rates.spec
    trees = region_trees(rates, report)
    complete: dict[str, Flat] = {}
    partial: dict[str, list[str]] = {}
    for region, tree in trees.items():
        missing = _missing(model.kind, tree)
        if missing:
            partial.setdefault(missing, []).append(region)
        else:
            complete[region] = flatten(tree)
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
        old: dict[str, Flat] = {}
        # Regions priced like us-east-1 add nothing to a new model (the file would not list them either).
        new = {
            region: flat
            for region, flat in complete.items()
            if region == DEFAULT_REGION or any(base.get(path) != value for path, value in flat.items())
        }
        effective, notes = _first_effective(rates, plan.today)
        history: list[dict[str, Any]] = []
        document = new_model_document(model)
        if model.max_output_tokens == ASSUMED_MAX_OUTPUT_TOKENS and model.kind == "text":
            notes.append(
                f"max_output_tokens {ASSUMED_MAX_OUTPUT_TOKENS} is assumed "
                "(ListFoundationModels does not give it)"
            )
    else:
        held = documents.get(model.provider, {}).get(model.id)
        document = copy.deepcopy(held) if held is not None else raw_model(current)
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
        old = full_trees(raw_entry)
        new = {region: dict(flat) for region, flat in old.items()}
        for region, flat in complete.items():
            new[region] = {**old.get(region, old[DEFAULT_REGION]), **flat}
        effective, notes = _next_effective(rates, in_force, plan.today)
    changes = rate_changes(old, as_written(new))
    if not changes:
        return
    entry_doc = entry_document(rates, new, effective, notes, plan.today)
    document["prices"] = [*history, entry_doc]
    documents.setdefault(model.provider, {})[model.id] = document
    plan.touched.add(model.provider)
    update = ModelUpdate(model.id, model.name, model.provider, effective, tuple(changes), "; ".join(notes))
    (plan.changed if current is not None else plan.new).append(update)


def _missing(kind: str, tree: Mapping[str, Any]) -> str:
    needed = {"text": ("input", "output"), "embedding": ("input",), "image": ("images",)}.get(kind, ())
    if kind == "video":
        needed = ("video_second",)
    absent = [name for name in needed if name not in tree]
    if absent:
        return " or ".join(f"{name} rate" for name in absent)
    return "" if tree else "rate"


def _first_effective(rates: ModelRates, today: dt.date) -> tuple[dt.date, list[str]]:
    if rates.effective:
        return max(rates.effective), []
    published = max(rates.published) if rates.published else None
    note = (
        "the Price List gives no effectiveDate; effective is the offer's publication date or the update date"
    )
    return published or today, [note]


def _next_effective(rates: ModelRates, current: dt.date, today: dt.date) -> tuple[dt.date, list[str]]:
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
