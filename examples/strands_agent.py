"""A Strands agent whose Bedrock calls are metered, without changing the agent code.

``strands.models.BedrockModel`` builds its own ``bedrock-runtime`` client from a boto3 session, so there is
no client to hand it. ``bb.instrument()`` meters every ``bedrock-runtime`` client created after it - also
the one inside ``BedrockModel``. (Alternatively wrap the client it made: ``model.client =
bb.wrap(model.client, ...)``.)

Strands runs each model call on a worker thread; ``bb.attribute`` is a contextvar, and Strands copies the
caller's context to those threads, so the calls below are attributed to the user around them.

Run (``pip install strands-agents``)::

    python examples/strands_agent.py

``BEDROCK_ENDPOINT_URL`` points it elsewhere (unset: AWS), e.g. at ``bedrock-budget fake-bedrock`` with
``AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x``. ``AWS_REGION`` defaults to us-east-1.
"""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal

import boto3
from strands import Agent
from strands.models import BedrockModel

import bedrock_budget as bb

CHAT_MODEL = "us.amazon.nova-pro-v1:0"
STREAM_MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
SYSTEM_PROMPT = "You are a travel assistant. Answer in two sentences."


def model(model_id: str, *, streaming: bool) -> BedrockModel:
    session = boto3.Session(region_name=os.environ.get("AWS_REGION", "us-east-1"))
    # endpoint_url=None means the regional endpoint, so one script serves AWS and the fake.
    return BedrockModel(
        boto_session=session,
        endpoint_url=os.environ.get("BEDROCK_ENDPOINT_URL") or None,
        model_id=model_id,
        max_tokens=300,
        streaming=streaming,
    )


async def streamed_turn(agent: Agent, prompt: str) -> list[str]:
    pieces: list[str] = []
    async for event in agent.stream_async(prompt):
        if "data" in event:
            pieces.append(event["data"])
    return pieces


def main() -> int:
    records: list[bb.CallRecord] = []
    bb.instrument(listeners=[records.append], attribution={"app": "travel-agent"})
    try:
        # Created after instrument(), so their clients are metered.
        chat_agent = Agent(
            model=model(CHAT_MODEL, streaming=False), system_prompt=SYSTEM_PROMPT, callback_handler=None
        )
        stream_agent = Agent(
            model=model(STREAM_MODEL, streaming=True), system_prompt=SYSTEM_PROMPT, callback_handler=None
        )
    finally:
        # Only clients created inside the block are metered; the two above stay metered after this.
        bb.uninstrument()

    with bb.attribute(user="u-17"):
        result = chat_agent("Suggest a weekend trip from Lisbon.")
        print(f"chat: {str(result).strip()[:60]}")
        pieces = asyncio.run(streamed_turn(stream_agent, "Suggest one from Porto."))
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
