"""Settlements above their hold are counted per budget, in dollars and in weighted tokens, exactly once per
settled call, and never for calls that stayed within their hold or were released."""

from __future__ import annotations

import pytest

from bedrock_budget.budgets import Budget, Ledger
from bedrock_budget.budgets.overruns import Overrun

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
HELD = {"input": 1_000, "output": 100}


@pytest.fixture
def ledger() -> Ledger:
    budgets = [
        Budget(name="dollars", limit_usd="10"),
        Budget(name="tokens", limit_tokens=1_000_000),
        Budget(name="chat", scope={"app": "chat"}, limit_usd="10"),
    ]
    return Ledger("memory://", budgets)


def test_a_dearer_settlement_counts_against_every_budget_it_held(ledger: Ledger) -> None:
    over = ledger.reserve({"app": "chat"}, MODEL, "anthropic", 5_000, HELD)
    ledger.settle(over, 7_500, {"input": 1_500, "output": 100})
    assert ledger.overruns.totals() == dict.fromkeys(("dollars", "tokens", "chat"), Overrun(1, 2_500))
    # Settling twice is a no-op: still one overrun.
    ledger.settle(over, 7_500, {"input": 1_500, "output": 100})
    assert ledger.overruns.totals()["dollars"] == Overrun(1, 2_500)


def test_more_tokens_than_held_count_for_token_budgets_even_when_cheaper(ledger: Ledger) -> None:
    call = ledger.reserve({"app": "search"}, MODEL, "anthropic", 5_000, HELD)
    ledger.settle(call, 4_000, {"input": 1_200, "output": 0})
    assert ledger.overruns.totals() == {"tokens": Overrun(1, 0)}


def test_calls_within_their_hold_and_released_calls_count_nothing(ledger: Ledger) -> None:
    within = ledger.reserve({"app": "chat"}, MODEL, "anthropic", 5_000, HELD)
    ledger.settle(within, 5_000, HELD)
    released = ledger.reserve({"app": "chat"}, MODEL, "anthropic", 5_000, HELD)
    ledger.release(released)
    assert ledger.overruns.totals() == {}
    assert ledger.overruns.version == 0
