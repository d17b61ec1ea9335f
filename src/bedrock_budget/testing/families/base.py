"""The interface every model family implements, plus helpers shared by the family modules."""

from __future__ import annotations

import base64
import functools
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

from bedrock_budget.testing.errors import BedrockError
from bedrock_budget.testing.usage import ReportedUsage

__all__ = [
    "Family",
    "Generation",
    "Kind",
    "cumulative_counts",
    "embedding_vector",
    "int_at",
    "malformed",
    "require",
    "tiny_png_base64",
]

Kind = Literal["text", "embedding", "image", "video"]


@dataclass(frozen=True, slots=True)
class Generation:
    """Everything a family needs to render one response. ``pieces`` is ``text`` split for streaming."""

    model_id: str
    usage: ReportedUsage
    text: str
    pieces: tuple[str, ...]
    hit_limit: bool
    body_usage: bool
    response_id: str
    created: int
    body: Mapping[str, Any]


class Family:
    """A model family: how its InvokeModel request is checked and how its responses look.

    Subclasses override the hooks that apply to them; the defaults describe a text model.
    """

    name: ClassVar[str]
    kind: ClassVar[Kind] = "text"
    # Whether InvokeModel responses carry the x-amzn-bedrock-*-token-count headers by default.
    token_headers: ClassVar[bool] = True
    streaming: ClassVar[bool] = True
    synchronous: ClassVar[bool] = True

    @property
    def converse(self) -> bool:
        return self.kind == "text" and self.synchronous

    def validate(self, body: Mapping[str, Any]) -> None:
        """Raise a ``ValidationException`` for a body this family would refuse."""

    def max_tokens(self, body: Mapping[str, Any]) -> int | None:
        return None

    def response(self, gen: Generation) -> dict[str, Any]:
        raise NotImplementedError

    def stream(self, gen: Generation) -> list[dict[str, Any]]:
        """Model-native JSON objects, one per ``chunk`` event; the server adds invocation metrics to the
        last one."""
        raise NotImplementedError


def malformed(detail: str) -> BedrockError:
    return BedrockError(
        "ValidationException",
        f"Malformed input request: {detail}, please reformat your input and try again.",
    )


def require(body: Mapping[str, Any], *keys: str) -> None:
    for key in keys:
        if key not in body:
            raise malformed(f"#: required key [{key}] not found")


def int_at(body: Mapping[str, Any], *path: str) -> int | None:
    """The integer at ``body[path[0]][path[1]]...``, or ``None`` when absent or not an integer."""
    node: Any = body
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    if isinstance(node, int) and not isinstance(node, bool):
        return node
    return None


def cumulative_counts(pieces: Sequence[str], total: int) -> list[int]:
    """Running token counts for streamed pieces, ending exactly at ``total``."""
    words = [len(p.split()) for p in pieces]
    all_words = sum(words) or 1
    seen = 0
    out: list[int] = []
    for count in words:
        seen += count
        out.append(total * seen // all_words)
    if out:
        out[-1] = total
    return out


@functools.lru_cache(maxsize=16)
def _vector(dimensions: int) -> tuple[float, ...]:
    return tuple(round(((i * 37) % 101) / 101.0 - 0.5, 6) for i in range(dimensions))


def embedding_vector(dimensions: int) -> list[float]:
    return list(_vector(dimensions))


def _png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return len(data).to_bytes(4, "big") + kind + data + crc.to_bytes(4, "big")

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    pixels = zlib.compress(b"\x00\x80\x80\x80")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


_PNG_BASE64: Final = base64.b64encode(_png_1x1()).decode("ascii")


def tiny_png_base64() -> str:
    """A valid 1×1 grey PNG: image responses stay small but decodable."""
    return _PNG_BASE64
