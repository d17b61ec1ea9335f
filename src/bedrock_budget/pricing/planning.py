"""Capacity planning: on-demand vs batch vs Provisioned Throughput for a steady monthly workload."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from bedrock_budget.errors import UnsupportedPricingError
from bedrock_budget.pricing.money import format_usd
from bedrock_budget.pricing.table import Commitment, PriceTable
from bedrock_budget.usage import Usage

HOURS_PER_MONTH = Decimal(730)


@dataclass(frozen=True, slots=True)
class CapacityPlan:
    model_id: str
    requests_per_month: int
    cost_per_request_usd: Decimal
    on_demand_usd: Decimal
    batch_usd: Decimal | None
    provisioned_usd: Decimal | None
    model_units: int | None
    commitment: str | None
    hours_per_month: Decimal
    # Monthly requests at which on-demand costs exactly what the provisioned units cost.
    break_even_requests_per_month: int | None
    # This workload's on-demand cost as a percentage of the provisioned cost: at 100% they cost the same.
    break_even_utilisation: Decimal | None
    recommendation: str

    def as_dict(self) -> dict[str, object]:
        def usd(value: Decimal | None) -> str | None:
            return None if value is None else format_usd(value)

        return {
            "model_id": self.model_id,
            "requests_per_month": self.requests_per_month,
            "cost_per_request_usd": usd(self.cost_per_request_usd),
            "on_demand_usd": usd(self.on_demand_usd),
            "batch_usd": usd(self.batch_usd),
            "provisioned_usd": usd(self.provisioned_usd),
            "model_units": self.model_units,
            "commitment": self.commitment,
            "hours_per_month": str(self.hours_per_month),
            "break_even_requests_per_month": self.break_even_requests_per_month,
            "break_even_utilisation_percent": (
                None if self.break_even_utilisation is None else str(self.break_even_utilisation)
            ),
            "total_usd": usd(self._cheapest()),
            "recommendation": self.recommendation,
        }

    def _cheapest(self) -> Decimal:
        options = [self.on_demand_usd]
        if self.provisioned_usd is not None:
            options.append(self.provisioned_usd)
        return min(options)


def plan_capacity(
    table: PriceTable,
    model_id: str,
    *,
    requests_per_month: int,
    input_tokens_per_request: int,
    output_tokens_per_request: int,
    model_units: int | None = None,
    commitment: Commitment | None = None,
    hours_per_month: Decimal = HOURS_PER_MONTH,
    region: str = "us-east-1",
) -> CapacityPlan:
    usage = Usage(input_tokens=input_tokens_per_request, output_tokens=output_tokens_per_request)
    per_request = table.price(model_id, usage, region=region)
    on_demand = per_request.total_usd * requests_per_month
    batch: Decimal | None
    try:
        batch = table.price(model_id, usage, region=region, batch=True).total_usd * requests_per_month
    except UnsupportedPricingError:
        batch = None
    units = model_units or 1
    term: Commitment = commitment or "none"
    # Units or a term the caller asked for stay in the plan even when the model has no such price, so the
    # comparison shows that option as not offered instead of failing the whole plan.
    asked = model_units is not None or commitment is not None
    try:
        provisioned: Decimal | None = table.price_provisioned(
            model_id, model_units=units, commitment=term, hours=hours_per_month, region=region
        ).total_usd
    except UnsupportedPricingError:
        provisioned = None
    break_even_requests = None
    utilisation = None
    if provisioned is not None and provisioned > 0:
        if per_request.total_usd > 0:
            break_even_requests = int((provisioned / per_request.total_usd).to_integral_value(ROUND_HALF_UP))
        utilisation = (on_demand * 100 / provisioned).quantize(Decimal("0.1"), ROUND_HALF_UP)
    recommendation = _recommend(on_demand, batch, provisioned, units, term)
    return CapacityPlan(
        model_id=table.model(model_id).id,
        requests_per_month=requests_per_month,
        cost_per_request_usd=per_request.total_usd,
        on_demand_usd=on_demand,
        batch_usd=batch,
        provisioned_usd=provisioned,
        model_units=units if provisioned is not None or asked else None,
        commitment=term if provisioned is not None or asked else None,
        hours_per_month=hours_per_month,
        break_even_requests_per_month=break_even_requests,
        break_even_utilisation=utilisation,
        recommendation=recommendation,
    )


def _recommend(
    on_demand: Decimal, batch: Decimal | None, provisioned: Decimal | None, units: int, term: str
) -> str:
    if provisioned is not None and provisioned < on_demand:
        saving = on_demand - provisioned
        return (
            f"provisioned throughput ({units} MU, {term} commitment) saves ${format_usd(saving)} a month "
            "if those units carry the traffic"
        )
    advice = "stay on-demand"
    if provisioned is not None:
        extra = format_usd(provisioned - on_demand)
        advice += f": provisioned costs ${extra} more a month at this volume"
    if batch is not None and batch < on_demand:
        advice += (
            f"; move non-interactive traffic to batch to save up to ${format_usd(on_demand - batch)} a month"
        )
    return advice
