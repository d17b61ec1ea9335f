"""Per-model tallies of a budget counter: calls, cost and tokens by model, added by every settlement and
stored as hash fields ``m:<model>:<kind>`` beside the counter's amounts (``stores.base`` re-exports these)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from types import MappingProxyType
from urllib.parse import unquote

from bedrock_budget.stores.keys import encode_part

__all__ = ["Tallies", "add_call", "call_tallies", "parse_tallies", "tally_items", "tally_prefix"]

#: Per-model tally increments: model id -> {"calls": n, "cost": nano-USD, token type: count}.
Tallies = Mapping[str, Mapping[str, int]]


def add_call(tallies: dict[str, dict[str, int]], model: str, cost: int, counts: Mapping[str, int]) -> None:
    """Add one call to per-model tallies: a call, its cost (nano-USD) and each non-zero token count. The one
    place tallies are computed, for a single settlement and for a lease's running total alike."""
    tally = tallies.get(model)
    if tally is None:
        tally = tallies[model] = {}
    tally["calls"] = tally.get("calls", 0) + 1
    tally["cost"] = tally.get("cost", 0) + cost
    for kind, count in counts.items():
        if count:
            tally[kind] = tally.get(kind, 0) + count


def call_tallies(model: str, cost: int, counts: Mapping[str, int]) -> Tallies:
    """The tallies of a settlement for one call."""
    tallies: dict[str, dict[str, int]] = {}
    add_call(tallies, model, cost, counts)
    return tallies


def tally_items(tallies: Tallies) -> list[tuple[str, int]]:
    """Stored field names (``m:<model>:<kind>``) and increments of a settlement's tallies."""
    return [
        (tally_prefix(name) + kind, value)
        for name, counts in tallies.items()
        for kind, value in counts.items()
        if value
    ]


def parse_tallies(items: Mapping[str, str] | Sequence[tuple[str, str]]) -> Mapping[str, Mapping[str, int]]:
    pairs = items.items() if isinstance(items, Mapping) else items
    models: dict[str, dict[str, int]] = {}
    for name, value in pairs:
        if not name.startswith("m:"):
            continue
        model, _, kind = name[2:].rpartition(":")
        models.setdefault(unquote(model), {})[kind] = int(value)
    return MappingProxyType({k: MappingProxyType(v) for k, v in models.items()})


@lru_cache(maxsize=1024)
def tally_prefix(model: str) -> str:
    # Percent-encoding the model id costs microseconds and every settlement of a model repeats it.
    return f"m:{encode_part(model)}:"
