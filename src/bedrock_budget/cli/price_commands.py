"""``price``, ``price-guardrail``, ``price-provisioned``, ``price-import`` and ``plan``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from bedrock_budget.cli.options import (
    COUNT,
    DECIMAL,
    checked_region,
    json_option,
    price_file_options,
    price_table,
    region_option,
)
from bedrock_budget.cli.output import emit_cost, emit_json, money, table
from bedrock_budget.pricing.planning import HOURS_PER_MONTH, plan_capacity
from bedrock_budget.usage import Usage


class CalendarDay(click.ParamType):  # type: ignore[type-arg]
    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date in the form YYYY-MM-DD", param, ctx)


COMMITMENTS = click.Choice(["none", "1-month", "6-month"])
GUARDRAIL_POLICIES = click.Choice(
    [
        "content_filters",
        "denied_topics",
        "contextual_grounding",
        "sensitive_information",
        "word_filters",
        "sensitive_information_regex",
    ]
)


@click.command("price")
@click.argument("model_id")
@click.option("--input-tokens", type=COUNT, default=0, help="Input tokens (not cached).")
@click.option("--output-tokens", type=COUNT, default=0, help="Output tokens.")
@click.option("--cache-read-tokens", type=COUNT, default=0, help="Tokens read from the prompt cache.")
@click.option("--cache-write-tokens", type=COUNT, default=0, help="Tokens written to the prompt cache.")
@click.option("--cache-ttl", type=click.Choice(["5m", "1h"]), default="5m", show_default=True)
@click.option("--images", type=COUNT, default=0, help="Images generated.")
@click.option("--image-size", default=None, help="WIDTHxHEIGHT of the images (default 1024x1024).")
@click.option("--image-quality", type=click.Choice(["standard", "premium"]), default=None)
@click.option("--video-seconds", type=COUNT, default=0, help="Seconds of generated video.")
@click.option(
    "--region",
    default=None,
    help="Source region of the call.  [default: us-east-1; us-gov-west-1 for a us-gov. profile]",
)
@click.option("--batch", is_flag=True, help="Price at batch-inference rates.")
@click.option(
    "--service-tier", type=click.Choice(["default", "priority", "flex"]), default="default", show_default=True
)
@click.option(
    "--latency", type=click.Choice(["standard", "optimized"]), default="standard", show_default=True
)
@click.option(
    "--at",
    "at",
    type=CalendarDay(),
    default=None,
    metavar="YYYY-MM-DD",
    help="Price with the rates in force on this day.  [default: today, UTC]",
)
@json_option
@price_file_options
def price(
    model_id: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    cache_ttl: str,
    images: int,
    image_size: str | None,
    image_quality: str | None,
    video_seconds: int,
    region: str | None,
    batch: bool,
    service_tier: str,
    latency: str,
    at: dt.date | None,
    as_json: bool,
    price_files: tuple[Path, ...],
    discount_percent: Decimal | None,
) -> None:
    """Price one call of MODEL_ID (any id form: base id, us./global. profile, ARN).

    \b
    Example:
      bedrock-budget price us.anthropic.claude-3-5-haiku-20241022-v1:0 --input-tokens 2000 --output-tokens 500
      bedrock-budget price mistral.pixtral-large-2502-v1:0 --input-tokens 2000 --at 2025-06-01
    """
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
        cache_write_1h_tokens=cache_write_tokens if cache_ttl == "1h" else 0,
        images=images,
        image_size=image_size,
        image_quality=image_quality,
        video_seconds=video_seconds,
    )
    day = at if at is not None else dt.datetime.now(dt.UTC).date()
    table_ = price_table(price_files, discount_percent)
    cost = table_.price(
        model_id,
        usage,
        # No --region: the id's own Region (an ARN's, us-gov-west-1 for us-gov.) or us-east-1.
        region=None if region is None else checked_region(table_, region, model_id),
        batch=batch,
        service_tier=service_tier,  # type: ignore[arg-type]
        latency=latency,  # type: ignore[arg-type]
        at=day,
    )
    if as_json:
        emit_json({**cost.as_dict(), "priced_at": day.isoformat()})
        return
    emit_cost(cost, as_json=False, title=f"{model_id} in {cost.context['region']} on {day.isoformat()}")


@click.command("price-guardrail")
@click.option("--text-units", type=COUNT, required=True, help="Text units (up to 1,000 characters each).")
@click.option(
    "--policy", "policies", type=GUARDRAIL_POLICIES, multiple=True, required=True, help="Repeatable."
)
@json_option
@price_file_options
def price_guardrail(
    text_units: int,
    policies: tuple[str, ...],
    as_json: bool,
    price_files: tuple[Path, ...],
    discount_percent: Decimal | None,
) -> None:
    """Price guardrail policies applied to text.

    \b
    Example:
      bedrock-budget price-guardrail --text-units 3000 --policy content_filters --policy denied_topics
    """
    unique = list(dict.fromkeys(policies))
    cost = price_table(price_files, discount_percent).price_guardrail(dict.fromkeys(unique, text_units))
    emit_cost(cost, as_json=as_json, title=f"{text_units} text units x {len(unique)} policies")


@click.command("price-provisioned")
@click.argument("model_id")
@click.option("--model-units", type=click.IntRange(min=1), required=True, help="Model units purchased.")
@click.option("--commitment", type=COMMITMENTS, required=True, help="Commitment term.")
@click.option("--hours", type=DECIMAL, required=True, help="Hours the units are held.")
@region_option
@json_option
@price_file_options
def price_provisioned(
    model_id: str,
    model_units: int,
    commitment: str,
    hours: Decimal,
    region: str,
    as_json: bool,
    price_files: tuple[Path, ...],
    discount_percent: Decimal | None,
) -> None:
    """Price Provisioned Throughput for MODEL_ID.

    \b
    Example:
      bedrock-budget price-provisioned anthropic.claude-instant-v1 --model-units 1 \\
        --commitment 1-month --hours 730
    """
    table_ = price_table(price_files, discount_percent)
    cost = table_.price_provisioned(
        model_id,
        model_units=model_units,
        commitment=commitment,  # type: ignore[arg-type]
        hours=hours,
        region=checked_region(table_, region, model_id),
    )
    emit_cost(cost, as_json=as_json, title=f"{model_units} model units of {model_id} for {hours} h")


@click.command("price-import")
@click.option("--custom-model-units", type=click.IntRange(min=1), required=True, help="CMUs per model copy.")
@click.option("--active-windows", type=COUNT, required=True, help="Active 5-minute windows, all copies.")
@click.option("--storage-months", type=DECIMAL, default=Decimal(0), help="Months of model storage to add.")
@region_option
@json_option
@price_file_options
def price_import(
    custom_model_units: int,
    active_windows: int,
    storage_months: Decimal,
    region: str,
    as_json: bool,
    price_files: tuple[Path, ...],
    discount_percent: Decimal | None,
) -> None:
    """Price Custom Model Import inference (per CMU-minute, billed in 5-minute windows).

    \b
    Example:
      bedrock-budget price-import --custom-model-units 2 --active-windows 12
    """
    table_ = price_table(price_files, discount_percent)
    cost = table_.price_custom_model_import(
        custom_model_units=custom_model_units,
        active_windows=active_windows,
        region=checked_region(table_, region),
        storage_months=storage_months,
    )
    emit_cost(cost, as_json=as_json, title=f"{custom_model_units} CMUs, {active_windows} active windows")


@click.command("plan")
@click.argument("model_id")
@click.option("--requests-per-month", type=COUNT, required=True)
@click.option("--input-tokens-per-request", type=COUNT, required=True)
@click.option("--output-tokens-per-request", type=COUNT, required=True)
@click.option(
    "--model-units", type=click.IntRange(min=1), default=None, help="Units for the provisioned option."
)
@click.option("--commitment", type=COMMITMENTS, default=None, help="Commitment for the provisioned option.")
@click.option("--hours-per-month", type=DECIMAL, default=HOURS_PER_MONTH, show_default=True)
@region_option
@json_option
@price_file_options
def plan(
    model_id: str,
    requests_per_month: int,
    input_tokens_per_request: int,
    output_tokens_per_request: int,
    model_units: int | None,
    commitment: str | None,
    hours_per_month: Decimal,
    region: str,
    as_json: bool,
    price_files: tuple[Path, ...],
    discount_percent: Decimal | None,
) -> None:
    """Compare on-demand, batch and provisioned monthly cost of a workload on MODEL_ID.

    \b
    Example:
      bedrock-budget plan anthropic.claude-3-5-sonnet-20241022-v2:0 --requests-per-month 1500000 \\
        --input-tokens-per-request 4000 --output-tokens-per-request 600
    """
    table_ = price_table(price_files, discount_percent)
    region = checked_region(table_, region, model_id)
    result = plan_capacity(
        table_,
        model_id,
        requests_per_month=requests_per_month,
        input_tokens_per_request=input_tokens_per_request,
        output_tokens_per_request=output_tokens_per_request,
        model_units=model_units,
        commitment=commitment,  # type: ignore[arg-type]
        hours_per_month=hours_per_month,
        region=region,
    )
    if as_json:
        emit_json(result.as_dict())
        return
    provisioned_label = (
        f"provisioned ({result.model_units} MU, {result.commitment})" if result.commitment else "provisioned"
    )
    rows = [
        ("on-demand", money(result.on_demand_usd)),
        ("batch", money(result.batch_usd) if result.batch_usd is not None else "not offered"),
        (
            provisioned_label,
            money(result.provisioned_usd) if result.provisioned_usd is not None else "not offered",
        ),
    ]
    table(f"{model_id}: {requests_per_month:,} requests a month", ("option", "monthly cost"), rows)
    if result.break_even_requests_per_month is not None:
        click.echo(
            f"break-even: {result.break_even_requests_per_month:,} requests a month "
            f"(this workload is {result.break_even_utilisation}% of it)"
        )
    click.echo(f"recommendation: {result.recommendation}")


def register(group: click.Group) -> None:
    for command in (price, price_guardrail, price_provisioned, price_import, plan):
        group.add_command(command)
