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
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal, Inexact, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

import yaml

from bedrock_budget.errors import PriceListError
from bedrock_budget.pricing.bundled import BUNDLED_PRICES
from bedrock_budget.pricing.money import format_usd
from bedrock_budget.pricing.schema import (
    COMMITMENTS,
    SCHEMA_VERSION,
    SERVICE_TIERS,
    TOKEN_RATE_KEYS,
    ModelSpec,
    validate_paths,
)
from bedrock_budget.pricing.table import DEFAULT_REGION

# Price-list display names that differ from (or may be missing as) a ``name`` in our files. Consulted only
# after the name match, and only for ids our files define: the id alone says nothing about kind or limits.
# Each pair is a display name seen in the AmazonBedrock Price List and its Bedrock model id.
PRICE_LIST_NAMES: Mapping[str, str] = {
    "Claude Instant": "anthropic.claude-instant-v1",
    "Claude 2.0": "anthropic.claude-v2",
    "Claude 2.1": "anthropic.claude-v2:1",
    "Claude 3 Haiku": "anthropic.claude-3-haiku-20240307-v1:0",
    "Claude 3 Sonnet": "anthropic.claude-3-sonnet-20240229-v1:0",
    "Claude 3.5 Haiku": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "Llama 3 8B": "meta.llama3-8b-instruct-v1:0",
    "Nova Micro": "amazon.nova-micro-v1:0",
    "Nova Lite": "amazon.nova-lite-v1:0",
    "Nova Pro": "amazon.nova-pro-v1:0",
    "Nova Canvas": "amazon.nova-canvas-v1:0",
    "Titan Image Generator G1": "amazon.titan-image-generator-v1",
    "Titan Image Generator V2": "amazon.titan-image-generator-v2:0",
}

# The Price List carries no long-context threshold; this is the boundary AWS documents for the Claude
# models that have long-context rates. Every entry that uses it says so in ``notes``.
LONG_CONTEXT_THRESHOLD = 200_000

_MARKETPLACE_SUFFIX = "(amazon bedrock edition)"
_LATENCY_SUFFIX = re.compile(r"\s+latency[\s-]*optimi[sz]ed\s*$", re.IGNORECASE)
_MODEL_ID_SHAPE = re.compile(r"^[a-z0-9][a-z0-9-]*\.[a-z0-9][a-z0-9._:-]*$")
_ID_VERSION = re.compile(r"(?:-v\d+(?::\d+)?|:\d+)$")
_VENDOR_PREFIXES = (
    "ai21 labs",
    "ai21",
    "amazon",
    "anthropic",
    "cohere",
    "deepseek",
    "luma ai",
    "luma",
    "meta",
    "mistral ai",
    "mistral",
    "openai",
    "qwen",
    "stability ai",
    "stability",
    "twelvelabs",
    "writer",
)
_WHOLE_VERSION = re.compile(r"\b(\d+)\.0\b")
_IMAGE_INFERENCE = re.compile(r"^(t2i|i2i)\s+(\d+)\s+(standard|premium)$", re.IGNORECASE)
_IMAGE_USAGETYPE = re.compile(r"(?:^|-)(?:t2i|i2i)-(\d+)-(standard|premium)(?:-|$)", re.IGNORECASE)
_VIDEO_USAGETYPE = re.compile(r"(?:^|-)(?:t2v|i2v)(?:-|$)", re.IGNORECASE)
_ONE_HOUR_TTL = re.compile(r"(?:^|[-_ ])1[-_ ]?h(?:our)?(?:[-_ ]|$)", re.IGNORECASE)
_MINUTE_TTL = re.compile(r"(?:^|[-_ ])(\d+)[-_ ]?m(?:in(?:ute)?s?)?(?:[-_ ]|$)", re.IGNORECASE)
_TIER_WORD = re.compile(r"(?:^|[-_ ])(flex|priority)(?:[-_ ]|$)", re.IGNORECASE)
_GEO_ROUTE = re.compile(r"cross-?region-?geo|[-_]geo(?:[-_]|$)", re.IGNORECASE)
_TOKEN_UNIT = re.compile(r"^(\d+)?\s*([km])?\s*tokens?$")
_MODALITY_TOKENS = ("imagetoken", "audiotoken", "videotoken", "inputimage", "inputaudio", "inputvideo")
_COMMITMENTS = (("nocommit", "no_commit"), ("1month", "one_month"), ("6month", "six_month"))
_KEY_ORDER = (
    *("threshold_tokens", *TOKEN_RATE_KEYS, "batch", "latency_optimized", "long_context", "routes", "global"),
    *("geo", "service_tiers", *SERVICE_TIERS, "provisioned", *COMMITMENTS, "images", "video_second"),
)

_QUALITY_RANK = {"standard": 0, "premium": 1, "": 2}

_RatePath = tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class _Product:
    """One Price List product reduced to what the conversion reads."""

    sku: str
    service_code: str
    attrs: Mapping[str, str]
    published: dt.date | None
    terms: Mapping[str, Any]

    def attr(self, name: str) -> str:
        return self.attrs.get(name, "")

    @property
    def usagetype(self) -> str:
        return self.attr("usagetype") or self.sku

    @property
    def region(self) -> str:
        return self.attr("regionCode")

    @property
    def model_name(self) -> str:
        """The display name without the Marketplace and latency-optimized decorations."""
        name = self.display_name
        if name.lower().endswith(_MARKETPLACE_SUFFIX):
            name = name[: -len(_MARKETPLACE_SUFFIX)].strip()
        return _LATENCY_SUFFIX.sub("", name)

    @property
    def display_name(self) -> str:
        for key in ("model", "titanModel"):
            if value := self.attr(key).strip():
                return value
        # Native rows name the service itself here; Marketplace listings name the model.
        service_name = self.attr("servicename").strip()
        return "" if service_name.lower() in ("amazon bedrock", "amazon bedrock service") else service_name


@dataclasses.dataclass(frozen=True, slots=True)
class _Price:
    usd: Decimal
    unit: str
    description: str
    effective: dt.date | None


@dataclasses.dataclass(slots=True)
class _Report:
    unmapped: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    conflicts: list[str] = dataclasses.field(default_factory=list)
    not_emitted: list[str] = dataclasses.field(default_factory=list)
    checks: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(slots=True)
class _ModelRates:
    spec: ModelSpec
    # region -> rate path -> price -> usagetypes that quote it (more than one price is a conflict)
    values: dict[str, dict[_RatePath, dict[Decimal, list[str]]]] = dataclasses.field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    )
    effective: set[dt.date] = dataclasses.field(default_factory=set)
    published: set[dt.date] = dataclasses.field(default_factory=set)
    service_codes: set[str] = dataclasses.field(default_factory=set)
    # region -> the SKUs of the rows that priced it, so an entry can name exactly what it came from
    skus: dict[str, set[str]] = dataclasses.field(default_factory=lambda: defaultdict(set))


class _Quoted(str):
    """A string the dumper always writes in double quotes, as the price-file README asks for prices."""

    __slots__ = ()


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        # Every model's entry shares the same `checked` date object; anchors would only confuse a reader.
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key, the way the hand-written price files are laid out.
        super().increase_indent(flow, False)


def _represent_quoted(dumper: yaml.SafeDumper, value: _Quoted) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style='"')


_Dumper.add_representer(_Quoted, _represent_quoted)


# --- reading the input ----------------------------------------------------------------------------------


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
    documents = _json_documents(text, str(path))
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
        documents += _json_documents(text, str(path))
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
    products = _products(data, where)
    catalog = _Catalog(bundled_models() if models is None else models)
    return _render(products, catalog, today or dt.date.today())


def bundled_models() -> list[ModelSpec]:
    """The models of the bundled price files, which display names are matched against."""
    return [model for price_file in validate_paths([BUNDLED_PRICES]) for model in price_file.models]


def _json_documents(text: str, where: str) -> list[Any]:
    # `aws pricing get-products` run once per page and appended to one file gives concatenated objects.
    decoder = json.JSONDecoder(parse_float=Decimal)
    documents: list[Any] = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            break
        try:
            document, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise PriceListError(where, [f"not JSON: {exc}"]) from None
        documents.append(document)
    if not documents:
        raise PriceListError(where, ["not JSON: the file is empty"])
    return documents


def _products(data: Any, where: str) -> list[_Product]:
    problems: list[str] = []
    products: list[_Product] = []
    for label, raw, service_code, published in _raw_products(data, problems):
        product = _product(label, raw, service_code, published, problems)
        if product is not None:
            products.append(product)
    if problems:
        raise PriceListError(where, problems)
    return products


def _raw_products(data: Any, problems: list[str]) -> Iterator[tuple[str, Any, str, str]]:
    """(location, product, service code, publication date) of every product, whatever the envelope."""
    if isinstance(data, Mapping):
        if "PriceList" in data:
            items = data["PriceList"]
            if not isinstance(items, list):
                problems.append("PriceList: must be a list of products")
                return
            for index, item in enumerate(items):
                yield f"PriceList[{index}]", item, "", ""
        elif isinstance(data.get("products"), Mapping) and isinstance(data.get("terms"), Mapping):
            yield from _offer_file_products(data)
        elif isinstance(data.get("products"), list):
            meta = data.get("metadata")
            code = str(meta.get("serviceCode", "")) if isinstance(meta, Mapping) else ""
            for index, item in enumerate(data["products"]):
                yield f"products[{index}]", item, code, ""
        elif "product" in data:
            yield "product", data, "", ""
        else:
            keys = ", ".join(sorted(map(str, data))[:8]) or "none"
            problems.append(
                f"not AWS Price List output: expected a GetProducts response with 'PriceList' "
                f"(top-level keys: {keys})"
            )
    elif isinstance(data, Sequence) and not isinstance(data, str | bytes):
        for index, item in enumerate(data):
            if isinstance(item, Mapping) and (
                "PriceList" in item or isinstance(item.get("products"), Mapping)
            ):
                for label, raw, code, published in _raw_products(item, problems):
                    yield f"[{index}].{label}", raw, code, published
            else:
                yield f"[{index}]", item, "", ""
    else:
        problems.append(f"not AWS Price List output: top level is a {type(data).__name__}")


def _offer_file_products(data: Mapping[str, Any]) -> Iterator[tuple[str, Any, str, str]]:
    on_demand = data["terms"].get("OnDemand", {})
    on_demand = on_demand if isinstance(on_demand, Mapping) else {}
    code = str(data.get("offerCode", ""))
    published = str(data.get("publicationDate", ""))
    for sku, product in data["products"].items():
        yield (
            f"products[{sku}]",
            {"product": product, "terms": {"OnDemand": on_demand.get(sku, {})}},
            code,
            published,
        )


def _product(label: str, raw: Any, service_code: str, published: str, problems: list[str]) -> _Product | None:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            problems.append(f"{label}: product is not JSON: {exc}")
            return None
    if not isinstance(raw, Mapping):
        problems.append(f"{label}: a product must be a JSON object, got {type(raw).__name__}")
        return None
    product = raw.get("product")
    attrs = product.get("attributes") if isinstance(product, Mapping) else None
    if not isinstance(product, Mapping) or not isinstance(attrs, Mapping):
        problems.append(f"{label}: not a Price List product (no product.attributes)")
        return None
    terms = raw.get("terms")
    attributes = {str(k): str(v) for k, v in attrs.items() if v is not None}
    code = str(raw.get("serviceCode") or attributes.get("servicecode") or service_code or "AmazonBedrock")
    return _Product(
        sku=str(product.get("sku", "")),
        service_code=code,
        attrs=attributes,
        published=_date_part(raw.get("publicationDate") or published),
        terms=terms if isinstance(terms, Mapping) else {},
    )


def _date_part(value: Any) -> dt.date | None:
    if isinstance(value, str) and len(value) >= 10:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _price(product: _Product) -> _Price | str:
    """The product's single on-demand USD price, or why there is none."""
    on_demand = product.terms.get("OnDemand")
    if not isinstance(on_demand, Mapping) or not on_demand:
        return "no on-demand price (only other term types)"
    found: list[_Price] = []
    for term in on_demand.values():
        if not isinstance(term, Mapping):
            continue
        effective = _date_part(term.get("effectiveDate"))
        dimensions = term.get("priceDimensions")
        for dimension in dimensions.values() if isinstance(dimensions, Mapping) else ():
            if not isinstance(dimension, Mapping):
                continue
            per_unit = dimension.get("pricePerUnit")
            raw = per_unit.get("USD") if isinstance(per_unit, Mapping) else None
            if raw is None:
                continue
            try:
                usd = Decimal(raw) if isinstance(raw, str | Decimal | int) else Decimal("NaN")
            except InvalidOperation:
                usd = Decimal("NaN")
            if not usd.is_finite() or usd < 0:
                return f"price {raw!r} is not a non-negative decimal"
            found.append(
                _Price(usd, str(dimension.get("unit", "")), str(dimension.get("description", "")), effective)
            )
    if not found:
        return "no USD price"
    if len({price.usd for price in found}) > 1:
        return "several price dimensions (tiered pricing) are not supported"
    dates = [price.effective for price in found if price.effective]
    return dataclasses.replace(found[0], effective=max(dates) if dates else None)


# --- model ids ------------------------------------------------------------------------------------------


def _name_keys(name: str) -> set[str]:
    base = " ".join(name.lower().replace(_MARKETPLACE_SUFFIX, " ").split())
    keys = {base}
    for vendor in _VENDOR_PREFIXES:
        if base.startswith(vendor + " "):
            keys.add(base[len(vendor) + 1 :])
    # Bedrock names Meta's models "Llama 3.1 70B Instruct"; the Price List says "Llama 3.1 70B".
    keys |= {key.removesuffix(" instruct") for key in keys if key.endswith(" instruct")}
    # The Price List writes "Nova 2.0 Lite" (usage type Nova2.0Lite) where Bedrock says "Nova 2 Lite".
    keys |= {_WHOLE_VERSION.sub(r"\1", key) for key in keys}
    return keys


class _Catalog:
    """Our models, looked up by id, alias, version-less id and display name; then ``discovered``, models
    found elsewhere (Bedrock's ListFoundationModels) keyed like :func:`_name_keys`; then
    :data:`PRICE_LIST_NAMES`."""

    def __init__(
        self, models: Iterable[ModelSpec], discovered: Mapping[str, Mapping[str, ModelSpec]] | None = None
    ) -> None:
        self.discovered = discovered or {}
        self.by_id: dict[str, ModelSpec] = {}
        self.by_base_id: dict[str, dict[str, ModelSpec]] = defaultdict(dict)
        self.by_name: dict[str, dict[str, ModelSpec]] = defaultdict(dict)
        self.table = {" ".join(name.lower().split()): ident for name, ident in PRICE_LIST_NAMES.items()}
        for model in models:
            for ident in (model.id, *model.aliases):
                self.by_id.setdefault(ident, model)
                self.by_base_id[_ID_VERSION.sub("", ident)][model.id] = model
            for key in _name_keys(model.name):
                self.by_name[key][model.id] = model

    def resolve(self, product: _Product) -> ModelSpec | str:
        """The model a product prices, or why it cannot be told."""
        for candidate in (product.attr("modelId"), product.attr("model").strip()):
            if candidate and _MODEL_ID_SHAPE.match(candidate):
                return self._by_id(candidate)
        name = product.model_name
        if not name:
            return "no model, titanModel or servicename attribute"
        matches: dict[str, ModelSpec] = {}
        for key in _name_keys(name):
            matches.update(self.by_name.get(key, {}))
        if len(matches) == 1:
            return next(iter(matches.values()))
        if len(matches) > 1:
            return f"{name!r} matches several models: {', '.join(sorted(matches))}"
        for key in _name_keys(name):
            matches.update(self.discovered.get(key, {}))
        if len(matches) == 1:
            return next(iter(matches.values()))
        if len(matches) > 1:
            return f"{name!r} matches several Bedrock models: {', '.join(sorted(matches))}"
        for key in _name_keys(name):
            if key in self.table and self.table[key] in self.by_id:
                return self.by_id[self.table[key]]
        where = "the price files or Bedrock's model list" if self.discovered else "the price files"
        return f"no model named {name!r} in {where}"

    def _by_id(self, ident: str) -> ModelSpec | str:
        if ident in self.by_id:
            return self.by_id[ident]
        same_base = self.by_base_id.get(_ID_VERSION.sub("", ident), {})
        if len(same_base) == 1:
            return next(iter(same_base.values()))
        return f"model id {ident!r} is not in the price files (add the model first)"


# --- dimensions -----------------------------------------------------------------------------------------


def _squash(text: str) -> str:
    return re.sub(r"[\s_\-:.]", "", text.lower())


def _dimension(product: _Product, price: _Price) -> tuple[_RatePath, Decimal] | str:
    """Where a product's price goes in a price entry (and its value in our unit), or why it does not."""
    usagetype = product.usagetype
    ut = _squash(usagetype)
    inference = product.attr("inferenceType").strip().lower()
    blob = ut + _squash(inference) + _squash(product.attr("feature")) + _squash(product.attr("featuretype"))
    unit = price.unit.strip().lower()

    if "mantle" in ut:
        return "bedrock-mantle (OpenAI-compatible endpoint) rates are not in the schema"
    if "customization" in blob or "custommodel" in blob or inference.startswith("custom "):
        return "model customization / custom-model rate"
    if "guardrail" in ut:
        return "guardrails are maintained by hand in prices/bedrock.yaml"
    if "reserved" in blob or "tpm" in _squash(unit):
        return "reserved throughput (per TPM-hour) is not in the schema"
    if "searchunit" in blob or "rerank" in blob:
        return "rerank (search unit) rates are not converted"
    if "provisionedthroughput" in blob or "modelunit" in ut:
        return _provisioned(blob, unit, price)
    image = _IMAGE_INFERENCE.match(inference)
    image_ut = _IMAGE_USAGETYPE.search(usagetype)
    if image or image_ut or "createdimage" in ut:
        # Marketplace image listings (Stability) count generated images in opaque "Units".
        marketplace_units = unit in ("unit", "units") and "mp:" in usagetype.lower()
        if unit not in ("image", "images") and not marketplace_units:
            return f"image rate in unit {price.unit!r}, expected per image"
        size, quality = (
            (image.group(2), image.group(3)) if image else image_ut.groups() if image_ut else ("", "")
        )
        return ("images", f"{size}x{size}" if size else "", quality.lower()), price.usd
    if inference.startswith(("t2v ", "i2v ")) or inference == "video" or _VIDEO_USAGETYPE.search(usagetype):
        if "second" not in unit:
            return f"video rate in unit {price.unit!r}, expected per second"
        return ("video_second",), price.usd
    return _token_dimension(product, price, ut, inference, blob)


def _provisioned(blob: str, unit: str, price: _Price) -> tuple[_RatePath, Decimal] | str:
    for marker, commitment in _COMMITMENTS:
        if marker in blob:
            if not any(word in unit for word in ("hour", "hr")):
                return f"provisioned rate in unit {price.unit!r}, expected per hour"
            return ("provisioned", commitment), price.usd
    return "provisioned throughput commitment other than no-commit, 1 month or 6 months"


def _token_dimension(
    product: _Product, price: _Price, ut: str, inference: str, blob: str
) -> tuple[_RatePath, Decimal] | str:
    usagetype = product.usagetype
    if any(word in inference for word in ("image", "audio", "video", "speech")) or any(
        marker in ut for marker in _MODALITY_TOKENS
    ):
        return "image/audio/video/speech token rates are not in the schema"
    if "cacheread" in blob or "cachedinput" in blob:
        kind = "cache_read"
    elif "cachewrite" in blob:
        other_ttl = _MINUTE_TTL.search(usagetype) or _MINUTE_TTL.search(inference)
        if _ONE_HOUR_TTL.search(usagetype) or _ONE_HOUR_TTL.search(inference) or "write1h" in ut:
            kind = "cache_write_1h"
        elif other_ttl and other_ttl.group(1) != "5":
            return f"{other_ttl.group(1)}-minute cache writes are not in the schema"
        else:
            kind = "cache_write_5m"
    elif "input" in inference or "inputtoken" in ut:
        kind = "input"
    elif "output" in inference or "outputtoken" in ut or "responsetoken" in ut:
        kind = "output"
    else:
        return "not a rate this converter recognises"
    scale = _per_million_factor(product, price)
    if isinstance(scale, str):
        return scale
    value = price.usd * scale

    batch = "batch" in blob
    tier = product.attr("service_tier").strip().lower()
    if tier not in ("flex", "priority"):
        match = _TIER_WORD.search(inference) or _TIER_WORD.search(usagetype)
        tier = match.group(1).lower() if match else ""
    latency = "latencyoptimized" in ut or "latencyoptimized" in _squash(product.display_name)
    long_context = any(marker in blob for marker in ("longcontext", "longctx", "lctx"))
    route = "global" if "global" in ut or "global" in inference else ""
    route = route or ("geo" if _GEO_ROUTE.search(usagetype) else "")

    if sum((batch, bool(tier), latency)) > 1:
        return "a combination of batch, service tier and latency-optimized rates is not in the schema"
    if (batch or tier or latency) and (route or long_context):
        return (
            "batch, service-tier or latency-optimized rates of a route or long context are not in the schema"
        )
    if batch:
        return ("batch", kind), value
    if tier:
        return ("tier", tier, kind), value
    if latency:
        if kind not in ("input", "output"):
            return "latency-optimized cache rates are not in the schema"
        return ("latency_optimized", kind), value
    if route:
        return (("routes", route, "long_context", kind) if long_context else ("routes", route, kind)), value
    if long_context:
        return ("long_context", kind), value
    return (kind,), value


def _per_million_factor(product: _Product, price: _Price) -> Decimal | str:
    unit = " ".join(price.unit.strip().lower().split())
    match = _TOKEN_UNIT.match(unit)
    if match:
        per = int(match.group(1) or 1) * {"k": 1000, "m": 1_000_000, None: 1}[match.group(2)]
    elif unit in ("unit", "units") and "mp:" in product.usagetype.lower():
        description = price.description.lower()
        # Marketplace listings quote tokens per million ("Million Input Tokens"); a thousand is spelled out.
        per = 1000 if "thousand" in description or "1k " in description else 1_000_000
    else:
        return f"token rate in unit {price.unit!r} is not understood"
    if per <= 0 or 1_000_000 % per:
        return f"token rate in unit {price.unit!r} does not convert exactly to per 1M tokens"
    return Decimal(1_000_000 // per)


# --- assembling price entries ---------------------------------------------------------------------------


def _where(product: _Product) -> str:
    name = product.model_name or "no model name"
    return f"{product.usagetype} [{product.service_code} {product.region or '?'} {name!r}]"


def _collect(products: Sequence[_Product], catalog: _Catalog, report: _Report) -> dict[str, _ModelRates]:
    rates: dict[str, _ModelRates] = {}
    for product in products:
        price = _price(product)
        if isinstance(price, str):
            report.skipped.append(f"{_where(product)}: {price}")
            continue
        placed = _dimension(product, price)
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
        entry = rates.setdefault(model.id, _ModelRates(model))
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
    model_id: str, region: str, values: Mapping[_RatePath, Mapping[Decimal, list[str]]], report: _Report
) -> dict[_RatePath, Decimal]:
    resolved: dict[_RatePath, Decimal] = {}
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
    model_id: str, region: str, values: Mapping[_RatePath, Decimal], report: _Report
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


def _tree(model_id: str, region: str, values: Mapping[_RatePath, Decimal], report: _Report) -> dict[str, Any]:
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
                images, key=lambda band: (_pixels(band[0]), _QUALITY_RANK[band[1]])
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
    model_id: str, entry: dict[str, Any], by_region: Mapping[str, Mapping[str, Any]], report: _Report
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
            override["batch"] = _ordered(tree["batch"])
        elif written:
            report.checks.append(
                f"{model_id}: {region} has its own on-demand rates but no batch rows; the written "
                f"{DEFAULT_REGION} batch rates would not apply there, so no batch price is emitted"
            )
            entry.pop("batch", None)
            for other in overrides.values():
                other.pop("batch", None)
            return


def _pixels(size: str) -> int:
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


def _region_trees(rates: _ModelRates, report: _Report) -> dict[str, dict[str, Any]]:
    """Every region's complete rate tree (not yet reduced to overrides of us-east-1), conflicts reported."""
    model = rates.spec
    return {
        region: _tree(model.id, region, _resolved(model.id, region, values, report), report)
        for region, values in sorted(rates.values.items())
    }


def _entry(rates: _ModelRates, today: dt.date, report: _Report) -> dict[str, Any] | None:
    model = rates.spec
    by_region = _region_trees(rates, report)
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
    entry: dict[str, Any] = {"effective": effective, "checked": today, "source": _Quoted(source)}
    if notes:
        entry["notes"] = _Quoted("; ".join(notes))
    entry.update(_ordered(base))
    overrides = {
        region: _ordered(changed)
        for region, tree in by_region.items()
        if region != DEFAULT_REGION and (changed := _diff(base, tree))
    }
    if overrides:
        entry["regions"] = overrides
    _keep_batch_with_its_region(model.id, entry, by_region, report)
    return entry


def _ordered(tree: Mapping[str, Any]) -> dict[str, Any]:
    def rank(key: str) -> tuple[int, str]:
        return (_KEY_ORDER.index(key) if key in _KEY_ORDER else len(_KEY_ORDER), key)

    return {
        key: _ordered(value) if isinstance(value, Mapping) else value
        for key, value in sorted(tree.items(), key=lambda item: rank(item[0]))
    }


def _model_document(model: ModelSpec, entry: Mapping[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {"id": model.id}
    if model.aliases:
        document["aliases"] = list(model.aliases)
    document.update({"name": model.name, "family": model.family, "kind": model.kind})
    if model.max_output_tokens is not None:
        document["max_output_tokens"] = model.max_output_tokens
    if model.context_window is not None:
        document["context_window"] = model.context_window
    document["lifecycle"] = model.lifecycle
    document["prices"] = [entry]
    return document


def _yaml_ready(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _Quoted(format_usd(value))
    if isinstance(value, Mapping):
        return {key: _yaml_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_yaml_ready(item) for item in value]
    return value


def _comment_block(label: str, lines: Sequence[str]) -> list[str]:
    return [f"# {label}: {' '.join(line.split())}" for line in sorted(set(lines))]


def _render(products: Sequence[_Product], catalog: _Catalog, today: dt.date) -> str:
    report = _Report()
    rates = _collect(products, catalog, report)
    by_provider: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for model_id in sorted(rates):
        entry = _entry(rates[model_id], today, report)
        if entry is not None:
            by_provider[rates[model_id].spec.provider].append(_model_document(rates[model_id].spec, entry))
    converted = sum(len(models) for models in by_provider.values())
    header = [
        f"# Converted from the AWS Price List API by `bedrock-budget prices import-price-list` on {today}.",
        f"# {len(products)} products read; {converted} models converted; one document per provider below.",
        "# To update prices/<provider>.yaml: append each model's new entry to its `prices:` list (keep the",
        "# older entries), review the lines below, then run `bedrock-budget prices validate prices/`.",
        "# Rates are USD per 1,000,000 tokens, per image, per second of video and per model-unit hour;",
        f"# {DEFAULT_REGION} is the base rate and `regions:` holds only the regions that differ.",
    ]
    header += _comment_block("not emitted", report.not_emitted)
    header += _comment_block("conflict", report.conflicts)
    header += _comment_block("check", report.checks)
    header += _comment_block("unmapped", report.unmapped)
    header += _comment_block("skipped", report.skipped)
    documents = []
    for provider in sorted(by_provider):
        body = {"schema_version": SCHEMA_VERSION, "provider": provider, "models": by_provider[provider]}
        text = yaml.dump(_yaml_ready(body), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
        documents.append(f"# prices/{provider}.yaml\n{text}")
    if not documents:
        header.append("# Nothing could be converted.")
    return "\n".join(header) + "\n" + "---\n".join(documents)
