"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import click

from bedrock_budget.errors import ConfigurationError
from bedrock_budget.pricing import DEFAULT_REGION, PriceTable, load_price_table

F = TypeVar("F", bound=Callable[..., Any])


class NonNegativeDecimal(click.ParamType):  # type: ignore[type-arg]
    name = "decimal"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        if isinstance(value, Decimal):
            return value
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            self.fail(f"{value!r} is not a number", param, ctx)
        if not amount.is_finite() or amount < 0:
            self.fail(f"{value!r} must be a non-negative number", param, ctx)
        return amount


DECIMAL = NonNegativeDecimal()
COUNT = click.IntRange(min=0)


def price_file_options(func: F) -> F:
    func = click.option(
        "--discount-percent",
        type=DECIMAL,
        default=None,
        help="Lower every price by this percentage, e.g. 12.5.",
    )(func)
    func = click.option(
        "--prices",
        "price_files",
        multiple=True,
        type=click.Path(exists=True, path_type=Path),
        help="Extra price file or folder layered over the bundled prices (repeatable).",
    )(func)
    return func  # noqa: RET504 - decorators applied in order


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")(
        func
    )


def region_option(func: F) -> F:
    return click.option(
        "--region", default=DEFAULT_REGION, show_default=True, help="Source region of the calls."
    )(func)


def price_table(price_files: tuple[Path, ...], discount_percent: Decimal | None) -> PriceTable:
    return load_price_table(extra_files=price_files, discount_percent=discount_percent)


def checked_region(table: PriceTable, region: str, model_id: str | None = None) -> str:
    """``--region`` if it is an AWS Region (or one a price file names) from which ``model_id`` can be
    called; a cross-Region profile of another geography (``us.`` from GovCloud, ``eu.`` from us-east-1) is
    refused as the wrong --region rather than priced for a call Bedrock would reject."""
    from bedrock_budget.model_ids import parse_model_id
    from bedrock_budget.regions import check_profile_region, check_region

    try:
        check_region(region, also_known=table.priced_regions())
        if model_id is not None:
            check_profile_region(model_id, parse_model_id(model_id).geo, region)
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc), param_hint="'--region'") from exc
    return region
