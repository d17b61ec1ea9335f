"""Shared pieces of the framework integration tests (langchain-aws, strands-agents)."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

import bedrock_budget as bb
from bedrock_budget.pricing import default_price_table

FILLER_START = "lorem ipsum dolor sit amet"


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A Bedrock API key in the environment would make botocore prefer bearer auth, which the plain-HTTP
    # fake cannot take; the frameworks build their own clients, so the environment must not offer one.
    # Tracing switches would send LangChain / Strands traces to a collector.
    for name in list(os.environ):
        if name.startswith(("AWS_", "LANGCHAIN_", "LANGSMITH_", "OTEL_")):
            monkeypatch.delenv(name)


def expected_cost(model_id: str, usage: bb.Usage) -> Decimal:
    """What the reviewed price table says a call costs in us-east-1 (the fake's region)."""
    return default_price_table().price(model_id, usage, region="us-east-1").total_usd
