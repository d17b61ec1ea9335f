"""StreamAccumulator: ConverseStream and InvokeModelWithResponseStream events, complete, cut and failed."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest

from bedrock_budget.extract import Extracted, RequestInfo, StreamAccumulator
from bedrock_budget.usage import Usage

from .builders import chunk, chunks

METRICS = "amazon-bedrock-invocationMetrics"


def run(
    operation: str,
    family: str,
    events: Iterable[dict[str, Any]],
    *,
    complete: bool = True,
    request: RequestInfo | None = None,
    response: dict[str, Any] | None = None,
) -> Extracted:
    acc = StreamAccumulator(operation, family, response)
    for event in events:
        acc.feed(event)
    return acc.result(complete=complete, request=request or RequestInfo(operation, family))


# --- ConverseStream ----------------------------------------------------------------------------------------


def converse_events(*, metadata: bool = True) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "Hello, "}, "contentBlockIndex": 0}},
        {"contentBlockDelta": {"delta": {"text": "wörld!"}, "contentBlockIndex": 0}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {
            "contentBlockStart": {
                "start": {"toolUse": {"toolUseId": "t1", "name": "f"}},
                "contentBlockIndex": 1,
            }
        },
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"city": "Paris"}'}}, "contentBlockIndex": 1}},
        {"contentBlockStop": {"contentBlockIndex": 1}},
        {"messageStop": {"stopReason": "tool_use"}},
    ]
    if metadata:
        events.append(
            {
                "metadata": {
                    "usage": {
                        "inputTokens": 310,
                        "outputTokens": 17,
                        "totalTokens": 1327,
                        "cacheReadInputTokens": 1000,
                        "cacheWriteInputTokens": 0,
                    },
                    "metrics": {"latencyMs": 480},
                    "serviceTier": {"type": "flex"},
                    "performanceConfig": {"latency": "standard"},
                    "trace": {
                        "guardrail": {
                            "inputAssessment": {
                                "g": {"invocationMetrics": {"usage": {"contentPolicyUnits": 1}}}
                            }
                        },
                        "promptRouter": {"invokedModelId": "arn:aws:bedrock:us-east-1::foundation-model/m"},
                    },
                }
            }
        )
    return events


def test_converse_stream_complete() -> None:
    got = run("ConverseStream", "anthropic", converse_events())
    assert got == Extracted(
        Usage(
            input_tokens=310,
            output_tokens=17,
            cache_read_tokens=1000,
            guardrail_text_units={"content_filters": 1},
        ),
        "stream_metadata",
        served_service_tier="flex",
        served_latency="standard",
        routed_model_id="arn:aws:bedrock:us-east-1::foundation-model/m",
    )


def test_converse_stream_abandoned_before_metadata_charges_what_was_generated() -> None:
    request = RequestInfo("ConverseStream", "anthropic", input_bytes=600)
    got = run("ConverseStream", "anthropic", converse_events(metadata=False), complete=False, request=request)
    # "Hello, " (7) + "wörld!" (7 bytes) + the tool input (17) = 31 bytes → 8 tokens; input 600 / 3.
    assert got == Extracted(
        Usage(input_tokens=200, output_tokens=8), "estimate", partial=True, estimated=True
    )


@pytest.mark.parametrize("cut", [0, 1, 3, 8])
def test_converse_stream_cut_after_k_events(cut: int) -> None:
    events = converse_events(metadata=False)[:cut]
    got = run(
        "ConverseStream",
        "nova",
        events,
        complete=False,
        request=RequestInfo("ConverseStream", "nova", input_bytes=30),
    )
    expected_bytes = {0: 0, 1: 0, 3: 14, 8: 31}[cut]
    assert got.usage.output_tokens == -(-expected_bytes // 4)
    assert got.usage.input_tokens == 10
    assert got.partial
    assert got.estimated


def test_converse_stream_metadata_is_final_even_if_closed_after_it() -> None:
    got = run("ConverseStream", "anthropic", converse_events(), complete=False)
    assert got.usage.output_tokens == 17
    assert got.partial is True
    assert got.estimated is False


def test_converse_stream_error_event_marks_partial() -> None:
    events = [*converse_events(metadata=False)[:3], {"modelStreamErrorException": {"message": "boom"}}]
    got = run("ConverseStream", "anthropic", events, complete=True)
    assert got.partial is True
    assert got.usage.output_tokens == 4


def test_converse_stream_cache_details_split() -> None:
    usage = {
        "inputTokens": 5,
        "outputTokens": 6,
        "totalTokens": 311,
        "cacheWriteInputTokens": 300,
        "cacheDetails": [{"ttl": "1h", "inputTokens": 120}, {"ttl": "5m", "inputTokens": 180}],
    }
    got = run("converse_stream", "anthropic", [{"metadata": {"usage": usage, "metrics": {"latencyMs": 1}}}])
    assert got.usage == Usage(
        input_tokens=5, output_tokens=6, cache_write_tokens=300, cache_write_1h_tokens=120
    )


# --- InvokeModelWithResponseStream: Anthropic --------------------------------------------------------------


def claude_stream() -> list[dict[str, Any]]:
    start_usage = {
        "input_tokens": 7,
        "cache_creation_input_tokens": 2238,
        "cache_read_input_tokens": 14486,
        "cache_creation": {"ephemeral_5m_input_tokens": 238, "ephemeral_1h_input_tokens": 2000},
        "output_tokens": 1,
    }
    message = {
        "id": "msg_bdrk_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [],
        "usage": start_usage,
    }
    return [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "abcdefgh" * 5},
            }
            for _ in range(3)
        ),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 126}},
        {
            "type": "message_stop",
            METRICS: {
                "inputTokenCount": 7,
                "outputTokenCount": 126,
                "invocationLatency": 4069,
                "firstByteLatency": 1117,
                "cacheReadInputTokenCount": 14486,
                "cacheWriteInputTokenCount": 2238,
            },
        },
    ]


def test_anthropic_stream_complete_uses_metrics_and_native_ttl_split() -> None:
    response: dict[str, Any] = {
        "ResponseMetadata": {"HTTPHeaders": {}},
        "contentType": "application/json",
        "serviceTier": "default",
        "body": None,
    }
    got = run("InvokeModelWithResponseStream", "anthropic", chunks(*claude_stream()), response=response)
    assert got == Extracted(
        Usage(
            input_tokens=7,
            output_tokens=126,
            cache_read_tokens=14486,
            cache_write_tokens=2238,
            cache_write_1h_tokens=2000,
        ),
        "invocation_metrics",
        served_service_tier="default",
    )


def test_anthropic_stream_cut_mid_text_charges_the_text_not_the_placeholder() -> None:
    got = run("InvokeModelWithResponseStream", "anthropic", chunks(*claude_stream()[:5]), complete=False)
    # message_start said 1 output token; three 40-byte deltas were received → 30 tokens.
    assert got.usage.output_tokens == 30
    assert got.usage.input_tokens == 7
    assert got.usage.cache_write_1h_tokens == 2000
    assert (got.source, got.partial, got.estimated) == ("body", True, True)


def test_anthropic_message_delta_output_is_cumulative_not_summed() -> None:
    events = [e for e in claude_stream() if e["type"] != "message_stop"]
    events.insert(-1, {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 60}})
    events[-1] = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn"},
        "usage": {"output_tokens": 126},
    }
    got = run("InvokeModelWithResponseStream", "anthropic", chunks(*events))
    assert got.usage.output_tokens == 126
    assert (got.source, got.estimated) == ("body", False)


def test_anthropic_stream_cut_after_final_delta_keeps_the_reported_count() -> None:
    got = run("InvokeModelWithResponseStream", "anthropic", chunks(*claude_stream()[:-1]), complete=False)
    assert got.usage.output_tokens == 126
    assert got.estimated is False


# --- InvokeModelWithResponseStream: other families ---------------------------------------------------------


def test_nova_native_stream() -> None:
    events: list[dict[str, Any]] = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "Hi"}, "contentBlockIndex": 0}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "end_turn"}},
        {
            "metadata": {
                "usage": {
                    "inputTokens": 11,
                    "outputTokens": 2,
                    "cacheReadInputTokenCount": 4,
                    "cacheWriteInputTokenCount": 0,
                },
                "metrics": {},
                "trace": {},
            }
        },
    ]
    got = run("InvokeModelWithResponseStream", "nova", chunks(*events))
    assert got.usage == Usage(input_tokens=11, output_tokens=2, cache_read_tokens=4)
    assert got.source == "body"
    events[-1][METRICS] = {
        "inputTokenCount": 11,
        "outputTokenCount": 2,
        "invocationLatency": 90,
        "firstByteLatency": 40,
    }
    with_metrics = run("InvokeModelWithResponseStream", "nova", chunks(*events))
    # The metrics block is authoritative and says nothing was cached; Nova's own fields fill no gap.
    assert with_metrics.usage == Usage(input_tokens=11, output_tokens=2)
    assert with_metrics.source == "invocation_metrics"


def llama_chunks() -> list[dict[str, Any]]:
    return [
        {"generation": "The", "prompt_token_count": 18, "generation_token_count": 1, "stop_reason": None},
        {
            "generation": " capital",
            "prompt_token_count": None,
            "generation_token_count": 2,
            "stop_reason": None,
        },
        {
            "generation": " is Paris.",
            "prompt_token_count": None,
            "generation_token_count": 5,
            "stop_reason": "stop",
        },
    ]


def test_llama_stream_counts_are_live_per_chunk() -> None:
    assert run("InvokeModelWithResponseStream", "llama", chunks(*llama_chunks())).usage == Usage(
        input_tokens=18, output_tokens=5
    )
    cut = run("InvokeModelWithResponseStream", "llama", chunks(*llama_chunks()[:2]), complete=False)
    assert cut.usage == Usage(input_tokens=18, output_tokens=2)
    assert (cut.partial, cut.estimated) == (True, False)


def test_titan_stream() -> None:
    payloads = [
        {
            "outputText": "Hel",
            "index": 0,
            "totalOutputTextTokenCount": 1,
            "completionReason": None,
            "inputTextTokenCount": 9,
        },
        {
            "outputText": "lo",
            "index": 0,
            "totalOutputTextTokenCount": 2,
            "completionReason": "FINISH",
            "inputTextTokenCount": None,
        },
    ]
    assert run("InvokeModelWithResponseStream", "titan_text", chunks(*payloads)).usage == Usage(
        input_tokens=9, output_tokens=2
    )


def test_chat_completions_stream_usage_on_last_chunk() -> None:
    base = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "openai.gpt-oss-120b-1:0",
    }
    payloads = [
        {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}],
        },
        {**base, "choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": None}]},
        {
            **base,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": 50,
                "completion_tokens": 3,
                "total_tokens": 53,
                "prompt_tokens_details": {"cached_tokens": 20},
            },
        },
    ]
    got = run("InvokeModelWithResponseStream", "openai_chat", chunks(*payloads))
    assert got.usage == Usage(input_tokens=30, output_tokens=3, cache_read_tokens=20)
    cut = run("InvokeModelWithResponseStream", "openai_chat", chunks(*payloads[:2]), complete=False)
    assert cut.usage.output_tokens == 2  # "Hi there" = 8 bytes


def test_mistral_stream_relies_on_invocation_metrics() -> None:
    payloads: list[dict[str, Any]] = [
        {"outputs": [{"text": "Bon", "stop_reason": None}]},
        {
            "outputs": [{"text": "jour", "stop_reason": "stop"}],
            METRICS: {
                "inputTokenCount": 12,
                "outputTokenCount": 3,
                "invocationLatency": 1,
                "firstByteLatency": 1,
            },
        },
    ]
    got = run("InvokeModelWithResponseStream", "mistral", chunks(*payloads))
    assert got == Extracted(Usage(input_tokens=12, output_tokens=3), "invocation_metrics")


def test_jamba_stream_with_captured_chunk_shape() -> None:
    payloads: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": "I"}, "stop_reason": None}]},
        {
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": " am"}, "stop_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10},
        },
    ]
    assert run("InvokeModelWithResponseStream", "jamba", chunks(*payloads)).usage == Usage(
        input_tokens=8, output_tokens=2
    )


def test_cohere_chat_stream_does_not_count_the_final_echo() -> None:
    payloads = [
        {"is_finished": False, "event_type": "stream-start", "generation_id": "g"},
        {"is_finished": False, "event_type": "text-generation", "text": "abcd"},
        {"is_finished": False, "event_type": "text-generation", "text": "efgh"},
        {
            "is_finished": True,
            "event_type": "stream-end",
            "finish_reason": "COMPLETE",
            "response": {"text": "abcdefgh"},
        },
    ]
    got = run(
        "InvokeModelWithResponseStream",
        "cohere_chat",
        chunks(*payloads),
        request=RequestInfo("InvokeModelWithResponseStream", "cohere_chat", input_bytes=35),
    )
    assert got == Extracted(Usage(input_tokens=10, output_tokens=2), "estimate", estimated=True)


def test_guardrail_trace_in_chunks_is_summed() -> None:
    trace = {"guardrail": {"outputs": [{"g": {"invocationMetrics": {"usage": {"contentPolicyUnits": 1}}}}]}}
    payloads = [
        {
            "generation": "a",
            "prompt_token_count": 3,
            "generation_token_count": 1,
            "amazon-bedrock-trace": trace,
        },
        {"generation": "b", "generation_token_count": 2, "amazon-bedrock-trace": trace},
    ]
    got = run("InvokeModelWithResponseStream", "llama", chunks(*payloads))
    assert dict(got.usage.guardrail_text_units) == {"content_filters": 2}


def test_unknown_family_is_sniffed() -> None:
    got = run("InvokeModelWithResponseStream", "unknown", chunks(*llama_chunks()))
    assert got.usage == Usage(input_tokens=18, output_tokens=5)


# --- Hostile input and cost per event ----------------------------------------------------------------------


def test_hostile_events_are_ignored() -> None:
    events: list[Any] = [
        {"chunk": {"bytes": b"not json"}},
        {"chunk": {"bytes": None}},
        {"chunk": {"bytes": b"[1,2]"}},
        {"chunk": "nope"},
        {
            "chunk": {
                "bytes": json.dumps({METRICS: {"inputTokenCount": -3, "outputTokenCount": "9"}}).encode()
            }
        },
        {"chunk": {"bytes": json.dumps({METRICS: "bad", "generation": 5}).encode()}},
        {"unexpected": 1},
        "not even a dict",
        *chunks(*llama_chunks()),
    ]
    got = run("InvokeModelWithResponseStream", "llama", events)
    assert got.usage == Usage(input_tokens=18, output_tokens=5)
    assert got.partial is False


def test_invoke_stream_exception_event_and_empty_stream() -> None:
    failed = run(
        "InvokeModelWithResponseStream",
        "llama",
        [chunk(llama_chunks()[0]), {"throttlingException": {"message": "slow"}}],
    )
    assert (failed.partial, failed.usage.output_tokens) == (True, 1)
    empty = run(
        "InvokeModelWithResponseStream",
        "anthropic",
        [],
        complete=False,
        request=RequestInfo("InvokeModelWithResponseStream", "anthropic", input_bytes=12),
    )
    assert empty == Extracted(Usage(input_tokens=4), "estimate", partial=True, estimated=True)


def test_one_json_decode_per_chunk_and_none_for_converse(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = json.loads

    def counting(data: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(data)

    # The accumulator decodes through the json module, so counting its loads counts the decodes.
    monkeypatch.setattr(json, "loads", counting)
    events = list(chunks(*claude_stream()))
    run("InvokeModelWithResponseStream", "anthropic", events)
    assert calls == len(events)
    calls = 0
    run("ConverseStream", "anthropic", converse_events())
    assert calls == 0


def test_result_can_be_taken_more_than_once() -> None:
    acc = StreamAccumulator("InvokeModelWithResponseStream", "anthropic")
    for event in chunks(*claude_stream()[:5]):
        acc.feed(event)
    request = RequestInfo("InvokeModelWithResponseStream", "anthropic")
    assert acc.result(complete=False, request=request) == acc.result(complete=False, request=request)
