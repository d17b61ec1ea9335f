"""How far a ``clamp`` budget lowers a call's output cap: the largest cap whose worst case fits the room
every refusing budget has left (``limit - spent - reserved`` as the refusal reported it).

The room is read at the moment of the refusal; the lowered call is reserved again, atomically, so a call
that took the room in between makes the second reservation fail rather than overshoot (the wrapper then
tries once more, then refuses).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_FLOOR

from bedrock_budget.budgets.outcomes import Refusal

__all__ = ["fits", "largest_fitting", "minimum_output", "room"]


def room(refusal: Refusal) -> int:
    """What the refusing budget has left, in nano-dollars (``usd``) or weighted milli-tokens (``tokens``),
    rounded down; negative when it is already past its limit."""
    left = refusal.limit - refusal.spent - refusal.reserved
    places = 9 if refusal.unit == "usd" else 3
    return int(left.scaleb(places).to_integral_value(rounding=ROUND_FLOOR))


def fits(refusals: Sequence[Refusal], cost_nanos: int, tokens: Mapping[str, int]) -> bool:
    """Whether a worst case of ``cost_nanos`` and ``tokens`` fits the room of every refusing budget."""
    for refusal in refusals:
        needed = cost_nanos if refusal.unit == "usd" else refusal.budget.weigh(tokens)
        if needed > room(refusal):
            return False
    return True


def minimum_output(refusals: Sequence[Refusal]) -> int:
    """The smallest output cap every refusing budget accepts (the largest of their ``min_output_tokens``)."""
    return max(refusal.budget.min_output_tokens or 1 for refusal in refusals)


def largest_fitting(low: int, high: int, fit: Callable[[int], bool]) -> int | None:
    """The largest ``n`` in ``[low, high]`` with ``fit(n)``, for ``fit`` true up to some point and false
    after it; ``None`` when even ``low`` does not fit. About log2(high - low) calls of ``fit``."""
    if high < low or not fit(low):
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if fit(middle):
            low = middle
        else:
            high = middle - 1
    return low
