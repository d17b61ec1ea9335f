"""Validating whole price files: their models, guardrail and Custom Model Import prices, and the rules that
span files (ids and aliases unique across every file loaded together).

Every problem in a file is collected and reported at once, each with its location, so a reviewer fixes a
price file in one pass. Validation rejects unknown keys, duplicate keys and ids, unsorted ids and dates,
negative or float prices and missing required fields.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from bedrock_budget.errors import PriceFileError
from bedrock_budget.pricing.schema.entries import SPEC_KEYS, decimal_map, price_entry
from bedrock_budget.pricing.schema.fields import (
    Problems,
    as_choice,
    as_date,
    as_mapping,
    as_positive_int,
    as_price,
    as_text,
    check_keys,
    read_yaml,
)
from bedrock_budget.pricing.schema.types import (
    GUARDRAIL_POLICIES,
    LIFECYCLES,
    MODEL_KINDS,
    SCHEMA_VERSION,
    CustomModelImportPrices,
    GuardrailPrices,
    ModelSpec,
    PriceEntry,
    PriceFile,
)

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
    problems: Problems, where: str, raw: Any, provider: str, defaults: Mapping[str, Any], path: str
) -> ModelSpec | None:
    data = as_mapping(problems, where, raw)
    if data is None:
        return None
    model_id = data.get("id")
    if isinstance(model_id, str):
        where = f"{where} ({model_id})"
    check_keys(problems, where, data, _MODEL_KEYS, ("id", "name", "family", "kind", "prices"))
    ident = as_text(problems, f"{where}.id", model_id)
    if ident is not None and (ident != ident.strip() or any(c.isspace() for c in ident)):
        problems.add(f"{where}.id", "must not contain whitespace")
    name = as_text(problems, f"{where}.name", data.get("name"))
    family = as_text(problems, f"{where}.family", data.get("family"))
    if family is not None and family != family.lower():
        problems.add(f"{where}.family", f"must be lowercase, got {family!r}")
    kind = as_choice(problems, f"{where}.kind", data.get("kind"), MODEL_KINDS)
    lifecycle = as_choice(problems, f"{where}.lifecycle", data.get("lifecycle", "active"), LIFECYCLES)
    max_output = None
    if "max_output_tokens" in data:
        max_output = as_positive_int(problems, f"{where}.max_output_tokens", data["max_output_tokens"])
    elif kind == "text":
        problems.add(where, "missing required key 'max_output_tokens' (required for text models)")
    context = (
        as_positive_int(problems, f"{where}.context_window", data["context_window"])
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
            entry = price_entry(problems, f"{where}.prices[{index}]", entry_raw, defaults)
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
    problems: Problems, where: str, raw: Any, parse: Callable[[Problems, str, Mapping[str, Any]], Any]
) -> list[Any]:
    if not isinstance(raw, list) or not raw:
        problems.add(where, "must be a non-empty list of dated entries")
        return []
    parsed = []
    for index, item in enumerate(raw):
        here = f"{where}[{index}]"
        data = as_mapping(problems, here, item)
        if data is not None:
            value = parse(problems, here, data)
            if value is not None:
                parsed.append(value)
    dates = [item.effective for item in parsed]
    if dates != sorted(dates) or len(set(dates)) != len(dates):
        problems.add(where, "entries must be sorted by 'effective' date, one entry per date")
    return parsed


def _dated_meta(problems: Problems, where: str, data: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return (
        as_date(problems, f"{where}.effective", data.get("effective")),
        as_date(problems, f"{where}.checked", data.get("checked")),
        as_text(problems, f"{where}.source", data.get("source")),
    )


def _guardrail_entry(problems: Problems, where: str, data: Mapping[str, Any]) -> GuardrailPrices | None:
    check_keys(
        problems,
        where,
        data,
        ("effective", "checked", "source", "notes", "per_1000_text_units", "per_image"),
        ("effective", "checked", "source", "per_1000_text_units"),
    )
    effective, checked, source = _dated_meta(problems, where, data)
    text = decimal_map(
        problems, f"{where}.per_1000_text_units", data.get("per_1000_text_units", {}), GUARDRAIL_POLICIES
    )
    images = decimal_map(problems, f"{where}.per_image", data.get("per_image", {}))
    if None in (effective, checked, source):
        return None
    return GuardrailPrices(effective, checked, source, text, images)


def _import_entry(problems: Problems, where: str, data: Mapping[str, Any]) -> CustomModelImportPrices | None:
    keys = ("effective", "checked", "source", "notes", "window_minutes", "storage_cmu_month", "cmu_minute")
    check_keys(problems, where, data, keys, tuple(k for k in keys if k != "notes"))
    effective, checked, source = _dated_meta(problems, where, data)
    window = as_positive_int(problems, f"{where}.window_minutes", data.get("window_minutes"))
    storage = as_price(problems, f"{where}.storage_cmu_month", data.get("storage_cmu_month"))
    per_minute = decimal_map(problems, f"{where}.cmu_minute", data.get("cmu_minute", {}))
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
    problems = Problems()
    data = as_mapping(problems, "top level", read_yaml(file_path))
    if data is None:
        raise PriceFileError(str(file_path), problems.items)
    check_keys(
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
    defaults = as_mapping(problems, "defaults", data.get("defaults", {})) or {}
    check_keys(problems, "defaults", defaults, SPEC_KEYS)
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
