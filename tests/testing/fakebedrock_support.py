"""Request bodies and response readers per model family, shared by the fake-Bedrock tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
USER_HELLO: Any = [{"role": "user", "content": [{"text": "hello there"}]}]
PROMPT = "Tell me a story about a lighthouse keeper"
CHAT = [{"role": "user", "content": PROMPT}]

Reader = Callable[[dict[str, Any]], tuple[str, int | None, int | None]]
StreamReader = Callable[[list[dict[str, Any]]], tuple[str, int | None, int | None]]


def filler(words: int) -> str:
    from bedrock_budget.testing.usage import filler_text

    return filler_text(words)


@dataclass(frozen=True)
class TextCase:
    """One text family: a model id, a native request, and readers returning (text, input, output) from
    a response body and from the decoded stream chunks (``None`` where the body has no usage)."""

    family: str
    model_id: str
    body: dict[str, Any]
    read: Reader
    read_stream: StreamReader


def _join(chunks: list[dict[str, Any]], get: Callable[[dict[str, Any]], Any]) -> str:
    return "".join(part for part in (get(c) for c in chunks) if isinstance(part, str))


def _chat_stream(chunks: list[dict[str, Any]]) -> tuple[str, int | None, int | None]:
    text = _join(chunks, lambda c: c["choices"][0]["delta"].get("content"))
    usage = chunks[-1].get("usage", {})
    return text, usage.get("prompt_tokens"), usage.get("completion_tokens")


def _chat_body(body: dict[str, Any]) -> tuple[str, int | None, int | None]:
    usage = body.get("usage", {})
    return (
        body["choices"][0]["message"]["content"],
        usage.get("prompt_tokens"),
        usage.get("completion_tokens"),
    )


def _anthropic_stream(chunks: list[dict[str, Any]]) -> tuple[str, int | None, int | None]:
    types = [c["type"] for c in chunks]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = _join(chunks, lambda c: c.get("delta", {}).get("text"))
    start_usage = chunks[0]["message"].get("usage", {})
    delta_usage = chunks[-2].get("usage", {})
    return text, start_usage.get("input_tokens"), delta_usage.get("output_tokens")


def _nova_stream(chunks: list[dict[str, Any]]) -> tuple[str, int | None, int | None]:
    assert next(iter(chunks[0])) == "messageStart"
    assert "metadata" in chunks[-1]
    text = _join(chunks, lambda c: c.get("contentBlockDelta", {}).get("delta", {}).get("text"))
    usage = chunks[-1]["metadata"].get("usage", {})
    return text, usage.get("inputTokens"), usage.get("outputTokens")


TEXT_CASES: list[TextCase] = [
    TextCase(
        "anthropic",
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 200, "messages": CHAT},
        lambda b: (
            (b["content"][0]["text"], b["usage"]["input_tokens"], b["usage"]["output_tokens"])
            if "usage" in b
            else (b["content"][0]["text"], None, None)
        ),
        _anthropic_stream,
    ),
    TextCase(
        "nova",
        "amazon.nova-pro-v1:0",
        {
            "schemaVersion": "messages-v1",
            "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
            "inferenceConfig": {"maxTokens": 200},
        },
        lambda b: (
            b["output"]["message"]["content"][0]["text"],
            b.get("usage", {}).get("inputTokens"),
            b.get("usage", {}).get("outputTokens"),
        ),
        _nova_stream,
    ),
    TextCase(
        "titan-text",
        "amazon.titan-text-express-v1",
        {"inputText": PROMPT, "textGenerationConfig": {"maxTokenCount": 200}},
        lambda b: (
            b["results"][0]["outputText"],
            b.get("inputTextTokenCount"),
            b["results"][0].get("tokenCount"),
        ),
        lambda cs: (
            _join(cs, lambda c: c["outputText"]),
            cs[0].get("inputTextTokenCount"),
            cs[-1].get("totalOutputTextTokenCount"),
        ),
    ),
    TextCase(
        "llama",
        "meta.llama3-1-70b-instruct-v1:0",
        {"prompt": f"<|begin_of_text|>{PROMPT}", "max_gen_len": 200},
        lambda b: (b["generation"], b.get("prompt_token_count"), b.get("generation_token_count")),
        lambda cs: (
            _join(cs, lambda c: c["generation"]),
            cs[0].get("prompt_token_count"),
            cs[-1].get("generation_token_count"),
        ),
    ),
    TextCase(
        "mistral",
        "mistral.mistral-7b-instruct-v0:2",
        {"prompt": f"<s>[INST] {PROMPT} [/INST]", "max_tokens": 200},
        lambda b: (b["outputs"][0]["text"], None, None),
        lambda cs: (_join(cs, lambda c: c["outputs"][0]["text"]), None, None),
    ),
    TextCase(
        "mistral",
        "mistral.mistral-large-2407-v1:0",
        {"messages": CHAT, "max_tokens": 200},
        lambda b: (b["choices"][0]["message"]["content"], None, None),
        lambda cs: (_join(cs, lambda c: c["choices"][0]["message"]["content"]), None, None),
    ),
    TextCase(
        "cohere",
        "cohere.command-text-v14",
        {"prompt": PROMPT, "max_tokens": 200},
        lambda b: (b["generations"][0]["text"], None, None),
        lambda cs: (_join(cs, lambda c: c.get("text")), None, None),
    ),
    TextCase(
        "cohere",
        "cohere.command-r-plus-v1:0",
        {"message": PROMPT, "max_tokens": 200},
        lambda b: (b["text"], None, None),
        lambda cs: (
            _join([c for c in cs if c["event_type"] == "text-generation"], lambda c: c["text"]),
            None,
            None,
        ),
    ),
    TextCase(
        "ai21",
        "ai21.jamba-1-5-large-v1:0",
        {"messages": CHAT, "max_tokens": 200},
        _chat_body,
        lambda cs: (
            _join(cs, lambda c: c["choices"][0]["message"]["content"]),
            cs[-1].get("usage", {}).get("prompt_tokens"),
            cs[-1].get("usage", {}).get("completion_tokens"),
        ),
    ),
    TextCase(
        "deepseek",
        "deepseek.r1-v1:0",
        {"prompt": PROMPT, "max_tokens": 200},
        lambda b: (b["choices"][0]["text"], None, None),
        lambda cs: (_join(cs, lambda c: c["choices"][0]["text"]), None, None),
    ),
    TextCase("deepseek", "deepseek.v3-v1:0", {"messages": CHAT, "max_tokens": 200}, _chat_body, _chat_stream),
    TextCase(
        "openai",
        "openai.gpt-oss-120b-1:0",
        {"messages": CHAT, "max_completion_tokens": 200},
        _chat_body,
        _chat_stream,
    ),
    TextCase("qwen", "qwen.qwen3-32b-v1:0", {"messages": CHAT, "max_tokens": 200}, _chat_body, _chat_stream),
]


def case_id(case: TextCase) -> str:
    return case.model_id


def read_chunks(response: dict[str, Any]) -> list[dict[str, Any]]:
    """Read an InvokeModelWithResponseStream response to the end, decoding each chunk's model JSON."""
    chunks: list[dict[str, Any]] = []
    for event in response["body"]:
        assert set(event) == {"chunk"}, event
        chunks.append(json.loads(event["chunk"]["bytes"]))
    return chunks


def read_events(response: dict[str, Any]) -> list[dict[str, Any]]:
    return list(response["stream"])
