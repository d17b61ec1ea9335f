"""Text that tokenizes densely, for the tests that check the reservation is a bound whatever the content
(tests/extract/test_estimate.py, the dense-input races of tests/wrapper and tests_async)."""

from __future__ import annotations

__all__ = ["DENSE_TEXTS", "repeat_to"]

# Content the old 3-bytes-per-token estimate under-reserved (issue table: code 2.27 B/token, CJK 1.39,
# base64 1.42, math symbols 1.32): the bound holds at the densest possible ratio, one token per byte.
DENSE_TEXTS = {
    "code": "def f(x):\n    return {k: v for k, v in x.items() if v}\n" * 40,
    "json": '{"id": 12345, "tags": ["a", "b"], "ok": true}' * 40,
    "cjk": "東京都の天気は晴れです。" * 80,
    "base64": "QmVkcm9jayBidWRnZXQgYm91bmQgdGVzdA==" * 60,
    "emoji": "🙂🚀🔥" * 200,
    "math": "∀x∈ℝ: ∫₀¹ f(x)dx ≤ ∑ᵢ aᵢ" * 60,
}


def repeat_to(unit: str, size: int) -> str:
    """``unit`` repeated to at most ``size`` UTF-8 bytes, cut at a character boundary."""
    text = unit * (size // len(unit.encode()) + 1)
    while len(text.encode()) > size:
        text = text[:-1]
    return text
