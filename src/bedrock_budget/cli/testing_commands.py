"""``fake-bedrock``: run the local Bedrock runtime stand-in from the command line."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("fake-bedrock")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (keep it loopback).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port to listen on (0: a free one).")
@click.option(
    "--price-list",
    "price_lists",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Serve these products from the pricing API's GetProducts: saved get-products output or a bulk "
    "offer file (repeatable).",
)
@click.option(
    "--foundation-models",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Serve this saved `aws bedrock list-foundation-models` output from ListFoundationModels.",
)
@click.option(
    "--invocation-log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write model-invocation logs (gzip'd JSON, as Bedrock delivers them to S3) under this folder.",
)
def fake_bedrock(
    host: str,
    port: int,
    price_lists: tuple[Path, ...],
    foundation_models: Path | None,
    invocation_log_dir: Path | None,
) -> None:
    """Serve a local, wire-faithful Bedrock runtime until Ctrl-C.

    Point any boto3 client at it with endpoint_url and dummy credentials.

    \b
    Example:
      bedrock-budget fake-bedrock --port 8599
      python -c "import boto3; c = boto3.client('bedrock-runtime', endpoint_url='http://127.0.0.1:8599',
        region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='x'); print(c.converse(
        modelId='amazon.nova-micro-v1:0', messages=[{'role': 'user', 'content': [{'text': 'hi'}]}])['usage'])"
      bedrock-budget fake-bedrock --port 8599 --price-list offer.json --foundation-models fm.json
      bedrock-budget prices update --endpoint-url http://127.0.0.1:8599
      bedrock-budget fake-bedrock --port 8599 --invocation-log-dir logs/
    """
    from bedrock_budget.pricing.maintenance.price_list import read_price_list_files
    from bedrock_budget.pricing.maintenance.price_update import read_foundation_models
    from bedrock_budget.testing import FakeBedrock, serve
    from bedrock_budget.testing.price_list_api import PriceListCatalog

    # Read before listening: a bad file is a one-line error, not a server that answers nothing.
    price_data = read_price_list_files(price_lists) if price_lists else None
    summaries = read_foundation_models(foundation_models) if foundation_models else None
    if price_data is not None:
        try:
            PriceListCatalog().load(price_data)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--price-list'") from None

    def setup(fake: FakeBedrock) -> None:
        if price_data is not None:
            fake.load_price_list(price_data)
        if summaries is not None:
            fake.set_foundation_models(summaries)

    if invocation_log_dir is not None:
        try:
            invocation_log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            message = f"cannot create {str(invocation_log_dir)!r}: {exc.strerror}"
            raise click.BadParameter(message, param_hint="'--invocation-log-dir'") from None
    serve(host, port, setup=setup, invocation_log_dir=invocation_log_dir)


def register(group: click.Group) -> None:
    group.add_command(fake_bedrock)
