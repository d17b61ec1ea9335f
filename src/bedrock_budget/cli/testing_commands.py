"""``fake-bedrock``: run the local Bedrock runtime stand-in from the command line."""

from __future__ import annotations

import click


@click.command("fake-bedrock")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (keep it loopback).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port to listen on (0: a free one).")
def fake_bedrock(host: str, port: int) -> None:
    """Serve a local, wire-faithful Bedrock runtime until Ctrl-C.

    Point any boto3 client at it with endpoint_url and dummy credentials.

    \b
    Example:
      bedrock-budget fake-bedrock --port 8599
      python -c "import boto3; c = boto3.client('bedrock-runtime', endpoint_url='http://127.0.0.1:8599',
        region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='x'); print(c.converse(
        modelId='amazon.nova-micro-v1:0', messages=[{'role': 'user', 'content': [{'text': 'hi'}]}])['usage'])"
    """
    from bedrock_budget.testing import serve

    serve(host, port)


def register(group: click.Group) -> None:
    group.add_command(fake_bedrock)
