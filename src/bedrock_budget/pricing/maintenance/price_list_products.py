"""Reading AWS Price List output: the products of GetProducts pages, bulk offer files and the other
envelopes :mod:`.price_list` accepts, each reduced to its attributes and its single on-demand USD price."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from bedrock_budget.errors import PriceListError

MARKETPLACE_SUFFIX = "(amazon bedrock edition)"
_LATENCY_SUFFIX = re.compile(r"\s+latency[\s-]*optimi[sz]ed\s*$", re.IGNORECASE)


@dataclasses.dataclass(frozen=True, slots=True)
class Product:
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
        if name.lower().endswith(MARKETPLACE_SUFFIX):
            name = name[: -len(MARKETPLACE_SUFFIX)].strip()
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
class ListedPrice:
    usd: Decimal
    unit: str
    description: str
    effective: dt.date | None


def json_documents(text: str, where: str) -> list[Any]:
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


def parse_products(data: Any, where: str) -> list[Product]:
    problems: list[str] = []
    products: list[Product] = []
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


def _product(label: str, raw: Any, service_code: str, published: str, problems: list[str]) -> Product | None:
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
    return Product(
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


def on_demand_price(product: Product) -> ListedPrice | str:
    """The product's single on-demand USD price, or why there is none."""
    on_demand = product.terms.get("OnDemand")
    if not isinstance(on_demand, Mapping) or not on_demand:
        return "no on-demand price (only other term types)"
    found: list[ListedPrice] = []
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
                ListedPrice(
                    usd, str(dimension.get("unit", "")), str(dimension.get("description", "")), effective
                )
            )
    if not found:
        return "no USD price"
    if len({price.usd for price in found}) > 1:
        return "several price dimensions (tiered pricing) are not supported"
    dates = [price.effective for price in found if price.effective]
    return dataclasses.replace(found[0], effective=max(dates) if dates else None)
