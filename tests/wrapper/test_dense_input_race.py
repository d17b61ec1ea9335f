"""The overshoot race of issue 20 with dense prompts: eight processes race one small ``block`` budget while
the fake Bedrock bills input at one token per UTF-8 byte, the densest any byte-level or byte-fallback
tokenizer can reach (denser than code at 2.27 bytes per token, base64 at 1.42, CJK at 1.39). With default
settings the reservation is a bound, so the store never ends above the limit, the records add up to the
store's spend, and no settled call costs more than its hold."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from backends import delete_prefix
from bedrock_budget.testing import FakeBedrock, UsageSpec
from dense_text import repeat_to

from .test_concurrency import NANOS_PER_USD, call_in_processes, read_shared

PROCESSES = 8
CALLS_EACH = 4
LIMIT = Decimal("0.05")
MAX_TOKENS = 64
PROMPT_BYTES = 6_000


PROMPTS = {
    "code": repeat_to("def total(xs):\n    return sum(x * 2 for x in xs if x % 3)\n", PROMPT_BYTES),
    "base64": repeat_to("UmVzZXJ2YXRpb25zIHRoYXQgYm91bmQgdGhlIGNvc3Q=", PROMPT_BYTES),
    "cjk": repeat_to("予算の上限を超えないように予約します。", PROMPT_BYTES),
}


def bill_a_token_per_byte(fake: FakeBedrock) -> None:
    """Input billed at one token per prompt byte; output at the requested maximum."""
    fake.set_usage("*", UsageSpec(bytes_per_token=1.0, default_output_tokens=MAX_TOKENS))


def messages_of(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


def race(fake: FakeBedrock, store_uri: str, kind: str) -> None:
    bill_a_token_per_byte(fake)
    prefix = f"bbtest-{uuid.uuid4().hex[:8]}:"
    try:
        outcomes = call_in_processes(
            fake,
            store_uri,
            prefix,
            str(LIMIT),
            PROCESSES,
            CALLS_EACH,
            None,
            timeout=60,
            messages=messages_of(PROMPTS[kind]),
            max_tokens=MAX_TOKENS,
        )
        state = read_shared(store_uri, prefix, str(LIMIT))
    finally:
        delete_prefix(store_uri, prefix)
    granted = sum(o[0] for o in outcomes)
    refused = sum(o[1] for o in outcomes)
    recorded_nanos = sum(o[3] for o in outcomes)
    exceeded = sum(o[4] for o in outcomes)
    assert_billed_a_token_per_byte(fake)
    # The race reached the limit.
    assert granted > 0
    assert refused > 0
    assert fake.request_count == granted
    assert state.spent_usd <= LIMIT
    assert state.spent_usd * NANOS_PER_USD == recorded_nanos
    assert state.reserved_usd == 0
    assert exceeded == 0  # no call cost more than it held


def assert_billed_a_token_per_byte(fake: FakeBedrock) -> None:
    billed = [request.usage.input_tokens for request in fake.requests if request.usage is not None]
    assert billed
    assert min(billed) >= PROMPT_BYTES  # the fake really billed a token per byte


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.parametrize("kind", sorted(PROMPTS))
def test_dense_prompts_never_overshoot_on_redis(fake: FakeBedrock, redis_url: str, kind: str) -> None:
    race(fake, redis_url, kind)


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.parametrize("kind", sorted(PROMPTS))
def test_dense_prompts_never_overshoot_on_cluster(fake: FakeBedrock, cluster_url: str, kind: str) -> None:
    race(fake, cluster_url, kind)
