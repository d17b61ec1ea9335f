"""What ``prices update`` reads from AWS: the Price List Query API's products, and Bedrock's
ListFoundationModels (live or saved), whose names give models new to the price files their ids.

Provisioned-only variants (``…:0:28k``) are left out of the name join, and a model new to the price files
is described from its summary (name, provider, kind, lifecycle)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bedrock_budget.errors import PriceListError, PriceUpdateError
from bedrock_budget.pricing.maintenance.model_names import name_keys
from bedrock_budget.pricing.maintenance.price_list import read_price_list_files
from bedrock_budget.pricing.schema import ModelKind, ModelSpec
from bedrock_budget.pricing.table import PriceTable

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_pricing import PricingClient

SERVICE_CODES = ("AmazonBedrock", "AmazonBedrockFoundationModels")
# The Price List Query API is served from these Regions only.
PRICING_REGIONS = ("us-east-1", "eu-central-1", "ap-south-1")
# ListFoundationModels gives no output limit, and a text model's price entry needs one for worst-case
# estimates: a new model gets this (generous, so reservations err high) until someone sets the real one.
ASSUMED_MAX_OUTPUT_TOKENS = 65_536


_CONTEXT_VARIANT = re.compile(r":(?:\d+k|mm)$")
_CALLABLE_TYPES = frozenset({"ON_DEMAND", "INFERENCE_PROFILE"})
_KIND_BY_MODALITY: tuple[tuple[str, ModelKind], ...] = (
    ("TEXT", "text"),
    ("EMBEDDING", "embedding"),
    ("IMAGE", "image"),
    ("VIDEO", "video"),
)


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
    data = read_price_list_files([path])
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
        for key in name_keys(str(summary.get("modelName", ""))):
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
