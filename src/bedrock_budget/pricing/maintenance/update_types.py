"""What ``prices update`` found: the rates that changed, by model, and the layer to write."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from bedrock_budget.pricing.table import DEFAULT_REGION


@dataclasses.dataclass(frozen=True, slots=True)
class RateChange:
    """One rate of one region: ``rate`` is a dotted path such as ``batch.output`` or
    ``images.1024x1024.standard``; ``old`` is ``None`` for a rate that is new."""

    region: str
    rate: str
    old: Decimal | None
    new: Decimal | None


@dataclasses.dataclass(frozen=True, slots=True)
class ModelUpdate:
    model_id: str
    name: str
    provider: str
    effective: dt.date
    changes: tuple[RateChange, ...]
    notes: str = ""


@dataclasses.dataclass(slots=True)
class UpdatePlan:
    """What an update found; :attr:`documents` is the whole layer to write, one document per provider."""

    today: dt.date
    products: int
    offers: dict[str, str] = dataclasses.field(default_factory=dict)
    new: list[ModelUpdate] = dataclasses.field(default_factory=list)
    changed: list[ModelUpdate] = dataclasses.field(default_factory=list)
    removed: list[str] = dataclasses.field(default_factory=list)
    refreshed: list[str] = dataclasses.field(default_factory=list)
    partial: list[str] = dataclasses.field(default_factory=list)
    unmapped: list[str] = dataclasses.field(default_factory=list)
    not_converted: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    documents: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    touched: set[str] = dataclasses.field(default_factory=set)

    @property
    def has_changes(self) -> bool:
        return bool(self.new or self.changed or self.removed or self.refreshed)


def regions_text(regions: Sequence[str], shown: int = 3) -> str:
    """``us-east-1, us-west-2 and 5 more regions``: first us-east-1, then alphabetical."""
    ordered = sorted(regions, key=lambda region: (region != DEFAULT_REGION, region))
    more = len(ordered) - shown
    head = ", ".join(ordered[:shown])
    return f"{head} and {more} more region{'s' if more != 1 else ''}" if more > 0 else head
