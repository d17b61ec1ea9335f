"""Meter a boto3 ``bedrock-runtime`` client you already have, in a plain script.

Every call leaves a ``CallRecord``; the listener below prints its cost, priced from the reviewed price
table. Nothing else about the client changes: same methods, same responses, same exceptions.

Run against AWS (your usual credentials; region from ``AWS_REGION``, default us-east-1)::

    python examples/wrap_existing_client.py

Run against the local fake Bedrock instead (no AWS account needed)::

    bedrock-budget fake-bedrock --port 4010 &
    BEDROCK_ENDPOINT_URL=http://127.0.0.1:4010 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x \\
        python examples/wrap_existing_client.py
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import boto3

import bedrock_budget as bb

CHAT_MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
SUMMARY_MODEL = "us.amazon.nova-lite-v1:0"


def bedrock_client() -> Any:
    # An unset BEDROCK_ENDPOINT_URL means boto3's regional endpoint, so one script serves AWS and the fake.
    return boto3.client(
        "bedrock-runtime",
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_url=os.environ.get("BEDROCK_ENDPOINT_URL") or None,
    )


class CostPrinter:
    """Prints one line per call and keeps a running total (money stays ``Decimal`` end to end)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def __call__(self, record: bb.CallRecord) -> None:
        self.total += record.cost_usd
        cost = str(record.cost_usd) if record.cost is not None else f"unpriced ({record.unpriced})"
        usage = record.usage
        print(
            f"{record.operation} model={record.model_id} user={record.attribution.get('user', '-')} "
            f"input_tokens={usage.input_tokens} output_tokens={usage.output_tokens} "
            f"cache_read_tokens={usage.cache_read_tokens} cost_usd={cost}",
            flush=True,
        )


def main() -> int:
    costs = CostPrinter()
    client = bb.wrap(bedrock_client(), listeners=[costs], attribution={"app": "support-bot"})

    with bb.attribute(user="u-1042"):
        reply = client.converse(
            modelId=CHAT_MODEL,
            system=[{"text": "You are a concise support assistant."}],
            messages=[{"role": "user", "content": [{"text": "How do I rotate my API key?"}]}],
            inferenceConfig={"maxTokens": 300},
        )
        answer = reply["output"]["message"]["content"][0]["text"]
        print(f"assistant: {answer[:60]}")

        # A streamed call is priced when its stream ends, from the usage Bedrock reports in the metadata.
        stream = client.converse_stream(
            modelId=SUMMARY_MODEL,
            messages=[{"role": "user", "content": [{"text": "Summarise the ticket in one line."}]}],
            inferenceConfig={"maxTokens": 100},
        )
        pieces = [
            event["contentBlockDelta"]["delta"].get("text", "")
            for event in stream["stream"]
            if "contentBlockDelta" in event
        ]
        print(f"summary: {''.join(pieces)[:60]}")

    print(f"total_usd={costs.total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
