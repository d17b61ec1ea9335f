"""``prices list|show|validate|import-price-list|update``: inspect and maintain the price files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import click

from bedrock_budget.cli.options import json_option, price_file_options, price_table
from bedrock_budget.cli.output import emit_json, plain, table
from bedrock_budget.errors import PriceFileError
from bedrock_budget.pricing import BUNDLED_PRICES, format_usd
from bedrock_budget.pricing.maintenance.aws_sources import PRICING_REGIONS
from bedrock_budget.pricing.schema import ModelSpec, PriceSpec, TokenRates, validate_paths


@click.group("prices")
def prices_group() -> None:
    """Inspect and maintain price files."""


def _rate(value: Decimal | None) -> str | None:
    return None if value is None else format_usd(value)


def _rates_dict(rates: TokenRates) -> dict[str, str]:
    return {name: text for name in TokenRates.__slots__ if (text := _rate(getattr(rates, name))) is not None}


def _spec_dict(spec: PriceSpec) -> dict[str, object]:
    data: dict[str, object] = {"per_million_tokens": _rates_dict(spec.rates)}
    if spec.batch is not None:
        data["batch"] = _rates_dict(spec.batch)
    if spec.batch_multiplier is not None:
        data["batch"] = {"multiplier": str(spec.batch_multiplier)}
    if spec.latency_optimized is not None:
        data["latency_optimized"] = _rates_dict(spec.latency_optimized)
    if spec.long_context is not None:
        data["long_context"] = {
            "threshold_tokens": spec.long_context.threshold_tokens,
            **_rates_dict(spec.long_context.rates),
        }
    if spec.routes:
        data["routes"] = {name: _rates_dict(rates) for name, rates in spec.routes.items()}
    if spec.service_tiers:
        data["service_tier_multipliers"] = {k: str(v) for k, v in spec.service_tiers.items()}
    if spec.images:
        data["images"] = [
            {
                "size": f"{b.width}x{b.height}" if b.width else None,
                "quality": b.quality,
                "usd": format_usd(b.usd),
            }
            for b in spec.images
        ]
    if spec.video_second is not None:
        data["video_second"] = format_usd(spec.video_second)
    if spec.rerank_per_1000_queries is not None:
        data["rerank_per_1000_queries"] = format_usd(spec.rerank_per_1000_queries)
    if spec.provisioned:
        data["provisioned_per_model_unit_hour"] = {k: format_usd(v) for k, v in spec.provisioned.items()}
    return data


def _model_dict(model: ModelSpec) -> dict[str, object]:
    return {
        "id": model.id,
        "provider": model.provider,
        "name": model.name,
        "family": model.family,
        "kind": model.kind,
        "max_output_tokens": model.max_output_tokens,
        "context_window": model.context_window,
        "lifecycle": model.lifecycle,
        "aliases": list(model.aliases),
    }


@prices_group.command("list")
@click.option("--provider", default=None, help="Only this provider's models.")
@json_option
@price_file_options
def list_models(
    provider: str | None, as_json: bool, price_files: tuple[Path, ...], discount_percent: Decimal | None
) -> None:
    """List priced models with their current on-demand rates.

    \b
    Example:
      bedrock-budget prices list --provider anthropic
    """
    table_ = price_table(price_files, discount_percent)
    models = [m for m in sorted(table_.models.values(), key=lambda m: m.id) if provider in (None, m.provider)]
    if provider is not None and not models:
        raise click.BadParameter(
            f"no models for provider {provider!r}; known: {', '.join(table_.providers())}",
            param_hint="--provider",
        )
    latest = {m.id: m.prices[-1].spec.rates for m in models}
    if as_json:
        emit_json(
            {"models": [{**_model_dict(m), "per_million_tokens": _rates_dict(latest[m.id])} for m in models]}
        )
        return
    rows = [
        (
            m.id,
            m.family,
            m.kind,
            _rate(latest[m.id].input) or "-",
            _rate(latest[m.id].output) or "-",
            m.lifecycle,
        )
        for m in models
    ]
    table(
        f"{len(rows)} models", ("model id", "family", "kind", "input $/1M", "output $/1M", "lifecycle"), rows
    )


@prices_group.command("show")
@click.argument("model_id")
@json_option
@price_file_options
def show_model(
    model_id: str, as_json: bool, price_files: tuple[Path, ...], discount_percent: Decimal | None
) -> None:
    """Show every price of MODEL_ID by effective date and region, with sources.

    \b
    Example:
      bedrock-budget prices show global.anthropic.claude-sonnet-4-5-20250929-v1:0
    """
    model = price_table(price_files, discount_percent).model(model_id)
    entries = [
        {
            "effective": entry.effective.isoformat(),
            "effective_assumed": entry.effective_assumed,
            "checked": entry.checked.isoformat(),
            "source": entry.source,
            "notes": entry.notes,
            **_spec_dict(entry.spec),
            "regions": {region: _spec_dict(spec) for region, spec in entry.regions.items()},
        }
        for entry in model.prices
    ]
    payload = {**_model_dict(model), "prices": entries}
    if as_json:
        emit_json(payload)
    else:
        for line in _outline(payload):
            click.echo(line)


def _outline(value: object, indent: str = "") -> list[str]:
    """``key: value`` lines, nested by indentation; a list's items start with ``-``. Empty values are left
    out: a person reads what a model has, not what it lacks."""
    lines: list[str] = []
    items = value.items() if isinstance(value, dict) else ((None, item) for item in value)  # type: ignore[attr-defined]
    for key, item in items:
        if item is None or item == [] or item == {}:
            continue
        label = f"{indent}{key}:" if key is not None else f"{indent}-"
        if not isinstance(item, dict | list):
            lines.append(f"{label} {plain(item)}")
            continue
        nested = _outline(item, indent + "  ")
        if key is None and nested:
            nested[0] = f"{label} {nested[0].lstrip()}"
        else:
            lines.append(label)
        lines.extend(nested)
    return lines


@prices_group.command("validate")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
def validate(path: Path | None) -> None:
    """Check price files (default: the bundled ones) against the schema, listing every problem.

    \b
    Example:
      bedrock-budget prices validate my-prices.yaml
    """
    try:
        files = validate_paths([path or BUNDLED_PRICES])
    except PriceFileError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise click.exceptions.Exit(1) from None
    models = sum(len(f.models) for f in files)
    click.echo(f"ok: {len(files)} file(s), {models} model(s)")


_layers_option = click.option(
    "--prices",
    "price_files",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Price file or folder already layered over the bundled prices, compared against (repeatable).",
)
_output_option = click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Layer folder to update (one file per provider; created if missing). Without it, only the diff.",
)


@prices_group.command("import-price-list")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write YAML here.")
@click.option(
    "--layer",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Instead of printing YAML to review, update this layer folder and show the diff, as "
    "`prices update --output` does (exit 0 no change, 1 changes).",
)
@click.option(
    "--foundation-models",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Saved `aws bedrock list-foundation-models` output, to give new models their ids (with --layer).",
)
@_layers_option
def import_price_list(
    files: tuple[Path, ...],
    output: Path | None,
    layer: Path | None,
    foundation_models: Path | None,
    price_files: tuple[Path, ...],
) -> None:
    """Convert AWS Price List output (pricing get-products pages, or bulk offer files
    offers/v1.0/aws/<offer>/current/<region>/index.json) into price-file YAML, or a layer with --layer.

    \b
    Example:
      aws pricing get-products --service-code AmazonBedrock --region us-east-1 > pl.json
      bedrock-budget prices import-price-list pl.json -o new-prices.yaml
      bedrock-budget prices import-price-list bedrock-offer.json fm-offer.json --layer ~/aws-prices \\
          --foundation-models fm.json
    """
    from bedrock_budget.pricing.maintenance.price_list import convert_price_list, read_price_list_files
    from bedrock_budget.pricing.maintenance.price_update import read_foundation_models

    data = read_price_list_files(files)
    if layer is not None:
        if output is not None:
            raise click.BadParameter("give --output or --layer, not both", param_hint="'--layer'")
        models = read_foundation_models(foundation_models) if foundation_models else []
        _apply_update(data, models, layer, price_files, False)
        return
    if foundation_models is not None or price_files:
        raise click.BadParameter("--foundation-models and --prices go with --layer", param_hint="'--layer'")
    text = convert_price_list(data, where=", ".join(map(str, files)))
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")


@prices_group.command("update")
@_output_option
@_layers_option
@click.option(
    "--region",
    type=click.Choice(PRICING_REGIONS),
    default=PRICING_REGIONS[0],
    show_default=True,
    help="Region of the Price List Query API endpoint.",
)
@click.option(
    "--bedrock-region",
    default="us-east-1",
    show_default=True,
    help="Region whose ListFoundationModels names the models.",
)
@click.option("--endpoint-url", default=None, help="Send the API calls here instead of AWS (for tests).")
@json_option
def update(
    output: Path | None,
    price_files: tuple[Path, ...],
    region: str,
    bedrock_region: str,
    endpoint_url: str | None,
    as_json: bool,
) -> None:
    """Fetch current Bedrock prices from the AWS Price List and show (and with --output, write) the changes.

    Reads both offers (AmazonBedrock and AmazonBedrockFoundationModels) through the Price List Query API
    and names models through Bedrock's ListFoundationModels, with your usual AWS credentials. Compares
    them with the bundled prices plus the --prices layers plus the --output layer itself, and writes each
    changed or new model, with its history and a dated entry, to the --output folder. Pass that folder
    to --prices or wrap(prices=[...]).

    Exit status: 0 no change, 1 changes found (written with --output), 2 error.

    \b
    Example (a daily cron job):
      bedrock-budget prices update --output ~/.bedrock-budget/aws-prices
    """
    import boto3

    from bedrock_budget.pricing.maintenance.price_update import fetch_foundation_models, fetch_price_list

    session = boto3.session.Session()
    pricing = session.client("pricing", region_name=region, endpoint_url=endpoint_url)
    bedrock = session.client("bedrock", region_name=bedrock_region, endpoint_url=endpoint_url)
    pages = fetch_price_list(pricing)
    models = fetch_foundation_models(bedrock)
    _apply_update(pages, models, output, price_files, as_json)


def _apply_update(
    data: object,
    foundation_models: list[dict[str, object]],
    output: Path | None,
    price_files: tuple[Path, ...],
    as_json: bool,
) -> None:
    from bedrock_budget.pricing.maintenance.price_update import plan_update, read_layer, write_layer
    from bedrock_budget.pricing.maintenance.update_report import plan_json, plan_lines

    below = [p for p in price_files if output is None or p.resolve() != output.resolve()]
    base = price_table(tuple(below), None)
    has_layer = output is not None and output.exists()
    plan = plan_update(
        data,
        table=price_table((*below, output), None) if has_layer and output is not None else base,
        foundation_models=foundation_models,
        layer=read_layer(output) if output is not None else None,
        base=base,
    )
    written = write_layer(plan, output) if output is not None and plan.has_changes else []
    if as_json:
        emit_json({**plan_json(plan), "written": [str(path) for path in written]})
    else:
        for line in plan_lines(plan, output, written):
            click.echo(line)
    if plan.has_changes:
        raise click.exceptions.Exit(1)


def register(group: click.Group) -> None:
    group.add_command(prices_group)
