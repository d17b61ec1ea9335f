"""An InvokeModel body already read, handed back to an async caller as aiobotocore's own body reads.

aiobotocore's ``StreamingBody`` can be read once, by awaiting. When an InvokeModel's usage must come from
its body (the token headers do not settle the call), the async driver reads it first and replaces
``response["body"]`` with a :class:`BufferedBody` over the same bytes: ``await read()``, ``readinto``,
``iter_chunks``, ``iter_lines``, ``readlines``, ``async for`` and ``async with`` behave for the caller as
before. A body that failed to read is replaced by one whose reads raise the same error.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Final

_CHUNK: Final = 1024


class BufferedBody:
    """Reads ``data`` as aiobotocore's async ``StreamingBody`` reads a response (or raises ``error``)."""

    __slots__ = ("_buffer", "_error", "_length")

    def __init__(self, data: bytes, error: BaseException | None = None) -> None:
        self._buffer = io.BytesIO(data)
        self._length = len(data)
        self._error = error

    async def read(self, amt: int | None = None) -> bytes:
        if self._error is not None:
            raise self._error
        return self._buffer.read(-1 if amt is None else amt)

    async def readinto(self, b: bytearray) -> int:
        if self._error is not None:
            raise self._error
        return self._buffer.readinto(b)

    def readable(self) -> bool:
        return self._error is None and self._buffer.tell() < self._length

    def tell(self) -> int:
        return self._buffer.tell()

    async def readlines(self) -> list[bytes]:
        return [line async for line in self.iter_lines()]

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.iter_chunks(_CHUNK)

    async def __anext__(self) -> bytes:
        chunk = await self.read(_CHUNK)
        if chunk:
            return chunk
        raise StopAsyncIteration

    async def iter_lines(self, chunk_size: int = _CHUNK, keepends: bool = False) -> AsyncIterator[bytes]:
        for line in (await self.read()).splitlines(keepends):
            yield line

    async def iter_chunks(self, chunk_size: int = _CHUNK) -> AsyncIterator[bytes]:
        while chunk := await self.read(chunk_size):
            yield chunk

    def close(self) -> None:
        self._buffer.close()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> BufferedBody:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<bedrock_budget BufferedBody of {self._length} bytes>"
