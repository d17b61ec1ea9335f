"""LangChain on a metered client: ``ChatBedrockConverse(client=wrapped)``.

langchain-aws calls ``client.converse`` / ``client.converse_stream`` on whatever client it is given, so
handing it a wrapped client meters every chat turn and every streamed turn without touching LangChain
code. Budgets, attribution and listeners work as with a direct boto3 call; a refused call surfaces as
``bedrock_budget.BudgetExceededError`` from ``invoke`` / ``stream``.

Run (``pip install langchain-aws``)::

    python examples/langchain_chat.py

``BEDROCK_ENDPOINT_URL`` points it elsewhere (unset: AWS), e.g. at ``bedrock-budget fake-bedrock`` with
``AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x``. ``AWS_REGION`` defaults to us-east-1.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import boto3
from langchain_aws import ChatBedrockConverse
from langchain_core.messages import HumanMessage, SystemMessage

import bedrock_budget as bb

MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


def bedrock_client() -> Any:
    # An unset BEDROCK_ENDPOINT_URL means boto3's regional endpoint, so one script serves AWS and the fake.
    return boto3.client(
        "bedrock-runtime",
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_url=os.environ.get("BEDROCK_ENDPOINT_URL") or None,
    )


def main() -> int:
    records: list[bb.CallRecord] = []
    client = bb.wrap(
        bedrock_client(),
        listeners=[records.append],
        attribution={"app": "docs-assistant"},
        budgets=[bb.Budget("docs-assistant-daily", scope={"app": "docs-assistant"}, limit_usd="10.00")],
    )
    llm = ChatBedrockConverse(client=client, model=MODEL, max_tokens=256, temperature=0.2)
    history = [
        SystemMessage("You answer questions about our product documentation."),
        HumanMessage("How do I export a report as CSV?"),
    ]

    with bb.attribute(user="u-17"):
        answer = llm.invoke(history)
        print(f"chat: {answer.text[:60]}")

        history += [answer, HumanMessage("And as PDF?")]
        pieces = [chunk.text for chunk in llm.stream(history)]
        print(f"stream: {len(pieces)} chunks: {''.join(pieces)[:60]}")

    total = Decimal(0)
    for record in records:
        total += record.cost_usd
        print(
            f"{record.operation} model={record.model_id} user={record.attribution.get('user')} "
            f"input_tokens={record.usage.input_tokens} output_tokens={record.usage.output_tokens} "
            f"cost_usd={record.cost_usd}"
        )
    print(f"total_usd={total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
