"""Typed loading and strict validation of price files (the schema is described in prices/README.md).

:func:`load_price_file` reads one file, :func:`validate_paths` files and folders together; both report every
problem at once, each with its location. The typed result is in :mod:`.types`; the checks are split by
level: single fields (:mod:`.fields`), one dated price entry (:mod:`.entries`) and whole files
(:mod:`.files`).
"""

from bedrock_budget.pricing.schema.files import load_price_file, price_files_in, validate_paths
from bedrock_budget.pricing.schema.types import (
    COMMITMENTS,
    GUARDRAIL_POLICIES,
    IMAGE_QUALITIES,
    LIFECYCLES,
    MODEL_KINDS,
    ROUTE_CLASSES,
    SCHEMA_VERSION,
    SERVICE_TIERS,
    TOKEN_RATE_KEYS,
    CustomModelImportPrices,
    GuardrailPrices,
    ImageBand,
    LongContext,
    ModelKind,
    ModelSpec,
    PriceEntry,
    PriceFile,
    PriceSpec,
    TokenRates,
)

__all__ = [
    "COMMITMENTS",
    "GUARDRAIL_POLICIES",
    "IMAGE_QUALITIES",
    "LIFECYCLES",
    "MODEL_KINDS",
    "ROUTE_CLASSES",
    "SCHEMA_VERSION",
    "SERVICE_TIERS",
    "TOKEN_RATE_KEYS",
    "CustomModelImportPrices",
    "GuardrailPrices",
    "ImageBand",
    "LongContext",
    "ModelKind",
    "ModelSpec",
    "PriceEntry",
    "PriceFile",
    "PriceSpec",
    "TokenRates",
    "load_price_file",
    "price_files_in",
    "validate_paths",
]
