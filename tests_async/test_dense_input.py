"""The dense-input race on async clients: code, JSON, CJK, base64, emoji and math prompts race one small
``block`` budget while the fake Bedrock bills input at one token per UTF-8 byte (the densest any byte-level
tokenizer can reach). Twelve tasks on one loop, on memory, Redis and the Cluster, end at or under the limit,
the store's spend is what the records cost, and no call cost more than its hold — the sync race of
tests/wrapper/test_dense_input_race.py, through aiobotocore. (Async processes racing one budget on Redis
and the Cluster: tests_async/test_race.py.)"""

from __future__ import annotations

import asyncio
import itertools
import time

import bedrock_budget as bb
from bedrock_budget.budgets import AsyncLedger
from bedrock_budget.budgets.compiled import current_ref
from bedrock_budget.testing import FakeBedrock
from conftest import HAIKU, Records, run, wrapped
from dense_text import DENSE_TEXTS, repeat_to
from wrapper.test_dense_input_race import (
    LIMIT,
    MAX_TOKENS,
    PROMPT_BYTES,
    assert_billed_a_token_per_byte,
    bill_a_token_per_byte,
    messages_of,
)

PROMPTS = {kind: repeat_to(text, PROMPT_BYTES) for kind, text in DENSE_TEXTS.items()}
TASKS = 12
ATTEMPTS = 48
SHARED = bb.Budget(name="shared", window="lifetime", limit_usd=str(LIMIT))


def test_tasks_with_dense_prompts_never_overshoot(
    fake: FakeBedrock, records: Records, store_uri: str
) -> None:
    bill_a_token_per_byte(fake)
    kinds = itertools.cycle(sorted(PROMPTS))
    granted: set[str] = set()

    async def main() -> None:
        async with wrapped(fake, records, store=store_uri, budgets=[SHARED]) as client:
            ledger = client.bedrock_budget_meter.guard.ledger
            assert isinstance(ledger, AsyncLedger)

            async def caller() -> None:
                for _, kind in zip(attempts, kinds, strict=False):
                    try:
                        await client.converse(
                            modelId=HAIKU,
                            messages=messages_of(PROMPTS[kind]),
                            inferenceConfig={"maxTokens": MAX_TOKENS},
                        )
                    except bb.BudgetExceededError:
                        continue
                    granted.add(kind)

            attempts = iter(range(ATTEMPTS))

            await asyncio.gather(*(caller() for _ in range(TASKS)))
            await ledger.flush()
            now = time.time()
            (state,) = await ledger.store.read([current_ref(SHARED, {}, now)], now_ms=int(now * 1000))
            answered = [r for r in records if r.outcome == "ok"]
            assert len(records) == ATTEMPTS
            assert 0 < len(answered) < ATTEMPTS  # the race reached the limit
            assert fake.request_count == len(answered)
            assert state.spent_usd <= SHARED.limit_nanos
            assert state.spent_usd == sum(r.cost.total_nanos for r in answered if r.cost is not None)
            assert (state.held_usd, state.active) == (0, 0)
            assert ledger.overruns.totals() == {}  # no call cost more than it held
            await ledger.aclose()

    run(main())
    assert_billed_a_token_per_byte(fake)
    assert len(granted) >= 4  # the tasks took the kinds in turn: most got calls through before the limit
