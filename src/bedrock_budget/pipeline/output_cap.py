"""Lowering a request's output-token cap in place, for a ``clamp`` budget: Converse's
``inferenceConfig.maxTokens``, or the family's own field in an InvokeModel body (Anthropic ``max_tokens``,
Nova ``inferenceConfig.maxTokens``, Llama ``max_gen_len``, Titan ``textGenerationConfig.maxTokenCount``,
...; see ``extract.request.max_token_paths``).

Only the cap changes: the caller's nested dictionaries are copied, never edited, and a native body is
re-encoded only when its cap had to change. A request whose cap cannot be set — a body that is not a JSON
object, a family without an output cap, a cap that would not leave room for Claude's thinking budget — is
left exactly as it was and the call is refused instead.
"""

from __future__ import annotations

import json
from typing import Any

from bedrock_budget.extract.request import max_token_paths

__all__ = ["cap_output"]

_CONVERSE = ("Converse", "ConverseStream")
_INVOKE = ("InvokeModel", "InvokeModelWithResponseStream")


def cap_output(operation: str, family: str, kwargs: dict[str, Any], max_tokens: int, thinking: int) -> bool:
    """Set the request's output cap to ``max_tokens``; ``False`` (``kwargs`` untouched) when it cannot.
    ``thinking`` is the request's thinking budget (0 without one), which the cap must exceed."""
    if max_tokens < 1 or max_tokens <= thinking:
        return False
    if operation in _CONVERSE:
        config = kwargs.get("inferenceConfig")
        if config is not None and not isinstance(config, dict):
            return False
        kwargs["inferenceConfig"] = {**(config or {}), "maxTokens": max_tokens}
        return True
    if operation not in _INVOKE:
        return False
    paths = max_token_paths(family)
    body = kwargs.get("body")
    if not paths or not isinstance(body, bytes | bytearray | str):
        return False
    try:
        document = json.loads(body)
    except ValueError:
        return False
    if not isinstance(document, dict):
        return False
    # The field the caller used if there is one (Nova's older max_new_tokens, say), else the preferred one.
    path = next((p for p in paths if _get(document, p) is not None), paths[0])
    if not _set(document, path, max_tokens):
        return False
    encoded = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    kwargs["body"] = encoded if isinstance(body, str) else encoded.encode("utf-8")
    return True


def _get(document: dict[str, Any], path: tuple[str, ...]) -> object:
    node: object = document
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _set(document: dict[str, Any], path: tuple[str, ...], value: int) -> bool:
    node = document
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            return False
        node = child
    node[path[-1]] = value
    return True
