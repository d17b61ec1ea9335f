"""Where a Price List product's price goes in a price entry (a rate path such as ``("routes", "global",
"input")``) and its value in our units, or why the schema cannot hold it."""

from __future__ import annotations

import re
from decimal import Decimal

from bedrock_budget.pricing.maintenance.price_list_products import ListedPrice, Product

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


RatePath = tuple[str, ...]


def _squash(text: str) -> str:
    return re.sub(r"[\s_\-:.]", "", text.lower())


def dimension(product: Product, price: ListedPrice) -> tuple[RatePath, Decimal] | str:
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


def _provisioned(blob: str, unit: str, price: ListedPrice) -> tuple[RatePath, Decimal] | str:
    for marker, commitment in _COMMITMENTS:
        if marker in blob:
            if not any(word in unit for word in ("hour", "hr")):
                return f"provisioned rate in unit {price.unit!r}, expected per hour"
            return ("provisioned", commitment), price.usd
    return "provisioned throughput commitment other than no-commit, 1 month or 6 months"


def _token_dimension(
    product: Product, price: ListedPrice, ut: str, inference: str, blob: str
) -> tuple[RatePath, Decimal] | str:
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


def _per_million_factor(product: Product, price: ListedPrice) -> Decimal | str:
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
