"""A settlement shaped like a wrapped call's (two counters, four token types), for the journal benchmark."""

from __future__ import annotations

from bedrock_budget.stores import CounterRef, Spend
from bedrock_budget.stores.base import Mark, SettleRequest, call_tallies

_REFS = (
    CounterRef(
        budget="org-daily", scope=(), window="day", timezone="UTC", start=1_764_720_000, end=1_764_806_400
    ),
    CounterRef(
        budget="per-user",
        scope=(("user", "u-1"),),
        window="month",
        timezone="UTC",
        start=1_764_547_200,
        end=1_767_225_600,
    ),
)


def sample_entry(reservation_id: str) -> SettleRequest:
    return SettleRequest(
        reservation_id=reservation_id,
        spends=tuple(
            Spend(ref, 2_500_000, 1_712_000, (Mark("usd", 80, 800_000_000_000),), epoch="5f0c")
            for ref in _REFS
        ),
        tallies=call_tallies(
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            2_500_000,
            {"input": 1200, "output": 512, "cache_read": 0, "cache_write": 0},
        ),
        charge=False,
    )
