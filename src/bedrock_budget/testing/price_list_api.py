"""What the fake serves for price tooling: the Price List Query API's GetProducts (service ``pricing``,
JSON 1.1 protocol) and the ``bedrock`` control plane's ListFoundationModels.

GetProducts answers like AWS: ``POST /`` with ``X-Amz-Target: AWSPriceListService.GetProducts``, each
``PriceList`` item a JSON *string* holding one product with its terms, at most ``MaxResults`` (default and
cap 100) per page and an opaque ``NextToken`` for the rest. ``Filters`` match product attributes
(``TERM_MATCH``/``EQUALS`` exactly, ``CONTAINS``, ``ANY_OF`` and ``NONE_OF`` with comma-separated values).
Errors are JSON 1.1 errors (``{"__type": ..., "Message": ...}``), so botocore raises
``client.exceptions.InvalidParameterException`` and friends.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import parse_qs

from .reply import Reply, json_reply

__all__ = ["PriceListCatalog", "PricingError"]

_PAGE_CAP: Final = 100
_FILTER_TYPES: Final = frozenset({"TERM_MATCH", "EQUALS", "CONTAINS", "ANY_OF", "NONE_OF"})
_PRICING_TARGET_PREFIX: Final = "AWSPriceListService."
_PRICING_STATUS: Final = {
    "InvalidParameterException": 400,
    "InvalidNextTokenException": 400,
    "NotFoundException": 400,
    "ThrottlingException": 400,
    "InternalErrorException": 500,
}


class PricingError(Exception):
    """A modelled Price List API error, answered in the JSON 1.1 shape."""

    def __init__(self, code: str, message: str) -> None:
        if code not in _PRICING_STATUS:
            raise ValueError(
                f"unknown Price List API error {code!r}; known: {', '.join(sorted(_PRICING_STATUS))}"
            )
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")

    def reply(self) -> Reply:
        body = json.dumps({"__type": self.code, "Message": self.message}).encode("utf-8")
        return Reply(
            _PRICING_STATUS[self.code],
            (("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", self.code)),
            body,
        )


def pricing_operation(method: str, path: str, headers: Mapping[str, str]) -> str | None:
    """The Price List operation a JSON 1.1 request names (``GetProducts``), or ``None`` if it is not one."""
    target = headers.get("x-amz-target", "")
    if method == "POST" and path == "/" and target.startswith(_PRICING_TARGET_PREFIX):
        return target[len(_PRICING_TARGET_PREFIX) :]
    return None


def _json_reply_11(payload: Any) -> Reply:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return Reply(200, (("Content-Type", "application/x-amz-json-1.1"),), body)


class PriceListCatalog:
    """The products per service code and the foundation models the fake answers with (empty until a test
    adds some)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._products: dict[str, list[dict[str, Any]]] = {}
        self._models: list[dict[str, Any]] = []

    def clear(self) -> None:
        with self._lock:
            self._products.clear()
            self._models.clear()

    # --- filling --------------------------------------------------------------------------------

    def add_products(self, service_code: str, products: Iterable[Mapping[str, Any] | str]) -> None:
        """Add Price List products (objects or the JSON strings GetProducts returns) to an offer."""
        parsed = [json.loads(p) if isinstance(p, str) else copy.deepcopy(dict(p)) for p in products]
        for product in parsed:
            if not isinstance(product.get("product"), Mapping):
                raise ValueError("a Price List product needs a 'product' object")
        with self._lock:
            self._products.setdefault(service_code, []).extend(parsed)

    def set_products(self, service_code: str, products: Iterable[Mapping[str, Any] | str]) -> None:
        """Replace an offer's products (a price change between two runs, for example)."""
        with self._lock:
            self._products.pop(service_code, None)
        self.add_products(service_code, products)

    def load(self, data: Any) -> int:
        """Add the products of saved Price List output: GetProducts responses (or a list of them) or bulk
        offer files (``offers/v1.0/aws/<offer>/current/<region>/index.json``). Returns how many."""
        added = 0
        if isinstance(data, list):
            return sum(self.load(item) for item in data)
        if isinstance(data, Mapping) and isinstance(data.get("PriceList"), list):
            by_code: dict[str, list[dict[str, Any]]] = {}
            for item in data["PriceList"]:
                product = json.loads(item) if isinstance(item, str) else dict(item)
                by_code.setdefault(str(product.get("serviceCode", "")), []).append(product)
            for code, products in by_code.items():
                self.add_products(code, products)
                added += len(products)
            return added
        if isinstance(data, Mapping) and isinstance(data.get("products"), Mapping):
            code = str(data.get("offerCode", ""))
            on_demand = (data.get("terms") or {}).get("OnDemand") or {}
            items = [
                {
                    "product": product,
                    "serviceCode": code,
                    "terms": {"OnDemand": on_demand.get(sku, {})},
                    "version": data.get("version", ""),
                    "publicationDate": data.get("publicationDate", ""),
                }
                for sku, product in data["products"].items()
            ]
            self.add_products(code, items)
            return len(items)
        raise ValueError("not Price List output: expected GetProducts responses or a bulk offer file")

    def set_foundation_models(self, summaries: Sequence[Mapping[str, Any]]) -> None:
        """The ``modelSummaries`` ListFoundationModels returns."""
        for summary in summaries:
            if not isinstance(summary.get("modelId"), str):
                raise ValueError("a model summary needs a string 'modelId'")
        with self._lock:
            self._models = [copy.deepcopy(dict(summary)) for summary in summaries]

    # --- answering ------------------------------------------------------------------------------

    def handle_pricing(self, operation: str, body: bytes) -> Reply:
        try:
            if operation != "GetProducts":
                raise PricingError(
                    "InvalidParameterException", f"operation {operation} is not supported here"
                )
            return _json_reply_11(self._get_products(_request_object(body)))
        except PricingError as error:
            return error.reply()

    def _get_products(self, request: Mapping[str, Any]) -> dict[str, Any]:
        service_code = request.get("ServiceCode")
        if not isinstance(service_code, str) or not service_code:
            raise PricingError("InvalidParameterException", "ServiceCode is required.")
        format_version = request.get("FormatVersion", "aws_v1")
        if format_version != "aws_v1":
            raise PricingError(
                "InvalidParameterException", f"FormatVersion {format_version} is not supported."
            )
        limit = request.get("MaxResults", _PAGE_CAP)
        if not isinstance(limit, int) or not 1 <= limit <= _PAGE_CAP:
            raise PricingError("InvalidParameterException", f"MaxResults must be between 1 and {_PAGE_CAP}.")
        filters = _filters(request.get("Filters", []))
        with self._lock:
            products = list(self._products.get(service_code, ()))
        matching = [p for p in products if all(_matches(p, f) for f in filters)]
        start = _token_offset(request.get("NextToken"), service_code)
        page = matching[start : start + limit]
        answer: dict[str, Any] = {
            "FormatVersion": "aws_v1",
            "PriceList": [json.dumps(p, separators=(",", ":")) for p in page],
        }
        if start + limit < len(matching):
            answer["NextToken"] = _token(service_code, start + limit)
        return answer

    def list_foundation_models(self, query: str) -> Reply:
        params = parse_qs(query)
        with self._lock:
            models = [copy.deepcopy(m) for m in self._models]
        wanted: dict[str, Callable[[dict[str, Any], str], bool]] = {
            "byProvider": lambda m, v: str(m.get("providerName", "")).lower() == v.lower(),
            "byOutputModality": lambda m, v: v in m.get("outputModalities", ()),
            "byInferenceType": lambda m, v: v in m.get("inferenceTypesSupported", ()),
            "byCustomizationType": lambda m, v: v in m.get("customizationsSupported", ()),
        }
        for name, test in wanted.items():
            if name in params:
                models = [m for m in models if test(m, params[name][0])]
        return json_reply({"modelSummaries": models})


def _request_object(body: bytes) -> Mapping[str, Any]:
    try:
        value = json.loads(body) if body else {}
    except (UnicodeDecodeError, ValueError):
        value = None
    if not isinstance(value, dict):
        raise PricingError("InvalidParameterException", "The request body is not a JSON object.")
    return value


def _filters(raw: Any) -> list[tuple[str, str, str]]:
    if not isinstance(raw, list):
        raise PricingError("InvalidParameterException", "Filters must be a list.")
    found: list[tuple[str, str, str]] = []
    for item in raw:
        kind = item.get("Type") if isinstance(item, Mapping) else None
        field = item.get("Field") if isinstance(item, Mapping) else None
        value = item.get("Value") if isinstance(item, Mapping) else None
        if kind not in _FILTER_TYPES or not isinstance(field, str) or not isinstance(value, str):
            raise PricingError(
                "InvalidParameterException",
                f"Each filter needs Type (one of {', '.join(sorted(_FILTER_TYPES))}), Field and Value.",
            )
        found.append((kind, field, value))
    return found


def _matches(product: Mapping[str, Any], rule: tuple[str, str, str]) -> bool:
    kind, field, value = rule
    attributes = product["product"].get("attributes") or {}
    # Field names are case-insensitive in the Price List API; values compare exactly, like AWS.
    actual = next((str(v) for k, v in attributes.items() if k.lower() == field.lower()), None)
    if kind in ("TERM_MATCH", "EQUALS"):
        return actual == value
    if kind == "CONTAINS":
        return actual is not None and value in actual
    options = {option.strip() for option in value.split(",")}
    if kind == "ANY_OF":
        return actual in options
    return actual not in options  # NONE_OF


def _token(service_code: str, offset: int) -> str:
    raw = json.dumps({"serviceCode": service_code, "offset": offset}).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def _token_offset(raw: Any, service_code: str) -> int:
    if raw is None:
        return 0
    try:
        data = json.loads(base64.b64decode(str(raw), validate=True))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        data = None
    if (
        not isinstance(data, dict)
        or data.get("serviceCode") != service_code
        or not isinstance(data.get("offset"), int)
        or data["offset"] < 0
    ):
        raise PricingError("InvalidNextTokenException", "The pagination token is invalid.")
    return int(data["offset"])
