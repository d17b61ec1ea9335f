"""Which model a Price List product prices: ids the product carries, else its display name matched
against the names in our price files, the names Bedrock lists, and :data:`PRICE_LIST_NAMES`."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping

from bedrock_budget.pricing.maintenance.price_list_products import MARKETPLACE_SUFFIX, Product
from bedrock_budget.pricing.schema import ModelSpec

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


def name_keys(name: str) -> set[str]:
    base = " ".join(name.lower().replace(MARKETPLACE_SUFFIX, " ").split())
    keys = {base}
    for vendor in _VENDOR_PREFIXES:
        if base.startswith(vendor + " "):
            keys.add(base[len(vendor) + 1 :])
    # Bedrock names Meta's models "Llama 3.1 70B Instruct"; the Price List says "Llama 3.1 70B".
    keys |= {key.removesuffix(" instruct") for key in keys if key.endswith(" instruct")}
    # The Price List writes "Nova 2.0 Lite" (usage type Nova2.0Lite) where Bedrock says "Nova 2 Lite".
    keys |= {_WHOLE_VERSION.sub(r"\1", key) for key in keys}
    return keys


class ModelCatalog:
    """Our models, looked up by id, alias, version-less id and display name; then ``discovered``, models
    found elsewhere (Bedrock's ListFoundationModels) keyed like :func:`name_keys`; then
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
            for key in name_keys(model.name):
                self.by_name[key][model.id] = model

    def resolve(self, product: Product) -> ModelSpec | str:
        """The model a product prices, or why it cannot be told."""
        for candidate in (product.attr("modelId"), product.attr("model").strip()):
            if candidate and _MODEL_ID_SHAPE.match(candidate):
                return self._by_id(candidate)
        name = product.model_name
        if not name:
            return "no model, titanModel or servicename attribute"
        matches: dict[str, ModelSpec] = {}
        for key in name_keys(name):
            matches.update(self.by_name.get(key, {}))
        if len(matches) == 1:
            return next(iter(matches.values()))
        if len(matches) > 1:
            return f"{name!r} matches several models: {', '.join(sorted(matches))}"
        for key in name_keys(name):
            matches.update(self.discovered.get(key, {}))
        if len(matches) == 1:
            return next(iter(matches.values()))
        if len(matches) > 1:
            return f"{name!r} matches several Bedrock models: {', '.join(sorted(matches))}"
        for key in name_keys(name):
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
