"""Convert AWS Price List API output for Bedrock into price-file YAML (``prices import-price-list``).

Input is what ``aws pricing get-products --service-code AmazonBedrock`` (or ``AmazonBedrockService``,
``AmazonBedrockFoundationModels``) prints: ``{"FormatVersion": "aws_v1", "PriceList": [...]}`` whose items
are JSON strings (or objects) holding ``product.attributes`` and ``terms.OnDemand``. A list of such
responses, a bare list of products, several responses concatenated, and a bulk offer file
(``{"products": {sku: ...}, "terms": {...}}``) are accepted too.

How a product becomes a rate in our schema:

* **Model.** An attribute that already carries a Bedrock model id wins (``modelId``, or a ``model`` value
  shaped like ``vendor.name``); otherwise the display name (``model``, ``titanModel``, or the Marketplace
  ``servicename`` without " (Amazon Bedrock Edition)", and without a " Latency Optimized" suffix) is
  matched case-insensitively against the ``name`` of the models in our price files (a leading vendor word
  and a trailing "Instruct" may differ), then against :data:`PRICE_LIST_NAMES`. A product whose model
  matches nothing, or several models, is listed as ``# unmapped:``.
* **Dimension.** Read from ``inferenceType``, ``feature``, ``featuretype``, ``service_tier`` and the
  ``usagetype`` suffixes AWS uses (``-input-tokens``, ``-cache-read-input-token-count``,
  ``-batch``, ``-cross-region-global``, ``-flex``/``-priority``, ``-ProvisionedThroughput-1month-ModelUnits``,
  ``T2I 1024 Standard``, Marketplace ``MP:USE1_CacheWrite1hInputTokenCount_Global-Units`` and
  ``MP:USE1_input_tokens_long_ctx_global_standard-Units``...). Rates the schema cannot hold (model
  customization, reserved TPM capacity, the bedrock-mantle endpoint, image/audio token counts, ...) are
  listed as ``# skipped:`` with the reason.
* **Units.** ``1K tokens`` is multiplied by 1,000 and ``1M tokens`` kept, giving USD per 1,000,000 tokens;
  Marketplace token rows (unit ``Units``) are quoted per million tokens. Images are per image,
  provisioned throughput per model-unit hour, video per second. All arithmetic is ``Decimal``.

The result is one complete price-file document per provider (separated by ``---``), each valid on its own
as ``<provider>.yaml``, with us-east-1 as the base rates and other regions as ``regions:`` overrides where
they differ.

The steps live apart: reading products (:mod:`.price_list_products`), naming models (:mod:`.model_names`),
placing rates (:mod:`.rate_dimensions`), assembling entries (:mod:`.price_entries`) and writing YAML
(:mod:`.price_file_yaml`); this module runs them in order.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from bedrock_budget.errors import PriceListError
from bedrock_budget.pricing.bundled import BUNDLED_PRICES
from bedrock_budget.pricing.maintenance.model_names import PRICE_LIST_NAMES, ModelCatalog
from bedrock_budget.pricing.maintenance.price_entries import (
    LONG_CONTEXT_THRESHOLD,
    ConversionReport,
    collect_rates,
    price_entry,
)
from bedrock_budget.pricing.maintenance.price_file_yaml import (
    PriceFileDumper,
    comment_block,
    model_document,
    yaml_ready,
)
from bedrock_budget.pricing.maintenance.price_list_products import Product, json_documents, parse_products
from bedrock_budget.pricing.schema import SCHEMA_VERSION, ModelSpec, validate_paths
from bedrock_budget.pricing.table import DEFAULT_REGION

__all__ = [
    "LONG_CONTEXT_THRESHOLD",
    "PRICE_LIST_NAMES",
    "bundled_models",
    "convert_price_list",
    "convert_price_list_file",
    "read_price_list_files",
]


def convert_price_list_file(
    path: Path, *, models: Iterable[ModelSpec] | None = None, today: dt.date | None = None
) -> str:
    """Read a saved Price List API answer and return price-file YAML; see :func:`convert_price_list`.

    Raises :class:`~bedrock_budget.errors.PriceListError` when the file cannot be read, is not JSON or is
    not Price List output."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PriceListError(str(path), [f"cannot read file: {reason}"]) from exc
    documents = json_documents(text, str(path))
    data: Any = documents[0] if len(documents) == 1 else documents
    return _convert(data, str(path), models, today)


def read_price_list_files(paths: Iterable[Path]) -> Any:
    """The JSON of one or more saved Price List files (a single document as is, several as a list).

    Raises :class:`~bedrock_budget.errors.PriceListError` naming the file that cannot be read or parsed."""
    documents: list[Any] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise PriceListError(str(path), [f"cannot read file: {reason}"]) from exc
        documents += json_documents(text, str(path))
    return documents[0] if len(documents) == 1 else documents


def convert_price_list(
    data: Mapping[str, Any] | Sequence[Any],
    *,
    models: Iterable[ModelSpec] | None = None,
    today: dt.date | None = None,
    where: str = "price list",
) -> str:
    """Convert parsed Price List API output to price-file YAML text.

    ``models`` are the models ids are resolved against (default: the bundled price files); ``today`` is
    written as ``checked`` (default: the current date). Products that cannot be converted are listed in
    comments at the top, never dropped silently."""
    return _convert(data, where, models, today)


def _convert(data: Any, where: str, models: Iterable[ModelSpec] | None, today: dt.date | None) -> str:
    products = parse_products(data, where)
    catalog = ModelCatalog(bundled_models() if models is None else models)
    return _render(products, catalog, today or dt.date.today())


def bundled_models() -> list[ModelSpec]:
    """The models of the bundled price files, which display names are matched against."""
    return [model for price_file in validate_paths([BUNDLED_PRICES]) for model in price_file.models]


def _render(products: Sequence[Product], catalog: ModelCatalog, today: dt.date) -> str:
    report = ConversionReport()
    rates = collect_rates(products, catalog, report)
    by_provider: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for model_id in sorted(rates):
        entry = price_entry(rates[model_id], today, report)
        if entry is not None:
            by_provider[rates[model_id].spec.provider].append(model_document(rates[model_id].spec, entry))
    converted = sum(len(models) for models in by_provider.values())
    header = [
        f"# Converted from the AWS Price List API by `bedrock-budget prices import-price-list` on {today}.",
        f"# {len(products)} products read; {converted} models converted; one document per provider below.",
        "# To update prices/<provider>.yaml: append each model's new entry to its `prices:` list (keep the",
        "# older entries), review the lines below, then run `bedrock-budget prices validate prices/`.",
        "# Rates are USD per 1,000,000 tokens, per image, per second of video and per model-unit hour;",
        f"# {DEFAULT_REGION} is the base rate and `regions:` holds only the regions that differ.",
    ]
    header += comment_block("not emitted", report.not_emitted)
    header += comment_block("conflict", report.conflicts)
    header += comment_block("check", report.checks)
    header += comment_block("unmapped", report.unmapped)
    header += comment_block("skipped", report.skipped)
    documents = []
    for provider in sorted(by_provider):
        body = {"schema_version": SCHEMA_VERSION, "provider": provider, "models": by_provider[provider]}
        text = yaml.dump(
            yaml_ready(body), Dumper=PriceFileDumper, sort_keys=False, allow_unicode=True, width=1000
        )
        documents.append(f"# prices/{provider}.yaml\n{text}")
    if not documents:
        header.append("# Nothing could be converted.")
    return "\n".join(header) + "\n" + "---\n".join(documents)
