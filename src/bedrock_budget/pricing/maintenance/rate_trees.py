"""Rates as trees (nested, as price files write them) and flat (rate path -> value), and the rate-by-rate
difference between two entries."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from bedrock_budget.pricing.maintenance.price_entries import QUALITY_RANK, image_pixels, ordered
from bedrock_budget.pricing.maintenance.update_types import RateChange
from bedrock_budget.pricing.table import DEFAULT_REGION

Flat = dict[tuple[str, ...], Any]


META_KEYS = ("effective", "checked", "source", "notes", "regions")


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    return value


def flatten(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Flat:
    """Rates by path. An image band list is one value (a sorted tuple of bands): a price list's bands
    replace a file's bands whole, as a region override's do, so an unsized band never lingers beside sized
    ones."""
    flat: Flat = {}
    for key, value in tree.items():
        if key in META_KEYS and not prefix:
            continue
        if key == "images" and isinstance(value, list):
            flat[(*prefix, "images")] = tuple(
                sorted(
                    (str(band.get("size", "")), str(band.get("quality", "")), _number(band["usd"]))
                    for band in value
                )
            )
        elif isinstance(value, Mapping):
            flat.update(flatten(value, (*prefix, str(key))))
        else:
            flat[(*prefix, str(key))] = _number(value)
    return flat


def nest(flat: Flat) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if path[-1] == "images":
            value = [
                {**({"size": size} if size else {}), **({"quality": quality} if quality else {}), "usd": usd}
                for size, quality, usd in sorted(
                    value, key=lambda band: (image_pixels(band[0]), QUALITY_RANK.get(band[1], 2))
                )
            ]
        node[path[-1]] = value
    return ordered(tree)


def full_trees(raw_entry: Mapping[str, Any]) -> dict[str, Flat]:
    base = flatten(raw_entry)
    trees = {DEFAULT_REGION: base}
    for region, override in (raw_entry.get("regions") or {}).items():
        trees[str(region)] = {**base, **flatten(override)}
    return trees


def as_written(trees: Mapping[str, Flat]) -> dict[str, Flat]:
    """Each region's rates as the written entry gives them: us-east-1's, overridden where the region
    differs. (A region inherits a rate us-east-1 gains; the file cannot say "not in this region".)"""
    base = trees[DEFAULT_REGION]
    return {region: {**base, **flat} for region, flat in trees.items()}


def rate_changes(old: Mapping[str, Flat], new: Mapping[str, Flat]) -> list[RateChange]:
    changes: list[RateChange] = []
    for region in sorted(set(old) | set(new), key=lambda r: (r != DEFAULT_REGION, r)):
        before = _banded(old.get(region, old.get(DEFAULT_REGION, {})))
        after = _banded(new.get(region, new.get(DEFAULT_REGION, {})))
        for path in sorted(set(before) | set(after)):
            if before.get(path) != after.get(path):
                rate = ".".join(part for part in path if part)
                changes.append(RateChange(region, rate, _money(before.get(path)), _money(after.get(path))))
    return changes


def _banded(flat: Flat) -> Flat:
    """``flat`` with image bands spread out by size and quality, for showing what changed."""
    spread: Flat = {}
    for path, value in flat.items():
        if path[-1] == "images":
            for size, quality, usd in value:
                spread[(*path, size or "any-size", quality)] = usd
        else:
            spread[path] = value
    return spread


def _money(value: Any) -> Decimal | None:
    return value if isinstance(value, Decimal) else None if value is None else Decimal(value)
