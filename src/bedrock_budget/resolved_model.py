"""What a model identifier resolves to: the value pricing reads, and the capacity details lookups find.

A :class:`ResolvedModel` is built in steps by :class:`~bedrock_budget.resolver.ModelResolver`: each hop of
an identifier that refers to another (a provisioned model serving a custom model based on a foundation
model) yields one, and the outer hop replaces what it decides (pricing mode, route, capacity), so the value
the caller gets and the values hops pass each other are the same class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from bedrock_budget.model_ids import ModelRef, Route

__all__ = [
    "DEFAULT_REGION",
    "ImportedModelInfo",
    "PricingMode",
    "ProvisionedInfo",
    "ResolvedModel",
    "Source",
]

PricingMode = Literal["on_demand", "provisioned", "custom_model_import", "custom_deployment", "marketplace"]
Source = Literal["id", "static_mapping", "control_plane"]

DEFAULT_REGION: Final = "us-east-1"


@dataclass(frozen=True, slots=True)
class ProvisionedInfo:
    """Capacity of a Provisioned Throughput, from ``get_provisioned_model_throughput``."""

    provisioned_model_arn: str
    model_arn: str | None  # the model it serves: a foundation-model or custom-model ARN
    model_units: int | None
    desired_model_units: int | None
    commitment: str | None  # "OneMonth" | "SixMonths"; None means no commitment (hourly)
    commitment_expiration: datetime | None
    status: str | None


@dataclass(frozen=True, slots=True)
class ImportedModelInfo:
    """Capacity of an imported model (Custom Model Import), from ``get_imported_model``."""

    model_arn: str
    model_architecture: str | None
    custom_model_units_per_copy: int | None
    custom_model_units_version: str | None


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """Everything pricing needs to know about the model a call uses.

    ``base_id`` is the foundation-model id without a geo prefix. Imported models, custom models without a
    base and SageMaker endpoints have no foundation model: their ``base_id`` is their own ARN, so a price
    entry can be keyed by it. ``region`` is the source Region (the runtime client's), which is what AWS
    prices cross-Region calls by. For prompt routers ``base_id`` is the fallback model; ``candidates`` lists
    every model the router may pick, for worst-case estimates.
    """

    ref: ModelRef
    base_id: str
    route: Route
    region: str
    pricing_mode: PricingMode
    provisioned: ProvisionedInfo | None = None
    geo: str | None = None
    imported: ImportedModelInfo | None = None
    candidates: tuple[str, ...] = ()
    source: Source = "id"
    #: True when any hop came from the control plane: such results expire with the lookup, the others
    #: never change. Bookkeeping, not part of what the model is, so equality and hashing ignore it.
    looked_up: bool = field(default=False, compare=False, repr=False)

    def reached_by(self, ref: ModelRef, region: str) -> ResolvedModel:
        """This resolution as the caller sees it: asked for by ``ref`` from a client in ``region``."""
        # Spelled out rather than ``dataclasses.replace``: uncached lookups pass here on every call.
        return ResolvedModel(
            ref,
            self.base_id,
            self.route,
            region,
            self.pricing_mode,
            self.provisioned,
            self.geo,
            self.imported,
            self.candidates,
            self.source,
            self.looked_up,
        )
