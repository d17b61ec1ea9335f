"""Writing price-file YAML the way the reviewed files are laid out: prices as quoted decimal strings,
list items indented under their key, no anchors, and comment blocks for what a reviewer must check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import yaml

from bedrock_budget.pricing.money import format_usd
from bedrock_budget.pricing.schema import ModelSpec


class Quoted(str):
    """A string the dumper always writes in double quotes, as the price-file README asks for prices."""

    __slots__ = ()


class PriceFileDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        # Every model's entry shares the same `checked` date object; anchors would only confuse a reader.
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key, the way the hand-written price files are laid out.
        super().increase_indent(flow, False)


def _represent_quoted(dumper: yaml.SafeDumper, value: Quoted) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style='"')


PriceFileDumper.add_representer(Quoted, _represent_quoted)


def model_document(model: ModelSpec, entry: Mapping[str, Any]) -> dict[str, Any]:
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


def yaml_ready(value: Any) -> Any:
    if isinstance(value, Decimal):
        return Quoted(format_usd(value))
    if isinstance(value, Mapping):
        return {key: yaml_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [yaml_ready(item) for item in value]
    return value


def comment_block(label: str, lines: Sequence[str]) -> list[str]:
    return [f"# {label}: {' '.join(line.split())}" for line in sorted(set(lines))]
