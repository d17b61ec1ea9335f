"""Spend share at the first refusal: how much of a budget is spent when it first refuses a call, for prose
and for code prompts, with the reservation's input bound and with the old 3-bytes-per-token estimate, with
exact input counts from CountTokens (``count_tokens=True``), and with ``action: clamp`` (the output cap
lowered to what is left rather than the call refused) beside ``block``, in the same run.

A refusing budget stops one worst case short of its limit, so the bigger the reservation the earlier it
refuses. The fake Bedrock bills input at the density measured for each content type with the public Claude
tokenizer (prose 4.50 bytes per token, code 2.27: issue 20's table) and output at ``OUTPUT_TOKENS`` of the
``MAX_TOKENS`` cap. One process, calls one after another, memory store: the old estimate's under-reservation
of code shows up as overshoot only when calls run concurrently (tests/wrapper/test_dense_input_race.py).

    .venv/bin/python bench/first_refusal.py
"""

from __future__ import annotations

import dataclasses
import inspect
import json.decoder
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import bedrock_budget as bb
import bedrock_budget.budgets.enforcement as enforcement
from bedrock_budget.budgets import Ledger
from bedrock_budget.extract.estimate import estimate_input_tokens, worst_case_usage
from bedrock_budget.extract.types import RequestInfo
from bedrock_budget.testing import FakeBedrock, UsageSpec
from bedrock_budget.usage import Usage

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
# From a few calls' worth (a per-user budget) to about a hundred.
LIMITS = (Decimal("0.005"), Decimal("0.02"), Decimal("0.10"))
MAX_TOKENS = 256
OUTPUT_TOKENS = 100
PROMPT_BYTES = 4_000
BYTES_PER_TOKEN = {"prose": 4.50, "code": 2.27}


def _prompt(text: str) -> str:
    return text.encode()[:PROMPT_BYTES].decode(errors="ignore")


PROMPTS = {
    "prose": _prompt(" ".join((bb.Budget.__doc__ or "").split()) * 20),
    "code": _prompt(inspect.getsource(json.decoder) * 2),
}


def _old_worst_case(request: RequestInfo, **options: Any) -> Usage:
    """The reservation before the bound: input at 3.0 (or 3.5) UTF-8 bytes per token."""
    usage = worst_case_usage(request, **options)
    if usage.input_tokens:
        usage = dataclasses.replace(usage, input_tokens=estimate_input_tokens(request))
    return usage


@contextmanager
def reservation_rule(rule: Callable[..., Usage]) -> Iterator[None]:
    saved = enforcement.worst_case_usage
    enforcement.worst_case_usage = rule
    try:
        yield
    finally:
        enforcement.worst_case_usage = saved


def share_at_first_refusal(
    fake: FakeBedrock, content: str, limit: Decimal, *, count_tokens: bool = False, action: str = "block"
) -> tuple[Decimal, int]:
    fake.reset()
    fake.set_usage(
        "*", UsageSpec(bytes_per_token=BYTES_PER_TOKEN[content], default_output_tokens=OUTPUT_TOKENS)
    )
    floor = {"min_output_tokens": 16} if action == "clamp" else {}
    ledger = Ledger("memory://", [bb.Budget(name="b", limit_usd=str(limit), action=action, **floor)])
    client = bb.wrap(fake.client(), ledger=ledger, count_tokens=count_tokens)
    messages = [{"role": "user", "content": [{"text": PROMPTS[content]}]}]
    calls = 0
    try:
        while True:
            client.converse(modelId=MODEL, messages=messages, inferenceConfig={"maxTokens": MAX_TOKENS})
            calls += 1
    except bb.BudgetExceededError:
        pass
    spent = ledger.read("b").spent_usd
    ledger.close()
    return spent / limit, calls


def main() -> None:
    print(
        f"{MODEL}, {PROMPT_BYTES}-byte prompts, maxTokens {MAX_TOKENS}, {OUTPUT_TOKENS} output tokens billed"
    )
    print(
        f"{'content':<8} {'limit':>7} {'reservation':<20} {'calls':>6} {'spent / limit at first refusal':>31}"
    )
    # count_tokens=True: the input is exact (Bedrock's CountTokens, which the fake answers at the same
    # density it bills), so only the output cap is held beyond what the call costs.
    # clamp: the same bound, the budget lowering the output cap (to at least 16 tokens) instead of refusing.
    rules = {
        "bound (default)": (worst_case_usage, False, "block"),
        "count_tokens=True": (worst_case_usage, True, "block"),
        "old 3 bytes/token": (_old_worst_case, False, "block"),
        "bound, clamp": (worst_case_usage, False, "clamp"),
        "count_tokens, clamp": (worst_case_usage, True, "clamp"),
    }
    with FakeBedrock() as fake:
        for content in BYTES_PER_TOKEN:
            for limit in LIMITS:
                for name, (rule, count_tokens, action) in rules.items():
                    with reservation_rule(rule):
                        share, calls = share_at_first_refusal(
                            fake, content, limit, count_tokens=count_tokens, action=action
                        )
                    print(f"{content:<8} {'$' + str(limit):>7} {name:<20} {calls:>6} {float(share):>31.1%}")


if __name__ == "__main__":
    main()
