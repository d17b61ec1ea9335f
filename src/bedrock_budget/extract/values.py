"""Defensive readers for values that came over the wire.

Responses are parsed by botocore from JSON the model produced, so nothing in them is trusted: a count is
only a count when it is a plain int in a sane range. Anything else reads as "missing", which the callers
turn into an estimate instead of an exception.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "MAX_COUNT",
    "as_count",
    "as_mapping",
    "as_text",
    "dig",
    "header_count",
    "token_bytes",
    "utf8_len",
]

# No single Bedrock call reports a billion tokens; a larger number is corruption, not usage.
MAX_COUNT: Final = 1_000_000_000
_MAX_HEADER_DIGITS: Final = 10
_MAX_TEXT: Final = 2048


def as_count(value: object) -> int | None:
    # bool is an int subclass, and JSON floats (12.0) are not counts Bedrock ever sends.
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value
    return None


def header_count(value: object) -> int | None:
    """A count from an HTTP header value (a string of ASCII digits)."""
    if isinstance(value, str):
        text = value.strip()
        # str.isdigit alone accepts superscripts and other Unicode digits that int() rejects.
        if text.isascii() and text.isdigit() and len(text) <= _MAX_HEADER_DIGITS:
            number = int(text)
            return number if number <= MAX_COUNT else None
        return None
    return as_count(value)


def as_mapping(value: object) -> Mapping[str, Any] | None:
    # botocore hands out plain dicts; the exact-type test skips the slow ABC check on the hot path.
    if type(value) is dict:
        return value
    if value is None:
        return None
    return value if isinstance(value, Mapping) else None


def as_text(value: object) -> str | None:
    """A short enum-like string (tier, latency, model id); anything else is ignored."""
    if isinstance(value, str) and 0 < len(value) <= _MAX_TEXT:
        return value
    return None


def dig(node: object, *path: str) -> object:
    for key in path:
        if type(node) is not dict and (node is None or not isinstance(node, Mapping)):
            return None
        node = node.get(key)
    return node


def utf8_len(text: str) -> int:
    # Most model text is ASCII, where the length is the byte count without allocating an encoded copy.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def token_bytes(text: str) -> int:
    """The UTF-8 size of ``text`` or of its NFKC form, whichever is larger: at least its token count.

    A tokenizer that normalises with NFKC (Anthropic's public Claude tokenizer does) reads the normalised
    form, which can be far longer: U+FDFA is 3 bytes and becomes 33, and costs 15 tokens there.
    """
    if text.isascii():  # ASCII is its own NFKC form
        return len(text)
    raw = len(text.encode("utf-8", "surrogatepass"))
    if unicodedata.is_normalized("NFKC", text):
        return raw
    return max(raw, len(unicodedata.normalize("NFKC", text).encode("utf-8", "surrogatepass")))
