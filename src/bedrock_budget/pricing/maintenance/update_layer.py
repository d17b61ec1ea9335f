"""The layer ``prices update`` writes: model documents (copied from their price file, or new), the dated
entry an update appends, and the layer folder read, rendered and replaced only once every file is valid."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import os
import re
import tempfile
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from bedrock_budget.pricing.maintenance.price_entries import LONG_CONTEXT_THRESHOLD, ModelRates
from bedrock_budget.pricing.maintenance.price_file_yaml import PriceFileDumper, Quoted, yaml_ready
from bedrock_budget.pricing.maintenance.rate_trees import META_KEYS, Flat, flatten, nest
from bedrock_budget.pricing.maintenance.update_types import UpdatePlan
from bedrock_budget.pricing.schema import ModelSpec, price_files_in, validate_paths
from bedrock_budget.pricing.table import DEFAULT_REGION

# How an entry written from the Price List names its source: such entries belong to the layer, every other
# entry to the price files under it.
SOURCE_PREFIX = "AWS Price List API"


def entry_document(
    rates: ModelRates, trees: Mapping[str, Flat], effective: dt.date, notes: list[str], today: dt.date
) -> dict[str, Any]:
    """The dated entry an update appends: ``trees`` (each region's rates) as us-east-1's rates plus the
    regions that differ, with the source naming the offers and SKUs the rates came from."""
    base = trees[DEFAULT_REGION]
    codes = ", ".join(sorted(rates.service_codes))
    published = max(rates.published).isoformat() if rates.published else "publication date unknown"
    skus = sorted(rates.skus.get(DEFAULT_REGION, ()))
    source = f"{SOURCE_PREFIX} ({codes}, {published})" + (f"; SKU {', '.join(skus)}" if skus else "")
    if any(path[0] == "long_context" or "long_context" in path for tree in trees.values() for path in tree):
        notes = [
            *notes,
            f"long_context.threshold_tokens {LONG_CONTEXT_THRESHOLD} is assumed "
            "(the price list has no threshold)",
        ]
    entry: dict[str, Any] = {"effective": effective, "checked": today, "source": source}
    if notes:
        entry["notes"] = "; ".join(notes)
    entry.update(nest(base))
    overrides = {
        region: nest({path: value for path, value in flat.items() if base.get(path) != value})
        for region, flat in sorted(trees.items())
        if region != DEFAULT_REGION and any(base.get(path) != value for path, value in flat.items())
    }
    if overrides:
        entry["regions"] = overrides
    return entry


@functools.lru_cache(maxsize=64)
def _raw_file(path: str, mtime_ns: int) -> Any:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def raw_model(model: ModelSpec) -> dict[str, Any]:
    """The model's document as its price file has it (file defaults folded into each entry), to copy."""
    path = Path(model.source_file)
    data = _raw_file(str(path), path.stat().st_mtime_ns)
    defaults = data.get("defaults") or {}
    raw = next(m for m in data.get("models", []) if m.get("id") == model.id)
    document: dict[str, Any] = copy.deepcopy(dict(raw))
    document["prices"] = [
        {
            **{k: v for k, v in entry.items() if k in META_KEYS and k != "regions"},
            **nest({**flatten(defaults), **flatten(entry)}),
            **({"regions": entry["regions"]} if "regions" in entry else {}),
        }
        for entry in document.get("prices", [])
    ]
    return document


def new_model_document(model: ModelSpec) -> dict[str, Any]:
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
        yaml_ready(_quoted(plan.documents[provider])),
        Dumper=PriceFileDumper,
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
        return Quoted(value)
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
