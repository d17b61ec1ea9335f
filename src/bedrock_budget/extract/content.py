"""Measure the content of a request without keeping any of it.

One iterative walk (no recursion, so hostile nesting cannot raise RecursionError) over Converse kwargs or a
parsed InvokeModel body. Text is reduced to its UTF-8 size on the spot; images and documents are recognised
by the block shapes every family uses and counted separately, because they are billed differently from
text and their base64 would otherwise inflate the text size.

Values a chat template renders as JSON text (tool definitions, tool-call arguments, JSON tool results) are
measured as the longest JSON text the same value can become (ASCII escapes, four-space indentation), so the
quotes, brackets and escapes the template adds are counted too. Every object walked (a message, a content
block, a source) is counted as a part: the place a template puts role markers and block delimiters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bedrock_budget.extract.values import token_bytes, utf8_len

__all__ = ["Measure", "json_text_bytes", "measure", "string_bytes"]

_TTL_RANK: Final = {"5m": 1, "1h": 2}
# Anthropic ("image"), OpenAI/Mistral/Cohere v4 ("image_url"), OpenAI responses-style ("input_image").
_IMAGE_BLOCK_TYPES: Final = frozenset({"image", "image_url", "input_image"})
# Keys whose string (or list of strings) value is an encoded input image in native bodies: Llama 3.2 and
# Cohere Embed ``images``, Titan Embeddings ``inputImage``, Titan/Nova Canvas conditioning and masks.
_IMAGE_KEYS: Final = frozenset({"images", "inputImage", "conditionImage", "maskImage"})
# Media the price of which is not a function of its size in bytes (or is not priced by this library).
_UNMEASURED_BLOCKS: Final = frozenset({"video", "audio"})
# Opaque values the model does not read as text (Claude thinking signatures, redacted reasoning).
_OPAQUE_KEYS: Final = frozenset({"signature", "redactedContent"})
_CACHE_KEYS: Final = frozenset({"cachePoint", "cache_control"})
# Values templates render as JSON text: tool definitions (Converse/Nova/Anthropic ``tools``, OpenAI-style
# ``functions``), tool-call arguments (``input``) and JSON tool results (``json``).
_JSON_RENDERED_KEYS: Final = frozenset({"tools", "functions", "input", "json"})
_TOOL_LIST_KEYS: Final = frozenset({"tools", "functions"})
# A tool entry carrying one of these is defined by the caller; one with only a ``type`` and a name
# (``bash_20250124``, ``computer_20250124``, ...) is an Anthropic-defined tool whose definition the provider
# expands on its side.
_CALLER_TOOL_KEYS: Final = frozenset({"toolSpec", "input_schema", "function", "parameters"})
_CALLER_TOOL_TYPES: Final = frozenset({"custom", "function"})


@dataclass(slots=True)
class Measure:
    text_bytes: int = 0
    images: int = 0
    document_bytes: int = 0
    cache_ttl: str | None = None
    parts: int = 0
    tools: int = 0
    provider_tools: int = 0
    videos: int = 0

    def note_cache(self, marker: object) -> None:
        if not isinstance(marker, Mapping):
            return
        # A cache point without a ttl is the default five-minute one.
        ttl = marker.get("ttl", "5m")
        rank = _TTL_RANK.get(ttl) if isinstance(ttl, str) else None
        if rank is not None and rank > _TTL_RANK.get(self.cache_ttl or "", 0):
            self.cache_ttl = ttl


def _b64_size(value: object) -> int:
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, str):
        return len(value) * 3 // 4
    return 0


def _document(source: object, into: Measure, stack: list[Any]) -> None:
    """A document source: raw or base64 bytes are document bytes; inline text is text."""
    if not isinstance(source, Mapping):
        return
    for key in ("bytes", "data"):
        if key in source:
            raw = source[key]
            if isinstance(raw, str) and source.get("type") in ("text", "plain"):
                into.text_bytes += token_bytes(raw)
            else:
                into.document_bytes += _b64_size(raw)
    text = source.get("text")
    if isinstance(text, str):
        into.text_bytes += token_bytes(text)
    content = source.get("content")
    if content is not None:
        stack.append(content)


def json_text_bytes(value: Any) -> int | None:
    """The UTF-8 size of the longest JSON text ``value`` renders as; ``None`` if it is not JSON data.

    ASCII escapes are never shorter than the UTF-8 they stand for, and four-space indentation never shorter
    than a compact or ``", "``-separated rendering, so no template's ``tojson`` can produce more bytes, unless
    it keeps non-ASCII characters and the tokenizer expands them by NFKC: that rendering is measured too.
    The text is rendered by the C encoder without indentation, which :func:`_indent_bytes` adds.
    """
    try:
        kept = json.dumps(value, ensure_ascii=False, default=_opaque_json)
        longest = len(kept)
        if not kept.isascii():
            longest = max(len(json.dumps(value, ensure_ascii=True, default=_opaque_json)), token_bytes(kept))
    except (TypeError, ValueError, RecursionError):
        return None
    return longest + _indent_bytes(value)


def _indent_bytes(value: Any) -> int:
    """What ``indent=4`` adds to a ``", "``-separated rendering of ``value``.

    A non-empty container of n items at depth d puts each item on a line indented 4(d+1) (a newline and the
    spaces, while ``", "`` loses its space) and its closing bracket on a line indented 4d.
    """
    extra = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping):
            items: Any = node.values()
        elif isinstance(node, list | tuple):
            items = node
        else:
            continue
        if not items:
            continue
        extra += len(items) * 4 * (depth + 1) + 2 + 4 * depth
        stack.extend((item, depth + 1) for item in items)
    return extra


def _opaque_json(value: object) -> str:
    # Raw bytes (an image or document inside a tool result) are not text the tokenizer reads.
    return ""


def _tool_list(tools: object, into: Measure) -> None:
    if not isinstance(tools, list | tuple):
        return
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        if "cachePoint" in tool:
            # A Converse cache point closing the tool list, not a tool.
            into.note_cache(tool["cachePoint"])
            continue
        into.note_cache(tool.get("cache_control"))
        into.tools += 1
        kind = tool.get("type")
        if isinstance(kind, str) and kind not in _CALLER_TOOL_TYPES and not _CALLER_TOOL_KEYS & tool.keys():
            into.provider_tools += 1


def measure(value: Any, into: Measure) -> Measure:
    """Add the text, image, document and template-part counts found in ``value`` to ``into``.

    Text counts as :func:`~bedrock_budget.extract.values.token_bytes`: its UTF-8 size, or its NFKC form's
    where that is longer.
    """
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            into.text_bytes += token_bytes(node)
        elif isinstance(node, Mapping):
            into.parts += 1
            _mapping(node, into, stack)
        elif isinstance(node, list | tuple):
            stack.extend(node)
        elif isinstance(node, int | float) and not isinstance(node, bool):
            into.text_bytes += len(str(node))
    return into


def _mapping(node: Mapping[Any, Any], into: Measure, stack: list[Any]) -> None:
    block_type = node.get("type")
    if isinstance(block_type, str):
        if block_type in _IMAGE_BLOCK_TYPES:
            into.images += 1
            return
        if block_type == "document" and "source" in node:
            _document(node["source"], into, stack)
            stack.extend(v for k, v in node.items() if k not in ("source", "type", "cache_control"))
            into.note_cache(node.get("cache_control"))
            return
    for key, item in node.items():
        if not isinstance(key, str):
            continue
        if key in _CACHE_KEYS:
            into.note_cache(item)
            continue
        if key in _OPAQUE_KEYS:
            continue
        if key in _UNMEASURED_BLOCKS and isinstance(item, Mapping):
            if key == "video":
                into.videos += 1
            continue
        if key in _JSON_RENDERED_KEYS and isinstance(item, Mapping | list | tuple):
            if key in _TOOL_LIST_KEYS:
                _tool_list(item, into)
            rendered = json_text_bytes(item)
            if rendered is not None:
                into.text_bytes += token_bytes(key) + rendered
                continue
        if key == "image":
            # Converse/Nova image block (a mapping), or a native body's base64 image (a string).
            if isinstance(item, Mapping | str | bytes):
                into.images += 1
                continue
        elif key == "document" and isinstance(item, Mapping) and "source" in item:
            _document(item["source"], into, stack)
            name = item.get("name")
            if isinstance(name, str):
                into.text_bytes += token_bytes(name)
            continue
        elif key in _IMAGE_KEYS:
            if isinstance(item, str):
                into.images += 1
                continue
            if isinstance(item, list | tuple):
                into.images += sum(1 for entry in item if isinstance(entry, str | Mapping))
                continue
        into.text_bytes += token_bytes(key)
        stack.append(item)


def string_bytes(value: Any) -> int:
    """UTF-8 size of the string values in ``value`` (keys excluded): generated text, measured and dropped."""
    total = 0
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            total += utf8_len(node)
        elif isinstance(node, Mapping):
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
    return total
